"""The layer rules of pyproject.toml hold: stages import only the stages below them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_are_kept():
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_a_stage_above_profiles_opening_the_duckdb_file_by_name_breaks_a_contract(tmp_path):
    """The interface rule is checked, not just declared: a copy of the code where attribution
    imports the DuckDB store directly fails it."""
    import shutil

    for part in ("pyproject.toml", "cdp", "store", "profiles", "features", "training", "serving", "marketing",
                 "attribution", "sample"):
        source = ROOT / part
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / part)
    run_py = tmp_path / "attribution" / "run.py"
    run_py.write_text(run_py.read_text() + "\nfrom store.duckdb_store import Store  # noqa: E402,F401\n")
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(tmp_path)})
    assert result.returncode != 0
    assert "Stages above profiles reach the store through its interface BROKEN" in result.stdout
    assert "attribution.run -> store.duckdb_store" in result.stdout
