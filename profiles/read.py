"""Read a source file into string columns, one row per data row, numbered.

Reading is deliberately untyped: every value arrives as the text in the file, so that
validation can say exactly which value in which row was wrong, and the raw row can be
kept beside the reason. Rows the parser cannot split into the header's columns, and
rows that are not valid UTF-8, are rejected here; problems with the file as a whole
(missing, empty, a mapped column absent) raise `SourceError`.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cdp.config import SourceConfig
from cdp.errors import SourceError

ROW = "_row"  # column holding the 1-based data row number
_BLOCK_BYTES = 1 << 26  # one row must fit in a parser block; allows multi-megabyte fields
_PARQUET_SUFFIXES = (".parquet", ".pq")
_WHITESPACE_RUN = re.compile(rb"[ \t]+")
_LEADING_WHITESPACE = re.compile(rb"(?m)^[ \t]+")
_TRAILING_WHITESPACE = re.compile(rb"(?m)[ \t]+(?=\r?$)")


@dataclass(frozen=True)
class RawRows:
    """A source file as read: string columns, row numbers, and rows rejected while reading.

    ``rows`` has one string column per file column (names as in the file) plus ``_row``.
    ``rejects`` has ``row_number``, ``raw`` and ``reason``. ``rows_read`` counts both.
    """

    rows: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int
    sha256: str


def read_source(source: SourceConfig) -> RawRows:
    """Read ``source.path`` (CSV, optionally gzipped, or Parquet) as strings."""
    path = source.path
    if not path.is_file():
        raise SourceError(f"source {source.name!r}: file {path} not found")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        rows = _read_parquet(source, data)
        return RawRows(rows=rows, rejects=_no_rejects(), rows_read=len(rows), sha256=sha)
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise SourceError(f"source {source.name!r}: file {path} is not a readable gzip file ({exc})") from None
    rows, rejects = _read_csv(source, _to_utf8(source, data))
    return RawRows(rows=rows, rejects=rejects, rows_read=len(rows) + len(rejects), sha256=sha)


def _to_utf8(source: SourceConfig, data: bytes) -> bytes:
    """Strip a UTF-8 BOM; re-encode UTF-16 files (Excel's 'Unicode text') to UTF-8."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"source {source.name!r}: file {source.path} starts as UTF-16 "
                              f"but is not valid UTF-16 ({exc.reason})") from None
    return data


def _read_csv(source: SourceConfig, data: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    where = f"source {source.name!r}: file {source.path}"
    if not data.strip():
        raise SourceError(f"{where} is empty" + (": expected a header line" if source.header else ""))
    delimiter = source.delimiter
    if delimiter == "whitespace":
        data = _WHITESPACE_RUN.sub(b"\t", _TRAILING_WHITESPACE.sub(b"", _LEADING_WHITESPACE.sub(b"", data)))
        delimiter = "\t"
    if not data.endswith((b"\n", b"\r")):
        data += b"\n"  # a header-only file without a final newline is 0 rows, not a parse error

    header = _header(source, data, delimiter) if source.header else []
    names = list(source.names) or header
    _check_columns(source, names, header, names_from_file=not source.names)
    if not source.header and not names:
        raise SourceError(f"{where}: no header and no names = [...] in cdp.toml")

    problems: list[tuple[int, str, str]] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        problems.append((row.number, row.text, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    utf8_ok = _is_utf8(data)
    column_type = pa.string() if utf8_ok else pa.binary()
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                use_threads=False, block_size=_BLOCK_BYTES, column_names=names,
                skip_rows=1 if source.header else 0,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid_row,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: column_type for name in names},
                strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SourceError(f"{where}: cannot be parsed as CSV with delimiter {source.delimiter!r}: {exc}") from None

    # The parser numbers records from 1 counting the header; data rows count from 1 after it.
    offset = 1 if source.header else 0
    bad_numbers = np.array(sorted(p[0] - offset for p in problems), dtype=np.int64)
    n_total = table.num_rows + len(bad_numbers)
    good_numbers = np.setdiff1d(np.arange(1, n_total + 1, dtype=np.int64), bad_numbers, assume_unique=True)

    rejects = [
        {"row_number": number - offset, "raw": text, "reason": reason}
        for number, text, reason in problems
    ]
    if utf8_ok:
        frame = table.to_pandas(types_mapper=pd.ArrowDtype)
        frame = frame.astype({c: "string" for c in frame.columns})
    else:
        frame, undecodable = _decode_columns(table)
        for index in np.flatnonzero(undecodable.any(axis=1)):
            raw = {name: _lossy(table.column(name)[index].as_py()) for name in names}
            columns = ", ".join(repr(name) for name, bad in zip(names, undecodable[index]) if bad)
            rejects.append({
                "row_number": int(good_numbers[index]),
                "raw": json.dumps(raw, ensure_ascii=False),
                "reason": f"column(s) {columns} not valid UTF-8 text (save the file as UTF-8)",
            })
        keep = ~undecodable.any(axis=1)
        frame = frame.loc[keep].reset_index(drop=True)
        good_numbers = good_numbers[keep]
    frame[ROW] = good_numbers
    reject_frame = pd.DataFrame(rejects, columns=["row_number", "raw", "reason"]) if rejects else _no_rejects()
    return frame, reject_frame


def _header(source: SourceConfig, data: bytes, delimiter: str) -> list[str]:
    first = data[: 1 << 20].decode("utf-8", errors="replace")
    try:
        header = next(csv.reader(io.StringIO(first, newline=""), delimiter=delimiter))
    except (StopIteration, csv.Error):
        header = []
    header = [h.strip().lstrip("\ufeff") for h in header]
    if not header or not any(header):
        raise SourceError(f"source {source.name!r}: file {source.path} has an empty header line")
    return header


def _check_columns(source: SourceConfig, names: list[str], header: list[str], names_from_file: bool) -> None:
    """Every mapped column must be in the file, once.

    The error lists the file's columns, unless the first line looks like data (a cell
    with an email or a phone-length run of digits): in a file without a header line
    that list would put a customer's details into the message.
    """
    where = f"source {source.name!r}: file {source.path}"
    if source.names and header and len(source.names) != len(header):
        raise SourceError(f"{where}: names = [...] lists {len(source.names)} columns but the header has {len(header)}")
    wanted = list(dict.fromkeys(source.columns.values()))
    missing = [column for column in wanted if column not in names]
    if missing:
        if names_from_file and any(_looks_like_data(n) for n in names):
            found = (f"{len(names)} field(s) in a first line that looks like data, not a header (not shown); "
                     "for a file without a header line set header = false and names = [...]")
        else:
            found = ", ".join(repr(n) for n in names[:20])
        hint = ""
        if len(names) == 1:
            guess = next((d for d in (";", "\t", "|", ",") if d in names[0] and d != source.delimiter), None)
            if guess:
                hint = f"; the header looks {guess!r}-delimited: set delimiter = {guess!r} in cdp.toml"
        missing_text = ", ".join(repr(m) for m in missing)
        raise SourceError(f"{where}: column(s) {missing_text} not found; the file has {found}{hint}")
    duplicated = sorted({n for n in names if names.count(n) > 1 and n in wanted})
    if duplicated:
        raise SourceError(f"{where}: column {duplicated[0]!r} appears more than once in the header")


def _looks_like_data(cell: str) -> bool:
    return "@" in cell or sum(c.isdigit() for c in cell) >= 7


def _is_utf8(data: bytes) -> bool:
    try:
        codecs.decode(data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode_columns(table: pa.Table) -> tuple[pd.DataFrame, np.ndarray]:
    """Decode binary columns as UTF-8; mark (row, column) where a value is not valid UTF-8."""
    bad = np.zeros((table.num_rows, table.num_columns), dtype=bool)
    columns: dict[str, pd.Series] = {}
    for j, name in enumerate(table.column_names):
        values = table.column(name).to_pylist()
        decoded = []
        for i, value in enumerate(values):
            try:
                decoded.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                bad[i, j] = True
                decoded.append("")
        columns[name] = pd.Series(decoded, dtype="string")
    return pd.DataFrame(columns), bad


def _lossy(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", errors="replace")


def _read_parquet(source: SourceConfig, data: bytes) -> pd.DataFrame:
    where = f"source {source.name!r}: file {source.path}"
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{where}: not a readable Parquet file ({exc})") from None
    names = table.column_names
    _check_columns(source, names, names, names_from_file=False)
    frame = pd.DataFrame({name: _parquet_text(table.column(name)) for name in names})
    frame[ROW] = np.arange(1, len(frame) + 1, dtype=np.int64)
    return frame


def _parquet_text(column: pa.ChunkedArray) -> pd.Series:
    """A typed Parquet column as the text a CSV would have held (ISO timestamps, '' for null)."""
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        values = column.to_pandas()
        if pa.types.is_timestamp(kind):
            text = pd.Series(pd.to_datetime(values)).map(lambda v: v.isoformat() if pd.notna(v) else "")
        else:
            text = pd.Series(values).map(lambda v: v.isoformat() if pd.notna(v) else "")
        return text.astype("string")
    if pa.types.is_boolean(kind):
        return column.to_pandas().map({True: "true", False: "false"}).fillna("").astype("string")
    # Cast in Arrow: integers with nulls would otherwise pass through float ("123.0").
    return column.cast(pa.string()).to_pandas(types_mapper=pd.ArrowDtype).astype("string").fillna("")


def _no_rejects() -> pd.DataFrame:
    return pd.DataFrame({"row_number": pd.Series(dtype="int64"), "raw": pd.Series(dtype="string"),
                         "reason": pd.Series(dtype="string")})
