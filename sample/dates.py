"""Day numbers (days since 1970-01-01, the generator's clock) and dates and times as text.

Times are UTC seconds; the sources write them in UTC or in the stores' local time
(``STORE_TIMEZONE``), which the simulation approximates by a nominal UTC+2 when it draws
times of day.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sample.shop import STORE_TIMEZONE
from sample.text import cat, where, zero_padded

NOMINAL_UTC_OFFSET_S = 2 * 3600
DAY_S = 86_400


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01 of a date."""
    return (day - dt.date(1970, 1, 1)).days


def date_of_day(day: int) -> dt.date:
    """The date of a day number."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day))


def to_day_numbers(values: pd.Series) -> np.ndarray:
    """Day numbers of ISO dates (or datetimes); missing dates become a far-future day."""
    days = (pd.to_datetime(values, errors="coerce") - pd.Timestamp("1970-01-01")).dt.days
    return days.fillna(10**7).to_numpy(dtype=np.int64)


def iso_dates(days: np.ndarray) -> pa.Array:
    """ISO dates of day numbers; negative day numbers (meaning none) become ""."""
    days = np.asarray(days, dtype=np.int64)
    text = pc.cast(pa.array(np.maximum(days, 0).astype("datetime64[D]")), pa.string())
    return where(days >= 0, text, "")


def _datetime_text(time_s: np.ndarray) -> pa.Array:
    """``YYYY-MM-DD HH:MM:SS`` of seconds since the epoch (no zone conversion)."""
    return pc.cast(pa.array(np.asarray(time_s, dtype=np.int64).astype("datetime64[s]")), pa.string())


def utc_iso(time_s: np.ndarray, suffix: str) -> pa.Array:
    """ISO-8601 UTC time with a zone suffix ("Z" or "+00:00")."""
    return cat(pc.replace_substring(_datetime_text(time_s), " ", "T"), suffix)


def _to_local(time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock seconds in the store's time zone, and the UTC offset in seconds."""
    time_s = np.asarray(time_s, dtype=np.int64)
    utc = pd.DatetimeIndex(time_s.astype("datetime64[s]")).tz_localize("UTC")
    local_s = utc.tz_convert(STORE_TIMEZONE).tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    return local_s, local_s - time_s


def local_iso(time_s: np.ndarray) -> pa.Array:
    """ISO-8601 local time with the store zone's offset: ``2024-03-05T14:22:10+02:00``."""
    local_s, offset = _to_local(time_s)
    minutes = np.abs(offset) // 60
    return cat(pc.replace_substring(_datetime_text(local_s), " ", "T"), where(offset >= 0, "+", "-"),
               zero_padded(minutes // 60, 2), ":", zero_padded(minutes % 60, 2))


def local_naive(time_s: np.ndarray) -> pa.Array:
    """Local time without zone: ``2024-03-05 14:22:10``."""
    return _datetime_text(_to_local(time_s)[0])


def pos_stamp(time_s: np.ndarray) -> pa.Array:
    """Till time ``%Y%m%d %H:%M`` in local time."""
    s = _datetime_text(_to_local(time_s)[0])
    cut = pc.utf8_slice_codeunits
    return cat(cut(s, 0, 4), cut(s, 5, 7), cut(s, 8, 10), " ", cut(s, 11, 16))
