"""The sample on disk: one CSV per source, cdp.toml and the ``truth/`` folder."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from sample.config_file import SOURCE_SPECS
from sample.generator import generate


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`write_sample` wrote, for the CLI to print.

    ``files`` maps each source file name to its data rows, in cdp.toml order;
    ``truth_files`` does the same for the files under ``truth/``. ``n_buyers`` counts
    persons whose first purchase falls on or before ``end``.
    """

    out_dir: Path
    start: dt.date
    end: dt.date
    n_persons: int
    n_buyers: int
    files: Mapping[str, int]
    truth_files: Mapping[str, int]
    n_expected_rejects: int

    @property
    def n_order_rows(self) -> int:
        """Rows of the order sources (web orders and store receipts, returns included)."""
        return self._rows_of_kind("orders")

    @property
    def n_event_rows(self) -> int:
        """Rows of the event sources (web, email, ad touchpoints)."""
        return self._rows_of_kind("events")

    def _rows_of_kind(self, kind: str) -> int:
        return sum(self.files[s.file_name] for s in SOURCE_SPECS if s.kind == kind)


def write_sample(out_dir: Path, n_customers: int, seed: int, end: dt.date) -> SampleSummary:
    """Generate a sample (see :func:`generate`) and write it into ``out_dir``.

    Writes one CSV per source (UTF-8, ``crm_customers.csv`` with a BOM), ``cdp.toml`` and
    a ``truth/`` folder. Files of the same names are overwritten; nothing else in
    ``out_dir`` is touched.

    Parameters
    ----------
    out_dir : Path
        Folder to write into; created if missing.
    n_customers : int
        Number of persons (customers and prospects) to simulate.
    seed : int
        Seed of every random draw; the same arguments give byte-identical files.
    end : datetime.date
        Last day of data; the history covers the ``HISTORY_DAYS`` days ending on it.

    Returns
    -------
    SampleSummary
    """
    data = generate(n_customers, seed, end)
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    files: dict[str, int] = {}
    for spec in SOURCE_SPECS:
        frame = data.sources[spec.name]
        _write_csv(frame, out_dir / spec.file_name, with_bom=spec.with_bom)
        files[spec.file_name] = len(frame)
    (out_dir / "cdp.toml").write_text(data.config_toml, encoding="utf-8")
    truth_files: dict[str, int] = {}
    for name, frame in data.truth.items():
        _write_csv(frame, out_dir / "truth" / f"{name}.csv", with_bom=False)
        truth_files[f"truth/{name}.csv"] = len(frame)
    persons = data.truth["persons"]
    return SampleSummary(
        out_dir=out_dir,
        start=data.start,
        end=data.end,
        n_persons=len(persons),
        n_buyers=int((persons["first_purchase_date"] <= data.end.isoformat()).sum()),
        files=MappingProxyType(files),
        truth_files=MappingProxyType(truth_files),
        n_expected_rejects=len(data.truth["expected_rejects"]),
    )


def _write_csv(frame: pd.DataFrame, path: Path, with_bom: bool) -> None:
    """Write a text table as CSV: UTF-8, ``\\n`` line ends, no quoting (values never need it)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = pa.table({name: pc.cast(col, pa.string()) for name, col in zip(table.column_names, table.columns)})
    # One chunk per column: pyarrow's CSV writer mangles tables holding empty chunks.
    table = table.combine_chunks()
    for name, column in zip(table.column_names, table.columns):
        if len(column) and pc.any(pc.match_substring_regex(column, r'[,"\r\n]')).as_py():
            raise ValueError(f"column {name!r} of {path.name} holds a value that would need CSV quoting")
    with pa.OSFile(str(path), "wb") as handle:
        handle.write((b"\xef\xbb\xbf" if with_bom else b"") + (",".join(frame.columns) + "\n").encode("utf-8"))
        if len(frame):
            pa_csv.write_csv(table, handle, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
