"""The HTTP edge of the scoring service: one ASGI middleware in front of every BentoML route.

In order, for each request:

1. liveness and readiness (``/livez``, ``/healthz``, ``/readyz``) pass without a key;
2. everything else needs ``Authorization: Bearer <key>`` (compared in constant time;
   a 401 says nothing about which keys exist);
3. ``GET /versions`` and ``GET /metrics`` are answered here, from the service's status
   and from `RouteMetrics`;
4. a JSON endpoint's body must be ``application/json`` (415 otherwise, *before* BentoML
   parses it: BentoML answers some content types with a 500), at most
   ``MAX_BODY_BYTES`` (413), valid JSON (400) and valid for the endpoint's request
   model (400 naming the field, never echoing the value);
5. any error response on the way out is reshaped to ``{"error": ..., "detail": ...}``
   (BentoML's own bodies are a list for some 4xx and tracebacks never leave the process).

Every request, refused or not, is counted in `RouteMetrics` under its route (one of the
service's own, or ``other``), its method and its status: label values come from closed
sets, so traffic to made-up paths cannot add series or memory. BentoML's own metrics
are turned off (they label requests by raw path, outside this middleware).

Request bodies are never logged.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable, Mapping
from functools import partial
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ValidationError

from serving.docs_page import CONTENT_SECURITY_POLICY, INIT, INIT_PATH, PAGE
from serving.openapi import patch_openapi

MAX_BODY_BYTES = 256 * 1024
PUBLIC_PATHS = frozenset({"/livez", "/healthz", "/readyz"})
DOCS_PATHS = frozenset({"/", "/docs.json", "/schema.json", INIT_PATH})
DOCS_PREFIXES = ("/static_content/",)
STATUS_PATH = "/versions"
METRICS_PATH = "/metrics"
JSON = b"application/json"
METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


class RouteMetrics:
    """Prometheus metrics of the HTTP edge, with bounded label sets.

    ``cdp_http_requests_total{route, method, status}`` and
    ``cdp_http_request_duration_seconds{route}``: ``route`` is a path of ``routes``, a
    prefix of ``prefixes`` followed by ``*``, or ``other``; ``method`` a standard HTTP
    method or ``other``; ``status`` the three-digit code. However many distinct paths
    clients send, the number of series is bounded by routes × methods × statuses.
    The registry is the instance's own, one per worker process (the service runs one).
    """

    def __init__(self, routes: frozenset[str], prefixes: tuple[str, ...] = (),
                 status: Callable[[], Mapping] | None = None):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.routes, self.prefixes = frozenset(routes), tuple(prefixes)
        self.registry = CollectorRegistry(auto_describe=True)
        if status is not None:
            self.registry.register(_StatusCollector(status))
        self.requests = Counter("cdp_http_requests", "HTTP requests answered, by route, method and status.",
                                ("route", "method", "status"), registry=self.registry)
        self.duration = Histogram("cdp_http_request_duration_seconds", "Time to answer, by route.", ("route",),
                                  registry=self.registry,
                                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))

    def route(self, path: str) -> str:
        """The label of ``path``: itself if it is a known route, else its known prefix + ``*``, else ``other``."""
        if path in self.routes:
            return path
        for prefix in self.prefixes:
            if path.startswith(prefix):
                return prefix + "*"
        return "other"

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        route = self.route(path)
        code = str(status) if 100 <= status <= 599 else "other"
        self.requests.labels(route, method if method in METHODS else "other", code).inc()
        self.duration.labels(route).observe(seconds)

    def text(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _StatusCollector:
    """What is served, read from the service's status at each scrape: readiness, customers in
    the snapshot, the snapshot's age, the model versions (one series per family), the time
    of the last check and swap, and the refresh errors outstanding."""

    def __init__(self, status: Callable[[], Mapping]):
        self.status = status

    def describe(self):
        return []

    def collect(self):
        import datetime as dt

        from prometheus_client.core import GaugeMetricFamily

        try:
            status = self.status()
        except Exception:  # noqa: BLE001 - not up yet: no status series
            return
        now = time.time()
        yield GaugeMetricFamily("cdp_ready", "1 when models and features are loaded and scored.",
                                value=1.0 if status.get("ready") else 0.0)
        yield GaugeMetricFamily("cdp_snapshot_customers", "Customers in the served feature snapshot.",
                                value=float(status.get("customers") or 0))
        as_of = status.get("features_as_of")
        if isinstance(as_of, str):  # the JSON form of the status
            as_of = dt.date.fromisoformat(as_of)
        if as_of is not None:
            end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
            yield GaugeMetricFamily("cdp_snapshot_age_seconds", "Seconds since the end of the day the served "
                                    "features describe (their data runs up to and including it).",
                                    value=max(0.0, now - end.timestamp()))
        versions = GaugeMetricFamily("cdp_model_version_info", "The served model version of each family (1).",
                                     labels=("family", "version"))
        for family, version in sorted((status.get("model_versions") or {}).items()):
            if version is not None:
                versions.add_metric((family, str(version)), 1.0)
        yield versions
        for name, key, what in (("cdp_last_check_timestamp_seconds", "last_check", "Last look at the registry "
                                 "and the snapshot file (Unix time)."),
                                ("cdp_last_swap_timestamp_seconds", "last_swap", "Last time models or features "
                                 "were swapped in (Unix time).")):
            moment = status.get(key)
            if isinstance(moment, str):
                moment = dt.datetime.fromisoformat(moment)
            if moment is not None:
                stamp = moment.replace(tzinfo=moment.tzinfo or dt.timezone.utc).timestamp()
                yield GaugeMetricFamily(name, what, value=stamp)
        yield GaugeMetricFamily("cdp_refresh_errors", "Refresh problems outstanding (GET /versions lists them).",
                                value=float(len(status.get("errors") or ())))


def error_body(message: str, detail: str | None = None) -> bytes:
    """The JSON of every error response (``detail`` left out when there is none)."""
    body = {"error": message}
    if detail:
        body["detail"] = detail
    return json.dumps(body).encode()


def validation_message(exc: ValidationError, limit: int = 5) -> str:
    """Pydantic's errors as one line naming each field, without the values sent."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False)[:limit]:
        where = _location(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _location(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (name)"
        else:
            shown = str(part) if len(str(part)) <= 64 else str(part)[:64] + "…"
            text += f".{shown}" if text else shown
    return text


class _Rejected(Exception):
    def __init__(self, status: int, message: str, detail: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.detail, self.headers = status, message, detail, headers


class ApiGuard:
    """ASGI middleware: authentication, request hygiene and error shapes (see the module doc).

    Parameters
    ----------
    app : ASGI app
        What BentoML wraps.
    request_models : mapping
        Route → Pydantic model its JSON body must satisfy.
    service : callable
        Returns the live service instance, which provides ``check_key(bytes) -> bool``,
        ``public_docs``, ``status() -> dict`` and ``feature_types() -> dict`` (for the
        OpenAPI document); raises if the service is not up yet.
    """

    def __init__(self, app, request_models: Mapping[str, type[BaseModel]], service: Callable[[], object],
                 routes: frozenset[str] = frozenset()):
        self.app = app
        self.request_models = dict(request_models)
        self.service = service
        known = PUBLIC_PATHS | DOCS_PATHS | {STATUS_PATH, METRICS_PATH} | set(self.request_models) | set(routes)
        self.metrics = RouteMetrics(frozenset(known), DOCS_PREFIXES, status=self._status)

    def _status(self) -> Mapping:
        service: Any = self.service()
        return service.status()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, counted)
        finally:
            self.metrics.observe(scope["path"], scope["method"], status[0], time.perf_counter() - started)

    async def _guarded(self, scope, receive, send):
        path, method = scope["path"], scope["method"]
        patch = None
        try:
            if path not in PUBLIC_PATHS:
                service = self._service()
                public = service.public_docs and (path in DOCS_PATHS or path.startswith(DOCS_PREFIXES))
                if not public and not service.check_key(_bearer(scope)):
                    raise _Rejected(401, "missing or invalid API key: send the header 'Authorization: Bearer <key>'",
                                    headers={"www-authenticate": "Bearer"})
                if path == STATUS_PATH:
                    if method != "GET":
                        raise _Rejected(405, f"{STATUS_PATH} answers GET only", headers={"allow": "GET"})
                    await _send_json(send, 200, json.dumps(service.status(), default=str).encode())
                    return
                if path in ("/", INIT_PATH) and method in ("GET", "HEAD"):
                    body, kind = (PAGE, "text/html; charset=utf-8") if path == "/" else (INIT, "text/javascript")
                    await _send(send, 200, body, kind, {"content-security-policy": CONTENT_SECURITY_POLICY,
                                                        "x-content-type-options": "nosniff"})
                    return
                if path == METRICS_PATH:
                    if method != "GET":
                        raise _Rejected(405, f"{METRICS_PATH} answers GET only", headers={"allow": "GET"})
                    body, content_type = self.metrics.text()
                    await _send(send, 200, body, content_type)
                    return
                if path in self.request_models and method == "POST":
                    receive = await self._checked_body(scope, receive, self.request_models[path])
                if path == "/docs.json":
                    patch = partial(_patched_docs, service=service)
        except _Rejected as rejected:
            await _send_json(send, rejected.status, error_body(rejected.message, rejected.detail), rejected.headers)
            return
        await self.app(scope, receive, _ShapedSend(send, patch))

    def _service(self):
        try:
            return self.service()
        except Exception:  # noqa: BLE001 - not initialised yet (or shutting down)
            raise _Rejected(503, "the service is starting; retry in a moment") from None

    async def _checked_body(self, scope, receive, model: type[BaseModel]):
        media_type = _header(scope, b"content-type").split(b";")[0].strip().lower()
        if media_type not in (b"", JSON):
            raise _Rejected(415, "send the body as JSON with the header 'Content-Type: application/json'")
        length = _header(scope, b"content-length")
        if length:
            if not length.isdigit():
                raise _Rejected(400, "the Content-Length header is not a number")
            if int(length) > MAX_BODY_BYTES:
                raise _Rejected(413, f"the body is larger than {MAX_BODY_BYTES // 1024} KiB")
        body = await _read_body(receive)
        if not body.strip() and model.model_fields == {}:
            body = b"{}"
        try:
            model.model_validate_json(body)
        except ValidationError as exc:
            raise _Rejected(400, f"invalid request body: {validation_message(exc)}") from None
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _patched_docs(document: dict, service) -> dict:
    return patch_openapi(document, service.feature_types())


async def _read_body(receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Rejected(400, "the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Rejected(413, f"the body is larger than {MAX_BODY_BYTES // 1024} KiB")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return b""


def _bearer(scope) -> bytes:
    scheme, _, token = _header(scope, b"authorization").strip().partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" else b""


def check_key(given: bytes, key: str) -> bool:
    """Constant-time comparison of a presented key with the service's."""
    return bool(given) and hmac.compare_digest(given, key.encode("utf-8"))


async def _send_json(send, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
    await _send(send, status, body, JSON.decode(), headers)


async def _send(send, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _ShapedSend:
    """Wraps ``send``: error responses leave as ``{"error": ...}`` JSON, ``/docs.json`` is completed.

    Successful responses stream through untouched; an error response (or the OpenAPI
    document) is buffered, then rewritten: a 5xx other than 503 becomes a generic message
    (the details are in the server log), a 4xx or 503 keeps its own ``error`` text when it
    already has our shape and gets its status phrase otherwise.
    """

    def __init__(self, send, patch_docs: Callable[[dict], dict] | None):
        self.send = send
        self.patch_docs = patch_docs
        self.start = None
        self.chunks: list[bytes] = []

    async def __call__(self, message):
        if message["type"] == "http.response.start":
            status = message["status"]
            if status >= 400 or (self.patch_docs is not None and status == 200):
                self.start = message
                return
        elif message["type"] == "http.response.body" and self.start is not None:
            self.chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            status = self.start["status"]
            body = b"".join(self.chunks)
            if status == 200:
                await _send_json(self.send, 200, json.dumps(self.patch_docs(json.loads(body))).encode())
            else:
                await _send_json(self.send, status, _shaped(status, body), _kept_headers(self.start))
            return
        await self.send(message)


def _kept_headers(start) -> dict[str, str]:
    keep = {b"allow", b"retry-after", b"www-authenticate"}
    return {k.decode(): v.decode("latin-1") for k, v in start.get("headers", ()) if k.lower() in keep}


def _shaped(status: int, body: bytes) -> bytes:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
    if status >= 500 and status != 503:
        return error_body("internal error: the server log has the details" if status == 500 else phrase)
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str) and set(parsed) <= {"error", "detail"} \
            and isinstance(parsed.get("detail", ""), str):
        return body
    return error_body(phrase)
