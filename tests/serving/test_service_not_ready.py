"""The real service before any model is trained: alive, not ready, and saying why (503s).

Also started with a key from CDP_API_KEY and with --public-docs.
"""

from __future__ import annotations

import time

import pytest

from tests.serving.conftest import Server

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings(
    # from MLflow's own SQLAlchemy store (building the shop), not from our calls
    "ignore:The ``noload`` loader strategy is deprecated"
)]

KEY = "a-test-key-that-is-long-enough"


@pytest.fixture(scope="module")
def empty_registry_server(trained_shop, tmp_path_factory):
    root = tmp_path_factory.mktemp("no-models")
    server = Server(trained_shop, root / "serve.log", tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}",
                    api_key=KEY, extra_args=("--public-docs",))
    try:
        server.wait("/livez")
        deadline = time.monotonic() + 60
        while server.request("GET", "/versions").json()["last_check"] is None:  # the first refresh is done
            assert time.monotonic() < deadline
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


def test_without_models_the_service_is_alive_but_not_ready(empty_registry_server):
    server = empty_registry_server
    assert server.request("GET", "/livez", key=None).status == 200
    response = server.request("GET", "/readyz", key=None)
    assert response.status == 503 and set(response.json()) == {"error"}
    status = server.request("GET", "/versions").json()
    assert status["ready"] is False and status["model_versions"] == {"segments": None, "churn": None,
                                                                      "next_purchase": None, "first_purchase": None}
    assert any("no champion for churn in the registry yet: run `cdp train`" in e for e in status["errors"])


@pytest.mark.parametrize(("path", "body"), [
    ("/score", {"customer_id": "c1"}),
    ("/score_batch", {"customer_ids": ["c1"]}),
    ("/score_features", {"features": {}}),
])
def test_scoring_without_models_is_a_503_that_says_why(empty_registry_server, path, body):
    response = empty_registry_server.post(path, body)
    assert response.status == 503, response.body
    assert response.json() == {"error": "the models are not loaded yet", "detail": "see GET /versions"}


def test_the_key_comes_from_cdp_api_key_and_is_never_logged(empty_registry_server):
    server = empty_registry_server
    assert server.request("GET", "/versions", key="a-test-key-that-is-long-enougH").status == 401
    assert server.post("/admin/reload").status == 200
    assert KEY not in server.log_text() and "API key of this run" not in server.log_text()


def test_public_docs_open_the_openapi_page_and_document_but_nothing_else(empty_registry_server):
    server = empty_registry_server
    assert server.request("GET", "/docs.json", key=None).status == 200
    assert server.request("GET", "/", key=None).status == 200
    assert server.request("GET", "/versions", key=None).status == 401
    assert server.request("GET", "/metrics", key=None).status == 401
