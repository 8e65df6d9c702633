"""`cdp unify`: identity resolution, stable customer ids and golden records.

Three parts, kept apart as in record-linkage practice:

1. **Identifiers** (`identifier_edges`): every source record's normalized identifiers
   (email, E.164 phone, external_id, and customer_key within its namespace), minus
   the ones that must not link: placeholders on the block list and identifiers seen
   with implausibly many other identifiers (a shop's walk-in phone, a shared inbox).
   Excluded identifiers are reported in ``identifier_exclusions``.
2. **Linking** (`link_components`): records sharing any identifier are the same
   person, transitively: connected components of the record–identifier graph.
   A web cookie (anonymous_id) only attaches events that carry nothing else to the
   one customer its logged-in events belong to; it never joins two customers.
3. **Stable ids** (`assign_ids`): a component keeps the id its records had before.
   When new data joins components that had different ids, the oldest id survives
   and the others are recorded as merged into it; when a component breaks apart,
   the part holding most of the old records keeps the id. New people get an id
   derived from their first record, so rebuilding from the same data gives the same ids.

Golden records take each attribute's most recent non-null value, ties going to the
source listed first in cdp.toml.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cdp.config import Config, UnifyConfig
from cdp.errors import StoreError
from profiles.normalize import normalize_emails, normalize_phones, placeholder_emails, placeholder_phones
from profiles.store import Store, register

ID_TYPES = ("email", "phone", "external_id", "customer_key")


@dataclass(frozen=True)
class UnifyReport:
    """What a unify run found and changed; printed by the CLI, stored in ``unify_runs``."""

    records: int
    linked_records: int
    unlinked_orders: int
    unlinked_events: int
    customers: int
    new_customers: int
    merged_ids: int
    split_ids: int
    retired_ids: int
    excluded_identifiers: dict[str, int]


def load_records(store: Store, config: Config) -> pd.DataFrame:
    """Every source record with its identifiers, ordered by (source, source_key)."""
    rank = pd.DataFrame({"source": [s.name for s in config.sources],
                         "source_rank": np.arange(len(config.sources), dtype=np.int64)})
    register(store.con, "source_rank", rank)
    frame = store.frame("""
        SELECT r.kind, r.source, r.source_key, r.customer_key, r.key_namespace, r.email_norm,
               r.phone_norm, r.external_id, r.anonymous_id, r.record_time,
               coalesce(k.source_rank, 1000000) AS source_rank
        FROM (
            SELECT 'customers' AS kind, source, source_key, customer_key, key_namespace, email_norm,
                   phone_norm, external_id, NULL::VARCHAR AS anonymous_id,
                   coalesce(created_at, ingested_at) AS record_time FROM source_customers
            UNION ALL
            SELECT 'orders', source, source_key, customer_key, key_namespace, email_norm, phone_norm,
                   external_id, NULL, timestamp FROM source_orders
            UNION ALL
            SELECT 'events', source, source_key, customer_key, key_namespace, email_norm, phone_norm,
                   external_id, anonymous_id, timestamp FROM source_events
        ) r LEFT JOIN source_rank k USING (source)
        ORDER BY r.source, r.source_key""")
    store.con.unregister("source_rank")
    return frame


def identifier_edges(records: pd.DataFrame) -> pd.DataFrame:
    """Long table (rec, id_type, id_value, id_key) of every identifier on every record."""
    parts = []
    rec = np.arange(len(records), dtype=np.int64)
    for id_type in ID_TYPES:
        column = "email_norm" if id_type == "email" else "phone_norm" if id_type == "phone" else id_type
        values = records[column].astype("string")
        if id_type == "customer_key":
            keyed = records["key_namespace"].astype("string") + "\x1f" + values
        else:
            keyed = values
        present = values.notna().to_numpy()
        parts.append(pd.DataFrame({
            "rec": rec[present],
            "id_type": id_type,
            "id_value": values[present].to_numpy(),
            "id_key": (id_type + ":" + keyed[present]).to_numpy(),
        }))
    edges = pd.concat(parts, ignore_index=True)
    edges["id_type"] = edges["id_type"].astype("string")
    return edges


def find_exclusions(edges: pd.DataFrame, settings: UnifyConfig, regions: tuple[str, ...]) -> pd.DataFrame:
    """Identifiers that must not link: placeholders, the configured block list, and hubs.

    A hub is an identifier seen on records together with more than
    ``settings.max_linked_identifiers`` distinct other identifiers: no single person
    has that many emails and phones, a shared shop inbox or walk-in number does.
    """
    distinct = edges.drop_duplicates("id_key")[["id_type", "id_value", "id_key"]]
    reasons = pd.Series(pd.NA, index=distinct.index, dtype="string")
    emails = distinct["id_type"] == "email"
    phones = distinct["id_type"] == "phone"
    reasons[emails & placeholder_emails(distinct["id_value"].where(emails, ""))] = "placeholder email"
    phone_flags = pd.Series(False, index=distinct.index)
    phone_flags[phones] = placeholder_phones(distinct.loc[phones, "id_value"]).to_numpy()
    reasons[phone_flags] = "placeholder phone"

    blocked = _blocked_values(settings.blocked_identifiers, regions)
    reasons[distinct["id_value"].isin(blocked) & reasons.isna()] = "on the configured block list"

    # Hubs: distinct co-occurring identifiers per identifier (a self-join on the record, in DuckDB).
    con = duckdb.connect()
    con.register("edges", edges[["rec", "id_key"]])
    stats = con.sql("""
        SELECT a.id_key, count(DISTINCT a.rec) AS records,
               count(DISTINCT b.id_key) FILTER (WHERE b.id_key <> a.id_key) AS linked_identifiers
        FROM edges a JOIN edges b ON a.rec = b.rec
        GROUP BY a.id_key""").to_arrow_table().to_pandas(types_mapper=pd.ArrowDtype)
    con.close()
    stats = stats.set_index("id_key")
    distinct = distinct.assign(
        linked_identifiers=distinct["id_key"].map(stats["linked_identifiers"]).astype("int64"),
        records=distinct["id_key"].map(stats["records"]).astype("int64"),
    )
    hub = (distinct["linked_identifiers"] > settings.max_linked_identifiers) & reasons.isna()
    reasons[hub] = f"seen with more than {settings.max_linked_identifiers} other identifiers"
    distinct["reason"] = reasons
    return distinct[distinct["reason"].notna()].reset_index(drop=True)


def _blocked_values(values: tuple[str, ...], regions: tuple[str, ...]) -> set[str]:
    """The configured block list, normalized the way identifiers are."""
    out: set[str] = set()
    if not values:
        return out
    series = pd.Series(list(values), dtype="string")
    out |= set(series.str.strip())
    out |= set(normalize_emails(series).dropna())
    for region in regions or (None,):
        out |= set(normalize_phones(series, region).dropna())
    return out


def link_components(n_records: int, edges: pd.DataFrame) -> np.ndarray:
    """Component label per record (records sharing an identifier share a label); -1 if no identifier."""
    labels = np.full(n_records, -1, dtype=np.int64)
    if edges.empty:
        return labels
    id_index, _ = pd.factorize(edges["id_key"])
    n_ids = int(id_index.max()) + 1
    rec = edges["rec"].to_numpy()
    graph = coo_matrix((np.ones(len(rec), dtype=np.int8), (rec, n_records + id_index)),
                       shape=(n_records + n_ids, n_records + n_ids))
    _, component = connected_components(graph, directed=False)
    linked = np.zeros(n_records, dtype=bool)
    linked[rec] = True
    labels[linked] = component[:n_records][linked]
    return labels


def attach_anonymous(records: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """Give cookie-only events the component of the one person the cookie logged in as."""
    labels = labels.copy()
    cookie = records["anonymous_id"].astype("string")
    has_cookie = cookie.notna().to_numpy()
    known = pd.DataFrame({"cookie": cookie[has_cookie & (labels >= 0)], "label": labels[has_cookie & (labels >= 0)]})
    owners = known.drop_duplicates().groupby("cookie")["label"].agg(["first", "size"])
    unique_owner = owners.loc[owners["size"] == 1, "first"]
    orphan = has_cookie & (labels < 0)
    labels[orphan] = cookie[orphan].map(unique_owner).fillna(-1).astype("int64").to_numpy()
    return labels


def singleton_customers(records: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """Customer records with no usable identifier still describe a person: own component each."""
    labels = labels.copy()
    lonely = (records["kind"].to_numpy() == "customers") & (labels < 0)
    start = labels.max() + 1 if len(labels) else 0
    labels[lonely] = start + np.arange(int(lonely.sum()))
    return labels


def new_customer_id(first_source: str, first_key: str, salt: int = 0) -> str:
    """A deterministic id from a component's first record (salted on the rare collision)."""
    digest = hashlib.blake2b(f"{first_source}\x1f{first_key}\x1f{salt}".encode(), digest_size=8).hexdigest()
    return f"c{digest}"


@dataclass(frozen=True)
class Assignment:
    """Customer id per record plus the id history this run adds."""

    customer_id: pd.Series
    created: list[str]
    merges: list[tuple[str, str]]  # (merged id, surviving id)
    splits: list[tuple[str, str, int]]  # (old id, id its records moved to, records moved)
    retired: list[str]


def assign_ids(records: pd.DataFrame, labels: np.ndarray, previous: pd.Series, registry: pd.DataFrame) -> Assignment:
    """Stable ids for components.

    ``previous`` is each record's id from the last run (NA for new records);
    ``registry`` is every id issued so far with ``customer_id``, ``created_at``, ``status``.
    """
    frame = pd.DataFrame({"label": labels, "prev": previous.to_numpy(), "rec": np.arange(len(labels))})
    linked = frame[frame["label"] >= 0]
    comp_first = linked.groupby("label")["rec"].min()

    # Each previous id goes to the component holding most of its records (ties: earliest component).
    held = linked.dropna(subset=["prev"]).groupby(["prev", "label"]).size().rename("n").reset_index()
    held["first"] = held["label"].map(comp_first)
    held = held.sort_values(["prev", "n", "first"], ascending=[True, False, True])
    winners = held.drop_duplicates("prev")
    # A component that won several ids keeps the oldest and records the others as merged into it.
    born = registry[["customer_id", "created_at"]].rename(columns={"customer_id": "prev", "created_at": "created"})
    winners = winners.merge(born, on="prev", how="left").sort_values(["label", "created", "prev"])
    survivors = winners.drop_duplicates("label").set_index("label")["prev"]
    merges = [(row.prev, survivors[row.label]) for row in winners.itertuples() if survivors[row.label] != row.prev]

    ids = pd.Series(comp_first.index.map(survivors), index=comp_first.index, dtype="object")
    taken = set(registry["customer_id"]) if len(registry) else set()
    sources = records["source"].to_numpy()
    keys = records["source_key"].to_numpy()
    fresh = ids.index[ids.isna()]
    firsts = comp_first[fresh].to_numpy()
    candidates = [new_customer_id(sources[f], keys[f]) for f in firsts]
    created = []
    for position, candidate in enumerate(candidates):
        salt = 0
        while candidate in taken:  # a collision, or a split-off part whose first record founded an older id
            salt += 1
            candidate = new_customer_id(sources[firsts[position]], keys[firsts[position]], salt)
        taken.add(candidate)
        created.append(candidate)
    ids[fresh] = created

    customer_id = pd.Series(frame["label"].map(ids), dtype="string")
    moved = frame.assign(now=customer_id).dropna(subset=["prev", "now"])
    resolved = moved["prev"].replace(dict(merges)) if merges else moved["prev"]
    moved = moved[resolved != moved["now"]]
    splits = [(p, n, int(c)) for (p, n), c in moved.groupby(["prev", "now"]).size().items()]
    live = set(winners["prev"])
    retired = sorted(set(registry.loc[registry["status"] == "active", "customer_id"]) - live) if len(registry) else []
    return Assignment(customer_id=customer_id, created=created, merges=merges, splits=splits, retired=retired)


def unify(store: Store, config: Config, now: datetime, run_id: str) -> UnifyReport:
    """Resolve identities over everything ingested and rewrite the unified tables, atomically."""
    records = load_records(store, config)
    if records.empty:
        raise StoreError(f"store {store.path} holds no ingested records: run `cdp ingest` first")
    edges = identifier_edges(records)
    regions = tuple(sorted({s.default_phone_region for s in config.sources if s.default_phone_region}))
    excluded = find_exclusions(edges, config.unify, regions)
    usable = edges[~edges["id_key"].isin(excluded["id_key"])]
    labels = link_components(len(records), usable)
    labels = attach_anonymous(records, labels)
    labels = singleton_customers(records, labels)

    previous, registry = _previous_state(store)
    prev_ids = records[["source", "source_key"]].merge(previous, on=["source", "source_key"], how="left")["customer_id"]
    assignment = assign_ids(records, labels, prev_ids, registry)
    records["customer_id"] = assignment.customer_id.to_numpy()
    excluded_keys = set(excluded["id_key"])
    for id_type, column in (("email", "email_norm"), ("phone", "phone_norm"), ("external_id", "external_id")):
        values = records[column].astype("string")
        records[f"{id_type}_use"] = values.where(~(id_type + ":" + values).isin(excluded_keys).fillna(False), pd.NA)
    kinds = records["kind"]
    linked = records["customer_id"].notna()
    report = UnifyReport(
        records=len(records),
        linked_records=int(linked.sum()),
        unlinked_orders=int(((kinds == "orders") & ~linked).sum()),
        unlinked_events=int(((kinds == "events") & ~linked).sum()),
        customers=int(records["customer_id"].nunique()),
        new_customers=len(assignment.created),
        merged_ids=len(assignment.merges),
        split_ids=len({s[0] for s in assignment.splits}),
        retired_ids=len(assignment.retired),
        excluded_identifiers=excluded.groupby("reason").size().astype(int).to_dict(),
    )
    with store.transaction() as con:
        _write(con, records, usable, excluded, assignment, now, run_id)
        con.execute("INSERT INTO unify_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
            run_id, now, report.records, report.linked_records, report.customers, report.new_customers,
            report.merged_ids, report.split_ids])
    return report


def _previous_state(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    if store.has_table("record_map"):
        previous = store.frame("SELECT source, source_key, customer_id FROM record_map")
    else:
        previous = pd.DataFrame({"source": pd.Series(dtype="string"), "source_key": pd.Series(dtype="string"),
                                 "customer_id": pd.Series(dtype="string")})
    registry = store.frame("SELECT customer_id, created_at, status FROM customer_ids")
    return previous, registry


def _write(con, records: pd.DataFrame, usable: pd.DataFrame, excluded: pd.DataFrame,
           a: Assignment, now: datetime, run_id: str) -> None:
    assigned = records.loc[records["customer_id"].notna(), [
        "kind", "source", "source_key", "customer_id", "source_rank", "record_time",
        "email_use", "phone_use", "external_id_use"]]
    register(con, "assigned", assigned)
    con.execute("CREATE OR REPLACE TABLE record_map AS SELECT source, source_key, kind, customer_id FROM assigned")

    ident = usable.merge(records[["source", "customer_id"]], left_on="rec", right_index=True)
    ident = ident.dropna(subset=["customer_id"])[["customer_id", "id_type", "id_value", "source"]].drop_duplicates()
    register(con, "ident", ident)
    con.execute("CREATE OR REPLACE TABLE identifier_map AS SELECT * FROM ident")
    register(con, "excluded", excluded.assign(run_id=run_id)[
        ["id_type", "id_value", "reason", "records", "linked_identifiers", "run_id"]])
    con.execute("CREATE OR REPLACE TABLE identifier_exclusions AS SELECT * FROM excluded ORDER BY id_type, id_value")

    con.execute("""CREATE OR REPLACE TABLE orders AS
        SELECT o.source || ':' || o.source_key AS order_id, m.customer_id, o.source, o.source_key,
               o.timestamp, o.amount, o.quantity, o.product_id, o.category, o.channel, o.currency,
               o.discount, o.is_return
        FROM source_orders o LEFT JOIN assigned m
          ON m.kind = 'orders' AND m.source = o.source AND m.source_key = o.source_key""")
    con.execute("""CREATE OR REPLACE TABLE events AS
        SELECT e.source || ':' || e.source_key AS event_id, m.customer_id, e.anonymous_id, e.source,
               e.source_key, e.timestamp, e.event_type, e.channel, e.campaign, e.product_id, e.category, e.value
        FROM source_events e LEFT JOIN assigned m
          ON m.kind = 'events' AND m.source = e.source AND m.source_key = e.source_key""")
    _write_golden(con)

    history = (
        [("created", c, None, 0) for c in a.created]
        + [("merged", m, s, 0) for m, s in a.merges]
        + [("split", old, new, n) for old, new, n in a.splits]
        + [("retired", r, None, 0) for r in a.retired]
    )
    if history:
        frame = pd.DataFrame(history, columns=["event", "customer_id", "other_id", "records"]).assign(
            run_id=run_id, happened_at=pd.Timestamp(now))
        register(con, "history", frame)
        con.execute("INSERT INTO id_events SELECT run_id, happened_at, event, customer_id, other_id, records FROM history")
    if a.created:
        register(con, "created", pd.DataFrame({"customer_id": a.created}))
        con.execute("INSERT INTO customer_ids SELECT customer_id, ?, ?, 'active', NULL, ? FROM created",
                    [pd.Timestamp(now), run_id, pd.Timestamp(now)])
    for merged, survivor in a.merges:
        con.execute("UPDATE customer_ids SET status = 'merged', merged_into = ?, updated_at = ? "
                    "WHERE customer_id = ? OR merged_into = ?", [survivor, pd.Timestamp(now), merged, merged])
    for retired in a.retired:
        con.execute("UPDATE customer_ids SET status = 'retired', updated_at = ? WHERE customer_id = ?",
                    [pd.Timestamp(now), retired])
    for name in ("assigned", "ident", "excluded", "history", "created"):
        try:
            con.unregister(name)
        except Exception:  # noqa: BLE001 - only some are registered in a given run
            pass


def _write_golden(con) -> None:
    """Golden records: per attribute, the most recent non-null value, then the first-listed source."""
    con.execute("""CREATE OR REPLACE TEMP TABLE linked AS
        SELECT a.customer_id, a.kind, a.source, a.source_key, a.source_rank, a.record_time AS t,
               a.email_use AS email, a.phone_use AS phone, a.external_id_use AS external_id,
               c.first_name, c.last_name, c.birth_date, c.gender, c.country, c.city,
               c.consent_email, c.consent_sms
        FROM assigned a LEFT JOIN source_customers c
          ON a.kind = 'customers' AND c.source = a.source AND c.source_key = a.source_key""")

    def pick(column: str) -> str:
        return (f"arg_max({column}, {{'t': t, 'rank': -source_rank, 'key': source_key}}) "
                f"FILTER (WHERE {column} IS NOT NULL) AS {column}")

    attributes = ("first_name", "last_name", "email", "phone", "external_id", "birth_date", "gender",
                  "country", "city", "consent_email", "consent_sms")
    con.execute(f"""CREATE OR REPLACE TABLE customers AS
        SELECT customer_id, {', '.join(pick(a) for a in attributes)},
            min(t) AS first_seen, max(t) AS last_seen,
            count(*) AS n_records,
            count(*) FILTER (WHERE kind = 'orders') AS n_orders,
            count(*) FILTER (WHERE kind = 'events') AS n_events,
            string_agg(DISTINCT source, ',' ORDER BY source) AS sources
        FROM linked
        GROUP BY customer_id""")
    con.execute("DROP TABLE linked")
