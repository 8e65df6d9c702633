"""write_sample and generate: the same arguments give the same files, and the summary tells what was written."""

from __future__ import annotations

import datetime as dt

import pytest

from sample import generate, write_sample
from tests.sample.conftest import END, read


def test_same_arguments_give_byte_identical_files_and_another_seed_does_not(tmp_path):
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_sample(first, n_customers=300, seed=11, end=END)
    write_sample(second, n_customers=300, seed=11, end=END)
    write_sample(other, n_customers=300, seed=12, end=END)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 7 + 1 + 7
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for f in files:
        assert (first / f).read_bytes() == (second / f).read_bytes(), f
    assert (first / "web_orders.csv").read_bytes() != (other / "web_orders.csv").read_bytes()


def test_summary_counts_what_was_written(tmp_path):
    summary = write_sample(tmp_path, n_customers=200, seed=3, end=END)
    for name, rows in summary.files.items():
        assert len(read(tmp_path, name.removesuffix(".csv"))) == rows
    for name, rows in summary.truth_files.items():
        assert len(read(tmp_path, name.removesuffix(".csv"))) == rows
    assert summary.n_persons == 200
    assert summary.n_order_rows == summary.files["web_orders.csv"] + summary.files["pos_receipts.csv"]
    assert summary.start == END - dt.timedelta(days=3 * 365 - 1)


def test_generate_refuses_an_empty_population():
    with pytest.raises(ValueError, match="n_customers"):
        generate(0, seed=1, end=END)
