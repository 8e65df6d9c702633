"""The MLflow glue for training: where runs go, registering a model, and the promotion gate.

Each store has its own MLflow store by default (:func:`default_root`: ``<store>.mlflow/``
beside the store file). Models live in the model registry under two aliases per
*lineage* — one store and one horizon (aliases replace the old stages in MLflow 3):

``challenger-<store>-h<H>d``
    the most recent version that went through the gate;
``champion-<store>-h<H>d``
    the version scoring and serving use (:func:`load_champion`); segments, which do not
    look ahead, have one ``champion-<store>`` per store.

A new version becomes champion only if it scores strictly better than its lineage's
champion *with the same score callable* — so both are measured on the same held-out
window — or when the lineage has no comparable champion (none yet, another feature set:
`Lineage`), or when the caller forces it. Never across stores, horizons or feature sets. Each decision
is written down twice: on the training run (metrics and tags) and on the model version
(tags), so the registry alone explains why the champion is the champion.

This module never reads the environment: the CLI builds a :class:`TrackingConfig`
(:func:`tracking_config` takes the environment as a mapping) and passes it down.
Nothing personal goes to MLflow: log aggregates and synthetic examples only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mlflow
import mlflow.artifacts
import mlflow.models
import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ALREADY_EXISTS, RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.pyfunc import PyFuncModel, PythonModel
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

from cdp.cells import safe_frame
from cdp.errors import CdpError
from training.run_owner import OWNER_TAG, close_abandoned, owner_tag

CHAMPION = "champion"
CHALLENGER = "challenger"
# The registry's names of the model families: the one place they are spelled.
MODEL_NAMES = {"segments": "cdp-segments", "churn": "cdp-churn", "next-purchase": "cdp-next-purchase",
               "first-purchase": "cdp-first-purchase"}
FAMILIES = tuple(MODEL_NAMES)
# Families a store may have no champion of for good reason: a store without prospects (every
# customer has bought, as in CDNOW) trains no first-purchase model. Scoring, serving and the
# refresh's model age do without them; the others are required.
OPTIONAL_FAMILIES = ("first-purchase",)
REQUIRED_FAMILIES = tuple(f for f in FAMILIES if f not in OPTIONAL_FAMILIES)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "FAMILIES",
    "MODEL_NAMES",
    "Decision",
    "Lineage",
    "NoChampionError",
    "OPTIONAL_FAMILIES",
    "REQUIRED_FAMILIES",
    "TrackingConfig",
    "alias",
    "apply",
    "champion_horizons",
    "champion_version",
    "decide",
    "default_root",
    "experiment",
    "feature_set",
    "has_store",
    "load_champion",
    "load_model_uri",
    "log_frame",
    "log_pyfunc",
    "promote",
    "start_run",
    "register_logged_model",
    "register_pyfunc",
    "registry_client",
    "store_scope",
    "tracking_config",
    "versions_created_before",
]


class NoChampionError(CdpError, LookupError):
    """The registry has no ``champion`` version of a model (nothing trained, or never promoted)."""


@dataclass(frozen=True)
class TrackingConfig:
    """Where MLflow runs, artifacts and registered models go.

    Parameters
    ----------
    tracking_uri : str
        The tracking (and registry) store, e.g. ``"sqlite:////abs/mlruns/mlflow.db"`` or
        ``"http://mlflow:5000"``.
    artifact_location : str or None
        Where *new* experiments keep their artifacts. Set for the local default, so the
        artifacts sit next to the database instead of in the working directory; ``None``
        lets the server decide.
    scope : str
        The store the models belong to (see :func:`store_scope`): champion aliases carry it,
        so stores that share one registry (one MLflow server) never take each other's
        champions. Empty for a registry of one store's models only (tests, tools).
    """

    tracking_uri: str
    artifact_location: str | None = None
    scope: str = ""

    @classmethod
    def local(cls, root: Path, scope: str = "") -> TrackingConfig:
        """The embedded default: ``<root>/mlflow.db`` (SQLite) and ``<root>/artifacts``.

        ``root`` is made absolute, so the store does not move with the working directory.
        Nothing is created until :func:`experiment` runs.
        """
        root = Path(root).resolve()
        return cls(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", artifact_location=str(root / "artifacts"),
                   scope=scope)


def default_root(store_path: Path) -> Path:
    """Where a store's own MLflow runs and registry live when nothing else is said:
    ``<store>.mlflow/`` beside the store file (``data/cdp.duckdb`` → ``data/cdp.mlflow/``),
    so every store has its own, wherever the command is run from."""
    store_path = Path(store_path).resolve()
    return store_path.with_name(store_path.stem + ".mlflow")


def store_scope(store_path: Path, name: str | None = None) -> str:
    """The key that tells a store's models from other stores' in a shared registry.

    ``name`` (``[store] name`` in cdp.toml) when given, so the same shop keeps its models
    across machines and paths; else a digest of the store file's absolute path (a store
    rebuilt in place keeps its models; a store moved elsewhere starts new lineages).
    Only letters, digits, ``_`` and ``-``: it becomes part of MLflow alias names.
    """
    if name:
        return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:60] or "store"
    return "s" + hashlib.blake2b(str(Path(store_path).resolve()).encode(), digest_size=5).hexdigest()


def tracking_config(env: Mapping[str, str], root: Path, uri: str | None = None, scope: str = "") -> TrackingConfig:
    """Where a store's models go: ``MLFLOW_TRACKING_URI`` from ``env`` if set and not blank,
    else ``uri`` (``[tracking] uri`` in cdp.toml), else the local store under ``root``
    (:func:`default_root` of the store). ``scope`` (:func:`store_scope`) applies to a
    registry named by URI, which other stores may share; the store's own default registry
    is unscoped, so a store folder moved or copied with it keeps its champions.

    A ``sqlite:///`` URI keeps new experiments' artifacts in ``artifacts/`` beside its
    database file (MLflow's own default is ``./mlruns`` of whatever the working directory
    is); a server decides for itself.
    """
    uri = env.get("MLFLOW_TRACKING_URI", "").strip() or (uri or "").strip()
    if not uri:  # the store's own registry holds no other store's models: no scope, so it moves with the store
        return TrackingConfig.local(root)
    db = _sqlite_path(uri)
    return TrackingConfig(tracking_uri=uri, artifact_location=None if db is None else
                          str(db.resolve().parent / "artifacts"), scope=scope)


def store_tracking(config, env: Mapping[str, str]) -> TrackingConfig:
    """The MLflow of the store ``config`` (a `cdp.config.Config`) describes: ``env``'s
    ``MLFLOW_TRACKING_URI``, else ``[tracking] uri``, else ``<store>.mlflow/`` beside the
    store (`tracking_config`), scoped to the store (`store_scope`). A notebook passes
    ``os.environ``, or ``{}`` to ignore the environment."""
    return tracking_config(env, default_root(config.store.path), uri=config.tracking.uri,
                           scope=store_scope(config.store.path, config.store.name))


def _sqlite_path(tracking_uri: str) -> Path | None:
    """The database file behind a ``sqlite:///`` URI, or ``None`` for any other store."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    path = tracking_uri[len(prefix):]
    return Path(path) if path and path != ":memory:" else None


def has_store(config: TrackingConfig) -> bool:
    """False for a local SQLite store whose file is not there yet (nothing trained): readers
    say so instead of letting MLflow create an empty store. A server is assumed to exist."""
    db = _sqlite_path(config.tracking_uri)
    return db is None or db.exists()


def registry_client(config: TrackingConfig) -> MlflowClient:
    """A client of ``config``'s tracking and registry store, whatever MLflow's process-wide URIs say."""
    return MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)


def experiment(config: TrackingConfig, name: str) -> str:
    """Point MLflow at ``config`` and return the id of experiment ``name``, creating it if needed.

    Sets MLflow's process-wide tracking and registry URIs (``mlflow.start_run`` and
    ``log_model`` read them), creates the folder of a local SQLite store, and creates the
    experiment with ``config.artifact_location`` if it does not exist yet. An existing
    experiment keeps the artifact location it was created with.

    Raises
    ------
    CdpError
        The experiment exists but was deleted (MLflow keeps its name reserved).
    """
    db = _sqlite_path(config.tracking_uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.tracking_uri)
    client = registry_client(config)
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name, artifact_location=config.artifact_location)
    if found.lifecycle_stage == "deleted":
        raise CdpError(
            f"MLflow experiment {name!r} in {config.tracking_uri} is deleted: restore it "
            "(mlflow experiments restore) or purge it (mlflow gc) before training again")
    close_abandoned(client, found.experiment_id)
    return found.experiment_id


def start_run(config: TrackingConfig, experiment_name: str, run_name: str):
    """``mlflow.start_run`` in experiment ``experiment_name`` (see :func:`experiment`), tagged
    with the process that runs it, so a later training can close it if this process dies
    inside it (`training.run_owner`)."""
    return mlflow.start_run(experiment_id=experiment(config, experiment_name), run_name=run_name,
                            tags={OWNER_TAG: owner_tag()})


def log_pyfunc(
    python_model: PythonModel,
    *,
    artifacts: Mapping[str, str] | None = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log ``python_model`` to the active run (not registered yet) and return its info.

    Call inside ``mlflow.start_run()`` after :func:`experiment`. ``input_example`` must be
    synthetic or aggregate — it is stored with the model. Passing ``pip_requirements``
    skips MLflow's requirement inference, which loads the model in a subprocess.
    """
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts=dict(artifacts) if artifacts else None,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
    )


def register_pyfunc(model_name: str, python_model: PythonModel, **logged: Any) -> str:
    """Log ``python_model`` to the active run (`log_pyfunc`), register it as a new version
    of ``model_name``, return the version."""
    info = log_pyfunc(python_model, **logged)
    client = MlflowClient(tracking_uri=mlflow.get_tracking_uri(), registry_uri=mlflow.get_registry_uri())
    return register_logged_model(client, model_name, info.model_uri, info.run_id, info.model_id)


def register_logged_model(client: MlflowClient, model_name: str, model_uri: str, run_id: str, model_id: str) -> str:
    """Register the logged model ``model_uri`` as a new version of ``model_name`` (created if needed).

    What ``log_model(registered_model_name=...)`` does, through the client API: MLflow's
    fluent registration ``print``s "Successfully registered model …" and "Created version …"
    to stderr (not through logging, so no logger level quiets it). The version is linked to
    its run and logged model, and the logged model lists the version (the ``mlflow.modelVersions``
    tag the UI reads), as the fluent path does.
    """
    try:
        client.create_registered_model(model_name)
    except MlflowException as error:
        if error.error_code not in (ErrorCode.Name(RESOURCE_ALREADY_EXISTS), ErrorCode.Name(ALREADY_EXISTS)):
            raise
    created = client.create_model_version(model_name, source=model_uri, run_id=run_id, model_id=model_id)
    version = str(created.version)
    listed = json.loads(client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS, "[]"))
    entry = {"name": model_name, "version": version}
    if entry not in listed:  # a tracking server adds it itself; a local store does not
        client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*listed, entry])})
    return version


def log_frame(frame: pd.DataFrame, artifact_file: str) -> None:
    """Log ``frame`` to the active run as a CSV artifact (e.g. ``"evaluation/lift.csv"``).

    For figures use ``mlflow.log_figure(fig, "plots/name.png")``. Log aggregates only.
    """
    mlflow.log_text(safe_frame(frame).to_csv(index=False), artifact_file)


@dataclass(frozen=True)
class Lineage:
    """The models a new version may be compared with: one store, one horizon, one feature set.

    A challenger meets only the champion of its own lineage. Where that champion was
    trained on another feature set (the store gained or lost a source family), or there is
    none (the first run, a new horizon), the challenger starts the lineage anew: it is
    promoted, with a note saying why no comparison was made.

    Parameters
    ----------
    store : str
        The store's scope (:func:`store_scope`).
    horizon_days : int or None
        The forecast horizon; None for models that do not look ahead (segments), which
        keep one champion per store.
    feature_set : str
        A digest of the feature-table columns the model was offered (:func:`feature_set`).
    """

    store: str
    horizon_days: int | None
    feature_set: str

    @property
    def champion_alias(self) -> str:
        return alias(CHAMPION, self.store, self.horizon_days)

    @property
    def challenger_alias(self) -> str:
        return alias(CHALLENGER, self.store, self.horizon_days)

    def tags(self) -> dict[str, str]:
        """What each version records of its lineage (the gate reads them back from the champion)."""
        return {"cdp.store": self.store or "none", "cdp.feature_set": self.feature_set,
                "cdp.horizon_days": "none" if self.horizon_days is None else str(self.horizon_days)}

    def describe(self) -> str:
        horizon = "" if self.horizon_days is None else f", horizon {self.horizon_days} days"
        return f"{'store ' + self.store if self.store else 'this store'}{horizon}"


def alias(role: str, scope: str = "", horizon_days: int | None = None) -> str:
    """The registry alias of ``role`` (champion or challenger) for one store and horizon:
    ``champion`` alone for an unscoped registry without horizons, else e.g.
    ``champion-s1a2b3c4d5-h91d``."""
    parts = [role, *([scope] if scope else []), *([f"h{int(horizon_days)}d"] if horizon_days is not None else [])]
    return "-".join(parts)


def feature_set(columns) -> str:
    """A short digest of a set of column names (order does not matter)."""
    text = "\n".join(sorted(str(c) for c in columns))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


@dataclass(frozen=True)
class Decision:
    """What the promotion gate decided about one model version, and why.

    ``compared`` is False where no comparison was made (no champion of the lineage, another
    feature set, a champion that cannot score this data, too little data to judge);
    ``reason`` says which.
    """

    model_name: str
    version: str
    promoted: bool
    reason: str
    metric: str
    challenger_score: float
    champion_version: str | None
    champion_score: float | None
    compared: bool = True


def _aliases(client: MlflowClient, model_name: str) -> dict:
    """Every alias of ``model_name`` and its version; empty if the model does not exist."""
    try:
        return dict(client.get_registered_model(model_name).aliases)
    except MlflowException as error:
        if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return {}
        raise


def _alias_version(client: MlflowClient, model_name: str, alias: str) -> str | None:
    """The version behind ``alias``, or ``None`` if the alias (or the model) does not exist."""
    version = _aliases(client, model_name).get(alias)
    return None if version is None else str(version)


def _load_version(client: MlflowClient, model_name: str, version: str) -> PyFuncModel:
    """Load one registered version from the client's own store, whatever the process-wide URI.

    The artifacts are downloaded to a temporary folder that is removed once loaded (the
    pyfunc unpickles everything it needs at load), so a long-running service that loads
    every new champion does not fill the disk.
    """
    return load_model_uri(client, client.get_model_version_download_uri(model_name, version))


def load_model_uri(client: MlflowClient, source: str) -> PyFuncModel:
    """Load a model by its artifact URI (a registered version's, or a logged model's
    ``models:/m-…``) from the client's store, through a temporary copy removed once loaded."""
    with tempfile.TemporaryDirectory(prefix="cdp-model-") as folder:
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=folder,
                                                    tracking_uri=client.tracking_uri)
        return mlflow.pyfunc.load_model(local)


def _checked_score(score: Callable[[PyFuncModel], float], model: PyFuncModel,
                   model_name: str, version: str, metric: str) -> float:
    value = float(score(model))
    if not math.isfinite(value):
        raise ValueError(f"score gave {metric}={value} for {model_name} version {version}; expected a finite number")
    return value


def decide(
    client: MlflowClient,
    model_name: str,
    challenger: PyFuncModel,
    *,
    metric: str,
    score: Callable[[PyFuncModel], float],
    higher_is_better: bool = True,
    force: bool = False,
    lineage: Lineage | None = None,
    refuse: str | None = None,
    version: str = "",
) -> Decision:
    """The promotion gate's verdict on ``challenger``, before anything is written.

    The challenger and its lineage's champion are scored by the same ``score`` callable,
    so both are measured on the same held-out window; the challenger wins if it is strictly
    better (``higher_is_better`` says which way) or ``force`` is true. Without a champion of
    its lineage (see `Lineage`), or where the champion was trained on another feature set or
    cannot score this data, no comparison is made and the challenger starts the lineage.
    ``refuse`` (a reason, e.g. too few held-out customers to judge) keeps it a challenger
    unless forced. ``version`` is the challenger's own version when it is registered
    already (`promote`), else empty (filled in by `apply`).

    Raises
    ------
    ValueError
        ``score`` gave a number that is not finite for the challenger.
    """
    champion_alias = lineage.champion_alias if lineage is not None else CHAMPION
    champion = _alias_version(client, model_name, champion_alias)
    label = version or "(new)"
    challenger_score = _checked_score(score, challenger, model_name, label, metric)
    champion_score, compared = None, False
    if champion is None:
        where = f" for {lineage.describe()}" if lineage is not None else ""
        promoted, reason = True, "no champion yet" + (f"{where}: a new lineage, no comparison made" if where else "")
    elif champion == version:
        promoted, reason, champion_score, compared = False, f"version {version} is already the champion", \
            challenger_score, True
    else:
        other = _lineage_mismatch(client, model_name, champion, lineage)
        if other is None:
            try:
                champion_score = _checked_score(score, _load_version(client, model_name, champion),
                                                model_name, champion, metric)
            except Exception as error:  # noqa: BLE001 - a champion that cannot score this data is no rival
                other = f"champion version {champion} cannot score this data ({type(error).__name__})"
        if other is not None:
            promoted, reason = True, f"new lineage: {other}; no comparison made"
            champion_score = None
        else:
            assert champion_score is not None  # scored above: no exception, no other lineage
            compared = True
            is_better = challenger_score > champion_score if higher_is_better else challenger_score < champion_score
            direction = "higher" if higher_is_better else "lower"
            versus = (f"{metric} {challenger_score:.6g} {'beats' if is_better else 'does not beat'} "
                      f"champion version {champion}'s {champion_score:.6g} ({direction} is better)")
            promoted = is_better or force
            reason = f"forced: {versus}" if force and not is_better else versus
    if refuse is not None and promoted and not force and not reason.startswith(f"version {version} "):
        promoted, reason = False, f"not promoted: {refuse} (pass --force to promote anyway)"
    return Decision(model_name=model_name, version=version, promoted=promoted, reason=reason, metric=metric,
                    challenger_score=challenger_score, champion_version=champion, champion_score=champion_score,
                    compared=compared)


def _lineage_mismatch(client: MlflowClient, model_name: str, champion: str, lineage: Lineage | None) -> str | None:
    """Why the champion belongs to another lineage than ``lineage``, or None if it is the same."""
    if lineage is None:
        return None
    tags = client.get_model_version(model_name, champion).tags
    for key, value in lineage.tags().items():
        if tags.get(key) != value:
            what = {"cdp.store": "another store", "cdp.horizon_days": "another horizon",
                    "cdp.feature_set": "another feature set"}[key]
            return f"champion version {champion} was trained on {what} ({tags.get(key, 'not recorded')})"
    return None


def apply(client: MlflowClient, decision: Decision, *, lineage: Lineage | None = None, version: str | None = None,
          run_id: str | None = None) -> Decision:
    """Carry out ``decision`` for ``version`` (a registered version): the challenger alias,
    the champion alias if promoted, the lineage's and the gate's tags on the version, and
    the gate's metrics and tags on ``run_id``. Returns the decision with its version."""
    decision = dataclasses.replace(decision, version=str(version or decision.version))
    if lineage is not None:
        for key, value in lineage.tags().items():
            client.set_model_version_tag(decision.model_name, decision.version, key, value)
    client.set_registered_model_alias(decision.model_name,
                                      lineage.challenger_alias if lineage is not None else CHALLENGER,
                                      decision.version)
    if decision.promoted:
        client.set_registered_model_alias(decision.model_name,
                                          lineage.champion_alias if lineage is not None else CHAMPION,
                                          decision.version)
    _record(client, decision, run_id)
    return decision


def promote(
    client: MlflowClient,
    model_name: str,
    version: str,
    *,
    metric: str,
    score: Callable[[PyFuncModel], float],
    higher_is_better: bool = True,
    force: bool = False,
    run_id: str | None = None,
    lineage: Lineage | None = None,
) -> Decision:
    """Promotion gate for a registered ``version``: make it the ``challenger``, and the
    ``champion`` if it earns it (`decide`, then `apply`). Scores are computed before any
    alias moves, so a failing score leaves the registry as it was.

    The decision is recorded on ``run_id`` (if given) as metrics
    ``gate_challenger_<metric>`` and ``gate_champion_<metric>`` and tags ``gate.decision``
    (``promoted`` or ``kept``), ``gate.reason``, ``gate.compared`` and
    ``gate.champion_version``; and as ``gate.*`` tags on the model version.

    Parameters
    ----------
    client : MlflowClient
        Bound to the tracking and registry store to use.
    model_name, version : str
        The registered model and the new version (as returned by :func:`register_pyfunc`).
    metric : str
        Name of what ``score`` measures, e.g. ``"average_precision"``; used in metric and tag names.
    score : callable
        ``score(pyfunc_model) -> float``; must return a finite number.
    lineage : Lineage or None
        Scope the champion to one store, horizon and feature set (None: the plain
        ``champion`` alias, no lineage checks).
    """
    version = str(version)
    decision = decide(client, model_name, _load_version(client, model_name, version), metric=metric, score=score,
                      higher_is_better=higher_is_better, force=force, lineage=lineage, version=version)
    return apply(client, decision, lineage=lineage, run_id=run_id)


def _record(client: MlflowClient, decision: Decision, run_id: str | None) -> None:
    tags = {
        "gate.decision": "promoted" if decision.promoted else "kept",
        "gate.reason": decision.reason,
        "gate.compared": "yes" if decision.compared else "no",
        "gate.champion_version": decision.champion_version or "none",
    }
    if run_id is not None:
        now_ms = int(time.time() * 1000)
        metrics = [Metric(f"gate_challenger_{decision.metric}", decision.challenger_score, now_ms, 0)]
        if decision.champion_score is not None:
            metrics.append(Metric(f"gate_champion_{decision.metric}", decision.champion_score, now_ms, 0))
        client.log_batch(run_id, metrics=metrics, tags=[RunTag(key, value) for key, value in tags.items()])
    version_tags = dict(tags)
    version_tags[f"gate.challenger_{decision.metric}"] = repr(decision.challenger_score)
    if decision.champion_score is not None:
        version_tags[f"gate.champion_{decision.metric}"] = repr(decision.champion_score)
    for key, value in version_tags.items():
        client.set_model_version_tag(decision.model_name, decision.version, key, value)


def champion_version(config: TrackingConfig, model_name: str, horizon_days: int | None = None) -> str | None:
    """The version the champion alias of ``model_name`` for ``config``'s store and
    ``horizon_days`` points at, or ``None`` if there is none (no store, no such model, or
    nothing promoted yet). Cheap: no model is loaded, and a local store that is not there
    is not created."""
    if not has_store(config):
        return None
    return _alias_version(registry_client(config), model_name, alias(CHAMPION, config.scope, horizon_days))


def champion_horizons(config: TrackingConfig, model_name: str) -> tuple[int, ...]:
    """The horizons (days) for which ``config``'s store has a champion of ``model_name``, sorted."""
    if not has_store(config):
        return ()
    aliases = _aliases(registry_client(config), model_name)
    prefix = alias(CHAMPION, config.scope) + "-h"
    found = {int(name[len(prefix):-1]) for name in aliases
             if name.startswith(prefix) and name.endswith("d") and name[len(prefix):-1].isdigit()}
    return tuple(sorted(found))


def versions_created_before(config: TrackingConfig, model_names: tuple[str, ...], moment: datetime):
    """``(name, version, created, aliases)`` of every registered version of ``model_names``
    trained on ``config``'s store (or recording no store) and created at or before
    ``moment`` (naive UTC), sorted; and a note instead when there is no registry or it
    cannot be read (callers such as an erasure go ahead either way)."""
    if not has_store(config):
        return (), f"no model registry at {config.tracking_uri}: no models to retrain"
    try:
        found = []
        client = registry_client(config)
        for name in model_names:
            versions = client.search_model_versions(f"name = '{name}'")
            # Searches leave aliases out; the registered model has them, alias -> version.
            aliases: dict[str, list[str]] = {}
            if versions:
                for alias, version in (client.get_registered_model(name).aliases or {}).items():
                    aliases.setdefault(str(version), []).append(alias)
            for v in versions:
                store = (v.tags or {}).get("cdp.store")
                if config.scope and store not in (None, config.scope):
                    continue
                created = datetime.fromtimestamp(v.creation_timestamp / 1000, timezone.utc).replace(tzinfo=None)
                if created <= moment:
                    found.append((name, str(v.version), created, tuple(sorted(aliases.get(str(v.version), ())))))
    except Exception as exc:  # noqa: BLE001 - an unreachable registry must not block the caller
        return (), f"the model registry {config.tracking_uri} could not be read ({type(exc).__name__})"
    return tuple(sorted(found, key=lambda m: (m[0], int(m[1]) if m[1].isdigit() else 0))), None


def load_champion(config: TrackingConfig, model_name: str,
                  horizon_days: int | None = None) -> tuple[PyFuncModel, str]:
    """The champion of ``model_name`` for ``config``'s store and ``horizon_days``, and its version.

    Reads from ``config`` without touching MLflow's process-wide URIs, and never creates a
    local store that is not there.

    Raises
    ------
    NoChampionError
        (a ``LookupError``) no store, no such model, or no version promoted yet.
    """
    version = champion_version(config, model_name, horizon_days)
    if version is None:
        horizon = "" if horizon_days is None else f" for {horizon_days}-day horizons"
        others = champion_horizons(config, model_name) if horizon_days is not None else ()
        hint = (f"; this store has champions for horizons of {', '.join(map(str, others))} days: pass "
                f"--horizon-days {others[0]}" if others else "")
        raise NoChampionError(f"no champion for model {model_name!r}{horizon} in {config.tracking_uri}: run "
                              f"`cdp train` to train and promote one{hint}")
    return _load_version(registry_client(config), model_name, version), version
