"""`cdp forget` reaches the running scoring service: the erased customer stops being served
at the service's next poll, with no restart, and everyone else is still served."""

from __future__ import annotations

import shutil
import time

import duckdb

from tests.serving.conftest import Server, TrainedShop, run_cli

GONE_WITHIN_SECONDS = 90


def test_the_service_stops_serving_an_erased_customer_without_a_restart(trained_shop, tmp_path):
    # A private copy: the session's shop is shared with other tests and must not change.
    root = tmp_path / "copy"
    shutil.copytree(trained_shop.root / "shop", root / "shop")
    shop = TrainedShop(root=root, config=root / "shop" / "cdp.toml", tracking_uri=trained_shop.tracking_uri,
                       snapshot=root / "shop" / "online_features.parquet")
    with duckdb.connect(str(root / "shop" / "cdp.duckdb"), read_only=True) as con:
        erased, kept = [r[0] for r in con.sql("SELECT customer_id FROM scores ORDER BY customer_id LIMIT 2").fetchall()]
        scored_before = con.sql("SELECT count(*) FROM scores").fetchall()[0][0]

    server = Server(shop, tmp_path / "serve.log", extra_args=("--poll-seconds", "1"))
    try:
        server.wait("/readyz")
        assert server.post("/score", {"customer_id": erased}).status == 200
        pid = server.process.pid

        output = run_cli("forget", "--customer-id", erased, "--config", str(shop.config),
                         tracking_uri=trained_shop.tracking_uri)
        assert "retrain:" in output
        for model in ("cdp-segments", "cdp-churn", "cdp-next-purchase", "cdp-first-purchase"):
            assert model in output

        deadline = time.monotonic() + GONE_WITHIN_SECONDS
        while server.post("/score", {"customer_id": erased}).status != 404:
            assert time.monotonic() < deadline, f"still served after {GONE_WITHIN_SECONDS} s:\n{server.log_text()}"
            time.sleep(0.5)
        assert server.process.poll() is None and server.process.pid == pid  # the same process: no restart
        assert server.post("/score", {"customer_id": kept}).status == 200
        batch = server.post("/score_batch", {"customer_ids": [erased, kept]}).json()
        assert batch["not_found"] == [erased] and [r["customer_id"] for r in batch["results"]] == [kept]
    finally:
        server.stop()
    with duckdb.connect(str(root / "shop" / "cdp.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM scores").fetchall()[0][0] == scored_before - 1
        assert con.sql("SELECT count(*) FROM scores WHERE customer_id = ?", params=[erased]).fetchall()[0][0] == 0
