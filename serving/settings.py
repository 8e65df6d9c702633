"""What the scoring service needs to know, read once from its environment.

`cdp serve` (the CLI edge) turns ``cdp.toml`` and its options into environment variables
for the ``bentoml serve`` process it starts; :func:`settings_from_env` is the one place
the service reads them back. A container that runs the built Bento sets the same
variables itself.

=========================  ==========================================================
variable                   meaning
=========================  ==========================================================
``CDP_API_KEY``            bearer key every endpoint but liveness/readiness requires
``MLFLOW_TRACKING_URI``    the model registry (default: ``./mlruns``, as the CLI)
``CDP_FEATURE_SNAPSHOT``   the ``online_features.parquet`` written by ``cdp score``
``CDP_POLL_SECONDS``     how often the registry and the snapshot are checked (30)
``CDP_CHURN_MEDIUM``       churn probability from which risk is "medium" (0.5)
``CDP_CHURN_HIGH``         churn probability from which risk is "high" (0.75)
``CDP_PUBLIC_DOCS``        ``true``: the OpenAPI page and document need no key
``CDP_ONLINE_STORE``       a ``redis://`` URL: read the answers ``cdp score`` published there
                           instead of scoring the snapshot in this worker (unset: in memory)
``CDP_ONLINE_SCOPE``       which store's answers in that Redis (``cdp serve`` sets it)
``CDP_WORKERS``            worker processes (1)
=========================  ==========================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cdp.config import online_store_url
from cdp.errors import ConfigError
from training.risk_bands import ChurnRiskBands
from training.tracking import TrackingConfig, tracking_config

API_KEY = "CDP_API_KEY"
SNAPSHOT = "CDP_FEATURE_SNAPSHOT"
POLL_SECONDS = "CDP_POLL_SECONDS"
CHURN_MEDIUM = "CDP_CHURN_MEDIUM"
CHURN_HIGH = "CDP_CHURN_HIGH"
PUBLIC_DOCS = "CDP_PUBLIC_DOCS"
TRACKING_URI = "MLFLOW_TRACKING_URI"
MODEL_SCOPE = "CDP_MODEL_SCOPE"
HORIZON_DAYS = "CDP_HORIZON_DAYS"
ONLINE_STORE = "CDP_ONLINE_STORE"
ONLINE_SCOPE = "CDP_ONLINE_SCOPE"
WORKERS = "CDP_WORKERS"

DEFAULT_POLL_SECONDS = 30.0
MIN_API_KEY_CHARS = 16


@dataclass(frozen=True)
class ServeSettings:
    """Everything the service is configured with (frozen; built once at start-up)."""

    tracking: TrackingConfig
    snapshot_path: Path
    api_key: str | None = field(default=None, repr=False)
    poll_seconds: float = DEFAULT_POLL_SECONDS
    risk_bands: ChurnRiskBands = ChurnRiskBands()
    public_docs: bool = False
    horizon_days: int | None = None
    """Which lineage's churn and next-purchase champions to serve (the store's scope is in ``tracking``)."""
    online_store: str | None = field(default=None, repr=False)
    """A shared online store's URL (`store.online_redis`): answers are read from it, not scored here."""
    online_scope: str = ""
    """Which store's data in that online store (`training.tracking.store_scope`)."""
    workers: int = 1
    """Worker processes (BentoML's); each polls and serves on its own."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.poll_seconds) and self.poll_seconds >= 1):
            raise ConfigError(f"{POLL_SECONDS} must be at least 1 second, got {self.poll_seconds}")
        if self.api_key is not None and len(self.api_key) < MIN_API_KEY_CHARS:
            raise ConfigError(f"{API_KEY} must be at least {MIN_API_KEY_CHARS} characters long")

    def to_env(self) -> dict[str, str]:
        """The environment variables that make :func:`settings_from_env` give these settings back."""
        env = {
            TRACKING_URI: self.tracking.tracking_uri,
            SNAPSHOT: str(self.snapshot_path),
            POLL_SECONDS: repr(self.poll_seconds),
            CHURN_MEDIUM: repr(self.risk_bands.medium),
            CHURN_HIGH: repr(self.risk_bands.high),
            PUBLIC_DOCS: "true" if self.public_docs else "false",
            MODEL_SCOPE: self.tracking.scope,
            HORIZON_DAYS: "" if self.horizon_days is None else str(self.horizon_days),
            ONLINE_STORE: self.online_store or "",
            ONLINE_SCOPE: self.online_scope,
            WORKERS: str(self.workers),
        }
        if self.api_key is not None:
            env[API_KEY] = self.api_key
        return env


def settings_from_env(env: Mapping[str, str], root: Path = Path("mlruns")) -> ServeSettings:
    """Settings from ``env`` (a mapping, so tests need no real environment).

    ``root`` is the local MLflow store used when ``MLFLOW_TRACKING_URI`` is unset, as in
    the CLI. An unset or blank ``CDP_API_KEY`` gives ``api_key=None``: the service then
    makes one up at start-up.

    Raises
    ------
    ConfigError
        A variable is missing or not what it should be (the message names it).
    """
    snapshot = env.get(SNAPSHOT, "").strip()
    if not snapshot:
        raise ConfigError(f"{SNAPSHOT} is not set: start the service with `cdp serve --config cdp.toml`, or set it "
                          "to the online_features.parquet that `cdp score` writes next to the store")
    horizon = env.get(HORIZON_DAYS, "").strip()
    if horizon and not (horizon.isdigit() and int(horizon) >= 1):
        raise ConfigError(f"{HORIZON_DAYS} {horizon!r} is not a whole number of days >= 1")
    return ServeSettings(
        tracking=tracking_config(env, root, scope=env.get(MODEL_SCOPE, "").strip()),
        horizon_days=int(horizon) if horizon else None,
        snapshot_path=Path(snapshot),
        api_key=env.get(API_KEY, "").strip() or None,
        poll_seconds=_number(env, POLL_SECONDS, DEFAULT_POLL_SECONDS),
        risk_bands=ChurnRiskBands(medium=_number(env, CHURN_MEDIUM, ChurnRiskBands.medium),
                                  high=_number(env, CHURN_HIGH, ChurnRiskBands.high)),
        public_docs=_flag(env, PUBLIC_DOCS),
        online_store=online_store_url(env[ONLINE_STORE], ONLINE_STORE) if env.get(ONLINE_STORE, "").strip() else None,
        online_scope=env.get(ONLINE_SCOPE, "").strip(),
        workers=workers_from_env(env),
    )


def workers_from_env(env: Mapping[str, str]) -> int:
    """``CDP_WORKERS`` (1 when unset): how many worker processes the service runs."""
    given = env.get(WORKERS, "").strip()
    if not given:
        return 1
    if not given.isdigit() or not 1 <= int(given) <= 64:
        raise ConfigError(f"{WORKERS} {given!r} must be a whole number from 1 to 64")
    return int(given)


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name} {text!r} is not a number") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "").strip().lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise ConfigError(f"{name} {text!r} is not true or false")
