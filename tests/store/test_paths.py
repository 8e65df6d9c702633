"""A store anywhere: paths with quotes, semicolons and spaces are paths, never SQL.

No statement is built from a path (issue #17): DuckDB takes them as parameters (``ATTACH
?``), connection arguments or API arguments. A shop in a folder named like an injection
goes through the whole loop that touches the store file by name: ingest, unify,
materialize (which exports the tables to Parquet for the feature engine), score-free
erasure with its file rebuild, and export.
"""

from __future__ import annotations

import json

import duckdb
from typer.testing import CliRunner

from cdp.cli import app

FOLDER = "Omar's shop'; DROP TABLE customers; --"


def cdp(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"MLFLOW_TRACKING_URI": None, "CDP_TOMBSTONE_KEY": None})
    assert result.exit_code == 0, f"cdp {' '.join(args)}:\n{result.output}"
    return result.output


def test_a_store_in_a_folder_named_like_an_injection_runs_the_whole_loop(tmp_path):
    shop = tmp_path / FOLDER
    cdp("sample", "--customers", "120", "--seed", "5", "--end", "2026-10-31", "--out", str(shop))
    config = str(shop / "cdp.toml")
    cdp("ingest", "--config", config)
    cdp("unify", "--config", config)
    cdp("features", "--config", config, "--materialize")
    store = shop / "cdp.duckdb"
    with duckdb.connect(str(store), read_only=True) as con:
        customer_id, customers = con.sql("SELECT min(customer_id), count(*) FROM customers").fetchall()[0]
    cdp("export", "--config", config, "--customer-id", customer_id, "--out", str(shop / "person.json"))
    assert json.loads((shop / "person.json").read_text(encoding="utf-8"))["customer_id"] == customer_id
    cdp("forget", "--config", config, "--customer-id", customer_id)
    with duckdb.connect(str(store), read_only=True) as con:
        left = con.sql("SELECT count(*), count(*) FILTER (WHERE customer_id = ?) FROM customers",
                       params=[customer_id]).fetchall()[0]
    assert left == (customers - 1, 0)
    assert sorted(p.name for p in shop.iterdir() if p.name.startswith(".cdp.duckdb")) == []  # rebuilt and tidied
