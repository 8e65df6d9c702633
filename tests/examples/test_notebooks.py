"""The Python API notebook (examples/notebooks/cdnow_api.py) runs as written, on a 10% sample of CDNOW."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from tests.cdp.test_real_data import cdnow_sample

pytestmark = pytest.mark.slow
NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebooks" / "cdnow_api.py"
PARAMETERS = 'CONFIG = "examples/cdnow/cdp.toml"'


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The notebook's cells run in order in one namespace, its parameters cell pointed at a
    sample's config (as papermill injects parameters), from an empty working directory."""
    folder = tmp_path_factory.mktemp("notebook")
    sampled = cdnow_sample(folder)
    source = NOTEBOOK.read_text(encoding="utf-8")
    assert PARAMETERS in source
    source = source.replace(PARAMETERS, f'CONFIG = "{folder / "cdnow.toml"}"')
    saved_cwd, saved_uri = Path.cwd(), mlflow.get_tracking_uri()
    os.chdir(folder)
    try:
        namespace: dict = {"__name__": "__notebook__"}
        exec(compile(source, str(NOTEBOOK), "exec"), namespace)
    finally:
        os.chdir(saved_cwd)
        mlflow.set_tracking_uri(saved_uri)
    return folder, sampled, namespace


def test_the_notebook_scores_every_sampled_customer_with_models_it_registered(ran):
    folder, sampled, ns = ran
    scores = ns["scores"]
    # One profile per customer of the sample file (one source: nothing to merge), each scored once.
    assert len(scores) == scores["customer_id"].nunique() == len(sampled)
    assert scores["churn_probability"].between(0, 1).all()
    results = {r.family: r for r in ns["trained"].results}
    assert list(results) == ["segments", "churn", "next-purchase", "first-purchase"]
    assert all(r.version == "1" and r.decision.promoted for f, r in results.items() if f != "first-purchase")
    # CDNOW knows only buyers: no one to learn a first purchase from, so nothing is registered.
    assert results["first-purchase"].version == "" and results["first-purchase"].skipped.startswith("no prospects")
    assert (scores["churn_version"] == "1").all() and (pd.to_datetime(scores["features_as_of"]).dt.date
                                                       == ns["AS_OF"]).all()


def test_the_notebook_compares_the_contenders_and_lists_the_riskiest_revenue_first(ran):
    _, _, ns = ran
    comparison = ns["comparison"]
    assert list(comparison.index) == ["cdp-ml", "BG/NBD", "Pareto/NBD", "recency heuristic"]
    assert comparison.loc["cdp-ml", "purchase_roc_auc"] > 0.6
    rows = ns["at_risk"].rows
    assert 0 < len(rows) <= 20
    assert rows["revenue_at_risk"].is_monotonic_decreasing


def test_the_notebooks_runs_and_models_land_beside_the_store_not_in_the_working_directory(ran):
    folder, _, _ = ran
    assert (folder / "cdnow.mlflow" / "mlflow.db").is_file()
    assert not (folder / "mlruns").exists()
