"""What the service is serving right now, and how it moves to newer models and features.

:class:`ServingState` holds one immutable :class:`Served` (a model set and a feature
store). :meth:`ServingState.refresh` asks the registry which versions hold the
``champion`` alias and whether the feature snapshot changed on disk; it loads what
changed *beside* what is being served and then swaps the reference in one assignment.
A request reads ``state.served`` once, so it finishes on the models it started with:
a swap never fails or mixes an in-flight request. A failed load keeps the old models
and is reported (without data) in :meth:`ServingState.status`.

A daemon thread calls ``refresh`` every ``interval`` seconds (:meth:`start_polling`);
``POST /admin/reload`` calls it at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdp.errors import CdpError
from serving.answers import AnswerTable
from serving.models import FAMILIES, ChampionSource, ModelSet, version_fields
from serving.online_store import InMemoryFeatureStore, OnlineFeatureStore
from training.tracking import OPTIONAL_FAMILIES

# (models, features) -> every known customer's answer; None when the store cannot list its rows.
Precompute = Callable[[ModelSet, OnlineFeatureStore], Any]

# A child of BentoML's logger: the server's logging set-up keeps it and formats it like its own lines.
logger = logging.getLogger("bentoml.cdp")


@dataclass(frozen=True)
class Served:
    """One consistent view: the models and the feature rows served together."""

    models: ModelSet | None = None
    features: OnlineFeatureStore | None = None
    snapshot_stamp: object | None = None  # (mtime_ns, size) of the file read, or the online store's generation
    answers: AnswerTable | Any = None  # every known customer's answer (scored here, or read from an online store)


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh did."""

    swapped_models: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # family -> (old, new)
    reloaded_features: bool = False
    errors: tuple[str, ...] = ()


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


class ServingState:
    """The served models and features, refreshed from the registry and the snapshot file.

    Parameters
    ----------
    champions : ChampionSource
        Where champion versions are looked up and loaded.
    snapshot_path : Path
        The ``online_features.parquet`` written by `cdp score`.
    open_snapshot : callable
        ``path -> OnlineFeatureStore`` (the in-memory store by default).
    now : callable
        The clock for the timestamps in :meth:`status` (UTC).
    precompute : callable or None
        ``(models, features) -> AnswerTable``: scores every known customer whenever the
        models or the snapshot change, before they are served (see `serving.answers`);
        ``None`` leaves scoring to each request.
    stamp : callable, optional
        ``() -> stamp or None``: what tells one snapshot from the next (default: the file's
        modification time and size; a shared online store's published generation,
        `serving.online_store.RedisServing`); None: nothing to serve yet.
    missing : str, optional
        What to say while there is nothing to serve.
    """

    def __init__(self, champions: ChampionSource, snapshot_path: Path,
                 open_snapshot: Callable[[Path], OnlineFeatureStore] = InMemoryFeatureStore.from_parquet,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
                 precompute: Precompute | None = None, stamp: Callable[[], object | None] | None = None,
                 missing: str | None = None):
        self.champions = champions
        self.snapshot_path = Path(snapshot_path)
        self.stamp = stamp if stamp is not None else (lambda: _stamp(self.snapshot_path))
        self.missing = missing or f"no feature snapshot at {self.snapshot_path}: run `cdp score`"
        self.open_snapshot = open_snapshot
        self.precompute = precompute
        self.now = now
        self.served = Served()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_check: dt.datetime | None = None
        self.last_swap: dt.datetime | None = None
        self.errors: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        served = self.served
        return (served.models is not None and served.features is not None
                and (served.answers is not None or self.precompute is None))

    def refresh(self) -> RefreshReport:
        """Check the registry and the snapshot once; swap in whatever changed and loaded cleanly."""
        with self._lock:
            current = self.served
            errors: list[tuple[str, Exception | None]] = []
            models, swapped = self._refreshed_models(current.models, errors)
            features, stamp, reloaded = self._refreshed_features(current, errors)
            answers = current.answers
            if models is not current.models or reloaded or (answers is None and self.precompute is not None):
                answers = self._answers(models, features, errors)
                if answers is None and current.answers is not None:
                    # Keep serving the last good set, but no one the new snapshot no longer holds:
                    # a snapshot rewritten by `cdp forget` must stop their answers even when it
                    # cannot be scored. Retried at the next poll (the old stamp is kept).
                    kept_answers, kept_features = current.answers, current.features
                    if reloaded and hasattr(features, "ids"):
                        held = features.ids()
                        kept_answers = current.answers.only(held)
                        only = getattr(current.features, "only", None)
                        kept_features = only(held) if only is not None else current.features
                        logger.warning("serving the last scored answers for the %d customers the new snapshot "
                                       "still holds", len(kept_answers))
                    models, features, stamp, answers = (current.models, kept_features, current.snapshot_stamp,
                                                        kept_answers)
                    swapped, reloaded = {}, False
            if models is not current.models or reloaded or answers is not current.answers:
                self.served = Served(models=models, features=features, snapshot_stamp=stamp, answers=answers)
                self.last_swap = self.now()
                for family, (old, new) in swapped.items():
                    logger.info("serving %s version %s (was %s)", family, new, old or "none")
                if reloaded:
                    logger.info("serving feature snapshot as of %s (%d customers)", features.features_as_of,
                                len(features))
            self.last_check = self.now()
            messages = tuple(message for message, _ in errors)
            for message, exc in errors:
                if message not in self.errors:  # say it once, not at every poll
                    # The frames, not the exception's text: it could quote data.
                    trace = "" if exc is None else "\n" + "".join(traceback.format_tb(exc.__traceback__))
                    logger.warning("refresh: %s%s", message, trace)
            self.errors = messages
            return RefreshReport(swapped_models=swapped, reloaded_features=reloaded, errors=messages)

    def _answers(self, models: ModelSet | None, features: OnlineFeatureStore | None,
                 errors: list) -> AnswerTable | None:
        """Every known customer's answer under ``models`` and ``features`` (None until both are loaded)."""
        if self.precompute is None or models is None or features is None:
            return None
        try:
            started = time.perf_counter()
            answers = self.precompute(models, features)
        except Exception as exc:  # noqa: BLE001 - keep serving what was scored before
            _failed(errors, "scoring the feature snapshot with the new models failed", exc)
            return None
        if isinstance(answers, AnswerTable):
            logger.info("scored %d customers in %.1f s", len(answers), time.perf_counter() - started)
        elif answers is not None:
            logger.info("answering %d customers from the online store", len(answers))
        return answers

    def _refreshed_models(self, models: ModelSet | None, errors: list[tuple[str, Exception | None]]):
        served = models.versions if models is not None else {}
        newer = {}
        for family in FAMILIES:
            try:
                version = self.champions.champion_version(family)
                if version is None and family in OPTIONAL_FAMILIES:
                    continue  # a store without prospects has no first-purchase model: nothing is wrong
                if version is None:
                    _failed(errors, f"no champion for {family} in the registry yet: run `cdp train`")
                elif version != served.get(family):
                    newer[family] = self.champions.load(family)
            except Exception as exc:  # noqa: BLE001 - keep serving what loaded; say what failed
                _failed(errors, f"{family}: cannot load the champion", exc)
        if not newer:
            return models, {}
        try:
            updated = models.replacing(newer) if models is not None else ModelSet(newer)
        except Exception as exc:  # noqa: BLE001 - an incomplete or inconsistent set is not served
            _failed(errors, "new champions not served", exc)
            return models, {}
        return updated, {f: (served.get(f), m.version) for f, m in newer.items()}

    def _refreshed_features(self, current: Served, errors: list[tuple[str, Exception | None]]):
        try:
            stamp = self.stamp()
        except Exception as exc:  # noqa: BLE001 - an unreachable online store: keep serving what is loaded
            _failed(errors, "the feature snapshot cannot be checked", exc)
            return current.features, current.snapshot_stamp, False
        if stamp is None:
            _failed(errors, self.missing)
            return current.features, current.snapshot_stamp, False
        if stamp == current.snapshot_stamp and current.features is not None:
            return current.features, stamp, False
        try:
            return self.open_snapshot(self.snapshot_path), stamp, True
        except Exception as exc:  # noqa: BLE001 - keep the previous snapshot
            _failed(errors, "feature snapshot not reloaded", exc)
            return current.features, current.snapshot_stamp, False

    def start_polling(self, interval_seconds: float) -> None:
        """Refresh now and then every ``interval_seconds``, on a daemon thread, until :meth:`stop`."""

        def loop() -> None:
            while True:
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001 - the poller must outlive any one failure
                    logger.exception("refresh failed")
                if self._stop.wait(interval_seconds):
                    return

        self._thread = threading.Thread(target=loop, name="cdp-champion-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict:
        """What is served, for ``/versions`` (no customer data)."""
        served = self.served
        return {
            "ready": self.ready,
            "model_versions": _versions(served.models),
            "horizon_days": served.models.horizon_days if served.models is not None else None,
            "features_as_of": served.features.features_as_of if served.features is not None else None,
            "customers": len(served.features) if served.features is not None else 0,
            "last_check": self.last_check,
            "last_swap": self.last_swap,
            "errors": list(self.errors),
        }


def _versions(models: ModelSet | None) -> dict[str, str | None]:
    versions = models.versions if models is not None else {}
    return version_fields(versions)


def _failed(errors: list, what: str, exc: Exception | None = None) -> None:
    """Record a refresh problem for ``/versions`` and the log. Our own errors are shown as they
    are; anything else by type only, its traceback going to the log (model and registry
    errors carry no customer data, but a status page is no place for them)."""
    if exc is None or isinstance(exc, CdpError):
        errors.append((what if exc is None else f"{what}: {exc}", None))
    else:
        errors.append((f"{what}: {type(exc).__name__} (traceback in the server log)", exc))
