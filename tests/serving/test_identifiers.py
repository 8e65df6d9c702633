"""Finding a customer by an identifier: one holder answers, several are a conflict, junk identifies no one."""

from __future__ import annotations

from profiles.lookup import LookupSettings, lookup_key
from serving.identifiers import IdentifierIndex

SETTINGS = LookupSettings(phone_regions=("PS",), namespaces={"crm": "crm"},
                          excluded=frozenset({lookup_key("phone", "+970599000000")}))


def index() -> IdentifierIndex:
    return IdentifierIndex(
        ["c1", "c2", "c3"],
        [[lookup_key("email", "omar@example.com"), lookup_key("phone", "+970599123456"),
          lookup_key("customer_id", "c-old")],
         [lookup_key("email", "shared@example.com"), lookup_key("customer_key", "K-2", "crm")],
         [lookup_key("email", "shared@example.com")]],
        SETTINGS)


def test_one_holder_is_the_answer_whatever_the_identifier_was_written_like():
    found = index()
    assert found.resolve("email", " Omar@Example.com ").customer_id == "c1"
    assert found.resolve("phone", "0599123456").customer_id == "c1"
    assert found.resolve("customer_id", "c-old").customer_id == "c1"       # merged into c1
    assert found.resolve("customer_key", "K-2", "crm").customer_id == "c2"
    assert found.resolve("customer_key", "K-2", "pos").customer_id is None  # another namespace, another person


def test_several_holders_are_a_conflict_never_a_choice():
    outcome = index().resolve("email", "shared@example.com")
    assert (outcome.customer_id, outcome.status) == (None, 409)
    assert "2 customers" in outcome.reason and "shared" not in outcome.reason


def test_an_excluded_identifier_identifies_no_one_and_says_so():
    outcome = index().resolve("phone", "+970 599 000 000")
    assert (outcome.customer_id, outcome.status) == (None, 404) and "placeholder or shared" in outcome.reason


def test_unknown_and_invalid_identifiers_are_not_found_without_repeating_them():
    unknown = index().resolve("email", "nobody@example.com")
    invalid = index().resolve("phone", "12")
    assert (unknown.status, invalid.status) == (404, 404)
    assert "nobody" not in unknown.reason and "12" not in invalid.reason and "not a valid phone" in invalid.reason
    assert len(index()) == 6
