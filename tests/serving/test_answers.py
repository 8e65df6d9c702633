"""AnswerTable: every known customer scored once, answered by lookup, exactly as scoring on request would.

The reference is the request-time path (`serving.scoring.score_rows` on the customer's
one feature row), which runs the models' preprocessing on that row alone: a precomputed
answer must equal it field for field.
"""

from __future__ import annotations

import math
import os
import random

import numpy as np
import pandas as pd
import pytest

from serving.answers import AnswerTable, items, precompute
from serving.models import FAMILIES, ModelSet, RegistryChampions
from serving.online_store import InMemoryFeatureStore
from serving.scoring import feature_row, score_rows
from tests.serving.conftest import SHOP_NAME
from training.risk_bands import ChurnRiskBands
from training.tracking import store_scope, tracking_config

BANDS_USED = ChurnRiskBands(medium=0.6, high=0.9)


@pytest.fixture(scope="module")
def served(trained_shop):
    tracking = tracking_config({**os.environ, "MLFLOW_TRACKING_URI": trained_shop.tracking_uri},
                               trained_shop.root / "mlruns",
                               scope=store_scope(trained_shop.root / "shop" / "cdp.duckdb", name=SHOP_NAME))
    source = RegistryChampions(tracking, horizon_days=90)
    models = ModelSet({family: source.load(family) for family in FAMILIES})
    store = InMemoryFeatureStore.from_parquet(trained_shop.snapshot)
    return models, store, precompute(models, store, BANDS_USED)


def test_every_customer_of_the_snapshot_is_answered(served):
    _, store, table = served
    ids = store.all_rows()["customer_id"].astype(str)
    assert len(table) == len(store) == ids.nunique()
    assert all(customer_id in table for customer_id in ids)
    assert table.features_as_of == store.features_as_of


def test_a_precomputed_answer_equals_scoring_the_customer_alone(served):
    models, store, table = served
    frame = store.all_rows()
    buyers = frame.loc[frame["recency_days"].notna(), "customer_id"].astype(str).tolist()
    prospects = frame.loc[frame["recency_days"].isna(), "customer_id"].astype(str).tolist()
    chosen = random.Random(11).sample(buyers, 8) + random.Random(12).sample(prospects, 2)
    for customer_id in chosen:
        alone = score_rows(store.lookup([customer_id]), models, BANDS_USED)[0]
        assert table.answer(customer_id) == alone, customer_id


def test_every_customer_sent_as_feature_values_gets_the_batch_answer(served):
    """``/score_features``'s path: a row sent as name → value (`feature_row`, scored as arrays
    without a frame, the preprocessing replayed in NumPy) answers every customer of the
    snapshot, buyer or prospect, exactly as the batch pass over the whole snapshot did
    (the models' pandas preprocessing on thousands of rows), every field and reason."""
    models, store, table = served
    types = models.feature_types()
    frame = store.all_rows()
    day = store.features_as_of
    compared = prospects = 0
    for record in frame.to_dict("records"):
        sent = {name: (None if pd.isna(record[name]) else float(record[name]) if kind == "number"
                       else str(record[name])) for name, kind in types.items()}
        answer = score_rows(feature_row(sent, models, day), models, BANDS_USED, table.typical)[0]
        expected = table.answer(str(record["customer_id"]))
        assert {**answer, "customer_id": expected["customer_id"]} == expected, record["customer_id"]
        compared += 1
        prospects += sent["recency_days"] is None
    assert compared == len(frame) and 0 < prospects < compared


def test_answers_keep_the_order_asked_list_repeats_once_and_name_the_unknown(served):
    _, store, table = served
    first, second = store.all_rows()["customer_id"].astype(str).iloc[[5, 1]]
    found, missing = table.answers([first, "nobody-1", second, first, "nobody-2"])
    assert [answer["customer_id"] for answer in found] == [first, second]
    assert missing == ["nobody-1", "nobody-2"]
    assert table.answer("nobody-1") is None


def test_scoring_in_chunks_gives_the_same_answers_as_in_one_pass(served):
    models, store, table = served
    head = store.all_rows().iloc[:60]
    chunked = AnswerTable.score(head, models, BANDS_USED, chunk_rows=7)
    assert chunked.all() == [table.answer(str(customer_id)) for customer_id in head["customer_id"]]


def test_served_versions_and_horizon_are_in_every_answer(served):
    models, store, table = served
    answer = table.answer(str(store.all_rows()["customer_id"].iloc[0]))
    assert answer["model_versions"] == {f.replace("-", "_"): models.versions[f] for f in FAMILIES}
    assert answer["horizon_days"] == models.horizon_days


def test_text_lists_become_lists_without_blanks():
    assert items("olive oil, za'atar") == ["olive oil", "za'atar"]
    assert items(",soap,,dates") == ["soap", "dates"]
    assert items("") == [] and items(None) == [] and items(float("nan")) == []


def test_category_lists_are_kept_item_for_item():
    # next_best_categories: a list per customer (an array once read back from Parquet or the store).
    odd = ["Oil, olive", "Oil olive", " spaced ", 'a;b:"c" [d] {e}', "=x", "زيت 🌿"]
    assert items(odd) == odd
    assert items(np.array(odd, dtype=object)) == odd
    assert items([]) == [] and items(np.array([], dtype=object)) == []


def test_an_empty_frame_is_refused(served):
    models, store, _ = served
    with pytest.raises(ValueError, match="no feature rows"):
        AnswerTable.score(store.all_rows().iloc[:0], models, BANDS_USED)


def test_answers_are_json_ready(served):
    _, store, table = served
    for answer in table.all()[:50]:
        for column in ("churn_probability", "purchase_probability", "expected_purchases", "expected_revenue"):
            assert answer[column] is None or (isinstance(answer[column], float) and math.isfinite(answer[column]))
        assert isinstance(answer["segment"], str)
        assert isinstance(pd.Timestamp(answer["features_as_of"]), pd.Timestamp)


def test_cdp_score_keeps_the_latest_scores_in_the_store_as_in_its_output_file(trained_shop):
    import duckdb

    written = pd.read_parquet(trained_shop.root / "scores.parquet")
    con = duckdb.connect(str(trained_shop.config.with_name("cdp.duckdb")), read_only=True)
    try:
        stored = con.sql("SELECT * FROM scores").df()
    finally:
        con.close()
    assert list(stored.columns) == list(written.columns) and len(stored) == len(written)
    key = "customer_id"
    pd.testing.assert_frame_equal(stored.sort_values(key).reset_index(drop=True)[["customer_id", "churn_probability",
                                                                                  "segment", "top_reasons"]],
                                  written.sort_values(key).reset_index(drop=True)[["customer_id", "churn_probability",
                                                                                   "segment", "top_reasons"]],
                                  check_dtype=False)
