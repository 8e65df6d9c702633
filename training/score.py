"""`cdp score`: every customer scored by the champion models, as of a date.

One row per customer known by the as-of date: segment, churn and purchase probability,
expected purchase days and revenue over the horizon, days to the next purchase, the top
churn reasons and the model versions that produced them. Customers who have not bought
yet are segment "Prospects": their ``purchase_probability`` is the first-purchase model's
(`training.first_purchase`), the chance of a first purchase within the horizon, and their
other purchase scores are empty: churn needs a purchase to lapse from, and expected
purchase days, revenue, days to the next purchase and the reasons are read off a purchase
history. A store without a first-purchase champion (no prospects to learn from, as in
CDNOW) leaves their probability empty too.

`score_store` is the whole command as one function (a notebook's ``cdp score``): it
reads the store, scores, and writes the ``scores`` table and the serving snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cdp.errors import CdpError
from features.rows import Rows, as_frame, has_number, row_count
from training.pyfunc import CdpModel, model_ready, purchase_columns
from training.reasons import typical_values
from training.tracking import (
    MODEL_NAMES,
    OPTIONAL_FAMILIES,
    NoChampionError,
    TrackingConfig,
    champion_horizons,
    load_champion,
)

SCORE_COLUMNS = (
    "customer_id", "segment", "churn_probability", "purchase_probability", "expected_purchases",
    "expected_revenue", "days_to_next_purchase", "next_best_categories", "top_reasons",
    "segments_version", "churn_version", "next_purchase_version", "first_purchase_version", "features_as_of",
)

CHURN_OUTPUTS = ["churn_probability", "purchase_probability", "days_to_next_purchase", "top_reasons"]
COUNT_OUTPUTS = ["expected_purchases", "expected_revenue", "next_best_categories"]


def champions(tracking: TrackingConfig, horizon_days: int | None = None) -> dict[str, tuple[object, str]]:
    """The champion pyfunc and version of every family for ``tracking``'s store, the purchase
    models' for ``horizon_days`` (a clear error naming the missing one). An optional family
    without a champion (`training.tracking.OPTIONAL_FAMILIES`: no first-purchase model on a
    store without prospects) is left out."""
    found: dict[str, tuple[object, str]] = {}
    for family, name in MODEL_NAMES.items():
        try:
            found[family] = load_champion(tracking, name, None if family == "segments" else horizon_days)
        except NoChampionError:
            if family not in OPTIONAL_FAMILIES:
                raise
    return found


def scoring_horizon(tracking: TrackingConfig, horizon_days: int | None) -> int | None:
    """``horizon_days`` if given, else the one horizon the store has churn champions for.

    Raises
    ------
    CdpError
        No horizon given and the store has champions for several.
    """
    if horizon_days is not None:
        return horizon_days
    found = champion_horizons(tracking, MODEL_NAMES["churn"])
    if len(found) > 1:
        raise CdpError(f"this store has models for horizons of {', '.join(map(str, found))} days: "
                       "pass --horizon-days to choose one")
    return found[0] if found else None


def score(features: pd.DataFrame, models: Mapping[str, tuple[Any, str]], as_of: dt.date,
          typical: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Score a feature table (one row per customer) with the given pyfunc models.

    ``models`` maps each family to ``(model, version)``; ``first-purchase`` may be absent
    (the prospects' purchase probability is then empty).

    ``typical``: the typical customer's values (`training.reasons.typical_values`) the
    churn reasons are weighed against; default: this table's. Pass the whole population's
    when scoring a slice of it, so a customer gets the same reasons either way.

    cdp-ml's own pyfuncs (loaded, or inside `serving.models.ServedModel`) are called
    directly on the features, which they cast themselves (`training.pyfunc.model_frame`),
    the purchase models together (`training.pyfunc.purchase_columns`: their shared
    classifier runs once); any other model gets the whole table cast for it
    (`training.pyfunc.model_ready`) through its own ``predict``.
    """
    features = features.reset_index(drop=True)
    out = score_columns(features, models, as_of, typical)
    # Text even when empty (no champion): the scores table and the files keep a string column.
    out["first_purchase_version"] = pd.Series(out["first_purchase_version"], dtype="string")
    out["features_as_of"] = pd.Timestamp(as_of).date()
    return pd.DataFrame(out, columns=list(SCORE_COLUMNS), index=pd.RangeIndex(len(features)))


def score_columns(features: Rows, models: Mapping[str, tuple[Any, str]], as_of: dt.date,
                  typical: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """`score`'s columns as arrays (`SCORE_COLUMNS`, one value per row), of a frame or of
    model-ready `features.rows` columns: a request's one row (``/score_features``) is scored
    through the same code as the nightly table, without a frame built on the way."""
    n = row_count(features)
    out: dict[str, Any] = {"customer_id": _ids(features)}
    (segments, segments_version) = models["segments"]
    (churn, churn_version) = models["churn"]
    (purchases, purchases_version) = models["next-purchase"]
    inner = [_python_model(m) for m in (segments, churn, purchases)]
    if all(isinstance(m, CdpModel) for m in inner) and [m.kind == "segments" for m in inner] == [True, False, False]:
        segment = inner[0].predict_columns(features)
        if typical is None:
            typical = typical_values(as_frame(features))
        churn_out, counts = purchase_columns(inner[1:], features, typical)
    else:
        frame = model_ready(as_frame(features))
        segment = _as_columns(segments.predict(frame))
        churn_out, counts = _as_columns(churn.predict(frame)), _as_columns(purchases.predict(frame))
    out["segment"] = np.asarray(segment["segment"])
    # A frame without any buyer gets no purchase columns from the models: all missing.
    for column in CHURN_OUTPUTS:
        # No buyer in the frame: no reasons are text too ("" as for the prospects of a frame with buyers).
        missing = np.full(n, "", dtype=object) if column == "top_reasons" else np.full(n, np.nan)
        out[column] = np.asarray(churn_out[column]) if column in churn_out else missing
    for column in ("expected_purchases", "expected_revenue"):
        out[column] = np.asarray(counts[column]) if column in counts else np.full(n, np.nan)
    # Always a list per customer (empty where no recommender was trained).
    categories = np.empty(n, dtype=object)
    given = counts.get("next_best_categories")
    for row in range(n):
        value = given[row] if given is not None else None
        categories[row] = list(value) if isinstance(value, (list, tuple, np.ndarray)) else []
    out["next_best_categories"] = categories
    first = models.get("first-purchase")
    bought = has_number(features, "recency_days")
    if first is not None and not bought.all():  # a request for a buyer skips the prospects' model
        inner_first = _python_model(first[0])
        prospects = (inner_first.predict_columns(features) if isinstance(inner_first, CdpModel)
                     else _as_columns(first[0].predict(model_ready(as_frame(features)))))
        first_probability = np.asarray(prospects["purchase_probability"], dtype="float64")
        out["purchase_probability"] = np.where(bought, np.asarray(out["purchase_probability"], dtype="float64"),
                                               first_probability)
    out["segments_version"] = np.full(n, segments_version, dtype=object)
    out["churn_version"] = np.full(n, churn_version, dtype=object)
    out["next_purchase_version"] = np.full(n, purchases_version, dtype=object)
    out["first_purchase_version"] = np.full(n, first[1] if first is not None else None, dtype=object)
    out["features_as_of"] = np.full(n, pd.Timestamp(as_of).date(), dtype=object)
    return out


def _ids(features: Rows) -> np.ndarray:
    if isinstance(features, pd.DataFrame):
        return features["customer_id"].astype(str).to_numpy()
    return np.asarray(features["customer_id"]).astype(str).astype(object)


def _as_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {str(column): frame[column].to_numpy() for column in frame.columns}


def _python_model(model):
    """The `CdpModel` inside a pyfunc or a `serving.models.ServedModel`, or None."""
    pyfunc = getattr(model, "pyfunc", model)
    unwrap = getattr(pyfunc, "unwrap_python_model", None)
    try:
        return unwrap() if unwrap is not None else None
    except Exception:  # noqa: BLE001 - not a Python-function model: score it through its own predict
        return None


@dataclass(frozen=True)
class StoreScores:
    """What `score_store` did: the scores, the day they are as of, where the features came
    from (``features_note``), what became of the serving snapshot (``snapshot_note``) and
    of the online store (``online_note``, empty without one)."""

    scores: pd.DataFrame
    as_of: dt.date
    features_note: str
    snapshot_note: str
    online_note: str = ""


@dataclass(frozen=True)
class Scored:
    """What `score_store` hands a publisher (``publish``) while it holds the store's write lock:
    the scores and the feature rows they were scored from (aligned, erased people left out),
    the day, the champions ``{family: (model, version)}`` and every customer's look-up keys
    (`profiles.lookup.LookupKeys`)."""

    scores: pd.DataFrame
    features: pd.DataFrame
    as_of: dt.date
    models: Mapping[str, tuple[Any, str]]
    lookup: Any


def score_store(config, tracking: TrackingConfig, as_of: dt.date | None = None, horizon_days: int | None = None,
                on_stage: Callable[[str], None] | None = None,
                publish: Callable[[Scored], str] | None = None) -> StoreScores:
    """Score every customer of the store ``config`` (a `cdp.config.Config`) describes with
    its champions, as of ``as_of`` (default: the last day with data) for ``horizon_days``
    (default: the store's only horizon), and keep the result: the ``scores`` table in one
    transaction, then the serving snapshot (`store.snapshot.ServingSnapshot`) the service
    and the lists read. The features come from the store's materialized snapshot when it
    is current (`features.materialized`), else are built. ``on_stage`` hears each step.

    ``publish`` (optional) receives the result under the same write lock, after the table and
    the snapshot: a shared online store (`serving.publish`) then holds the same customers,
    and a `cdp forget` waiting for the lock erases them from all three. Its note goes into
    ``online_note``; an error stops the command after the table and snapshot are written
    (the online store keeps its previous answers)."""
    from features.as_of import resolve_as_of
    from features.engine import store_tables
    from features.materialized import currency_key, feature_code, read_snapshot
    from profiles.lookup import lookup_keys
    from store.interface import open_configured, open_store
    from store.parquet_store import ParquetStore
    from store.snapshot import ServingSnapshot
    from training.data import features_as_of

    stage = on_stage or (lambda text: None)
    with open_store(config.store.path, read_only=True) as store:
        day = resolve_as_of(store, as_of)
        erasures = store.erasures()
        stage("loading the champion models")
        models = champions(tracking, scoring_horizon(tracking, horizon_days))
        on_spark = config.engine.kind == "spark" and isinstance(store, ParquetStore)
        found = read_snapshot(store, day, currency_key(config.currency), feature_code(), load=not on_spark)
        spark_input = (store.export_parquet(["scoring_features"], Path())["scoring_features"]
                       if on_spark and found.features is not None else None)
        if on_spark and spark_input is None:
            found = read_snapshot(store, day, currency_key(config.currency), feature_code())
        if spark_input is not None:
            features = pd.DataFrame()
        elif found.features is None:
            stage(f"building features as of {day}")
            features = features_as_of(store_tables(store, config), day)
        else:
            features = found.features
    if spark_input is not None:  # the reader is closed: the scores are written under the write lock
        return _score_store_on_spark(config, spark_input, models, day, erasures, found, stage, publish)
    stage(f"scoring {len(features):,} customers as of {day}")
    scores = score(features, models, day)
    stage("writing the scores and the serving snapshot")
    snapshot = ServingSnapshot.beside(config.store.path)
    erased_note = ""
    # The scores table and the serving snapshot are written under the store's write lock, so
    # no `cdp forget` runs between them; one that ran while the customers were scored has
    # erased people from the store, and their rows are not written back.
    with open_configured(config.store) as store, store.writing() as writer:
        if writer.erasures() != erasures:
            kept = writer.present(scores)
            erased_note = f"; {len(scores) - len(kept):,} customer(s) erased while scoring are left out"
            scores, features = kept, writer.present(features)
        # The latest scores, in the store for the lists, reports, exports and erasures that read them.
        writer.replace("scores", "training", scores)
        lookup = None
        if found.stamp is not None and not erased_note and snapshot.stamp() == found.stamp.key():
            snapshot_note = f"the feature snapshot for serving ({snapshot.path}) is the materialized one already"
        else:
            lookup = lookup_keys(store, config)  # only when the snapshot is written: they go in its rows
            snapshot.write(features, day, found.stamp.key() if found.stamp else "",
                           lookup=(lookup.keys, lookup.settings.to_json()))
            snapshot_note = f"feature snapshot for serving → {snapshot.path}"
        online_note = ""
        if publish is not None:
            stage("publishing the answers to the online store")
            lookup = lookup if lookup is not None else lookup_keys(store, config)
            online_note = publish(Scored(scores=scores.reset_index(drop=True), features=features.reset_index(drop=True),
                                         as_of=day, models=models, lookup=lookup))
    return StoreScores(scores=scores, as_of=day, features_note=found.note + erased_note, snapshot_note=snapshot_note,
                       online_note=online_note)


def _score_store_on_spark(config, features_dir: Path, models, day: dt.date, erasures: int, found, stage,
                          publish) -> StoreScores:
    """`score_store` with the scoring on Spark's executors (`training.score_spark`): the scores
    table is written by them as a new store version. The serving snapshot is the materialized
    one already; a publisher (Redis) is handed the scores and features read back on the driver."""
    import pyarrow.parquet as pq

    from features.materialized import TABLE
    from profiles.lookup import lookup_keys
    from store.interface import open_configured
    from store.parquet_store import ParquetWriter
    from store.snapshot import ServingSnapshot
    from store.spark import engine_session
    from training.score_spark import score_on_spark

    snapshot = ServingSnapshot.beside(config.store.path)
    erased_note = ""
    with engine_session(config.engine, app_name="cdp-ml score") as (session, _work):
        stage(f"scoring every customer as of {day} on Spark")
        scored = score_on_spark(session, str(features_dir), models, day)
        stage("writing the scores")
        with open_configured(config.store) as store, store.writing() as writer:
            if writer.erasures() != erasures:  # people erased while scoring are not written back
                held = store.export_parquet(["customers"], Path())["customers"]
                scored = scored.join(session.read.parquet(str(held)).select("customer_id"), "customer_id", "left_semi")
                erased_note = "; customers erased while scoring are left out"
            assert isinstance(writer, ParquetWriter)
            staged = writer.stage("scores", "training")
            scored.write.mode("overwrite").parquet(str(staged))
            scores = pq.read_table(staged).to_pandas()

            def features() -> pd.DataFrame:  # on the driver only when the snapshot or a publisher needs them
                rows = store.read(TABLE)
                return writer.present(rows) if erased_note else rows

            lookup = None
            if snapshot.stamp() == found.stamp.key() and not erased_note:
                snapshot_note = f"the feature snapshot for serving ({snapshot.path}) is the materialized one already"
            else:
                lookup = lookup_keys(store, config)
                snapshot.write(features(), day, found.stamp.key(), lookup=(lookup.keys, lookup.settings.to_json()))
                snapshot_note = f"feature snapshot for serving → {snapshot.path}"
            online_note = ""
            if publish is not None:  # under the write lock, as in-process: a `cdp forget` waits for it
                stage("publishing the answers to the online store")
                order = features().set_index("customer_id").loc[scores["customer_id"]].reset_index()
                online_note = publish(Scored(scores=scores, features=order, as_of=day, models=models,
                                             lookup=lookup if lookup is not None else lookup_keys(store, config)))
    return StoreScores(scores=scores, as_of=day, features_note=found.note + " (scored on Spark)" + erased_note,
                       snapshot_note=snapshot_note, online_note=online_note)

