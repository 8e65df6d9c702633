"""The scoring feature snapshot kept in the store by `cdp features --materialize`.

Scoring a million customers spends as long building their features as scoring them. The
features stage can build them once and keep them in the store (``scoring_features``: one
row per customer, every feature family plus the purchase history the next-best-category
model reads), and `cdp score` then reads them instead of building them again.

A materialized snapshot is used only while it still describes the store and the code:
same as-of day, same unify run (orders, events and profiles change only when `cdp unify`
runs), the same currency settings (money features are summed in the base currency) and
the same feature code (an upgrade may define a feature differently). Otherwise the caller
builds features afresh and says why. An erasure (`cdp forget`) deletes the person's row
like any other table's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from cdp.errors import CdpError
from store.interface import TableStore, TableWriter

TABLE = "scoring_features"
META_KEY = "scoring_features"


@dataclass(frozen=True)
class SnapshotStamp:
    """What a materialized snapshot was built from."""

    as_of: str
    unify_run: str
    currency: str
    built_at: str
    rows: int
    code: str = ""

    def key(self) -> str:
        """One text naming this snapshot (kept in the serving snapshot file's metadata)."""
        return json.dumps(asdict(self), sort_keys=True)


def currency_key(currency) -> str:
    """A short hash of the currency settings (base and rates) features were summed with."""
    text = json.dumps({"base": currency.base, "rates": sorted(dict(currency.rates).items())}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def feature_code() -> str:
    """A hash of the code that builds the scoring features: every module of `features/`
    (the whole scoring feature set is defined here, `features.scoring`)."""
    import features

    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(Path(features.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def write_snapshot(writer: TableWriter, features: pd.DataFrame, as_of: dt.date, currency: str, code: str,
                   now: dt.datetime, built_from: str) -> SnapshotStamp:
    """Replace the store's snapshot with ``features`` (inside the caller's transaction).

    ``built_from`` is the store's `latest_unify_run` as it was when the features were built:
    if a `cdp unify` has run since, they describe the store before it, and are refused.
    """
    if writer.latest_unify_run() != built_from:
        raise CdpError("the store was unified again while the features were built: run "
                       "`cdp features --materialize` again")
    stamp = SnapshotStamp(as_of=as_of.isoformat(), unify_run=built_from, currency=currency,
                          built_at=now.isoformat(timespec="seconds"), rows=len(features), code=code)
    writer.replace(TABLE, "features", features)
    writer.set_meta(META_KEY, json.dumps(asdict(stamp)))
    return stamp


@dataclass(frozen=True)
class Lookup:
    """What `read_snapshot` found: the features (None: build them), why, and the stamp."""

    features: pd.DataFrame | None
    note: str
    stamp: SnapshotStamp | None = None


def read_snapshot(store: TableStore, as_of: dt.date, currency: str, code: str, load: bool = True) -> Lookup:
    """The materialized features for ``as_of`` if they still describe the store, with a note
    saying which features are used or why the snapshot is not. Without ``load``, a current
    snapshot's features are left in the store (an empty frame stands for them): a stage that
    reads the table's files itself (Spark) needs only the verdict."""
    kept = store.meta(META_KEY)
    if kept is None or not store.has_table(TABLE):
        return Lookup(None, "no materialized features (`cdp features --materialize`): building them")
    stamp = SnapshotStamp(**json.loads(kept))
    if stamp.as_of != as_of.isoformat():
        return Lookup(None, f"materialized features are as of {stamp.as_of}, not {as_of}: building them")
    if stamp.unify_run != store.latest_unify_run():
        return Lookup(None, "materialized features predate the latest `cdp unify`: building them")
    if stamp.currency != currency:
        return Lookup(None, "materialized features were summed with other currency settings: building them")
    if stamp.code != code:
        return Lookup(None, "materialized features were built by another version of the feature code: "
                            "building them")
    features = store.read(TABLE) if load else pd.DataFrame()
    return Lookup(features, f"features materialized at {stamp.built_at} for {as_of}", stamp)


@dataclass(frozen=True)
class Materialized:
    """What `materialize` did: the features kept, their stamp, and the serving snapshot written."""

    features: pd.DataFrame
    stamp: SnapshotStamp
    serving_snapshot: Path


def materialize(config, as_of: dt.date | None = None, on_stage=None, now: dt.datetime | None = None,
                engine: str | None = None) -> Materialized:
    """`cdp features --materialize` as one function: build the scoring feature set
    (`features.scoring`) of every customer of the store ``config`` (a `cdp.config.Config`)
    describes, as of ``as_of`` (default: its last day with data), on ``engine`` (default
    ``[engine] kind``: DuckDB, or Spark on ``[engine] master``), keep it in the store
    (`write_snapshot`) and write the serving snapshot from it. Refused, with nothing
    written, if `cdp unify` ran while the features were built."""
    from features.as_of import resolve_as_of
    from features.engine import ENGINES, store_tables, unified_on_spark
    from features.scoring import scoring_features
    from profiles.lookup import lookup_keys
    from store.interface import open_configured, open_store
    from store.snapshot import ServingSnapshot

    stage = on_stage or (lambda text: None)
    engine = engine or config.engine.kind
    if engine not in ENGINES:
        raise CdpError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
    # No memory_limit here: the feature queries' window operators do not spill well, and a
    # read-only store holds nothing to protect. BENCHMARKS.md has what they use.
    with open_store(config.store.path, read_only=True) as store:
        tables = store_tables(store, config)
        day = resolve_as_of(store, as_of)
        built_from = store.latest_unify_run()
        erasures = store.erasures()
        stage(f"building features as of {day} on {engine}")
        if engine == "duckdb":
            features = scoring_features(tables, day)
        else:
            with unified_on_spark(store, config) as (on_spark, _work):
                features = scoring_features(on_spark, day)
        lookup = lookup_keys(store, config)
    moment = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    stage("keeping the features in the store and the serving snapshot")
    serving = ServingSnapshot.beside(config.store.path)
    # Both under the store's write lock: no `cdp forget` runs between them, and the people one
    # erased while the features were built are not written back.
    with open_configured(config.store) as store, store.writing() as writer:
        if writer.erasures() != erasures:
            features = writer.present(features)
        stamp = write_snapshot(writer, features, day, currency_key(config.currency), feature_code(), moment, built_from)
        serving.write(features, day, stamp.key(), lookup=(lookup.keys, lookup.settings.to_json()))
    return Materialized(features=features, stamp=stamp, serving_snapshot=serving.path)
