"""The scoring service over HTTP: the real `cdp serve` on a trained sample shop.

Scores are checked against `cdp score`'s file (the batch path), errors against what a
client must see (a 4xx with a message, never a 5xx or a traceback), and the last test
retrains the churn model while requests keep coming: not one may fail, and the version
they report must move from the old champion to the new one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from serving.answers import ROUNDING
from serving.schemas import ScoreResult
from tests.serving.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings(
    # from MLflow's own SQLAlchemy store, not from our calls
    "ignore:The ``noload`` loader strategy is deprecated"
)]

MEDIUM, HIGH = 0.6, 0.9  # the bands the server fixture is started with
RESULT_FIELDS = set(ScoreResult.model_fields)
PROTECTED = [("POST", "/score"), ("POST", "/score_batch"), ("POST", "/score_features"), ("POST", "/admin/reload"),
             ("GET", "/versions"), ("GET", "/metrics"), ("GET", "/docs.json"), ("GET", "/")]


@pytest.fixture(scope="module")
def scores(trained_shop) -> pd.DataFrame:
    """What `cdp score` wrote: the batch answers the service must agree with."""
    return pd.read_parquet(trained_shop.root / "scores.parquet").set_index("customer_id")


@pytest.fixture(scope="module")
def snapshot(trained_shop) -> pd.DataFrame:
    return pd.read_parquet(trained_shop.snapshot).set_index("customer_id")


def champions(tracking_uri: str) -> dict[str, str]:
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = {}
    for family in ("segments", "churn", "next_purchase", "first_purchase"):
        aliases = client.get_registered_model(f"cdp-{family.replace('_', '-')}").aliases
        (found[family],) = {str(v) for k, v in aliases.items() if k.startswith("champion")}  # one store, one horizon
    return found


def assert_matches_batch(result: dict, expected: pd.Series) -> None:
    assert result["segment"] == expected["segment"]
    for column in ("churn_probability", "purchase_probability", "expected_purchases", "expected_revenue",
                   "days_to_next_purchase"):
        if pd.isna(expected[column]):
            assert result[column] is None, column
        else:  # the batch value, rounded as the service rounds it (4 places; money to the cent; days to 0.1)
            assert result[column] == round(float(expected[column]), ROUNDING[column]), column
    assert result["top_reasons"] == [r for r in str(expected["top_reasons"] or "").split(", ") if r]
    assert [r["code"] for r in result["reasons"]] == result["top_reasons"]
    assert result["next_best_categories"] == list(expected["next_best_categories"])  # a list column in the file


def band(p: float | None) -> str | None:
    return None if p is None else "high" if p >= HIGH else "medium" if p >= MEDIUM else "low"


def assert_error(response, status: int, fragment: str = "") -> dict:
    assert response.status == status, response.body
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("error"), str) and set(body) <= {"error", "detail"}, body
    assert fragment.lower() in (body["error"] + " " + body.get("detail", "")).lower(), body
    assert b"Traceback" not in response.body
    return body


def test_liveness_and_readiness_answer_without_a_key(server):
    for path in ("/livez", "/healthz", "/readyz"):
        assert server.request("GET", path, key=None).status == 200, path


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_other_endpoint_needs_the_bearer_key(server, method, path):
    body = {"customer_id": "c1"} if method == "POST" else None
    for key, headers in ((None, {}), ("not-the-key-at-all-0000", {}), (None, {"Authorization": f"Basic {server.key}"}),
                         (None, {"Authorization": server.key})):
        response = server.request(method, path, body, key=key, headers=headers)
        error = assert_error(response, 401, "Authorization: Bearer")
        assert response.headers["www-authenticate"] == "Bearer"
        assert server.key not in response.body.decode() and "valid keys" not in error["error"]


def test_score_gives_a_known_customer_the_same_answer_as_cdp_score(server, scores, trained_shop):
    versions = champions(trained_shop.tracking_uri)
    buyers = scores[scores["churn_probability"].notna()].index[:3]
    prospects = scores[scores["churn_probability"].isna()].index[:2]
    assert len(buyers) == 3 and len(prospects) >= 1
    for customer_id in [*buyers, *prospects]:
        response = server.post("/score", {"customer_id": customer_id})
        assert response.status == 200, response.body
        result = response.json()
        assert set(result) == RESULT_FIELDS
        assert result["customer_id"] == customer_id
        assert_matches_batch(result, scores.loc[customer_id])
        assert result["churn_risk"] == band(result["churn_probability"])
        assert result["model_versions"] == versions
        assert result["features_as_of"] == "2026-10-31" and result["horizon_days"] == 90


def test_concurrent_requests_get_the_same_answers_as_one_at_a_time(server, scores):
    ids = list(scores[scores["churn_probability"].notna()].index[10:18])
    alone = {customer_id: server.post("/score", {"customer_id": customer_id}).json() for customer_id in ids}
    together: dict[str, dict] = {}

    def ask(customer_id: str) -> None:
        together[customer_id] = server.post("/score", {"customer_id": customer_id}).json()

    threads = [threading.Thread(target=ask, args=(customer_id,)) for customer_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert together == alone


def test_an_unknown_customer_is_a_404_that_points_to_score_features(server):
    assert_error(server.post("/score", {"customer_id": "c0000000000000000"}), 404, "/score_features")


def test_score_batch_answers_known_ids_in_order_and_lists_the_unknown(server, scores):
    known = list(scores.index[:4])
    asked = [known[0], "c-unknown-1", known[1], known[0], known[2], "c-unknown-2", known[3]]
    response = server.post("/score_batch", {"customer_ids": asked})
    assert response.status == 200, response.body
    body = response.json()
    assert [r["customer_id"] for r in body["results"]] == known  # repeats scored once, order kept
    assert body["not_found"] == ["c-unknown-1", "c-unknown-2"]
    for result in body["results"]:
        assert set(result) == RESULT_FIELDS
        assert_matches_batch(result, scores.loc[result["customer_id"]])
    single = server.post("/score", {"customer_id": known[2]}).json()
    assert body["results"][2] == single


def test_score_batch_takes_1_to_1000_ids(server, scores):
    response = server.post("/score_batch", {"customer_ids": list(scores.index[:1000])})
    assert response.status == 200 and len(response.json()["results"]) == 1000
    assert_error(server.post("/score_batch", {"customer_ids": []}), 400, "customer_ids")
    assert_error(server.post("/score_batch", {"customer_ids": ["c1"] * 1001}), 400, "at most 1000")
    assert_error(server.post("/score_batch", {"customer_ids": "c1"}), 400, "customer_ids")


def test_score_features_of_known_rows_gives_what_cdp_score_wrote_for_them(server, snapshot, scores):
    """Forty buyers spread over the file and five people who never bought: each one's snapshot row,
    sent as features, answers what `cdp score` wrote for them (the batch path, whose preprocessing
    is the feature-engine Pipeline; one row goes through its compiled form) to the service's
    rounding, and exactly what /score answers for them, reasons and their wording included."""
    types = server.request("GET", "/versions").json()["feature_names"]
    buyers = scores.index[scores["churn_probability"].notna()]
    never_bought = scores.index[scores["churn_probability"].isna()]
    assert len(buyers) >= 100 and len(never_bought) >= 5  # the batch prepared its buyers with the Pipeline
    for customer_id in [*buyers[:: len(buyers) // 40][:40], *never_bought[:5]]:
        row = snapshot.loc[customer_id]
        features = {name: (None if pd.isna(row[name]) else float(row[name]) if kind == "number" else str(row[name]))
                    for name, kind in types.items()}
        response = server.post("/score_features", {"features": features})
        assert response.status == 200, response.body
        result = response.json()
        assert result["customer_id"] is None and result["features_as_of"] == "2026-10-31"
        assert_matches_batch(result, scores.loc[customer_id])
        known = server.post("/score", {"customer_id": customer_id}).json()
        assert result == {**known, "customer_id": None}, customer_id
        assert result["purchase_probability"] is not None  # prospects too: the first-purchase model's


def test_a_prospect_is_answered_with_the_first_purchase_models_probability(server, scores, trained_shop):
    """People who have not bought get segment "Prospects" and their chance of a first
    purchase (the first-purchase champion's, as `cdp score` wrote it, to 4 places) instead
    of nulls; churn and the history-based figures stay null."""
    prospects = scores[scores["segment"] == "Prospects"]
    assert len(prospects) > 20 and prospects["purchase_probability"].notna().all()
    assert prospects["purchase_probability"].between(0, 1, inclusive="neither").all()
    assert prospects["purchase_probability"].nunique() > 10  # ranked, not one rate for all
    ids = list(prospects.index[:5])
    batch = server.post("/score_batch", {"customer_ids": ids}).json()["results"]
    for customer_id, from_batch in zip(ids, batch):
        result = server.post("/score", {"customer_id": customer_id}).json()
        assert result == from_batch
        assert result["segment"] == "Prospects" and result["churn_probability"] is None
        assert result["churn_risk"] is None and result["top_reasons"] == [] and result["expected_revenue"] is None
        expected = round(float(scores.loc[customer_id, "purchase_probability"]), 4)
        assert result["purchase_probability"] == expected
        assert result["model_versions"]["first_purchase"] == scores.loc[customer_id, "first_purchase_version"]
    assert champions(trained_shop.tracking_uri)["first_purchase"] == prospects["first_purchase_version"].iloc[0]


def test_score_features_imputes_what_is_left_out(server):
    partial = server.post("/score_features", {"features": {"recency_days": 20, "purchase_days": 4, "tenure_days": 400,
                                                           "mean_order_value": 90.5, "country": "PS"},
                                              "as_of": "2026-11-15"})
    assert partial.status == 200, partial.body
    result = partial.json()
    assert 0 < result["churn_probability"] < 1 and result["churn_risk"] == band(result["churn_probability"])
    assert result["expected_purchases"] > 0 and result["features_as_of"] == "2026-11-15"
    never_bought = server.post("/score_features", {"features": {}}).json()
    assert never_bought["churn_probability"] is None and never_bought["churn_risk"] is None
    assert never_bought["expected_revenue"] is None and never_bought["segment"] == "Prospects"
    assert 0 < never_bought["purchase_probability"] < 1  # the first-purchase model, from imputed values


@pytest.mark.parametrize(("features", "fragment"), [
    ({"recency_days": 3, "favourite_colour": "red"}, "favourite_colour"),
    ({"recency_days": "3"}, "recency_days must be a number"),
    ({"country": 972}, "country must be a string"),
    ({"recency_days": [3]}, "features.recency_days"),
    ({"recency_days": True}, "features.recency_days"),
    ({"country": "x" * 5000}, "at most 4096"),
])
def test_score_features_refuses_unknown_names_and_wrong_kinds(server, features, fragment):
    assert_error(server.post("/score_features", {"features": features}), 400, fragment)


@pytest.mark.parametrize(("features", "fragment"), [
    ({"recency_days": 40, "tenure_days": 30, "purchase_days": 2}, "recency_days (40) must be at most tenure_days (30)"),
    ({"purchase_days": 2.5, "recency_days": 3}, "purchase_days (2.5) must be a count, a whole number"),
    ({"tenure_days": -30}, "tenure_days (-30) must be a whole number of days ≥ 0"),
    ({"orders_count": -4, "recency_days": 3}, "orders_count (-4) must be a count ≥ 0"),
    ({"revenue_total": -100.0}, "revenue_total (-100) must be an amount ≥ 0"),
    ({"share_web_orders": 1.5}, "share_web_orders (1.5) must be a share between 0 and 1"),
    ({"purchase_days_30d": 9, "purchase_days_90d": 3}, "purchase_days_30d (9) must be at most purchase_days_90d (3)"),
    ({"recency_days": 3, "purchase_days": 0}, "purchase_days (0) must be at least 1 when recency_days is given"),
    ({"category_history": "oil;soap"}, "category_history must be `category:n` items joined by ';'"),
    ({"category_history": "oil:-2"}, "category_history must be `category:n` items"),
    ({"category_history": "oil:2:3"}, "category_history must be `category:n` items"),
])
def test_score_features_refuses_values_no_customer_could_have_naming_the_feature_and_rule(server, features, fragment):
    assert_error(server.post("/score_features", {"features": features}), 400, fragment)


@pytest.mark.parametrize("features", [
    {"recency_days": 0, "tenure_days": 0, "purchase_days": 1, "orders_count": 1},
    {"recency_days": 36500, "tenure_days": 36500, "purchase_days": 36501, "orders_count": 1e9},
    {"recency_days": 1e12, "tenure_days": 1e12, "purchase_days": 1, "revenue_total": 1e300, "mean_order_value": 1e300},
    {"tenure_days": 5, "interpurchase_days_mean": 0, "interpurchase_days_std": 0, "overdue_ratio": 0},
    {"category_history": "🫒 Oil%2C olive:999999999;x:1", "top_category": "", "country": "\u0000"},
])
def test_score_features_answers_extreme_but_possible_values(server, features):
    response = server.post("/score_features", {"features": features})
    assert response.status == 200, response.body
    result = response.json()
    assert result["churn_probability"] is None or 0 <= result["churn_probability"] <= 1


BAD_BODIES = [  # (path, body bytes, content type, status, part of the message)
    ("/score", b'{"customer_id": ', "application/json", 400, "Invalid JSON"),
    ("/score", b'{"customer_id": 12345}', "application/json", 400, "customer_id"),
    ("/score", b'{"customer_id": "c1", "extra": 1}', "application/json", 400, "extra"),
    ("/score", b'{"customer_id": "' + b"c" * 100_000 + b'"}', "application/json", 400, "at most 64"),
    ("/score", b'{"customer_id": "two words"}', "application/json", 400, "customer_id"),
    ("/score", b'{"customer_id": "c1"}', "multipart/form-data", 415, "application/json"),
    ("/score", b'{"customer_id": "c1"}', "text/plain", 415, "application/json"),
    ("/score", b'{"customer_id": "c1"}', "application/x-www-form-urlencoded", 415, "application/json"),
    ("/score", b"[]", "application/json", 400, "object"),
    ("/score", b"", "application/json", 400, "Invalid JSON"),
    ("/score", b'{"customer_id": "\xff\xfe"}', "application/json", 400, "invalid"),
    ("/score_batch", b'{"customer_ids": [' + b'"c1",' * 60_000 + b'"c1"]}', "application/json", 413, "256 KiB"),
    ("/score_features", b'{"features": {"recency_days": NaN}}', "application/json", 400, "finite number"),
    ("/score_features", b'{"features": {"recency_days": 1e999}}', "application/json", 400, "finite number"),
    ("/score_features", b'{"features": {"a": {"b": 1}}}', "application/json", 400, "features.a"),
    ("/admin/reload", b'{"force": true}', "application/json", 400, "force"),
]


@pytest.mark.parametrize(("path", "raw", "content_type", "status", "fragment"), BAD_BODIES)
def test_bad_requests_get_a_4xx_with_a_clear_message_and_never_a_5xx(server, path, raw, content_type, status,
                                                                     fragment):
    response = server.post(path, raw=raw, headers={"Content-Type": content_type})
    assert_error(response, status, fragment)


def test_the_wrong_method_is_a_405_and_an_unknown_path_a_404(server):
    assert_error(server.request("GET", "/score"), 405)
    assert_error(server.request("GET", "/no-such-endpoint"), 404)
    assert_error(server.post("/versions", {}), 405)


def test_versions_and_admin_reload_report_what_is_served(server, trained_shop):
    status = server.request("GET", "/versions").json()
    assert status["ready"] is True and status["errors"] == []
    assert status["model_versions"] == champions(trained_shop.tracking_uri)
    assert status["customers"] == len(pd.read_parquet(trained_shop.snapshot))
    assert status["features_as_of"] == "2026-10-31" and status["horizon_days"] == 90
    assert status["feature_names"]["recency_days"] == "number" and status["feature_names"]["country"] == "string"
    reloaded = server.post("/admin/reload")  # an empty body is fine here
    assert reloaded.status == 200, reloaded.body
    assert reloaded.json()["model_versions"] == status["model_versions"]


def metric_series(body: bytes) -> dict[str, float]:
    """Prometheus text → series (name with labels) → value."""
    found = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            found[series] = float(value)
    return found


def test_metrics_count_requests_by_route_method_and_status_behind_the_key(server):
    before = metric_series(server.request("GET", "/metrics").body)
    server.post("/score", {"customer_id": "c0000000000000000"})  # 404
    server.request("GET", "/no/such/page", key=None)               # 401, no key
    server.request("GET", "/no/such/page")                         # 404 behind the key
    response = server.request("GET", "/metrics")
    assert response.status == 200 and response.headers["content-type"].startswith("text/plain")
    after = metric_series(response.body)

    def grew(series: str) -> float:
        return after.get(series, 0) - before.get(series, 0)

    assert grew('cdp_http_requests_total{method="POST",route="/score",status="404"}') == 1
    assert grew('cdp_http_requests_total{method="GET",route="other",status="401"}') == 1
    assert grew('cdp_http_requests_total{method="GET",route="other",status="404"}') == 1
    assert grew('cdp_http_request_duration_seconds_count{route="/score"}') == 1
    assert not [series for series in after if "no/such" in series or series.startswith("bentoml_")]
    assert server.request("GET", "/metrics", key=None).status == 401


def test_metrics_say_what_is_served_and_how_old_it_is(server, trained_shop):
    status = server.request("GET", "/versions").json()
    found = metric_series(server.request("GET", "/metrics").body)
    for family, version in status["model_versions"].items():
        assert found[f'cdp_model_version_info{{family="{family}",version="{version}"}}'] == 1
    assert found["cdp_ready"] == 1 and found["cdp_snapshot_customers"] == status["customers"] > 900
    end_of_day = dt.datetime.combine(dt.date.fromisoformat(status["features_as_of"]) + dt.timedelta(days=1),
                                     dt.time(), tzinfo=dt.timezone.utc)
    age = dt.datetime.now(dt.timezone.utc).timestamp() - end_of_day.timestamp()
    assert found["cdp_snapshot_age_seconds"] == pytest.approx(age, abs=60)
    assert found["cdp_last_check_timestamp_seconds"] >= found["cdp_last_swap_timestamp_seconds"] > 0
    assert found["cdp_refresh_errors"] == len(status["errors"])


def process_tree(root: int) -> list[Path]:
    """/proc entries of ``root`` and all its descendants (BentoML's worker runs in a session of its own)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError):
            continue
    tree, grew = {root}, True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    return [Path("/proc") / str(pid) for pid in sorted(tree)]


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and its descendants (the server and its worker)."""
    total = 0
    for entry in process_tree(root):
        try:
            rss = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("VmRSS:"))
            total += int(rss.split()[1]) * 1024
        except (OSError, StopIteration):
            continue
    return total


def multiprocess_metric_bytes(root: int) -> int:
    """Bytes of the Prometheus multiprocess files (PROMETHEUS_MULTIPROC_DIR, which BentoML sets
    for its worker) of the server ``root``: every series any metric library in the worker
    creates lands there, ours and BentoML's alike."""
    folders = set()
    for entry in process_tree(root):
        try:
            for item in (entry / "environ").read_bytes().split(b"\0"):
                if item.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
                    folders.add(Path(item.partition(b"=")[2].decode()))
        except OSError:
            continue
    assert folders, "no PROMETHEUS_MULTIPROC_DIR in the server's processes"
    return sum(file.stat().st_size for folder in folders for file in folder.glob("*") if file.is_file())


def flood(server, count: int, seed: int, threads: int = 4) -> list[int]:
    """``count`` requests without a key to random paths, over kept-alive connections; their statuses."""
    import http.client
    import random

    statuses: list[int] = []

    def worker(part: int) -> None:
        rng = random.Random(seed * 100 + part)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for _ in range(count // threads):
            path = "/" + "/".join(f"{rng.getrandbits(64):x}" for _ in range(rng.randint(1, 3)))
            connection.request(rng.choice(["GET", "POST"]), path)
            answer = connection.getresponse()
            answer.read()
            statuses.append(answer.status)
        connection.close()

    workers = [threading.Thread(target=worker, args=(part,)) for part in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return statuses


def test_unauthenticated_floods_to_random_paths_add_no_series_and_no_memory(server):
    """5,000 then 10,000 more requests without a key to made-up paths: every one is a 401,
    /metrics keeps the same series (only the counts move) and its size, and the server's
    memory stays within 5% of what it was before (growth does not follow the request count).

    Both guards are checked: with BentoML's metrics on, its multiprocess files grew from
    10 MB to 151 MB here; with OpenTelemetry's spans on, the worker grew 72 MB (spans kept
    per keep-alive connection). What remains is BentoML's per-request timeout timer, freed
    after the 60 s traffic timeout."""
    flood(server, 1000, seed=1)  # warm the allocator and the 401 series
    assert server.request("GET", "/metrics", key=None).status == 401
    assert server.request("GET", "/metrics").status == 200  # its own series, counted once it has answered
    root = server.process.pid
    metrics0, rss0, files0 = (server.request("GET", "/metrics").body, tree_rss_bytes(root),
                              multiprocess_metric_bytes(root))
    assert set(flood(server, 5000, seed=2)) == {401}
    metrics1, rss1 = server.request("GET", "/metrics").body, tree_rss_bytes(root)
    assert set(flood(server, 10000, seed=3)) == {401}
    metrics2, rss2 = server.request("GET", "/metrics").body, tree_rss_bytes(root)
    assert multiprocess_metric_bytes(root) == files0  # no series added anywhere in the server
    assert set(metric_series(metrics0)) == set(metric_series(metrics1)) == set(metric_series(metrics2))
    routes = {re.search(r'route="([^"]*)"', series).group(1) for series in metric_series(metrics2)
              if 'route="' in series}
    assert "other" in routes and routes <= {"/score", "/score_batch", "/score_features", "/admin/reload", "/versions",
                                            "/metrics", "/docs.json", "/schema.json", "/", "/livez", "/healthz",
                                            "/readyz", "/static_content/*", "other"}
    assert {series for series in metric_series(metrics2) if 'route="other"' in series
            and series.startswith("cdp_http_requests_total") and 'status="401"' in series} == {
        'cdp_http_requests_total{method="GET",route="other",status="401"}',
        'cdp_http_requests_total{method="POST",route="other",status="401"}'}
    for size in (len(metrics1), len(metrics2)):
        assert abs(size - len(metrics0)) <= 0.05 * len(metrics0), (len(metrics0), len(metrics1), len(metrics2))
    memory = f"memory {rss0 / 2**20:.1f} → {rss1 / 2**20:.1f} → {rss2 / 2**20:.1f} MiB"
    print(f"/metrics {len(metrics0)} → {len(metrics1)} → {len(metrics2)} bytes; {memory}")
    for rss in (rss1, rss2):
        assert abs(rss - rss0) <= 0.05 * rss0, memory


def test_the_openapi_document_declares_the_key_the_errors_and_nullable_scores(server):
    doc = server.request("GET", "/docs.json").json()
    assert doc["components"]["securitySchemes"]["bearerKey"] == {
        "type": "http", "scheme": "bearer", "description": "The service's CDP_API_KEY."}
    for path in ("/score", "/score_batch", "/score_features", "/admin/reload", "/versions"):
        assert path in doc["paths"]
    score = doc["paths"]["/score"]["post"]
    assert {"400", "401", "404", "413", "415", "503"} <= set(score["responses"])
    result = score["responses"]["200"]["content"]["application/json"]["schema"]
    assert result["properties"]["churn_probability"] == {
        "description": "Probability of no purchase within horizon_days, 4 decimal places (null for people who have "
                       "not bought yet: there is no purchase to lapse from; see purchase_probability).",
        "title": "Churn Probability",
        "type": "number", "nullable": True}
    # Why prospects have a purchase probability but no churn, in the schema a developer reads.
    assert "first-purchase model's chance of a first purchase" in result["properties"]["purchase_probability"][
        "description"]
    assert doc["paths"]["/readyz"]["get"]["security"] == []
    schemas = {**doc["components"]["schemas"], "ScoreResult (/score)": result,
               "ServiceStatus (/versions)": doc["paths"]["/versions"]["get"]["responses"]["200"]["content"][
                   "application/json"]["schema"],
               "ScoreBatchResponse (/score_batch)": doc["paths"]["/score_batch"]["post"]["responses"]["200"][
                   "content"]["application/json"]["schema"]}
    undescribed = [f"{name}.{field}" for name, schema in schemas.items() if name.split()[0] in (
                       "ScoreResult", "Reason", "ModelVersions", "ScoreBatchResponse", "Unresolved", "ServiceStatus",
                       "ScoreRequest")
                   for field, spec in schema.get("properties", {}).items() if not spec.get("description")]
    assert len(schemas) >= 8 and undescribed == []


def test_no_personal_data_or_request_body_reaches_the_log(server, trained_shop):
    marker = "zzmarker7731"
    server.post("/score", {"customer_id": f"c{marker}"})
    server.post("/score_features", {"features": {"country": marker, "recency_days": 3}})
    server.post("/score", raw=f'{{"customer_id": "{marker}", '.encode(), headers={"Content-Type": "application/json"})
    crm = pd.read_csv(trained_shop.root / "shop" / "crm_customers.csv", dtype=str, keep_default_na=False)
    log = server.log_text()
    assert marker not in log
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", log), "an email address in the server log"
    for column in ("email", "phone", "last_name"):
        leaked = [v for v in crm[column] if len(v) > 3 and v in log]
        assert not leaked, f"{column} values in the server log"
    assert "Traceback" not in log


@pytest.mark.parametrize("selection", [
    ("--exclude-path", "/score_features"),
    ("--include-path", "/score_features", "--phases", "examples,fuzzing"),
    # Coverage of valid bodies would score hundreds of feature sets (~0.3 s each): invalid ones only.
    ("--include-path", "/score_features", "--phases", "coverage", "--mode", "negative"),
], ids=["other-endpoints", "score_features", "score_features-invalid-coverage"])
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_documented_schema(server, selection, tmp_path):
    """Bounded Schemathesis runs with every check (no 5xx, responses match their documented
    schemas, status codes and content types, schema-valid requests accepted, invalid ones
    refused) against /docs.json."""
    import schemathesis  # noqa: F401 - a dev dependency (requirements.lock); its absence is a failure
    run = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", f"http://127.0.0.1:{server.port}/docs.json",
         "--header", f"Authorization: Bearer {server.key}", "--max-examples", "15", "--seed", "20261123",
         "--generation-deterministic", "--warnings", "off", *selection],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,  # its cache folder goes there
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"})
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


def test_a_new_champion_is_served_without_restart_and_without_failing_a_request(server, trained_shop, scores):
    before = champions(trained_shop.tracking_uri)
    customer_id = scores[scores["churn_probability"].notna()].index[0]
    outcomes: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                response = server.post("/score", {"customer_id": customer_id})
                version = response.json().get("model_versions", {}).get("churn") if response.status == 200 else None
                outcomes.append((response.status, version))
            except OSError as exc:  # a refused or dropped connection is a failed request too
                outcomes.append((0, type(exc).__name__))

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        run_cli("train", "churn", "--config", str(trained_shop.config), "--snapshots", "2", "--force",
                tracking_uri=trained_shop.tracking_uri)
        after = champions(trained_shop.tracking_uri)
        assert after["churn"] != before["churn"]
        deadline = time.monotonic() + 60
        while server.request("GET", "/versions").json()["model_versions"]["churn"] != after["churn"]:
            assert time.monotonic() < deadline, "the poller did not pick up the new champion within 60 s"
            time.sleep(0.5)
        seen = len(outcomes)
        while len(outcomes) < seen + 3:  # a few requests on the new model
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=60)
    statuses = [status for status, _ in outcomes]
    assert statuses and all(status == 200 for status in statuses), [o for o in outcomes if o[0] != 200][:5]
    versions = [version for _, version in outcomes]
    switch = versions.index(after["churn"])
    assert set(versions[:switch]) == {before["churn"]} and set(versions[switch:]) == {after["churn"]}
    assert switch > 0, "no request was served by the old champion during retraining"
    status = server.request("GET", "/versions").json()
    assert status["model_versions"] == after and status["last_swap"] is not None
    assert not math.isnan(server.post("/score", {"customer_id": customer_id}).json()["churn_probability"])


@pytest.fixture(scope="module")
def known_person(trained_shop, scores):
    """A scored customer with an email, a phone and a CRM key, as the CRM file wrote them (raw)."""
    import duckdb

    with duckdb.connect(str(trained_shop.root / "shop" / "cdp.duckdb"), read_only=True) as con:
        rows = con.sql("""
            SELECT r.customer_id, s.email, s.phone, s.customer_key
            FROM source_customers s JOIN record_map r ON r.kind = 'customers' AND r.source = s.source
                 AND r.source_key = s.source_key
            WHERE s.source = 'crm_customers' AND s.email_norm IS NOT NULL AND s.phone_norm IS NOT NULL
              AND s.email <> s.email_norm AND s.email_norm NOT IN (SELECT id_value FROM identifier_exclusions)
              AND s.phone_norm NOT IN (SELECT id_value FROM identifier_exclusions)
            ORDER BY r.customer_id""").fetchall()
        excluded = con.sql("SELECT id_type, id_value FROM identifier_exclusions WHERE id_type IN ('email', 'phone') "
                           "ORDER BY id_type, id_value LIMIT 1").fetchall()[0]
    customer_id, email, phone, key = next(row for row in rows if row[0] in scores.index)
    return {"customer_id": customer_id, "email": email, "phone": phone, "customer_key": key, "excluded": excluded}


def test_a_customer_is_found_by_email_phone_or_crm_key_as_the_app_holds_them(server, known_person):
    by_id = server.post("/score", {"customer_id": known_person["customer_id"]}).json()
    assert known_person["email"] != known_person["email"].strip().lower()  # written as a person typed it
    for body in ({"email": f"  {known_person['email'].upper()} "}, {"phone": known_person["phone"]},
                 {"customer_key": known_person["customer_key"], "source": "crm_customers"},
                 {"customer_key": known_person["customer_key"], "source": "ad_touchpoints"}):  # shares the namespace
        response = server.post("/score", body)
        assert response.status == 200, (body.keys(), response.body)
        assert response.json() == by_id


def test_an_identifier_no_one_or_junk_holds_is_a_404_that_does_not_repeat_it(server, known_person):
    id_type, value = known_person["excluded"]
    junk = assert_error(server.post("/score", {id_type: value}), 404, "placeholder or shared")
    unknown = assert_error(server.post("/score", {"email": "nobody.at.all@example.com"}), 404, "no customer")
    wrong_namespace = server.post("/score", {"customer_key": known_person["customer_key"], "source": "pos_receipts"})
    assert wrong_namespace.status == 404
    assert value not in json.dumps(junk) and "nobody" not in json.dumps(unknown)
    given_as_id = assert_error(server.post("/score", {"customer_id": "omar@example.com"}), 404, '{"email": ...}')
    assert "omar" not in given_as_id["error"]


@pytest.mark.parametrize(("body", "fragment"), [
    ({}, "exactly one of"),
    ({"email": "a@b.c", "phone": "+970599123456"}, "exactly one of"),
    ({"customer_key": "K-1"}, "customer_key needs its source"),
    ({"email": "a@b.c", "source": "crm_customers"}, "source goes with customer_key"),
    ({"email": None, "customer_id": "c1"}, "must be a string, not null"),
])
def test_a_look_up_names_exactly_one_identifier(server, body, fragment):
    assert_error(server.post("/score", body), 400, fragment)


def test_a_batch_by_identifiers_answers_in_order_and_lists_the_rest_by_position(server, known_person):
    id_type, value = known_person["excluded"]
    response = server.post("/score_batch", {"customers": [
        {"phone": known_person["phone"]}, {"email": "nobody.at.all@example.com"}, {id_type: value},
        {"customer_id": known_person["customer_id"]}]})
    assert response.status == 200, response.body
    body = response.json()
    assert [r["customer_id"] for r in body["results"]] == [known_person["customer_id"]] * 2
    assert [(u["index"], u["status"]) for u in body["unresolved"]] == [(1, 404), (2, 404)]
    assert value not in response.body.decode() and "nobody" not in response.body.decode()
    assert_error(server.post("/score_batch", {"customer_ids": ["c1"], "customers": [{"email": "a@b.c"}]}), 400,
                 "not both")


def test_the_api_page_is_the_projects_own_and_loads_nothing_from_elsewhere(server):
    """`/` in headless Chromium (the key sent as a header, as the Authorize button does for
    requests): Swagger UI renders the project's document, every request the page makes goes
    to the service itself, and the Content-Security-Policy would block any other."""
    from urllib.parse import urlparse

    from tests.browser import opened

    page_response = server.request("GET", "/")
    assert page_response.status == 200 and b"<title>cdp-ml scoring API</title>" in page_response.body
    assert b"googletagmanager" not in page_response.body and b"BentoML" not in page_response.body
    assert "default-src 'self'" in page_response.headers["content-security-policy"]
    assert server.request("GET", "/", key=None).status == 401  # the key, unless --public-docs
    doc = server.request("GET", "/docs.json").json()
    assert doc["info"]["title"] == "cdp-ml scoring API" and doc["info"]["version"] not in ("None", "", None)
    assert "bentoml" not in json.dumps(doc["info"]).lower() and "externalDocs" not in doc
    with opened(f"http://127.0.0.1:{server.port}/", offline=False,
                headers={"Authorization": f"Bearer {server.key}"}) as (page, requested):
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        title = page.inner_text(".swagger-ui .info .title")
        operations = page.locator(".opblock-summary-path").all_inner_texts()
    assert title.startswith("cdp-ml scoring API")
    assert {"/score", "/score_batch", "/score_features", "/versions"} <= {o.strip() for o in operations}
    assert requested and {urlparse(u).netloc for u in requested} == {f"127.0.0.1:{server.port}"}, requested


def test_reasons_come_as_codes_with_the_sentences_the_churn_list_prints(server, trained_shop, tmp_path):
    out = tmp_path / "list.csv"
    run_cli("churn-list", "--config", str(trained_shop.config), "--include-no-consent", "--include-low-risk",
            "--out", str(out), tracking_uri=trained_shop.tracking_uri)
    listed = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("customer_id")
    chosen = [c for c in listed.index if listed.loc[c, "reasons"]][:25]
    answers = server.post("/score_batch", {"customer_ids": chosen}).json()["results"]
    assert len(answers) == len(chosen) == 25
    for answer in answers:
        assert [r["code"] for r in answer["reasons"]] == answer["top_reasons"]
        assert "; ".join(dict.fromkeys(r["text"] for r in answer["reasons"])) == \
            listed.loc[answer["customer_id"], "reasons"]
        for number in ("churn_probability", "purchase_probability"):
            assert answer[number] is None or answer[number] == round(answer[number], 4)
