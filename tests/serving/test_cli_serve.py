"""`cdp serve`: how the CLI hands its settings to the BentoML server, and its errors.

The command ends by replacing itself with `python -m bentoml serve`; here that last step
is recorded instead of run, so the test process stays what it is.
"""

from __future__ import annotations

import os
import sys

import pytest
from typer.testing import CliRunner

from cdp.cli import app
from serving.settings import settings_from_env


@pytest.fixture
def project(tmp_path):
    (tmp_path / "cdp.toml").write_text('[store]\npath = "data/cdp.duckdb"\n', encoding="utf-8")
    (tmp_path / "data").mkdir()
    return tmp_path


@pytest.fixture
def exec_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "execve", lambda path, args, env: calls.append((path, args, env)))
    return calls


def serve(project, *args, env=None):
    return CliRunner().invoke(app, ["serve", "--config", str(project / "cdp.toml"), *args],
                              env={"MLFLOW_TRACKING_URI": "sqlite:////srv/mlruns/mlflow.db", **(env or {})})


def test_serve_runs_bentoml_with_the_settings_in_its_environment(project, exec_calls):
    (project / "data" / "online_features.parquet").write_bytes(b"")
    result = serve(project, "--port", "3210", "--poll-seconds", "5", "--churn-medium", "0.4", "--churn-high", "0.8",
                   env={"CDP_API_KEY": "a-key-of-enough-length"})
    assert result.exit_code == 0, result.output
    ((path, args, env),) = exec_calls
    assert path == sys.executable
    assert args == [sys.executable, "-m", "bentoml", "serve", "serving.service:ScoringService", "--host", "127.0.0.1",
                    "--port", "3210"]
    settings = settings_from_env(env)
    assert settings.snapshot_path == (project / "data" / "online_features.parquet").resolve()
    assert settings.tracking.tracking_uri == "sqlite:////srv/mlruns/mlflow.db"
    assert settings.api_key == "a-key-of-enough-length" and settings.poll_seconds == 5
    assert (settings.risk_bands.medium, settings.risk_bands.high) == (0.4, 0.8)
    assert env["BENTOML_DO_NOT_TRACK"] == "true"
    assert "a-key-of-enough-length" not in result.output  # a given key is never printed


def test_without_a_key_serve_makes_one_up_for_the_operator_alone_and_never_prints_it(project, exec_calls):
    (project / "data" / "online_features.parquet").write_bytes(b"")
    result = serve(project, env={"CDP_API_KEY": ""})
    assert result.exit_code == 0, result.output
    key = exec_calls[0][2]["CDP_API_KEY"]
    key_file = project / "data" / ".cdp-api-key"
    assert len(key) >= 32 and key not in result.output  # the console is often the server's log
    assert f"the API key of this run is in {key_file} (readable by you only)" in " ".join(result.output.split())
    assert key_file.read_text(encoding="utf-8").strip() == key and key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("args", "message"), [
    ((), "no feature snapshot at"),
    (("--churn-medium", "0.8", "--churn-high", "0.6"), "0 < medium < high < 1"),
])
def test_serve_refuses_to_start_with_a_clear_error(project, exec_calls, args, message):
    if args:
        (project / "data" / "online_features.parquet").write_bytes(b"")
    result = serve(project, *args)
    assert result.exit_code == 1 and message in result.output and not exec_calls
