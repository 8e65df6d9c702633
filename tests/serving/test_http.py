"""The HTTP edge's pure parts: error shapes, validation messages, the key check, the OpenAPI fixes."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from serving.http import _shaped, check_key, error_body, validation_message
from serving.openapi import _openapi30
from serving.schemas import ScoreBatchRequest, ScoreRequest


def test_validation_messages_name_the_field_but_never_echo_the_value():
    secret = "omar.zarour@hotmail.example"
    with pytest.raises(ValidationError) as caught:
        ScoreRequest.model_validate_json(json.dumps({"customer_id": f"{secret} x", "customer_idd": secret}))
    message = validation_message(caught.value)
    assert message == ("customer_id: String should match pattern '^[!-~]+$'; "
                       "customer_idd: Extra inputs are not permitted")
    with pytest.raises(ValidationError) as caught:
        ScoreBatchRequest.model_validate_json(json.dumps({"customer_ids": ["ok", 5, "x y"]}))
    assert validation_message(caught.value).startswith("customer_ids[1]: Input should be a valid string; "
                                                       "customer_ids[2]: String should match pattern")


def test_the_key_check_needs_the_exact_key():
    assert check_key(b"k" * 20, "k" * 20)
    assert not check_key(b"", "k" * 20) and not check_key(b"k" * 19, "k" * 20)
    assert not check_key(b"K" * 20, "k" * 20)


@pytest.mark.parametrize(("status", "body", "expected"), [
    (500, b"Traceback (most recent call last): ... omar@example.com", {"error": "internal error: the server log "
                                                                                "has the details"}),
    (404, b"Not Found", {"error": "Not Found"}),
    (400, b'[{"error": "x"}]', {"error": "Bad Request"}),  # BentoML's own 4xx body is a list
    (400, b'{"error": "x", "detail": [{"loc": 1}]}', {"error": "Bad Request"}),
    (404, error_body("customer 'c1' is not in the feature snapshot", "try /score_features"),
     {"error": "customer 'c1' is not in the feature snapshot", "detail": "try /score_features"}),
    (503, b'{"error": "the models are not loaded yet"}', {"error": "the models are not loaded yet"}),
    (504, b"timeout", {"error": "Gateway Timeout"}),
])
def test_error_responses_leave_in_one_shape(status, body, expected):
    assert json.loads(_shaped(status, body)) == expected


def test_openapi_30_form_of_pydantic_schemas():
    assert _openapi30({"anyOf": [{"type": "number"}, {"type": "null"}], "title": "P"}) == {
        "type": "number", "title": "P", "nullable": True}
    assert _openapi30({"anyOf": [{"$ref": "#/x"}, {"type": "null"}]}) == {"allOf": [{"$ref": "#/x"}],
                                                                         "nullable": True}
    assert _openapi30({"properties": {"a": {"const": "x", "examples": ["x", "y"]}}}) == {
        "properties": {"a": {"enum": ["x"], "example": "x"}}}
