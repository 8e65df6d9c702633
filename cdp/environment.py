"""What the CLI reads from its surroundings: the clock, the environment, the OS user.

With `cdp.cli`, the only code that reads them; everything below receives plain values.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Optional

from cdp.config import Config
from cdp.errors import CdpError


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def run_id() -> str:
    return now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def tracking(cfg: Config):
    """The store's MLflow: MLFLOW_TRACKING_URI if set, else [tracking] uri of cdp.toml, else
    `<store>.mlflow/` beside the store (SQLite and artifacts); scoped to this store."""
    import logging
    import os

    # MLflow's INFO lines (schema migrations, ignored extra columns) are not for this audience.
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # MLflow 3 reports usage to its makers unless told not to; a customer-data tool stays
    # quiet by default (set MLFLOW_DISABLE_TELEMETRY=false to allow it).
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from training.tracking import store_tracking

    return store_tracking(cfg, os.environ)


def online_store(cfg: Config):
    """The store's shared online store (`store.online_redis.RedisOnlineStore`): CDP_ONLINE_STORE
    if set, else ``[online_store] url`` of cdp.toml; None when neither is (the service then
    holds the snapshot in memory). Checked to answer before any work starts."""
    import os

    from cdp.config import online_store_url

    given = os.environ.get("CDP_ONLINE_STORE", "").strip()
    url = online_store_url(given, "CDP_ONLINE_STORE") if given else cfg.online_store.url
    if url is None:
        return None
    from store.online_redis import RedisOnlineStore
    from training.tracking import store_scope

    online = RedisOnlineStore(url, store_scope(cfg.store.path, cfg.store.name))
    online.ping()
    return online


def online_publisher(cfg: Config):
    """`training.score.score_store`'s ``publish`` for the store's online store, or None without one."""
    online = online_store(cfg)
    if online is None:
        return None
    from serving.publish import redis_publisher

    return redis_publisher(online)


def fault_at() -> Optional[str]:
    """CDP_FAULT_AT if set: the step (the start of a progress message) at which a command
    kills itself with SIGKILL. For the fault tests: a crash at an exact point, not by luck."""
    import os

    return os.environ.get("CDP_FAULT_AT") or None


def actor(actor: Optional[str]) -> str:
    import getpass

    if actor and actor.strip():
        return actor.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def tombstone_key() -> Optional[bytes]:
    """CDP_TOMBSTONE_KEY if set: the secret the tombstones of erased people are hashed with."""
    import os

    key = os.environ.get("CDP_TOMBSTONE_KEY", "").strip()
    if not key:
        return None
    if len(key) < 16:
        raise CdpError("CDP_TOMBSTONE_KEY is too short: use at least 16 random characters "
                       "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return key.encode("utf-8")


def registered_models(cfg: Config):
    """A function listing the registered versions of cdp-ml's models for this store at the
    moment it is called, and a note when the registry cannot be read (an erasure goes ahead
    either way): `profiles.erasure` calls it while it holds the store."""
    from profiles.erasure import ModelVersion
    from training.tracking import MODEL_NAMES, versions_created_before

    config = tracking(cfg)

    def listed():
        found, note = versions_created_before(config, tuple(MODEL_NAMES.values()), now())
        return tuple(ModelVersion(*version) for version in found), note

    return listed
