"""The scoring service: BentoML glue around `serving.scoring`, `serving.state` and `serving.http`.

Start it with ``cdp serve --config cdp.toml`` (which runs ``bentoml serve
serving.service:ScoringService`` with the settings in its environment, see
`serving.settings`). One worker process holds the models and the feature snapshot in
memory; a daemon thread keeps them in step with the registry's ``champion`` aliases and
with the snapshot file. Endpoints are described on the OpenAPI page (``/docs.json``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import traceback
from functools import partial

import bentoml
from starlette.responses import Response

from serving.answers import precompute
from serving.http import ApiGuard, check_key, error_body
from serving.identifiers import Resolved
from serving.models import RegistryChampions
from serving.online_store import RedisServing
from serving.schemas import (
    REQUEST_MODELS,
    EmptyRequest,
    ScoreBatchRequest,
    ScoreBatchResponse,
    ScoreFeaturesRequest,
    ScoreRequest,
    ScoreResult,
    ServiceStatus,
    Unresolved,
)
from serving.scoring import RequestError, feature_row, score_rows
from serving.settings import API_KEY, settings_from_env, workers_from_env
from serving.state import ServingState
from store.online_redis import RedisOnlineStore

# Under BentoML's logger, so lines get its handlers and format in the server log.
logger = logging.getLogger("bentoml.cdp")


class _Unavailable(Exception):
    """Models or features are not loaded (HTTP 503)."""


def _error(status: int, message: str, detail: str | None = None) -> Response:
    return Response(error_body(message, detail), status_code=status, media_type="application/json")


def _internal(exc: Exception) -> Response:
    """A 500 whose log line has the traceback but not the exception's message (it could quote
    a request's values)."""
    logger.error("scoring failed with %s:\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return _error(500, "internal error: the server log has the details")


# BentoML's metrics are off: they label every request by its raw path, outside our middleware,
# so requests to made-up paths without a key grew them (and memory) without bound.
# serving.http.RouteMetrics counts requests instead, under bounded labels, behind the key.
# OpenTelemetry's middleware is kept from making spans ("." excludes every URL): traces are
# not exported (no tracing is configured) and every span stayed referenced as long as its
# keep-alive connection lived, ~5 KB per request on a connection that never closes.
@bentoml.service(name="cdp-scoring", workers=workers_from_env(os.environ), threads=4, traffic={"timeout": 60},
                  metrics={"enabled": False},
                  tracing={"excluded_urls": ["."]})
class ScoringService:
    """Scores customers with the champion segment, churn and next-purchase models.

    Every endpoint but /livez, /healthz and /readyz needs `Authorization: Bearer <key>`.
    """

    def __init__(self) -> None:
        settings = settings_from_env(os.environ)
        key = settings.api_key
        if key is None:  # started without `cdp serve`: a key nobody knows, so every request is refused
            key = secrets.token_urlsafe(32)
            logger.warning("%s is not set: every request but liveness and readiness will be refused; restart with "
                           "%s set (cdp serve does it for you)", API_KEY, API_KEY)
        self._key = key
        self.settings = settings
        self.public_docs = settings.public_docs
        # The snapshot is held in memory, so every known customer is scored when models or
        # features change and /score is a lookup (serving.answers). A networked store that
        # cannot list its rows would pass precompute=None and be scored per request.
        champions = RegistryChampions(settings.tracking, settings.horizon_days)
        if settings.online_store is not None:
            # A shared online store (Redis): `cdp score` published every answer there; this
            # worker reads them per request and scores nothing at start-up.
            shared = RedisServing(RedisOnlineStore(settings.online_store, settings.online_scope), settings.risk_bands)
            self.state = ServingState(champions, settings.snapshot_path, open_snapshot=shared.open,
                                      precompute=shared.answers, stamp=shared.stamp,
                                      missing="nothing is published to the online store yet: run `cdp score`")
        else:
            self.state = ServingState(champions, settings.snapshot_path,
                                      precompute=partial(precompute, bands=settings.risk_bands))
        self.state.start_polling(settings.poll_seconds)

    def check_key(self, given: bytes) -> bool:
        return check_key(given, self._key)

    def feature_types(self) -> dict[str, str]:
        """Every feature the served models read (``number`` or ``string``); empty before they load."""
        models = self.state.served.models
        return models.feature_types() if models is not None else {}

    def status(self) -> dict:
        status = {**self.state.status(), "feature_names": self.feature_types()}
        return ServiceStatus.model_validate(status).model_dump(mode="json")

    def __is_ready__(self) -> bool:
        return self.state.ready

    @bentoml.on_shutdown
    def stop_polling(self) -> None:
        self.state.stop()

    def _served(self):
        served = self.state.served
        if served.models is None or served.features is None:
            raise _Unavailable("the models are not loaded yet" if served.models is None
                               else "the feature snapshot is not loaded yet")
        return served

    def _answers(self, served, customer_ids: list[str]) -> tuple[list[dict], list[str]]:
        """Answers of the ids the snapshot holds (in the order asked, repeats once) and the ids it does not."""
        if served.answers is not None:
            return served.answers.answers(customer_ids)
        wanted = list(dict.fromkeys(customer_ids))
        rows = served.features.lookup(wanted)
        held = set(rows["customer_id"].astype(str))
        typical = served.answers.typical if served.answers is not None else None
        return score_rows(rows, served.models, self.settings.risk_bands, typical), [c for c in wanted if c not in held]

    def _resolve(self, served, request: ScoreRequest) -> Resolved:
        field, value, source = request.identifier()
        return served.features.resolve(field, value, source)

    @bentoml.api(route="/score", input_spec=ScoreRequest)
    def score(self, customer_id: str | None = None, email: str | None = None, phone: str | None = None,
              customer_key: str | None = None, external_id: str | None = None, source: str | None = None
              ) -> ScoreResult:
        """Scores of one customer the store knows, named by customer id, email, phone, a source's
        customer key or an external id, from the latest feature snapshot."""
        try:
            served = self._served()
            request = ScoreRequest.of(customer_id=customer_id, email=email, phone=phone, customer_key=customer_key,
                                      external_id=external_id, source=source)
            found = self._resolve(served, request)
            if found.customer_id is None:
                detail = None
                if customer_id is not None:
                    detail = ("to look a customer up by email or phone, send {\"email\": ...} or {\"phone\": ...}; "
                              "a customer the store does not know can be scored with POST /score_features")
                return _error(found.status, found.reason, detail)
            answers, _ = self._answers(served, [found.customer_id])
            if not answers:
                return _error(404, "that customer is not in the feature snapshot of "
                                   f"{served.features.features_as_of}")
            return ScoreResult.model_validate(answers[0])
        except _Unavailable as exc:
            return _error(503, str(exc), "see GET /versions")
        except Exception as exc:  # noqa: BLE001 - never a traceback to the client
            return _internal(exc)

    @bentoml.api(route="/score_batch", input_spec=ScoreBatchRequest)
    def score_batch(self, customer_ids: list[str] | None = None,
                    customers: list[ScoreRequest] | None = None) -> ScoreBatchResponse:
        """Scores of up to 1,000 known customers, by customer id (ids the snapshot does not hold are
        listed in not_found) or by any identifier (those not found listed in unresolved by position)."""
        try:
            served = self._served()
            if customers is None:
                # An id merged into another answers as the one it was merged into.
                wanted = [served.features.resolve("customer_id", c).customer_id or c for c in customer_ids or []]
                found, missing = self._answers(served, wanted)
                asked = dict(zip(wanted, customer_ids or []))
                return ScoreBatchResponse(results=[ScoreResult.model_validate(r) for r in found],
                                          not_found=[asked.get(m, m) for m in missing])
            resolved = [self._resolve(served, ScoreRequest.model_validate(c)) for c in customers]
            unavailable = next((r for r in resolved if r.status == 503), None)
            if unavailable is not None:
                return _error(503, unavailable.reason)
            ids = [r.customer_id for r in resolved if r.customer_id is not None]
            answers, _ = self._answers(served, ids)
            by_id = {a["customer_id"]: a for a in answers}
            results, unresolved = [], []
            for index, outcome in enumerate(resolved):
                answer = by_id.get(outcome.customer_id) if outcome.customer_id is not None else None
                if answer is None:
                    status = outcome.status if outcome.customer_id is None else 404
                    error = outcome.reason or "that customer is not in the feature snapshot"
                    unresolved.append(Unresolved.model_validate({"index": index, "status": status, "error": error}))
                else:
                    results.append(ScoreResult.model_validate(answer))
            return ScoreBatchResponse(results=results, not_found=[], unresolved=unresolved)
        except _Unavailable as exc:
            return _error(503, str(exc), "see GET /versions")
        except Exception as exc:  # noqa: BLE001
            return _internal(exc)

    @bentoml.api(route="/score_features", input_spec=ScoreFeaturesRequest)
    def score_features(self, features: dict, as_of: dt.date | None = None) -> ScoreResult:
        """Scores of a customer the store does not know, from feature values; the rest is imputed as in training."""
        try:
            served = self._served()
            day = as_of or served.features.features_as_of
            row = feature_row(features, served.models, day)
            typical = served.answers.typical if served.answers is not None else None
            result = score_rows(row, served.models, self.settings.risk_bands, typical)[0]
            return ScoreResult.model_validate({**result, "customer_id": None, "features_as_of": day})
        except _Unavailable as exc:
            return _error(503, str(exc), "see GET /versions")
        except RequestError as exc:
            return _error(400, str(exc))
        except Exception as exc:  # noqa: BLE001
            return _internal(exc)

    @bentoml.api(route="/admin/reload", input_spec=EmptyRequest)
    def admin_reload(self) -> ServiceStatus:
        """Check the registry and the feature snapshot now, as the poller does every --poll-seconds."""
        try:
            self.state.refresh()
            return ServiceStatus.model_validate(self.status())
        except Exception as exc:  # noqa: BLE001
            return _internal(exc)


ScoringService.add_asgi_middleware(ApiGuard, request_models=REQUEST_MODELS, service=bentoml.get_current_service)
