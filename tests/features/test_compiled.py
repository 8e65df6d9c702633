"""The compiled preprocessing: the fitted Pipeline's answers, column for column, value for value.

`features.compiled.CompiledPreprocessing` replays a fitted `preprocessing_pipeline` in NumPy
for the few rows `/score_features` sends. Every test compares it with the Pipeline itself
(same columns in the same order, bit-identical float64 values), on hand-made rows that reach
every step's edge, on the rows of the sample shop's champion (its real fitted Pipeline) and
on the real CDNOW feature table; one test checks a row against values worked out by hand.
"""

from __future__ import annotations

import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cdp.cli import app
from features.compiled import CompiledPreprocessing, compile_preprocessing
from features.preprocess import preprocessing_pipeline
from training.purchase import model_inputs
from training.pyfunc import model_frame

CDNOW = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cdnow" / "cdp.toml"

TRAIN = pd.DataFrame({
    "recency_days": [1.0, 10.0, None, 30.0, 400.0, 12.0, 8.0, 20.0],
    "revenue_total": [10.0, 20.0, 30.0, 40.0, 10_000.0, 25.0, 35.0, 15.0],
    "visits": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0],      # IQR 0: left uncapped
    "constant": [1.0] * 8,                                  # dropped
    "copy_of_visits": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0],  # a duplicate of visits: dropped
    "country": ["PS", "PS", "PS", "JO", None, "PS", "PS", "JO"],
    "channel": ["web", "store", "web", "web", "store", None, "web", "web"],
})
NUMERIC = ["recency_days", "revenue_total", "visits", "constant", "copy_of_visits"]
CATEGORICAL = ["country", "channel"]


def fitted():
    pipe = preprocessing_pipeline(NUMERIC, CATEGORICAL, log_variables=["revenue_total"], rare_tolerance=0.2)
    return pipe.fit(TRAIN)


def assert_same(pipeline, rows: pd.DataFrame) -> None:
    """The compiled form gives the Pipeline's columns and, bit for bit, its values (as float64,
    which is how the boosters read every column)."""
    expected = pipeline.transform(rows)
    got = CompiledPreprocessing(pipeline).transform(rows)
    assert list(got.columns) == list(expected.columns)
    assert got.index.equals(expected.index)
    assert (got.dtypes == "float64").all()
    want = expected.to_numpy(dtype=np.float64)
    assert np.array_equal(got.to_numpy(), want, equal_nan=True), pd.DataFrame(
        got.to_numpy() - want, columns=got.columns).abs().max().loc[lambda d: d > 0]


def test_a_row_gets_the_values_worked_out_by_hand():
    pipe = fitted()
    row = pd.DataFrame({"recency_days": [None], "revenue_total": [1e9], "visits": [7.0], "constant": [5.0],
                        "copy_of_visits": [1.0], "country": ["JO"], "channel": ["kiosk"]})
    out = CompiledPreprocessing(pipe).transform(row).iloc[0]
    # median of 1, 8, 10, 12, 20, 30, 400 is 12; winsorizing (IQR, fold 3) leaves it
    assert out["recency_days"] == 12.0 and out["recency_days_na"] == 1.0
    # revenue quartiles (pandas' linear interpolation) 18.75 and 36.25: cap 36.25 + 3 × 17.5 = 88.75, then log(1 + x)
    assert out["revenue_total"] == math.log(1 + 88.75)
    assert out["visits"] == 7.0                         # no spread in training: never capped
    # PS 5/8, JO 2/8 (0.25 ≥ 0.2) frequent; 'Missing' 1/8 rare. web 5/8, store 2/8; a new level is rare
    assert (out["country_JO"], out["country_PS"], out["country_Rare"]) == (1.0, 0.0, 0.0)
    assert (out["channel_web"], out["channel_store"], out["channel_Rare"]) == (0.0, 0.0, 1.0)
    assert "constant" not in out.index and "copy_of_visits" not in out.index


@pytest.mark.parametrize("rows", [
    pytest.param(TRAIN, id="the training rows"),
    pytest.param(pd.DataFrame({c: [None] for c in TRAIN.columns}), id="every value missing"),
    pytest.param(pd.DataFrame({"recency_days": [-5.0, 1e12], "revenue_total": [0.0, 1e300], "visits": [1e6, -1e6],
                               "constant": [2.0, 3.0], "copy_of_visits": [7.0, 8.0],
                               "country": ["US", "Missing"], "channel": ["Rare", "web"]}),
                 id="values beyond the caps, unseen and reserved levels"),
    pytest.param(pd.DataFrame({"recency_days": pd.array([3, None], dtype="Int64"),
                               "revenue_total": pd.array([12.5, None], dtype="float64[pyarrow]"),
                               "visits": [True, False], "constant": ["1", "x"], "copy_of_visits": [1, 2],
                               "country": pd.array(["PS", None], dtype="string[pyarrow]"),
                               "channel": [np.nan, float("nan")]}),
                 id="nullable, Arrow, boolean and text dtypes"),
    pytest.param(pd.DataFrame({"recency_days": [4.0], "revenue_total": [20.0], "visits": [0.0], "constant": [1.0],
                               "copy_of_visits": [3.0], "country": [pd.NA], "channel": [None]}, index=[42]),
                 id="NA and None text, an index of its own"),
    pytest.param(pd.DataFrame({"recency_days": [4.0], "revenue_total": [20.0], "visits": [0.0], "constant": [1.0],
                               "copy_of_visits": [3.0], "country": [3.0], "channel": [True]}),
                 id="numbers and booleans where text is expected"),
])
def test_the_compiled_form_gives_the_pipelines_answers(rows):
    assert_same(fitted(), rows)


def test_columns_handed_over_as_arrays_count_as_the_frames_own():
    pipe = fitted()
    rows = TRAIN.assign(unused="x")                     # a column the Pipeline does not read is ignored
    extra = {"revenue_total": TRAIN["revenue_total"].to_numpy()}
    got = CompiledPreprocessing(pipe).transform(rows.drop(columns="revenue_total"), extra=extra)
    assert np.array_equal(got.to_numpy(), pipe.transform(TRAIN).to_numpy(dtype=np.float64))
    refused = {"revenue_total": np.full(len(TRAIN), -5.0)}  # the Pipeline's own error, from the whole frame
    with pytest.raises(ValueError, match="zero or negative values"):
        CompiledPreprocessing(pipe).transform(rows.drop(columns="revenue_total"), extra=refused)


@pytest.mark.parametrize(("rows", "message"), [
    (TRAIN.iloc[[0]].assign(revenue_total=-5.0), "zero or negative values"),  # log(1 + x) below x = -1
    (TRAIN.iloc[0:0], "0 feature"),
])
def test_rows_the_pipeline_refuses_get_its_own_error(rows, message):
    pipe = fitted()
    with pytest.raises(ValueError, match=message) as direct:
        pipe.transform(rows)
    with pytest.raises(ValueError) as compiled:
        CompiledPreprocessing(pipe).transform(rows)
    assert str(compiled.value) == str(direct.value)


def test_a_pipeline_with_a_step_it_does_not_know_is_not_compiled():
    from sklearn.preprocessing import FunctionTransformer

    pipe = fitted()
    pipe.steps.append(("extra", FunctionTransformer(lambda x: x).set_output(transform="pandas").fit(TRAIN)))
    assert compile_preprocessing(pipe) is None
    assert compile_preprocessing("not a pipeline") is None


def test_the_pipeline_still_pickles_as_before_after_it_was_compiled():
    pipe = fitted()
    before = pickle.dumps(pipe)
    CompiledPreprocessing(pipe).transform(TRAIN)
    assert pickle.dumps(pipe) == before


def champion(trained_shop, family: str = "churn"):
    from training.score import champions
    from training.tracking import store_scope, tracking_config

    tracking = tracking_config({"MLFLOW_TRACKING_URI": trained_shop.tracking_uri}, trained_shop.root,
                               scope=store_scope(trained_shop.config.with_name("cdp.duckdb"), "serving-shop"))
    return champions(tracking, 90)[family][0].unwrap_python_model()


@pytest.mark.slow
def test_the_sample_shops_champion_pipeline_compiles_to_the_same_answers(trained_shop):
    model = champion(trained_shop)
    estimator = model.estimator
    snapshot = pd.read_parquet(trained_shop.snapshot)
    rows = model_frame(snapshot, model.columns)
    rows = estimator._scoring_btyd().transform(rows[rows["recency_days"].notna()])[estimator.inputs_]
    assert len(rows) > 500
    assert_same(estimator.preprocess_, rows)                      # every buyer at once
    for start in range(0, 60, 3):                                 # and a few at a time, as /score_features sends them
        assert_same(estimator.preprocess_, rows.iloc[start:start + 3])
    # The model prepares few rows with the compiled form, BTYD's columns handed over as arrays:
    # the same matrix and starting margins as BTYD's frame through the Pipeline.
    from training.purchase import base_margins

    buyers = model_frame(snapshot, model.columns)
    buyers = buyers[buyers["recency_days"].notna()]
    for one in (buyers.iloc[[7]], buyers.iloc[20:25]):
        prepared = estimator.prepare(one)
        with_btyd = estimator._scoring_btyd().transform(one)
        assert np.array_equal(prepared.x.to_numpy(), estimator.preprocess_.transform(
            with_btyd[estimator.inputs_]).to_numpy(dtype=np.float64), equal_nan=True)
        pd.testing.assert_frame_equal(prepared.margins, base_margins(with_btyd))
    # The compiled form is a cache of the fitted Pipeline: never pickled with the model.
    assert "_compiled_preprocessing_cache" in estimator.__dict__
    assert "_compiled_preprocessing_cache" not in pickle.loads(pickle.dumps(estimator)).__dict__


@pytest.fixture(scope="module")
def cdnow_features(tmp_path_factory) -> pd.DataFrame:
    """The real CDNOW feature table as of 1997-09-30 (every customer), built by the CLI."""
    assert CDNOW.is_file(), f"CDNOW data not found at {CDNOW}: clone cdp-ml with ../shared beside it"
    folder = tmp_path_factory.mktemp("cdnow-features")
    shutil.copy(CDNOW, folder / "CDNOW_master.txt")
    config = folder / "cdp.toml"
    config.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        'path = "../../../shared/data/cdnow/CDNOW_master.txt"', 'path = "CDNOW_master.txt"'), encoding="utf-8")
    runner = CliRunner()
    for args in (["ingest"], ["unify"], ["features", "--as-of", "1997-09-30", "--out", str(folder / "f.parquet")]):
        result = runner.invoke(app, [*args, "--config", str(config)])
        assert result.exit_code == 0, result.output
    return pd.read_parquet(folder / "f.parquet")


@pytest.mark.slow
def test_a_pipeline_fitted_on_cdnow_compiles_to_the_same_answers(cdnow_features):
    numeric, categorical = model_inputs(list(cdnow_features.columns))
    rows = model_frame(cdnow_features, numeric + categorical)
    assert len(rows) == 23_570
    pipe = preprocessing_pipeline(numeric, categorical, log_variables=["revenue_total", "mean_order_value"])
    pipe.fit(rows.iloc[::2])                                       # half the customers; the others are new to it
    assert_same(pipe, rows)
    for start in (1, 101, 5_001, 23_001):
        assert_same(pipe, rows.iloc[start:start + 2])
