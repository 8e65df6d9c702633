"""The MLflow glue for training: where runs go, registering a model, and the promotion gate.

Models live in the MLflow model registry under two aliases (aliases replace the old
stages in MLflow 3):

``challenger``
    the most recent version that went through :func:`promote`;
``champion``
    the version serving uses (:func:`load_champion`).

A new version becomes champion only if it scores strictly better than the current
champion *with the same score callable* — so both are measured on the same held-out
window — or when there is no champion yet, or when the caller forces it. Each decision
is written down twice: on the training run (metrics and tags) and on the model version
(tags), so the registry alone explains why the champion is the champion.

This module never reads the environment: the CLI builds a :class:`TrackingConfig`
(:func:`tracking_config` takes the environment as a mapping) and passes it down.
Nothing personal goes to MLflow: log aggregates and synthetic examples only.
"""

from __future__ import annotations

import json
import math
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
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

from cdp.errors import CdpError

CHAMPION = "champion"
CHALLENGER = "challenger"

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "Decision",
    "NoChampionError",
    "TrackingConfig",
    "champion_version",
    "experiment",
    "has_store",
    "load_champion",
    "log_frame",
    "promote",
    "register_pyfunc",
    "registry_client",
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
    """

    tracking_uri: str
    artifact_location: str | None = None

    @classmethod
    def local(cls, root: Path) -> TrackingConfig:
        """The embedded default: ``<root>/mlflow.db`` (SQLite) and ``<root>/artifacts``.

        ``root`` is made absolute, so the store does not move with the working directory.
        Nothing is created until :func:`experiment` runs.
        """
        root = Path(root).resolve()
        return cls(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", artifact_location=str(root / "artifacts"))


def tracking_config(env: Mapping[str, str], root: Path) -> TrackingConfig:
    """``MLFLOW_TRACKING_URI`` from ``env`` if set and not blank, else the local store under ``root``.

    A ``sqlite:///`` URI keeps new experiments' artifacts in ``artifacts/`` beside its
    database file (MLflow's own default is ``./mlruns`` of whatever the working directory
    is); a server decides for itself.
    """
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        return TrackingConfig.local(root)
    db = _sqlite_path(uri)
    return TrackingConfig(tracking_uri=uri, artifact_location=None if db is None else
                          str(db.resolve().parent / "artifacts"))


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
    return found.experiment_id


def register_pyfunc(
    model_name: str,
    python_model: mlflow.pyfunc.PythonModel,
    *,
    artifacts: Mapping[str, str] | None = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
) -> str:
    """Log ``python_model`` to the active run, register it as a new version of ``model_name``, return the version.

    Call inside ``mlflow.start_run()`` after :func:`experiment`. ``input_example`` must be
    synthetic or aggregate — it is stored with the model. Passing ``pip_requirements``
    skips MLflow's requirement inference, which loads the model in a subprocess.
    """
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts=dict(artifacts) if artifacts else None,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
    )
    return _register_logged_model(model_name, info)


def _register_logged_model(model_name: str, info: mlflow.models.model.ModelInfo) -> str:
    """Register the logged model ``info`` as a new version of ``model_name`` (created if needed).

    What ``log_model(registered_model_name=...)`` does, through the client API: MLflow's
    fluent registration ``print``s "Successfully registered model …" and "Created version …"
    to stderr (not through logging, so no logger level quiets it). The version is linked to
    its run and logged model, and the logged model lists the version (the ``mlflow.modelVersions``
    tag the UI reads), as the fluent path does.
    """
    client = MlflowClient(tracking_uri=mlflow.get_tracking_uri(), registry_uri=mlflow.get_registry_uri())
    try:
        client.create_registered_model(model_name)
    except MlflowException as error:
        if error.error_code not in (ErrorCode.Name(RESOURCE_ALREADY_EXISTS), ErrorCode.Name(ALREADY_EXISTS)):
            raise
    created = client.create_model_version(model_name, source=info.model_uri, run_id=info.run_id,
                                          model_id=info.model_id)
    version = str(created.version)
    listed = json.loads(client.get_logged_model(info.model_id).tags.get(MLFLOW_MODEL_VERSIONS, "[]"))
    entry = {"name": model_name, "version": version}
    if entry not in listed:  # a tracking server adds it itself; a local store does not
        client.set_logged_model_tags(info.model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*listed, entry])})
    return version


def log_frame(frame: pd.DataFrame, artifact_file: str) -> None:
    """Log ``frame`` to the active run as a CSV artifact (e.g. ``"evaluation/lift.csv"``).

    For figures use ``mlflow.log_figure(fig, "plots/name.png")``. Log aggregates only.
    """
    mlflow.log_text(frame.to_csv(index=False), artifact_file)


@dataclass(frozen=True)
class Decision:
    """What the promotion gate decided about one model version, and why."""

    model_name: str
    version: str
    promoted: bool
    reason: str
    metric: str
    challenger_score: float
    champion_version: str | None
    champion_score: float | None


def _alias_version(client: MlflowClient, model_name: str, alias: str) -> str | None:
    """The version behind ``alias``, or ``None`` if the alias (or the model) does not exist."""
    try:
        aliases = client.get_registered_model(model_name).aliases
    except MlflowException as error:
        if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise
    version = aliases.get(alias)
    return None if version is None else str(version)


def _load_version(client: MlflowClient, model_name: str, version: str) -> mlflow.pyfunc.PyFuncModel:
    """Load one registered version from the client's own store, whatever the process-wide URI.

    The artifacts are downloaded to a temporary folder that is removed once loaded (the
    pyfunc unpickles everything it needs at load), so a long-running service that loads
    every new champion does not fill the disk.
    """
    source = client.get_model_version_download_uri(model_name, version)
    with tempfile.TemporaryDirectory(prefix="cdp-model-") as folder:
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=folder,
                                                    tracking_uri=client.tracking_uri)
        return mlflow.pyfunc.load_model(local)


def _checked_score(score: Callable[[mlflow.pyfunc.PyFuncModel], float], model: mlflow.pyfunc.PyFuncModel,
                   model_name: str, version: str, metric: str) -> float:
    value = float(score(model))
    if not math.isfinite(value):
        raise ValueError(f"score gave {metric}={value} for {model_name} version {version}; expected a finite number")
    return value


def promote(
    client: MlflowClient,
    model_name: str,
    version: str,
    *,
    metric: str,
    score: Callable[[mlflow.pyfunc.PyFuncModel], float],
    higher_is_better: bool = True,
    force: bool = False,
    run_id: str | None = None,
) -> Decision:
    """Promotion gate: make ``version`` the ``challenger``, and the ``champion`` if it earns it.

    The challenger and the current champion are loaded from the registry and scored by
    the same ``score`` callable, so both are measured on the same held-out window. The
    challenger becomes champion if there is no champion, if it is strictly better
    (``higher_is_better`` says which way), or if ``force`` is true. Scores are computed
    before any alias moves, so a failing score leaves the registry as it was.

    The decision is recorded on ``run_id`` (if given) as metrics
    ``gate_challenger_<metric>`` and ``gate_champion_<metric>`` and tags ``gate.decision``
    (``promoted`` or ``kept``), ``gate.reason`` and ``gate.champion_version``; and as
    ``gate.*`` tags on the model version.

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

    Returns
    -------
    Decision
    """
    version = str(version)
    champion_version = _alias_version(client, model_name, CHAMPION)
    challenger_score = _checked_score(score, _load_version(client, model_name, version), model_name, version, metric)
    if champion_version is None:
        champion_score = None
    elif champion_version == version:
        champion_score = challenger_score
    else:
        champion_score = _checked_score(score, _load_version(client, model_name, champion_version),
                                        model_name, champion_version, metric)

    if champion_version is None:
        promoted, reason = True, "no champion yet"
    elif champion_version == version:
        promoted, reason = False, f"version {version} is already the champion"
    else:
        is_better = challenger_score > champion_score if higher_is_better else challenger_score < champion_score
        direction = "higher" if higher_is_better else "lower"
        versus = (f"{metric} {challenger_score:.6g} {'beats' if is_better else 'does not beat'} "
                  f"champion version {champion_version}'s {champion_score:.6g} ({direction} is better)")
        promoted = is_better or force
        reason = f"forced: {versus}" if force and not is_better else versus

    client.set_registered_model_alias(model_name, CHALLENGER, version)
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version)

    decision = Decision(model_name=model_name, version=version, promoted=promoted, reason=reason, metric=metric,
                        challenger_score=challenger_score, champion_version=champion_version,
                        champion_score=champion_score)
    _record(client, decision, run_id)
    return decision


def _record(client: MlflowClient, decision: Decision, run_id: str | None) -> None:
    tags = {
        "gate.decision": "promoted" if decision.promoted else "kept",
        "gate.reason": decision.reason,
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


def champion_version(config: TrackingConfig, model_name: str) -> str | None:
    """The version alias ``champion`` of ``model_name`` points at, or ``None`` if there is
    none (no store, no such model, or nothing promoted yet). Cheap: no model is loaded,
    and a local store that is not there is not created."""
    if not has_store(config):
        return None
    return _alias_version(registry_client(config), model_name, CHAMPION)


def versions_created_before(config: TrackingConfig, model_names: tuple[str, ...], moment: datetime):
    """``(name, version, created, aliases)`` of every registered version of ``model_names``
    created at or before ``moment`` (naive UTC), sorted; and a note instead when there is
    no registry or it cannot be read (callers such as an erasure go ahead either way)."""
    if not has_store(config):
        return (), f"no model registry at {config.tracking_uri}: no models to retrain"
    try:
        found = []
        client = registry_client(config)
        for name in model_names:
            for v in client.search_model_versions(f"name = '{name}'"):
                created = datetime.fromtimestamp(v.creation_timestamp / 1000, timezone.utc).replace(tzinfo=None)
                if created <= moment:
                    found.append((name, str(v.version), created, tuple(sorted(v.aliases or ()))))
    except Exception as exc:  # noqa: BLE001 - an unreachable registry must not block the caller
        return (), f"the model registry {config.tracking_uri} could not be read ({type(exc).__name__})"
    return tuple(sorted(found, key=lambda m: (m[0], int(m[1]) if m[1].isdigit() else 0))), None


def load_champion(config: TrackingConfig, model_name: str) -> tuple[mlflow.pyfunc.PyFuncModel, str]:
    """The model behind alias ``champion`` of ``model_name``, and its version.

    Reads from ``config`` without touching MLflow's process-wide URIs, and never creates a
    local store that is not there.

    Raises
    ------
    NoChampionError
        (a ``LookupError``) no store, no such model, or no version promoted yet.
    """
    version = champion_version(config, model_name)
    if version is None:
        raise NoChampionError(f"no champion for model {model_name!r} in {config.tracking_uri}: run `cdp train` to "
                              "train and promote one")
    return _load_version(registry_client(config), model_name, version), version
