"""Free text of any printable character, end to end: a sample shop whose categories, channels, campaigns
and product ids are renamed to names holding `, ; : " [ ] { } = + - @`, Arabic, emoji, spaces, a
backslash, an apostrophe and a tab goes through `cdp ingest`, `unify`, `train all`, `score`,
`churn-list`, `report`, `export`, `attribution` and the HTTP service, and every name comes out exactly
as it went in (spreadsheet cells aside: a leading apostrophe before ``= + - @``).

Two of the categories differ by one comma only ("Oil, olive" and "Oil olive"): they stay two
categories, two one-hot columns and two recommendations.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import mlflow
import numpy as np
import openpyxl
import pandas as pd
import pytest

from features.text_items import split_items
from marketing.lists import safe_cell
from sample import write_sample
from tests.marketing.test_attribution_report import html_text
from tests.serving.conftest import Server, TrainedShop, run_cli
from training.categories import decode_history
from training.tracking import TrackingConfig, load_champion, store_scope

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")]

END = dt.date(2026, 10, 31)
# The sample's names → the names they take in this shop.
CATEGORIES = {
    "olive_oil": "Oil, olive",
    "zaatar_spices": "Oil olive",                      # "Oil, olive" without its comma
    "maftoul_grains": "grains; maftoul: 1kg = 2 + 2",
    "dates": 'dates "Medjool" [box] {12}',
    "soap": "=soap",
    "ceramics": "+ceramics 100%",
    "embroidery": "تطريز فلسطيني",
    "olive_wood": "olive wood 🌿",
    "books": "books\\kids it's\tnew",
}
CHANNELS = {
    "web": "web, online",
    "store": "store: Ramallah; Bethlehem",
    "facebook": "face=book [ads]",
    "instagram": "insta {gram} 📸",
    "organic_social": '"organic" social',
    "email": "@e-mail; list",
    "google_search": "بحث جوجل",
    "direct": "-direct\\typed",
}
ODD_SKU_SUFFIX = ', "x":1; 🌿'


def _renamed(values: pd.Series, names: dict[str, str]) -> pd.Series:
    return values.map(lambda v: names.get(v, v) if isinstance(v, str) else v)


def rewrite_free_text(root: Path) -> None:
    """Rename the sample's categories, channels, campaigns and product ids (web events keep their
    channel "web": it is the site itself, which attribution leaves out)."""
    renames = {
        "web_orders.csv": {"category": CATEGORIES, "channel": CHANNELS},
        "pos_receipts.csv": {"category": CATEGORIES, "channel": CHANNELS},
        "web_events.csv": {"category": CATEGORIES},
        "ad_touchpoints.csv": {"channel": CHANNELS},
        "email_events.csv": {"channel": CHANNELS},
    }
    for name, columns in renames.items():
        path = root / name
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column, names in columns.items():
            frame[column] = _renamed(frame[column], names)
        for column in ("sku", "product_id"):
            if column in frame:
                frame[column] = frame[column].map(lambda v: v + ODD_SKU_SUFFIX if v else v)
        if "campaign" in frame:
            frame["campaign"] = frame["campaign"].map(lambda v: f"{v}: «{v}», {{1}}" if v else v)
        frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")


@dataclass(frozen=True)
class Outputs:
    shop: TrainedShop
    dir: Path


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Outputs:
    root = tmp_path_factory.mktemp("free-text")
    tracking_uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    shop_dir = root / "shop"
    write_sample(shop_dir, n_customers=1200, seed=3, end=END)
    rewrite_free_text(shop_dir)
    config = str(shop_dir / "cdp.toml")
    out = root / "out"
    out.mkdir()
    saved = mlflow.get_tracking_uri()
    log = root / "cli.log"
    try:
        for command in ("ingest", "unify"):
            run_cli(command, "--config", config, tracking_uri=tracking_uri, log=log)
        run_cli("train", "all", "--config", config, "--snapshots", "2", tracking_uri=tracking_uri, log=log)
        for suffix in ("parquet", "csv"):
            run_cli("score", "--config", config, "--out", str(out / f"scores.{suffix}"), tracking_uri=tracking_uri,
                    log=log)
        for suffix in ("csv", "xlsx", "html"):
            run_cli("churn-list", "--config", config, "--include-no-consent", "--out", str(out / f"list.{suffix}"),
                    tracking_uri=tracking_uri, log=log)
        run_cli("report", "--config", config, "--out", str(out / "report.html"), tracking_uri=tracking_uri, log=log)
        for suffix in ("csv", "html"):
            run_cli("attribution", "--config", config, "--out", str(out / f"attribution.{suffix}"),
                    tracking_uri=tracking_uri, log=log)
    finally:
        mlflow.set_tracking_uri(saved)
    return Outputs(TrainedShop(root=root, config=Path(config), tracking_uri=tracking_uri,
                               snapshot=shop_dir / "online_features.parquet"), out)


def store_frame(outputs: Outputs, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(outputs.shop.root / "shop" / "cdp.duckdb"), read_only=True) as con:
        return con.execute(sql).df()


def test_the_store_holds_every_name_as_written(outputs):
    orders = store_frame(outputs, "SELECT DISTINCT category, channel, product_id FROM orders")
    assert set(orders["category"].dropna()) == set(CATEGORIES.values())
    assert set(orders["channel"].dropna()) == {CHANNELS["web"], CHANNELS["store"]}
    assert orders["product_id"].dropna().str.endswith(ODD_SKU_SUFFIX).all()


def test_training_keeps_two_categories_that_differ_by_one_comma_apart(outputs):
    # The shop's models in the registry it shares through MLFLOW_TRACKING_URI: scoped by its store's path.
    tracking = TrackingConfig(outputs.shop.tracking_uri, scope=store_scope(outputs.shop.root / "shop" / "cdp.duckdb"))
    churn = load_champion(tracking, "cdp-churn", 90)[0].unwrap_python_model().estimator
    recommender = load_champion(tracking, "cdp-next-purchase", 90)[0].unwrap_python_model().recommender
    one_hot = [c for c in churn.columns_ if c.startswith("top_category_")]
    assert "top_category_Oil, olive" in one_hot and "top_category_Oil olive" in one_hot
    assert f"preferred_channel_{CHANNELS['web']}" in churn.columns_
    # The boosters read positional names; the readable names are kept beside them, in the same order.
    names = churn.classifier_.booster_.feature_name()
    assert names == [f"f{i}" for i in range(len(churn.columns_))]
    assert sorted(recommender.categories_) == sorted(CATEGORIES.values())


def test_scores_name_the_categories_exactly_in_parquet_csv_and_the_store(outputs):
    parquet = pd.read_parquet(outputs.dir / "scores.parquet").set_index("customer_id")
    listed = parquet["next_best_categories"]
    assert listed.map(len).eq(3).all()
    assert set(np.concatenate(listed.to_numpy())) <= set(CATEGORIES.values())
    assert set(np.concatenate(listed.to_numpy())) >= {"Oil, olive", "Oil olive"}
    # CSV: one JSON array per cell, which splits back into the same lists.
    text = pd.read_csv(outputs.dir / "scores.csv", dtype=str, keep_default_na=False).set_index("customer_id")
    assert text["next_best_categories"].map(json.loads).to_dict() == listed.map(list).to_dict()
    stored = store_frame(outputs, "SELECT customer_id, next_best_categories FROM scores").set_index("customer_id")
    assert stored["next_best_categories"].map(list).to_dict() == listed.map(list).to_dict()


def test_the_features_hold_the_names_and_the_history_decodes_to_them(outputs):
    snapshot = pd.read_parquet(outputs.shop.snapshot)
    assert set(snapshot["top_category"].dropna()) <= set(CATEGORIES.values())
    assert {"Oil, olive", "Oil olive"} <= set(snapshot["top_category"].dropna())
    assert set(snapshot["preferred_channel"].dropna()) == {CHANNELS["web"], CHANNELS["store"]}
    history = decode_history(snapshot["category_history"])
    assert set(history.columns) == set(CATEGORIES.values())
    # The history counts what the store holds, category by category.
    counts = store_frame(outputs, "SELECT customer_id, category, count(*) AS n FROM orders WHERE NOT is_return "
                                  "AND category IS NOT NULL AND customer_id IS NOT NULL GROUP BY ALL")
    expected = counts.pivot(index="customer_id", columns="category", values="n").fillna(0)
    got = history.set_index(snapshot["customer_id"]).loc[expected.index, expected.columns]
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())


def test_churn_lists_agree_across_csv_xlsx_and_html(outputs):
    """Which reasons name a category depends on the model; `tests/marketing/test_lists.py` puts every
    character class through each format. Here the three files of one run must agree cell for cell."""
    rows = pd.read_csv(outputs.dir / "list.csv", dtype=str, keep_default_na=False)
    assert len(rows) > 0
    sheet = openpyxl.load_workbook(outputs.dir / "list.xlsx")["Churn risk"]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    xlsx = pd.DataFrame(cells[1:], columns=cells[0]).fillna("")
    assert xlsx["reasons"].tolist() == rows["reasons"].tolist()
    assert xlsx["segment"].tolist() == rows["segment"].tolist()
    page = set(_page_text(outputs.dir / "list.html"))
    assert set(rows["reasons"]) - {""} <= page


def _page_text(path: Path) -> list[str]:
    return html_text(path.read_text(encoding="utf-8"))


def test_the_report_shows_the_lists_reasons_as_text(outputs):
    rows = pd.read_csv(outputs.dir / "list.csv", dtype=str, keep_default_na=False)
    cells = set(_page_text(outputs.dir / "report.html"))
    shown = {c for c in cells if c in set(rows["reasons"])}
    assert shown, "the report's top list shows no reasons"


def test_attribution_keeps_every_channel_name(outputs):
    table = pd.read_csv(outputs.dir / "attribution.csv", dtype={"channel": str}, keep_default_na=False)
    touched = {CHANNELS[c] for c in ("facebook", "instagram", "organic_social", "email", "google_search", "direct")}
    assert set(table["channel"]) == {safe_cell(name) for name in touched}
    assert "'@e-mail; list" in set(table["channel"]) and "'-direct\\typed" in set(table["channel"])
    cells = set(_page_text(outputs.dir / "attribution.html"))
    assert touched <= cells


def test_export_returns_the_customers_orders_and_scores_as_written(outputs, tmp_path):
    parquet = pd.read_parquet(outputs.dir / "scores.parquet")
    buyer = parquet[parquet["churn_probability"].notna()].iloc[0]
    run_cli("export", "--config", str(outputs.shop.config), "--customer-id", buyer["customer_id"],
            "--out", str(tmp_path / "export.json"), tracking_uri=outputs.shop.tracking_uri)
    document = json.loads((tmp_path / "export.json").read_text(encoding="utf-8"))
    text = json.dumps(document, ensure_ascii=False)
    assert any(name in text for name in CATEGORIES.values())
    (score,) = document["scores"]
    assert score["next_best_categories"] == list(buyer["next_best_categories"])


@pytest.fixture(scope="module")
def server(outputs, tmp_path_factory):
    server = Server(outputs.shop, tmp_path_factory.mktemp("free-text-serve") / "serve.log",
                    extra_args=("--poll-seconds", "2"))
    try:
        server.wait("/readyz")  # ready: the refresh scored the whole snapshot
        yield server
    finally:
        server.stop()


def test_the_service_answers_with_the_names_exactly(server, outputs):
    parquet = pd.read_parquet(outputs.dir / "scores.parquet").set_index("customer_id")
    ids = parquet.index[:50].tolist()
    response = server.post("/score_batch", {"customer_ids": ids})
    assert response.status == 200, response.body
    for result in response.json()["results"]:
        assert result["next_best_categories"] == list(parquet.loc[result["customer_id"], "next_best_categories"])
    reload = server.post("/admin/reload")
    assert reload.status == 200 and reload.json()["errors"] == [], reload.body


@pytest.mark.parametrize("category", ["Oil, olive", "Oil olive", CATEGORIES["maftoul_grains"],
                                      CATEGORIES["books"], CATEGORIES["embroidery"]])
def test_score_features_takes_any_category_and_history(server, category):
    history = f"{split_items_escape(category)}:4;{split_items_escape('Oil, olive')}:1"
    response = server.post("/score_features", {"features": {
        "recency_days": 20, "purchase_days": 3, "tenure_days": 300, "mean_order_value": 80.0,
        "top_category": category, "preferred_channel": CHANNELS["web"], "category_history": history}})
    assert response.status == 200, response.body
    listed = response.json()["next_best_categories"]
    assert len(listed) == 3 and set(listed) <= set(CATEGORIES.values())
    assert category in listed  # four purchases of it: the first thing a repeat buyer buys again


def split_items_escape(name: str) -> str:
    """A category as the history text holds it (escaped), checked to split back to itself."""
    from features.text_items import escape

    assert split_items(escape(name)) == [name]
    return escape(name)
