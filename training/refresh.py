"""The daily job as one function: ingest, unify, materialize the features, retrain when the
models are old, score.

`cdp refresh` runs it, from cron or a systemd timer. Each step is the stage function its
own command runs (`profiles.ingest.ingest`, `profiles.unify.unify`,
`features.materialized.materialize`, `training.run.train_store`, `training.score.score_store`),
in order; a step that fails stops the run, names itself, and leaves the store as that step
leaves it (every step is all-or-nothing, so the store holds the last complete steps).

Training is the one step that is not run every time: the champions are retrained when the
oldest of them was registered more than ``retrain_after_days`` ago (or a family has none),
and the promotion gate decides as it does for `cdp train`: a retrained model that is not
better stays challenger.

Two refreshes of one store never overlap: the run holds ``<store>.refresh.lock`` and a
second one stops at once with `RefreshBusy` (the CLI's exit code 75, "try again later"),
rather than wait behind a long first run and then redo its work.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cdp.errors import CdpError
from store.locks import FileLock, LockHeld
from training.tracking import (
    FAMILIES,
    MODEL_NAMES,
    OPTIONAL_FAMILIES,
    TrackingConfig,
    champion_version,
    registry_client,
)

DEFAULT_RETRAIN_AFTER_DAYS = 7


class RefreshBusy(CdpError):
    """Another refresh of the same store is running."""


class RefreshFailed(CdpError):
    """A step failed; the message names it and says why."""

    def __init__(self, step: str, error: Exception, report: RefreshReport):
        super().__init__(f"refresh stopped at {step}: {error}")
        self.step, self.error, self.report = step, error, report


@dataclass(frozen=True)
class RefreshSettings:
    """``retrain_after_days``: retrain the champions older than this; ``horizon_days``: the
    horizon trained and scored; ``n_snapshots`` and ``step_days``: as for `cdp train`."""

    retrain_after_days: int = DEFAULT_RETRAIN_AFTER_DAYS
    horizon_days: int = 90
    n_snapshots: int = 4
    step_days: int = 30


@dataclass
class RefreshReport:
    """What each step did, in order, as short sentences, and the run's wall time."""

    steps: list[tuple[str, str]] = field(default_factory=list)
    retrained: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for a log or a cron mail."""
        return f"refresh done in {self.seconds:.0f} s: " + "; ".join(what for _, what in self.steps)


def model_age_days(tracking: TrackingConfig, horizon_days: int, now: dt.datetime) -> float | None:
    """Days since the oldest champion of the store was registered; None when a required family
    has no champion (so a refresh trains). An optional family without one (no first-purchase
    model on a store without prospects) does not count: it would retrain every day."""
    client = None
    oldest = None
    for family in FAMILIES:
        version = champion_version(tracking, MODEL_NAMES[family], None if family == "segments" else horizon_days)
        if version is None and family in OPTIONAL_FAMILIES:
            continue
        if version is None:
            return None
        client = client or registry_client(tracking)
        created = client.get_model_version(MODEL_NAMES[family], version).creation_timestamp / 1000
        oldest = created if oldest is None else min(oldest, created)
    assert oldest is not None
    return (now.replace(tzinfo=dt.timezone.utc).timestamp() - oldest) / 86400


class RefreshLock:
    """The lock on ``<store>.refresh.lock`` (`store.locks.FileLock`) for one refresh run."""

    def __init__(self, store_path: Path):
        self.store_path = Path(store_path)
        self.path = self.store_path.with_name(self.store_path.name + ".refresh.lock")
        self.lock: FileLock | None = None

    def __enter__(self) -> RefreshLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.lock = FileLock.take(self.path)
        except LockHeld as held:
            who = f" (process {held.holder})" if held.holder else ""
            busy = f"another cdp refresh of {self.store_path} is running{who}; this one did nothing"
            raise RefreshBusy(busy) from None
        return self

    def __exit__(self, *exc) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def refresh(config, tracking: TrackingConfig, settings: RefreshSettings, *, now: dt.datetime, run_id: str,
            tombstone_key: bytes | None = None, on_stage: Callable[[str], None] | None = None,
            publish: Callable | None = None) -> RefreshReport:
    """Run the daily job on the store ``config`` (a `cdp.config.Config`) describes. ``publish``:
    as `training.score.score_store`'s (a shared online store gets the new answers).

    Raises
    ------
    RefreshBusy
        Another refresh of the store holds its lock (nothing was done).
    RefreshFailed
        A step failed: its name, the error, and the steps done before it.
    """
    from features.materialized import materialize
    from profiles.ingest import ingest_store
    from profiles.unify import unify_store
    from training.run import train_store
    from training.score import score_store

    stage = on_stage or (lambda text: None)
    report = RefreshReport()
    started = time.monotonic()

    def step(name: str, work: Callable[[], str]) -> None:
        stage(name)
        try:
            report.steps.append((name, work()))
        except CdpError as error:
            report.seconds = time.monotonic() - started
            raise RefreshFailed(name, error, report) from error

    def ingested() -> str:
        reports = ingest_store(config, now=now, run_id=run_id, tombstone_key=tombstone_key)
        changed = sum(r.added + r.updated + r.removed for r in reports)
        skipped = sum(r.skipped for r in reports)
        return (f"{len(reports)} source(s) ingested ({skipped} unchanged file(s) skipped), "
                f"{changed:,} row(s) added, updated or removed")

    def unified() -> str:
        found = unify_store(config, now=now, run_id=run_id)
        return f"{found.customers:,} customers ({found.new_customers:,} new, {found.merged_ids:,} merged)"

    def materialized() -> str:
        found = materialize(config, on_stage=None, now=now)
        return f"features of {len(found.features):,} customers as of {found.stamp.as_of}"

    def trained() -> str:
        age = model_age_days(tracking, settings.horizon_days, now)
        if age is not None and age <= settings.retrain_after_days:
            return f"models {age:.1f} days old (retrained after {settings.retrain_after_days})"
        result = train_store(config, tracking, FAMILIES, None, settings.horizon_days, settings.n_snapshots,
                             settings.step_days)
        report.retrained = True
        why = "no champion yet" if age is None else f"models were {age:.1f} days old"
        outcomes = [f"{r.family} skipped ({r.skipped})" if r.skipped else
                    f"{r.family} v{r.version} " + ("promoted" if r.decision.promoted else
                                                   f"not promoted ({r.decision.reason.removeprefix('not promoted: ')})")
                    for r in result.results]
        return f"retrained ({why}): " + ", ".join(outcomes)

    def scored() -> str:
        found = score_store(config, tracking, None, settings.horizon_days, publish=publish)
        return f"{len(found.scores):,} customers scored as of {found.as_of}"

    with RefreshLock(config.store.path):
        step("ingest", ingested)
        step("unify", unified)
        step("features", materialized)
        step("train", trained)
        step("score", scored)
    report.seconds = time.monotonic() - started
    return report
