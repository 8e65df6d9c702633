"""The paths file marketers export from other attribution tools, read and written.

One line per distinct path, ``;``-separated, with a header::

    path;total_conversions;total_conversion_value;total_null
    facebook > email > google_search;12;1830.5;40
    direct;3;210;95

Channels in a path are separated by ``>`` (spaces around it are ignored). Counts and
value are non-negative numbers (a decimal point, not a comma). Blank lines are skipped;
UTF-8 with or without BOM.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from attribution.paths import PathCounts
from cdp.cells import safe_cell
from cdp.errors import SchemaError, SourceError

__all__ = ["FIELDS", "read_paths_file", "write_paths_file"]

FIELDS = ("path", "total_conversions", "total_conversion_value", "total_null")


def read_paths_file(file: Path) -> PathCounts:
    """Read a paths file into :class:`PathCounts`.

    Raises
    ------
    SourceError
        Missing or unreadable file, no data lines, a line without exactly four
        ``;``-separated fields, an empty path or channel, or a count that is not a
        non-negative number; the message names the file, the line and the field.
    """
    try:
        text = Path(file).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SourceError(f"paths file {file}: not found") from None
    except UnicodeDecodeError as error:
        raise SourceError(f"paths file {file}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise SourceError(f"paths file {file}: cannot be read ({error.strerror})") from None
    paths: list[list[str]] = []
    numbers: list[list[float]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(";")
        if len(fields) != len(FIELDS):
            hint = " (is the file comma- or tab-separated? it must use ';')" if len(fields) == 1 else ""
            raise SourceError(f"paths file {file}, line {line_number}: {len(fields)} field(s) separated by ';', "
                              f"expected {len(FIELDS)}: {';'.join(FIELDS)}{hint}")
        if not paths and not numbers and [f.strip().lower() for f in fields] == list(FIELDS):
            continue  # the header
        path = fields[0]
        if path.startswith("'") and safe_cell(path[1:]) == path:  # our own guard against spreadsheet formulas
            path = path[1:]
        channels = [c.strip() for c in path.split(">")]
        if not fields[0].strip():
            raise SourceError(f"paths file {file}, line {line_number}, field path: empty path")
        if any(not c for c in channels):
            raise SourceError(f"paths file {file}, line {line_number}, field path: an empty channel name "
                              "(channels are separated by '>')")
        row = []
        for name, raw in zip(FIELDS[1:], fields[1:]):
            try:
                number = float(raw.strip())
            except ValueError:
                number = math.nan
            if not math.isfinite(number) or number < 0:
                raise SourceError(f"paths file {file}, line {line_number}, field {name}: {raw.strip()!r} is not "
                                  "a non-negative number")
            row.append(number)
        paths.append(channels)
        numbers.append(row)
    if not paths:
        raise SourceError(f"paths file {file}: no paths (expected a header {';'.join(FIELDS)} and one line per path)")
    conversions, value, nulls = (list(column) for column in zip(*numbers))
    if sum(conversions) + sum(nulls) <= 0:
        raise SourceError(f"paths file {file}: every line has zero conversions and zero nulls")
    return PathCounts.from_paths(paths, conversions, value, nulls)


def write_paths_file(paths: PathCounts, file: Path) -> None:
    """Write ``paths`` in the same format (a file :func:`read_paths_file` reads back).

    The format has no quoting: a channel name holding ``;`` or ``>``, a line break, or
    spaces at either end cannot be written in it and is refused (SchemaError naming it);
    any other text, quotes included, is written as it is."""
    for channel in paths.channels:
        if any(c in channel for c in ";>\r\n") or channel != channel.strip():
            raise SchemaError(f"channel {channel!r} cannot be written to paths file {file}: the format separates "
                              "fields with ';' and channels with '>' and has no quoting")
    Path(file).parent.mkdir(parents=True, exist_ok=True)
    # A path a spreadsheet would run as a formula gets a leading apostrophe; `read_paths_file` drops it.
    frame = paths.to_frame()
    frame = frame.assign(path=frame["path"].map(safe_cell))
    frame.to_csv(file, sep=";", index=False, float_format="%.10g", quoting=csv.QUOTE_NONE)
