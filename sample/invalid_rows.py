"""Invalid rows planted in the order and event files, the way real exports are corrupted.

In files of at least 500 rows, ``INVALID_ORDER_SHARE`` of order rows (impossible
timestamps, non-numeric or negative amounts, no identifier) and ``INVALID_EVENT_SHARE`` of
event rows (impossible timestamps) are invalid; ``truth/expected_rejects.csv`` lists them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sample.config_file import SourceSpec
from sample.text import dataframe, int_text, text_array

INVALID_ORDER_SHARE = 0.002
INVALID_EVENT_SHARE = 0.001

_ORDER_PROBLEMS = ("bad_timestamp", "bad_amount", "negative_amount", "no_identifier")
_BAD_AMOUNTS = ("abc", "12.5.0", "#VALUE!", "4O.00")


def inject_invalid_rows(rng: np.random.Generator, spec: SourceSpec,
                        frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Corrupt a few rows the way real exports are corrupted; say which rows and why.

    Orders get impossible timestamps, non-numeric or negative amounts and rows with no
    identifier (never on returns); events get impossible timestamps; customers are left
    intact.
    """
    if spec.kind == "customers" or frame.empty:
        return frame, _rejects_frame(spec.name, frame, np.array([], dtype=np.int64), [])
    if spec.kind == "orders":
        candidates = np.flatnonzero(~frame[spec.columns["is_return"]].isin(["true", "1"]).to_numpy())
        k = min(len(candidates), _n_invalid(INVALID_ORDER_SHARE, len(frame), len(_ORDER_PROBLEMS)))
        rows = np.sort(rng.choice(candidates, k, replace=False))
        problems = rng.permutation(np.resize(np.array(_ORDER_PROBLEMS), k))
    else:
        k = _n_invalid(INVALID_EVENT_SHARE, len(frame), 1)
        rows = np.sort(rng.choice(len(frame), k, replace=False))
        problems = np.full(k, "bad_timestamp")
    frame = frame.copy()
    timestamp = spec.columns["timestamp"]
    amount = spec.columns.get("amount", "")
    for problem in _ORDER_PROBLEMS:
        at = rows[problems == problem]
        if not len(at):
            continue
        if problem == "bad_timestamp":
            frame.loc[at, timestamp] = _impossible_timestamps(rng, frame[timestamp].to_numpy()[at], spec)
        elif problem == "bad_amount":
            frame.loc[at, amount] = np.array(_BAD_AMOUNTS, dtype=object)[rng.integers(0, len(_BAD_AMOUNTS), len(at))]
        elif problem == "negative_amount":
            frame.loc[at, amount] = ["-" + v for v in frame[amount].to_numpy()[at]]
        else:
            for field in ("customer_key", "email", "phone", "external_id", "anonymous_id"):
                if field in spec.columns:
                    frame.loc[at, spec.columns[field]] = ""
    return frame, _rejects_frame(spec.name, frame, rows, list(problems))


def _n_invalid(share: float, n_rows: int, at_least: int) -> int:
    """How many rows to corrupt: ``share`` of them, and ``at_least`` once a file has 500 rows."""
    return min(n_rows, max(round(share * n_rows), at_least if n_rows >= 500 else 0))


def _impossible_timestamps(rng: np.random.Generator, values: np.ndarray, spec: SourceSpec) -> list[str]:
    """The same timestamps with month 13 or day 32: unparseable by any reader."""
    till = spec.options.get("timestamp_format") == "%Y%m%d %H:%M"  # "20240305 10:22" vs ISO "2024-03-05T..."
    month, day = (4, 6) if till else (5, 8)
    out = []
    for v, month13 in zip(values, rng.random(len(values)) < 0.5):
        out.append(v[:month] + "13" + v[month + 2:] if month13 else v[:day] + "32" + v[day + 2:])
    return out


def _rejects_frame(source: str, frame: pd.DataFrame, rows: np.ndarray, problems: list[str]) -> pd.DataFrame:
    keys = frame.iloc[:, 0].to_numpy()[rows] if len(rows) else []
    return dataframe({
        "source": text_array([source] * len(rows)), "source_key": text_array(list(keys)),
        "row_number": int_text(rows + 1), "problem": text_array([str(p) for p in problems]),
    })
