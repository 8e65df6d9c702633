"""Where `--out` goes is the operator's decision: a missing folder is not made and an existing
file is not replaced without --force; either way one line, before any work."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cdp.cli import app


def cdp(shop, *args: str):
    return CliRunner().invoke(app, [*args, "--config", str(shop.config)],
                              env={"COLUMNS": "400", "MLFLOW_TRACKING_URI": shop.tracking_uri})


@pytest.mark.parametrize("command", [["churn-list"], ["report"], ["score"], ["attribution"],
                                     ["export", "--customer-id", "c-any"],
                                     ["audience", "--band", "high", "--format", "meta"]])
def test_an_out_file_in_a_missing_folder_is_refused_and_the_folder_not_made(trained_shop, tmp_path, command):
    suffix = {"report": ".html", "score": ".parquet", "attribution": ".csv", "export": ".json"}.get(command[0], ".csv")
    target = tmp_path / "no" / "such" / f"out{suffix}"
    result = cdp(trained_shop, *command, "--out", str(target))
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.strip()] == [
        f"error: --out {target}: the folder {target.parent} does not exist; create it first"]
    assert not (tmp_path / "no").exists()


def test_an_existing_out_file_is_replaced_only_with_force(trained_shop, tmp_path):
    target = tmp_path / "list.csv"
    target.write_text("keep me\n", encoding="utf-8")
    refused = cdp(trained_shop, "churn-list", "--out", str(target))
    assert refused.exit_code == 1 and f"--out {target} exists; pass --force to replace it" in refused.output
    assert target.read_text(encoding="utf-8") == "keep me\n"
    forced = cdp(trained_shop, "churn-list", "--out", str(target), "--force")
    assert forced.exit_code == 0, forced.output
    assert target.read_text(encoding="utf-8").startswith("customer_id,")


def test_an_export_never_silently_replaces_an_earlier_one(trained_shop, tmp_path):
    target = tmp_path / "person.json"
    target.write_text("{}", encoding="utf-8")
    result = cdp(trained_shop, "export", "--customer-id", "c-any", "--out", str(target))
    assert result.exit_code == 1 and "exists; pass --force" in result.output
    assert target.read_text(encoding="utf-8") == "{}"
