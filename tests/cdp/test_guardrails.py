"""Guardrails: dates outside the data, too little data to train or to judge a model, and
library warnings, each met with one clear line instead of a stack trace or silence.

The shop is the generator's, small on purpose; its first and last days are read from its
own order and event files, not from our code.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from typer.testing import CliRunner

from cdp.cli import app
from cdp.errors import CdpError
from features.as_of import check_as_of
from training.run import MIN_HELD_OUT_TO_PROMOTE, _noted_warnings, _promotion_refusal

END = dt.date(2026, 10, 31)


def cdp(*args: str):
    return CliRunner().invoke(app, list(args), env={"MLFLOW_TRACKING_URI": None})


def one_line(result) -> str:
    text = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and text.startswith("error: ")
    return text


# --- as-of dates -----------------------------------------------------------------------------

FIRST, LAST = dt.date(1997, 1, 1), dt.date(1998, 6, 30)


@pytest.mark.parametrize(("as_of", "horizon", "message"), [
    (dt.date(1996, 12, 31), None, "--as-of 1996-12-31 is before the data begins (1997-01-01)"),
    (dt.date(1998, 7, 1), None, "--as-of 1998-07-01 is after the data ends (1998-06-30)"),
    (dt.date(1998, 6, 1), 91, "a 91-day label window after 1998-06-01 ends on 1998-08-31, after the data ends "
                              "(1998-06-30): its last 62 days would count as no purchase; the latest as-of day with "
                              "a whole 91-day window is 1998-03-31"),
    (dt.date(1997, 1, 1), 600, "the data spans only 546 days"),
])
def test_an_as_of_day_outside_the_data_is_refused_with_the_days_that_would_work(as_of, horizon, message):
    with pytest.raises(CdpError) as caught:
        check_as_of(as_of, FIRST, LAST, label_horizon_days=horizon)
    assert message in str(caught.value)


def test_days_inside_the_data_pass():
    check_as_of(FIRST, FIRST, LAST)
    check_as_of(LAST, FIRST, LAST)
    check_as_of(dt.date(1998, 3, 31), FIRST, LAST, label_horizon_days=91)   # the window ends on the last day


@pytest.fixture(scope="module")
def small_shop(tmp_path_factory) -> Path:
    """A 60-person shop, ingested and unified: too few buyers to learn from."""
    root = tmp_path_factory.mktemp("small") / "shop"
    for args in (("sample", "--customers", "60", "--seed", "4", "--end", END.isoformat(), "--out", str(root)),
                 ("ingest", "--config", str(root / "cdp.toml")), ("unify", "--config", str(root / "cdp.toml"))):
        result = cdp(*args)
        assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize("command", [
    ("features", "--out", "{root}/f.parquet", "--as-of", "{after}"),
    ("train", "all", "--as-of", "{after}"),
    ("score", "--out", "{root}/s.parquet", "--as-of", "{after}"),
    ("evaluate", "--as-of", "{late}", "--horizon-days", "90"),
    ("features", "--out", "{root}/f.parquet", "--as-of", "{late}", "--label-horizon-days", "90"),
])
def test_every_command_refuses_days_the_data_cannot_speak_for(small_shop, command):
    """The generator writes nothing after its --end day: the day after it is past the data,
    and a 90-day window from 30 days before it runs past it."""
    values = {"root": str(small_shop), "after": (END + dt.timedelta(days=1)).isoformat(),
              "late": (END - dt.timedelta(days=30)).isoformat()}
    args = [part.format(**values) for part in command]
    text = one_line(cdp(*args, "--config", str(small_shop / "cdp.toml")))
    assert "after the data ends" in text


def test_evaluate_checks_its_dates_before_any_work(small_shop, monkeypatch):
    import training.data

    def no_work(*args, **kwargs):
        raise AssertionError("snapshots were built before the dates were checked")
    monkeypatch.setattr(training.data, "labelled_snapshots", no_work)
    text = one_line(cdp("evaluate", "--config", str(small_shop / "cdp.toml"), "--as-of", END.isoformat(),
                        "--horizon-days", "90"))
    assert "after the data ends" in text


def test_too_few_customers_to_train_is_one_clear_line_and_registers_nothing(small_shop):
    text = one_line(cdp("train", "all", "--config", str(small_shop / "cdp.toml"), "--snapshots", "2"))
    assert "too few customers to" in text and "at least 100 are needed" in text
    registry = small_shop / "cdp.mlflow" / "mlflow.db"
    if registry.exists():
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{registry}", registry_uri=f"sqlite:///{registry}")
        assert client.search_registered_models() == [] or all(
            not client.search_model_versions(f"name = '{m.name}'") for m in client.search_registered_models())


# --- too little to judge a model on ----------------------------------------------------------

def test_promotion_is_refused_when_the_held_out_customers_are_too_few_to_judge():
    many = pd.DataFrame({"purchased_in_horizon": [True] * 100 + [False] * 150})
    assert _promotion_refusal(many, "purchased_in_horizon") is None
    few = many.head(MIN_HELD_OUT_TO_PROMOTE - 1)
    assert _promotion_refusal(few, "purchased_in_horizon").startswith(f"only {MIN_HELD_OUT_TO_PROMOTE - 1} held-out")
    lopsided = pd.DataFrame({"purchased_in_horizon": [True] * 10 + [False] * 400})
    assert _promotion_refusal(lopsided, "purchased_in_horizon") == (
        "only 10 held-out buyers and 400 non-buyers (at least 25 of each are needed to judge a model)")


# --- library warnings ------------------------------------------------------------------------

def test_library_warnings_become_one_line_notes_and_library_deprecations_are_left_out():
    with _noted_warnings() as notes:
        warnings.warn("Number of distinct clusters (3) found smaller than\n  n_clusters (4).", ConvergenceWarning)
        warnings.warn("Number of distinct clusters (3) found smaller than\n  n_clusters (4).", ConvergenceWarning)
        warnings.warn("the inplace keyword is deprecated", DeprecationWarning)
        warnings.warn("will change in a future version", FutureWarning)
    assert notes == ["ConvergenceWarning: Number of distinct clusters (3) found smaller than n_clusters (4)."]
