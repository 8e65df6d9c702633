"""The OpenAPI document (``/docs.json``) completed with what BentoML does not say.

BentoML generates the document from the endpoints' Pydantic models, but it keeps only
the first branch of every ``anyOf`` (so ``float | None`` is documented as a number that
is never null), knows nothing of the bearer key, of ``GET /versions``, or of the errors
the HTTP edge answers with (401, 413, 415, 503). :func:`patch_openapi` rewrites the
request and response schemas of our endpoints from the same Pydantic models in OpenAPI
3.0 form (``nullable``), declares the bearer scheme and every error response with one
shape (`serving.schemas.ErrorBody`). Clients and API fuzzers (Schemathesis) can then
trust the document.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from pydantic import BaseModel

from features.value_rules import HISTORY_COLUMN, HISTORY_PATTERN, json_schema
from serving.docs_page import TITLE
from serving.schemas import (
    IDENTIFIERS,
    MAX_TEXT_CHARS,
    EmptyRequest,
    ErrorBody,
    ScoreBatchRequest,
    ScoreBatchResponse,
    ScoreFeaturesRequest,
    ScoreRequest,
    ScoreResult,
    ServiceStatus,
)

REF = "#/components/schemas/{model}"
PUBLIC = ("/livez", "/healthz", "/readyz")
ENDPOINTS: dict[str, tuple[type[BaseModel], type[BaseModel], tuple[int, ...]]] = {
    "/score": (ScoreRequest, ScoreResult, (400, 404, 409, 413, 415, 500, 503)),
    "/score_batch": (ScoreBatchRequest, ScoreBatchResponse, (400, 413, 415, 500, 503)),
    "/score_features": (ScoreFeaturesRequest, ScoreResult, (400, 413, 415, 500, 503)),
    "/admin/reload": (EmptyRequest, ServiceStatus, (400, 413, 415, 500)),
}
ERROR_DESCRIPTIONS = {
    400: "The body is not valid JSON or not valid for this endpoint (the message names the field).",
    401: "No valid `Authorization: Bearer <key>` header.",
    404: "No customer in the feature snapshot has that identifier, or it identifies no one (a placeholder or "
         "shared identifier); a customer the store does not know can be scored with /score_features.",
    409: "The identifier belongs to more than one customer: name the customer by another one.",
    413: "The body is larger than 256 KiB.",
    415: "The body is not sent as application/json.",
    500: "An unexpected error (details in the server log, never in the response).",
    503: "The models or the feature snapshot are not loaded (yet); see GET /versions.",
}


def patch_openapi(document: dict, feature_types: Mapping[str, str] | None = None) -> dict:
    """A copy of BentoML's OpenAPI document with our schemas, security and error responses.

    ``feature_types`` (name → ``number`` / ``string``, what the served models read) turns
    ``/score_features``' free-form ``features`` object into the exact list of features
    it accepts; without it (no models loaded yet) the object stays free-form.
    """
    doc = copy.deepcopy(document)
    doc["info"] = info()
    doc.pop("externalDocs", None)
    for tag in doc.get("tags", []):
        tag.pop("externalDocs", None)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = _schema(ErrorBody, schemas)
    doc["components"]["securitySchemes"] = {"bearerKey": {"type": "http", "scheme": "bearer",
                                                          "description": "The service's CDP_API_KEY."}}
    doc["security"] = [{"bearerKey": []}]
    paths = doc.setdefault("paths", {})
    paths["/versions"] = {"get": {
        "tags": ["Service APIs"],
        "description": "What is served: model versions, feature snapshot day, features the models read, errors.",
        "operationId": "versions",
        "responses": {"200": _json("What is served.", _schema(ServiceStatus, schemas))},
    }}
    for path, item in paths.items():
        for operation in item.values():
            if path in PUBLIC:
                operation["security"] = []
                continue
            responses = operation.setdefault("responses", {})
            codes = (401, *ENDPOINTS[path][2]) if path in ENDPOINTS else (401,)
            for code in codes:
                responses[str(code)] = _json(ERROR_DESCRIPTIONS[code], {"$ref": REF.format(model="ErrorBody")})
    for path, (request, response, _) in ENDPOINTS.items():
        operation = paths.get(path, {}).get("post")
        if operation is None:
            continue
        schema = _schema(request, schemas)
        if request is ScoreRequest:
            _exactly_one_identifier(schema)
        if request is ScoreBatchRequest:
            _exactly_one_of(schema, ["customer_ids", "customers"])
        if request is ScoreFeaturesRequest and feature_types:
            schema["properties"]["features"] = _features_schema(schema["properties"]["features"], feature_types)
        # An empty body stands for {} where no field is required (POST /admin/reload).
        operation["requestBody"] = {"required": bool(schema.get("required")) or "oneOf" in schema,
                                    "content": {"application/json": {"schema": schema}}}
        operation["responses"]["200"] = _json("Successful Response", _schema(response, schemas))
    if "ScoreRequest" in schemas:  # a batch's items
        _exactly_one_identifier(schemas["ScoreRequest"])
    return doc


def info() -> dict:
    """The document's header: the project's own title, version and contact, not BentoML's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("cdp-ml")
    except PackageNotFoundError:
        release = "unknown"
    return {"title": TITLE, "version": release,
            "description": "Scores of the shop's customers (segment, churn and purchase propensity, expected "
                           "purchases and revenue, next-best categories, reasons) from the champion models of "
                           "cdp-ml. Every endpoint but /livez, /healthz and /readyz needs "
                           "`Authorization: Bearer <key>` (the service's CDP_API_KEY).",
            "contact": {"name": "cdp-ml (the shop's data team runs this service; see the project's README)"},
            "license": {"name": "Apache-2.0"}}


def _features_schema(generic: dict, feature_types: Mapping[str, str]) -> dict:
    def value(name: str, kind: str) -> dict:
        if kind == "number":
            return {"type": "number", "nullable": True, **json_schema(name)}
        if name == HISTORY_COLUMN:
            return {"type": "string", "maxLength": MAX_TEXT_CHARS, "nullable": True, "pattern": HISTORY_PATTERN,
                    "description": "Purchases per category: `category:n` items joined by ';' (n ≥ 1; ',', ':', "
                                   "';' and '%' inside a category escaped as %2C, %3A, %3B and %25)."}
        return {"type": "string", "maxLength": MAX_TEXT_CHARS, "nullable": True}

    described = {key: generic[key] for key in ("title", "description", "example") if key in generic}
    if "description" in described:
        described["description"] += (" Values must be possible for a real customer (counts whole and ≥ 0, shares "
                                     "within 0–1, recency_days ≤ tenure_days, a shorter window's count ≤ a "
                                     "longer one's …): impossible ones are answered 400 naming the feature and "
                                     "the rule.")
    return {**described, "type": "object", "additionalProperties": False,
            "properties": {name: value(name, kind) for name, kind in sorted(feature_types.items())}}


def _exactly_one_identifier(schema: dict) -> None:
    """What ScoreRequest's validator checks, said in the schema: one identifier (a customer
    key with its source, nothing else with one), never null. Also where a batch's
    ``customers`` items refer to it."""
    _exactly_one_of(schema, list(IDENTIFIERS))
    schema["oneOf"] = []
    for name in IDENTIFIERS:
        others = [o for o in IDENTIFIERS if o != name] + ([] if name == "customer_key" else ["source"])
        schema["oneOf"].append({"required": [name, "source"] if name == "customer_key" else [name],
                                "not": {"anyOf": [{"required": [o]} for o in others]}})


def _exactly_one_of(schema: dict, names: list[str]) -> None:
    """Fields of which exactly one is sent: documented as not nullable, and ``oneOf`` their presence."""
    for name, field in schema.get("properties", {}).items():
        if name in names or name == "source":
            field.pop("nullable", None)
            field.pop("default", None)
    schema["oneOf"] = [{"required": [name], "not": {"anyOf": [{"required": [o]} for o in names if o != name]}}
                       for name in names]


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _schema(model: type[BaseModel], components: dict) -> dict:
    """``model``'s JSON schema in OpenAPI 3.0 form; nested models go to ``components``."""
    schema = model.model_json_schema(ref_template=REF, mode="serialization")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = _openapi30(definition)
    return _openapi30(schema)


def _openapi30(node):
    """JSON Schema (2020-12, as Pydantic writes it) → the OpenAPI 3.0 dialect.

    ``anyOf [X, {"type": "null"}]`` becomes X with ``nullable: true``; ``examples``
    becomes ``example``; ``const`` becomes a one-value ``enum``.
    """
    if isinstance(node, list):
        return [_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _openapi30(value) for key, value in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del node["anyOf"]
        if len(rest) == 1 and "$ref" in rest[0]:
            node["allOf"] = rest
        elif len(rest) == 1:
            node.update(rest[0])
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    if "examples" in node and isinstance(node["examples"], list):
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    if "const" in node:
        node["enum"] = [node.pop("const")]
    return node
