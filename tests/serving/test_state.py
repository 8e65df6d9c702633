"""ServingState: what is served, and how it moves to a new champion or snapshot without a gap.

A fake registry (versions in a dict, "models" that only know their version and horizon)
and a real snapshot file, so each rule is checked in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import os
import time

import pandas as pd
import pytest

from cdp.errors import CdpError
from serving.models import FAMILIES, ModelLoadError
from serving.state import ServingState


class FakeModel:
    def __init__(self, family: str, version: str, horizon_days: int):
        self.family, self.version, self.horizon_days = family, version, horizon_days


class FakeRegistry:
    """Champion versions by family; ``load`` fails for a family listed in ``broken``."""

    def __init__(self, versions: dict[str, str | None], horizons: dict[str, int] | None = None):
        self.versions = dict(versions)
        self.horizons = horizons or {}
        self.broken: dict[str, Exception] = {}
        self.loads: list[tuple[str, str]] = []

    def champion_version(self, family: str) -> str | None:
        return self.versions[family]

    def load(self, family: str) -> FakeModel:
        if family in self.broken:
            raise self.broken[family]
        self.loads.append((family, self.versions[family]))
        return FakeModel(family, self.versions[family], self.horizons.get(family, 90))


def write_snapshot(path, ids=("c1", "c2"), day="2026-10-31") -> None:
    pd.DataFrame({"customer_id": list(ids), "features_as_of": pd.Timestamp(day),
                  "recency_days": [1.0] * len(ids)}).to_parquet(path)


@pytest.fixture
def snapshot(tmp_path):
    path = tmp_path / "online_features.parquet"
    write_snapshot(path)
    return path


def one_each(version: str = "1") -> dict[str, str]:
    return {family: version for family in FAMILIES}


def test_the_first_refresh_loads_every_champion_and_the_snapshot(snapshot):
    state = ServingState(FakeRegistry(one_each()), snapshot)
    assert not state.ready and state.status()["model_versions"] == {"segments": None, "churn": None,
                                                                     "next_purchase": None, "first_purchase": None}
    report = state.refresh()
    assert state.ready and report.errors == () and report.reloaded_features
    assert report.swapped_models == {family: (None, "1") for family in FAMILIES}
    status = state.status()
    assert status["model_versions"] == {"segments": "1", "churn": "1", "next_purchase": "1", "first_purchase": "1"}
    assert status["customers"] == 2 and status["features_as_of"] == dt.date(2026, 10, 31)


def test_a_moved_alias_loads_only_that_family_and_a_request_in_flight_keeps_its_models(snapshot):
    registry = FakeRegistry(one_each())
    state = ServingState(registry, snapshot)
    state.refresh()
    in_flight = state.served  # what a request took when it started
    registry.versions["churn"] = "2"
    report = state.refresh()
    assert report.swapped_models == {"churn": ("1", "2")}
    assert registry.loads[-1] == ("churn", "2") and len(registry.loads) == 5
    assert state.served.models.versions == {"segments": "1", "churn": "2", "next-purchase": "1", "first-purchase": "1"}
    assert in_flight.models.versions["churn"] == "1"  # untouched: the swap is a new object
    assert state.served.features is in_flight.features  # the unchanged snapshot is not re-read
    assert state.refresh().swapped_models == {}  # nothing moved, nothing loaded
    assert len(registry.loads) == 5


def test_a_failed_load_keeps_the_served_models_and_reports_only_the_error_type(snapshot):
    registry = FakeRegistry(one_each())
    state = ServingState(registry, snapshot)
    state.refresh()
    registry.versions["churn"] = "2"
    registry.broken["churn"] = ValueError("could not convert 'omar@example.com'")
    report = state.refresh()
    assert state.served.models.versions["churn"] == "1" and report.swapped_models == {}
    assert report.errors == ("churn: cannot load the champion: ValueError (traceback in the server log)",)
    assert "omar" not in str(state.status())
    del registry.broken["churn"]
    assert state.refresh().swapped_models == {"churn": ("1", "2")} and state.status()["errors"] == []


def test_purchase_champions_for_different_horizons_are_not_served_together(snapshot):
    registry = FakeRegistry(one_each())
    state = ServingState(registry, snapshot)
    state.refresh()
    registry.versions["churn"] = "2"
    registry.horizons["churn"] = 60
    report = state.refresh()
    assert state.served.models.versions["churn"] == "1"
    assert "churn version 2: 60 days, next-purchase version 1: 90 days" in report.errors[0]


def test_a_store_without_a_first_purchase_model_is_served_without_it_and_without_an_error(snapshot):
    """A store with no prospects (CDNOW) trains no first-purchase model: nothing is wrong."""
    registry = FakeRegistry({**one_each(), "first-purchase": None})
    state = ServingState(registry, snapshot)
    report = state.refresh()
    assert state.ready and report.errors == ()
    assert state.status()["model_versions"]["first_purchase"] is None
    registry.versions["first-purchase"] = "1"  # trained later: served from the next refresh
    assert state.refresh().swapped_models == {"first-purchase": (None, "1")}


def test_a_first_purchase_model_for_another_horizon_is_not_served_with_the_others(snapshot):
    registry = FakeRegistry(one_each(), horizons={"first-purchase": 60})
    state = ServingState(registry, snapshot)
    report = state.refresh()
    assert state.served.models is None
    assert "first-purchase version 1: 60 days" in report.errors[0]


def test_without_a_champion_the_service_is_not_ready_and_says_what_to_run(snapshot):
    registry = FakeRegistry({**one_each(), "segments": None})
    state = ServingState(registry, snapshot)
    report = state.refresh()
    assert not state.ready and state.served.models is None
    assert "no champion for segments in the registry yet: run `cdp train`" in report.errors


def test_a_rewritten_snapshot_is_reloaded_and_an_unreadable_one_is_not(snapshot):
    state = ServingState(FakeRegistry(one_each()), snapshot)
    state.refresh()
    first = state.served.features
    write_snapshot(snapshot, ids=("c1", "c2", "c3"), day="2026-11-30")
    os.utime(snapshot, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert state.refresh().reloaded_features
    assert len(state.served.features) == 3 and state.served.features.features_as_of == dt.date(2026, 11, 30)
    snapshot.write_bytes(b"not parquet")
    report = state.refresh()
    assert not report.reloaded_features and len(state.served.features) == 3 and state.served.features is not first
    assert "cannot be read" in report.errors[0] and "rewrite it with `cdp score`" in report.errors[0]


def test_the_poller_refreshes_until_stopped(snapshot):
    registry = FakeRegistry(one_each())
    state = ServingState(registry, snapshot)
    state.start_polling(interval_seconds=0.05)
    try:
        deadline = time.monotonic() + 10
        while not state.ready:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        registry.versions["segments"] = "7"
        while state.served.models.versions["segments"] != "7":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        state.stop()
    assert not state._thread.is_alive()


def test_an_incomplete_model_set_is_refused():
    from serving.models import ModelSet

    with pytest.raises(ModelLoadError, match="no model for next-purchase"):
        ModelSet({"segments": FakeModel("segments", "1", 90), "churn": FakeModel("churn", "1", 90)})
    assert issubclass(ModelLoadError, CdpError)


class FakePrecompute:
    """Records each (models, features) pair it scores; fails with ``error`` if set."""

    def __init__(self):
        self.calls: list[tuple[dict, int]] = []
        self.error: Exception | None = None

    def __call__(self, models, features):
        if self.error is not None:
            raise self.error
        self.calls.append((models.versions, len(features)))
        return ("answers", models.versions, len(features))


def test_known_customers_are_scored_once_per_change_and_served_with_what_scored_them(snapshot):
    registry, scorer = FakeRegistry(one_each()), FakePrecompute()
    state = ServingState(registry, snapshot, precompute=scorer)
    state.refresh()
    assert state.ready and state.served.answers == ("answers", state.served.models.versions, 2)
    state.refresh()
    assert len(scorer.calls) == 1  # nothing changed: not scored again
    registry.versions["churn"] = "2"
    state.refresh()
    assert scorer.calls[-1] == ({"segments": "1", "churn": "2", "next-purchase": "1", "first-purchase": "1"}, 2)
    write_snapshot(snapshot, ids=("c1", "c2", "c3"))
    os.utime(snapshot, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    state.refresh()
    assert len(scorer.calls) == 3 and state.served.answers[2] == 3


def test_a_failed_scoring_pass_keeps_the_last_models_features_and_answers_together(snapshot):
    registry, scorer = FakeRegistry(one_each()), FakePrecompute()
    state = ServingState(registry, snapshot, precompute=scorer)
    state.refresh()
    before = state.served
    registry.versions["churn"] = "2"
    scorer.error = MemoryError()
    report = state.refresh()
    assert state.served is before and report.swapped_models == {}
    assert report.errors == ("scoring the feature snapshot with the new models failed: MemoryError "
                             "(traceback in the server log)",)
    scorer.error = None
    assert state.refresh().swapped_models == {"churn": ("1", "2")}
    assert state.served.answers[1]["churn"] == "2" and state.status()["errors"] == []


def test_until_the_first_scoring_pass_succeeds_the_service_is_not_ready(snapshot):
    registry, scorer = FakeRegistry(one_each()), FakePrecompute()
    scorer.error = RuntimeError("boom")
    state = ServingState(registry, snapshot, precompute=scorer)
    state.refresh()
    assert not state.ready and state.served.answers is None
    scorer.error = None
    state.refresh()
    assert state.ready and state.served.answers is not None


class AnsweringPrecompute:
    """Real answer tables (every customer at churn 0.3); fails with ``error`` if set."""

    def __init__(self):
        self.error: Exception | None = None

    def __call__(self, models, features):
        from serving.answers import NUMBERS, AnswerTable
        from training.risk_bands import ChurnRiskBands

        if self.error is not None:
            raise self.error
        rows = features.all_rows()
        scored = pd.DataFrame({"customer_id": rows["customer_id"], "segment": "Loyal",
                               "features_as_of": rows["features_as_of"],
                               **{c: 0.3 for c in NUMBERS}, "next_best_categories": None, "top_reasons": None})
        return AnswerTable(scored, models, ChurnRiskBands())


def test_a_snapshot_that_cannot_be_scored_still_stops_the_answers_of_everyone_it_dropped(snapshot):
    # cdp forget rewrote the snapshot without c2; scoring the new snapshot then fails: c1 and c3
    # keep their last answers, c2 has none from now on.
    write_snapshot(snapshot, ids=("c1", "c2", "c3"))
    registry, scorer = FakeRegistry(one_each()), AnsweringPrecompute()
    state = ServingState(registry, snapshot, precompute=scorer)
    state.refresh()
    assert [a["customer_id"] for a in state.served.answers.all()] == ["c1", "c2", "c3"]
    write_snapshot(snapshot, ids=("c1", "c3"))
    os.utime(snapshot, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    scorer.error = MemoryError()
    report = state.refresh()
    assert report.errors and state.ready
    found, missing = state.served.answers.answers(["c1", "c2", "c3"])
    assert [a["customer_id"] for a in found] == ["c1", "c3"] and missing == ["c2"]
    assert len(state.served.answers) == 2 and len(state.served.features) == 2
    assert state.served.features.lookup(["c2"]).empty
    scorer.error = None  # the next poll scores the new snapshot
    state.refresh()
    assert [a["customer_id"] for a in state.served.answers.all()] == ["c1", "c3"] and state.status()["errors"] == []
