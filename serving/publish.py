"""`cdp score`'s answers published to a shared online store, for service workers on any machine.

With ``[online_store] url`` set, `training.score.score_store` hands its result to
`redis_publisher` under the store's write lock: every customer's answer, exactly as the
in-memory service would give it (`serving.answers.AnswerTable`, the same sentences, versions
and rounding), their serving feature row and look-up keys go to Redis as one new
generation (`store.online_redis`). The service then reads answers instead of scoring the
whole snapshot at start-up, so it is ready in seconds at any size and several workers or
replicas share one copy.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from serving.answers import AnswerTable
from serving.models import ModelSet, ServedModel
from store.online_redis import RAW_CHURN, RedisOnlineStore
from training.reasons import typical_values
from training.risk_bands import ChurnRiskBands
from training.score import Scored


def redis_publisher(online: RedisOnlineStore) -> Callable[[Scored], str]:
    """A ``publish`` for `training.score.score_store` that writes to ``online``."""

    def publish(scored: Scored) -> str:
        generation = publish_scores(online, scored)
        return f"answers of {len(scored.scores):,} customers → the online store (generation {generation})"

    return publish


def publish_scores(online: RedisOnlineStore, scored: Scored) -> str:
    """Publish one `cdp score` result as a new generation of ``online``; returns its id."""
    models = ModelSet({family: ServedModel(model, version) for family, (model, version) in scored.models.items()})
    features = scored.features
    typical = typical_values(features)
    table = AnswerTable(scored.scores, models, ChurnRiskBands(), features=features, typical=typical)
    ids = scored.scores["customer_id"].astype(str).tolist()
    churn = pd.to_numeric(scored.scores["churn_probability"], errors="coerce").to_numpy(dtype="float64")
    keys = scored.lookup.keys if scored.lookup is not None else pd.Series(dtype=object)
    meta = {
        "features_as_of": scored.as_of.isoformat(),
        "typical": typical,
        "lookup": scored.lookup.settings.to_json() if scored.lookup is not None else None,
        "model_versions": models.versions_by_field(),
        "horizon_days": models.horizon_days,
        "published_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return online.publish(_answers(table, ids, churn), _feature_rows(features), _keys(keys, set(ids)), meta)


def _answers(table: AnswerTable, ids: list[str], churn: np.ndarray) -> Iterator[tuple[str, bytes]]:
    for customer_id, probability in zip(ids, churn):
        answer = table.answer(customer_id)
        if answer is None:
            continue
        answer[RAW_CHURN] = float(probability) if np.isfinite(probability) else None
        yield customer_id, json.dumps(answer, default=_plain).encode()


def _feature_rows(features: pd.DataFrame) -> Iterator[tuple[str, bytes]]:
    """Each row as JSON, numbers exactly (Python's shortest round-trip form; pandas' own JSON
    keeps 15 digits at most), missing values as null, dates as ISO text."""
    ids = features["customer_id"].astype(str).tolist()
    names = [str(c) for c in features.columns if c != "customer_id"]
    columns = [features[name].astype(object).where(features[name].notna(), None).tolist() for name in names]
    for customer_id, values in zip(ids, zip(*columns)):
        yield customer_id, json.dumps(dict(zip(names, values)), default=_plain).encode()


def _keys(keys: pd.Series, held: set[str]) -> Iterator[tuple[str, list[bytes]]]:
    for customer_id, values in keys.items():
        if str(customer_id) in held and values is not None:
            yield str(customer_id), [bytes(value) for value in values]


def _plain(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")
