"""`cdp unify`: identity resolution, stable customer ids and golden records.

Three parts, kept apart as in record-linkage practice:

1. **Identifiers**: every source record's normalized identifiers (email, E.164 phone,
   external_id, and customer_key within its namespace), minus the ones that must not
   link (`find_exclusions`): placeholders on the block list and identifiers seen with
   implausibly many other identifiers (a shop's walk-in phone, a shared inbox).
   Excluded identifiers are reported in ``identifier_exclusions``.
2. **Linking** (`link_components`): records sharing any identifier are the same
   person, transitively: connected components of the record–identifier graph.
   A web cookie (anonymous_id) only attaches events that carry nothing else to the
   one customer its logged-in events belong to; it never joins two customers
   (`attach_anonymous`).
3. **Stable ids** (`assign_ids`): a component keeps the id its records had before.
   When new data joins components that had different ids, the oldest id survives
   and the others are recorded as merged into it; when a component breaks apart,
   the part holding most of the old records keeps the id. New people get an id
   derived from their first record, so rebuilding from the same data gives the same ids.

Golden records take each attribute's most recent non-null value, ties going to the
source listed first in cdp.toml.

The heavy set work (stacking records, the identifier table, co-occurrence counts, the
final joins) runs as SQL on the store's own connection; Python holds only integer
arrays (record and identifier numbers, component labels) and the distinct identifiers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cdp.config import Config, UnifyConfig
from cdp.errors import StoreError
from profiles.normalize import normalize_emails, normalize_phones, placeholder_emails, placeholder_phones
from store.duckdb_store import register
from store.interface import SqlStore, open_configured
from store.tables import replace_table

ID_TYPES = ("email", "phone", "external_id", "customer_key")
_KIND_CODES = {"customers": 0, "orders": 1, "events": 2}


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
    revived_ids: int
    excluded_identifiers: dict[str, int]


def find_exclusions(identifiers: pd.DataFrame, settings: UnifyConfig, regions: tuple[str, ...]) -> pd.DataFrame:
    """Identifiers that must not link: placeholders, the configured block list, and hubs.

    ``identifiers`` has one row per distinct identifier: ``id_type``, ``id_value``,
    ``id_key``, ``records`` and ``linked_identifiers`` (how many distinct other
    identifiers appear on the same records). A hub is an identifier with more than
    ``settings.max_linked_identifiers`` of them: no single person has that many emails
    and phones, a shared shop inbox or walk-in number does. Returns the excluded rows
    with a ``reason``.
    """
    reasons = pd.Series(pd.NA, index=identifiers.index, dtype="string")
    emails = (identifiers["id_type"] == "email").to_numpy()
    phones = (identifiers["id_type"] == "phone").to_numpy()
    email_flags = np.zeros(len(identifiers), dtype=bool)
    email_flags[emails] = placeholder_emails(identifiers.loc[emails, "id_value"]).to_numpy()
    reasons[email_flags] = "placeholder email"
    phone_flags = np.zeros(len(identifiers), dtype=bool)
    phone_flags[phones] = placeholder_phones(identifiers.loc[phones, "id_value"]).to_numpy()
    reasons[phone_flags] = "placeholder phone"
    blocked = _blocked_values(settings.blocked_identifiers, regions)
    listed = identifiers["id_value"].isin(blocked).to_numpy() & reasons.isna().to_numpy()
    reasons[listed] = "on the configured block list"
    hub = (identifiers["linked_identifiers"] > settings.max_linked_identifiers).to_numpy() & reasons.isna().to_numpy()
    reasons[hub] = f"seen with more than {settings.max_linked_identifiers} other identifiers"
    out = identifiers.assign(reason=reasons)
    return out[out["reason"].notna()].reset_index(drop=True)


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


def link_components(n_records: int, rec: np.ndarray, ident: np.ndarray) -> np.ndarray:
    """Component label per record (records sharing an identifier share a label); -1 if none.

    ``rec`` and ``ident`` are the record and identifier numbers of each usable edge.
    """
    labels = np.full(n_records, -1, dtype=np.int64)
    if len(rec) == 0:
        return labels
    n_ids = int(ident.max()) + 1
    size = n_records + n_ids
    graph = coo_matrix((np.ones(len(rec), dtype=np.int8), (rec, n_records + ident)), shape=(size, size))
    _, component = connected_components(graph, directed=False)
    linked = np.zeros(n_records, dtype=bool)
    linked[rec] = True
    labels[linked] = component[:n_records][linked]
    return labels


def attach_anonymous(rec: np.ndarray, cookie: pd.Series, labels: np.ndarray) -> np.ndarray:
    """Give cookie-only events the component of the one person the cookie logged in as.

    ``rec`` and ``cookie`` list the records that carry an anonymous_id.
    """
    labels = labels.copy()
    own = labels[rec]
    known = pd.DataFrame({"cookie": cookie[own >= 0].to_numpy(), "label": own[own >= 0]}).drop_duplicates()
    owners = known.groupby("cookie")["label"].agg(["first", "size"])
    unique_owner = owners.loc[owners["size"] == 1, "first"]
    orphan = own < 0
    labels[rec[orphan]] = cookie[orphan].map(unique_owner).fillna(-1).astype("int64").to_numpy()
    return labels


def singleton_customers(is_customer_record: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Customer records with no usable identifier still describe a person: own component each."""
    labels = labels.copy()
    lonely = is_customer_record & (labels < 0)
    start = labels.max() + 1 if len(labels) else 0
    labels[lonely] = start + np.arange(int(lonely.sum()))
    return labels


def new_customer_id(first_source: str, first_key: str, salt: int = 0) -> str:
    """A deterministic id from a component's first record (salted on the rare collision)."""
    digest = hashlib.blake2b(f"{first_source}\x1f{first_key}\x1f{salt}".encode(), digest_size=8).hexdigest()
    return f"c{digest}"


@dataclass(frozen=True)
class Assignment:
    """Customer id per record (None where unlinked) plus the id history this run adds."""

    customer_id: np.ndarray
    created: list[str]
    merges: list[tuple[str, str]]  # (merged id, surviving id)
    splits: list[tuple[str, str, int]]  # (old id, id its records moved to, records moved)
    retired: list[str]
    revived: tuple[str, ...] | list[str] = ()  # merged or retired ids given back to the records that founded them
    # (source, source_key) each created id came from
    founded_by: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()


def assign_ids(labels: np.ndarray, previous: np.ndarray, registry: pd.DataFrame,
               first_record: Callable[[int], tuple[str, str]], founders: dict[str, int] | None = None) -> Assignment:
    """Stable ids for components.

    ``labels`` is each record's component (-1: unlinked); ``previous`` each record's id
    from the last run (None for new records); ``registry`` every id issued so far with
    ``customer_id``, ``created_at``, ``status``; ``first_record(rec)`` gives the
    (source, source_key) a new id is derived from; ``founders`` maps an id to the record
    it was derived from, which breaks ties when an id's records part evenly.
    """
    n = len(labels)
    linked = labels >= 0
    rec_numbers = np.arange(n)
    comp, comp_index = np.unique(labels[linked], return_inverse=True)
    comp_first = np.full(len(comp), n, dtype=np.int64)
    np.minimum.at(comp_first, comp_index, rec_numbers[linked])

    prev = pd.Series(previous, dtype="object")
    has_prev = linked & prev.notna().to_numpy()
    held = pd.DataFrame({"prev": prev[has_prev].to_numpy(), "comp": comp_index[has_prev[linked]]})
    held = held.groupby(["prev", "comp"], sort=False).size().rename("n").reset_index()
    held["first"] = comp_first[held["comp"].to_numpy()]
    founder_rec = held["prev"].map(founders or {})
    founder_rec = founder_rec.fillna(-1).to_numpy(dtype=np.int64)
    founder_label = np.where(founder_rec >= 0, labels[np.clip(founder_rec, 0, None)], -2)
    held["founder"] = founder_label == comp[held["comp"].to_numpy()]
    # Each previous id goes to the component holding most of its records; on a tie, to the one
    # holding the record that founded it, then to the earliest.
    winners = held.sort_values(["prev", "n", "founder", "first"], ascending=[True, False, False, True])
    winners = winners.drop_duplicates("prev")
    # A component that won several ids keeps the oldest and records the others as merged into it.
    born = registry[["customer_id", "created_at"]].rename(columns={"customer_id": "prev", "created_at": "created"})
    winners = winners.merge(born, on="prev", how="left").sort_values(["comp", "created", "prev"])
    survivors = winners.drop_duplicates("comp")
    ids = np.full(len(comp), None, dtype=object)
    ids[survivors["comp"].to_numpy()] = survivors["prev"].to_numpy()
    survivor_of_comp = ids.copy()
    losers = winners[winners["prev"].to_numpy() != survivor_of_comp[winners["comp"].to_numpy()]]
    merges = list(zip(losers["prev"], survivor_of_comp[losers["comp"].to_numpy()]))

    status = dict(zip(registry["customer_id"], registry["status"]))
    taken = set(registry["customer_id"])
    in_use = set(survivors["prev"])
    created, revived, founded_by = [], [], []
    for position in np.flatnonzero(pd.isna(ids)):
        source, key = first_record(int(comp_first[position]))
        salt = 0
        candidate = new_customer_id(source, key)
        while candidate in taken:
            # The id this record founded earlier, since merged away or retired: give it back.
            if status.get(candidate) in ("merged", "retired") and candidate not in in_use:
                break
            salt += 1  # a collision, or an id still in use by another component
            candidate = new_customer_id(source, key, salt)
        if candidate in status:
            revived.append(candidate)
        else:
            created.append(candidate)
            founded_by.append((source, key))
        taken.add(candidate)
        in_use.add(candidate)
        ids[position] = candidate

    customer_id = np.full(n, None, dtype=object)
    customer_id[linked] = ids[comp_index]
    moved = pd.DataFrame({"prev": prev[has_prev].to_numpy(), "now": customer_id[has_prev]})
    resolved = moved["prev"].replace(dict(merges)) if merges else moved["prev"]
    moved = moved[resolved.to_numpy() != moved["now"].to_numpy()]
    splits = [(p, q, int(c)) for (p, q), c in moved.groupby(["prev", "now"]).size().items()]
    live = set(winners["prev"])
    active = registry.loc[registry["status"] == "active", "customer_id"]
    retired = sorted(set(active) - live)
    return Assignment(customer_id=customer_id, created=created, merges=merges, splits=splits, retired=retired,
                      revived=revived, founded_by=founded_by)


def unify(store: SqlStore, config: Config, now: datetime, run_id: str) -> UnifyReport:
    """Resolve identities over everything ingested and rewrite the unified tables, atomically."""
    con = store.con
    _stage_records(store, config)
    n_records = store.count("unify_recs")
    if n_records == 0:
        raise StoreError(f"store {store.path} holds no ingested records: run `cdp ingest` first")
    _stage_identifiers(store)
    identifiers = store.frame(
        "SELECT id_key, id_type, id_value, records, linked_identifiers FROM unify_ids ORDER BY ident")
    regions = tuple(sorted({s.default_phone_region for s in config.sources if s.default_phone_region}))
    excluded = find_exclusions(identifiers, config.unify, regions)
    register(con, "unify_excluded_keys", excluded[["id_key"]])

    edges = con.sql("""SELECT e.rec, i.ident FROM unify_edges e JOIN unify_ids i USING (id_key)
                       WHERE e.id_key NOT IN (SELECT id_key FROM unify_excluded_keys)""").fetchnumpy()
    labels = link_components(n_records, edges["rec"].astype(np.int64), edges["ident"].astype(np.int64))
    cookies = store.frame("SELECT rec, anonymous_id FROM unify_recs WHERE anonymous_id IS NOT NULL ORDER BY rec")
    labels = attach_anonymous(cookies["rec"].to_numpy(dtype=np.int64), cookies["anonymous_id"], labels)
    kind = con.sql("SELECT kind_code FROM unify_recs ORDER BY rec").fetchnumpy()["kind_code"]
    labels = singleton_customers(kind == _KIND_CODES["customers"], labels)

    previous = np.full(n_records, None, dtype=object)
    if store.has_table("record_map"):
        prev = store.frame("""SELECT r.rec, m.customer_id FROM unify_recs r
                              JOIN record_map m USING (source, source_key)""")
        previous[prev["rec"].to_numpy(dtype=np.int64)] = prev["customer_id"].to_numpy(dtype=object)
    registry = store.frame("SELECT customer_id, created_at, status FROM customer_ids")

    keys = store.frame("SELECT source, source_key FROM unify_recs ORDER BY rec")
    sources = keys["source"].to_numpy(dtype=object)
    source_keys = keys["source_key"].to_numpy(dtype=object)
    del keys
    founded = store.frame("""SELECT c.customer_id, r.rec FROM customer_ids c
                             JOIN unify_recs r ON r.source = c.founder_source AND r.source_key = c.founder_key""")
    founders = dict(zip(founded["customer_id"], founded["rec"].astype("int64")))
    assignment = assign_ids(labels, previous, registry, lambda rec: (sources[rec], source_keys[rec]), founders)

    customer_id = assignment.customer_id
    linked = pd.notna(customer_id)
    unlinked_orders = int((~linked & (kind == _KIND_CODES["orders"])).sum())
    unlinked_events = int((~linked & (kind == _KIND_CODES["events"])).sum())
    report = UnifyReport(
        records=n_records,
        linked_records=int(linked.sum()),
        unlinked_orders=unlinked_orders,
        unlinked_events=unlinked_events,
        customers=len(set(customer_id[linked])),
        new_customers=len(assignment.created),
        merged_ids=len(assignment.merges),
        split_ids=len({s[0] for s in assignment.splits}),
        retired_ids=len(assignment.retired),
        revived_ids=len(assignment.revived),
        excluded_identifiers=excluded.groupby("reason").size().astype(int).to_dict(),
    )
    assigned = pa.table({"rec": pa.array(np.flatnonzero(linked), pa.int64()),
                         "customer_id": pa.array(customer_id[linked].tolist(), pa.string())})
    with store.transaction() as con:
        con.register("unify_assigned", assigned)
        _write(con, excluded, assignment, now, run_id)
        con.execute("INSERT INTO unify_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
            run_id, now, report.records, report.linked_records, report.customers, report.new_customers,
            report.merged_ids, report.split_ids])
    for name in ("unify_assigned", "unify_excluded_keys"):
        con.unregister(name)
    for name in ("unify_recs", "unify_edges", "unify_ids", "unify_source_rank"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    return report


def _stage_records(store: SqlStore, config: Config) -> None:
    """TEMP TABLE unify_recs: every source record, numbered in (source, source_key) order."""
    rank = pd.DataFrame({"source": [s.name for s in config.sources],
                         "source_rank": np.arange(len(config.sources), dtype=np.int64)})
    register(store.con, "unify_source_rank_frame", rank)
    store.con.execute("CREATE OR REPLACE TEMP TABLE unify_source_rank AS SELECT * FROM unify_source_rank_frame")
    store.con.unregister("unify_source_rank_frame")
    store.con.execute("""CREATE OR REPLACE TEMP TABLE unify_recs AS
        SELECT (row_number() OVER (ORDER BY r.source, r.source_key) - 1)::BIGINT AS rec, r.*,
               k.source_rank
        FROM (
            SELECT 0 AS kind_code, 'customers' AS kind, rowid AS src_row, source, source_key, customer_key,
                   key_namespace, email_norm, phone_norm, external_id, NULL::VARCHAR AS anonymous_id,
                   created_at AS record_time FROM source_customers
            UNION ALL
            SELECT 1, 'orders', rowid, source, source_key, customer_key, key_namespace, email_norm, phone_norm,
                   external_id, NULL, timestamp FROM source_orders
            UNION ALL
            SELECT 2, 'events', rowid, source, source_key, customer_key, key_namespace, email_norm, phone_norm,
                   external_id, anonymous_id, timestamp FROM source_events
        ) r JOIN unify_source_rank k USING (source)""")


def _stage_identifiers(store: SqlStore) -> None:
    """TEMP TABLES unify_edges (record, identifier) and unify_ids (distinct identifiers with counts)."""
    con = store.con
    con.execute("""CREATE OR REPLACE TEMP TABLE unify_edges AS
        SELECT rec, 'email' AS id_type, email_norm AS id_value, 'email:' || email_norm AS id_key
          FROM unify_recs WHERE email_norm IS NOT NULL
        UNION ALL SELECT rec, 'phone', phone_norm, 'phone:' || phone_norm FROM unify_recs WHERE phone_norm IS NOT NULL
        UNION ALL SELECT rec, 'external_id', external_id, 'external_id:' || external_id
          FROM unify_recs WHERE external_id IS NOT NULL
        UNION ALL SELECT rec, 'customer_key', customer_key, 'customer_key:' || key_namespace || chr(31) || customer_key
          FROM unify_recs WHERE customer_key IS NOT NULL""")
    con.execute("""CREATE OR REPLACE TEMP TABLE unify_ids AS
        WITH multi AS (
            SELECT e.rec, e.id_key FROM unify_edges e
            WHERE e.rec IN (SELECT rec FROM unify_edges GROUP BY rec HAVING count(*) > 1)
        ), degree AS (
            SELECT a.id_key, count(DISTINCT b.id_key) AS linked_identifiers
            FROM multi a JOIN multi b ON a.rec = b.rec AND a.id_key <> b.id_key
            GROUP BY a.id_key
        ), counts AS (
            SELECT id_key, any_value(id_type) AS id_type, any_value(id_value) AS id_value,
                   count(DISTINCT rec) AS records
            FROM unify_edges GROUP BY id_key
        )
        SELECT (row_number() OVER (ORDER BY c.id_key) - 1)::BIGINT AS ident, c.*,
               coalesce(d.linked_identifiers, 0) AS linked_identifiers
        FROM counts c LEFT JOIN degree d USING (id_key)""")


def _write(con, excluded: pd.DataFrame, a: Assignment, now: datetime, run_id: str) -> None:
    con.execute("""CREATE OR REPLACE TEMP TABLE unify_linked AS
        SELECT r.*, a.customer_id FROM unify_recs r JOIN unify_assigned a USING (rec)""")
    replace_table(con, "record_map", "unify", "SELECT source, source_key, kind, customer_id FROM unify_linked")
    replace_table(con, "identifier_map", "unify", """
        SELECT DISTINCT l.customer_id, e.id_type, e.id_value, l.source
        FROM unify_edges e JOIN unify_linked l USING (rec)
        WHERE e.id_key NOT IN (SELECT id_key FROM unify_excluded_keys)""")
    register(con, "unify_excluded", excluded.assign(run_id=run_id)[
        ["id_type", "id_value", "reason", "records", "linked_identifiers", "run_id"]])
    replace_table(con, "identifier_exclusions", "unify", "SELECT * FROM unify_excluded ORDER BY id_type, id_value")
    con.unregister("unify_excluded")

    replace_table(con, "orders", "unify", """
        SELECT o.source || ':' || o.source_key AS order_id, m.customer_id, o.source, o.source_key,
               o.timestamp, o.amount, o.quantity, o.product_id, o.category, o.channel, o.currency,
               o.discount, o.is_return
        FROM source_orders o LEFT JOIN (SELECT src_row, customer_id FROM unify_linked WHERE kind_code = 1) m
          ON m.src_row = o.rowid
        WHERE o.source IN (SELECT source FROM unify_source_rank)""")
    replace_table(con, "events", "unify", """
        SELECT e.source || ':' || e.source_key AS event_id, m.customer_id, e.anonymous_id, e.source,
               e.source_key, e.timestamp, e.event_type, e.channel, e.campaign, e.product_id, e.category, e.value
        FROM source_events e LEFT JOIN (SELECT src_row, customer_id FROM unify_linked WHERE kind_code = 2) m
          ON m.src_row = e.rowid
        WHERE e.source IN (SELECT source FROM unify_source_rank)""")
    _write_golden(con)
    con.execute("DROP TABLE unify_linked")

    history = (
        [("created", c, None, 0) for c in a.created]
        + [("merged", m, s, 0) for m, s in a.merges]
        + [("split", old, new, n) for old, new, n in a.splits]
        + [("retired", r, None, 0) for r in a.retired]
        + [("revived", r, None, 0) for r in a.revived]
    )
    if history:
        frame = pd.DataFrame(history, columns=["event", "customer_id", "other_id", "records"]).assign(
            run_id=run_id, happened_at=pd.Timestamp(now))
        register(con, "unify_history", frame)
        con.execute("INSERT INTO id_events SELECT run_id, happened_at, event, customer_id, other_id, records "
                    "FROM unify_history")
        con.unregister("unify_history")
    if a.created:
        register(con, "unify_created", pd.DataFrame({
            "customer_id": a.created, "founder_source": [f[0] for f in a.founded_by],
            "founder_key": [f[1] for f in a.founded_by]}))
        con.execute("INSERT INTO customer_ids SELECT customer_id, ?, ?, 'active', NULL, ?, founder_source, founder_key "
                    "FROM unify_created", [pd.Timestamp(now), run_id, pd.Timestamp(now)])
        con.unregister("unify_created")
    for merged, survivor in a.merges:
        con.execute("UPDATE customer_ids SET status = 'merged', merged_into = ?, updated_at = ? "
                    "WHERE customer_id = ? OR merged_into = ?", [survivor, pd.Timestamp(now), merged, merged])
    for revived in a.revived:
        con.execute("UPDATE customer_ids SET status = 'active', merged_into = NULL, updated_at = ? "
                    "WHERE customer_id = ?", [pd.Timestamp(now), revived])
    for retired in a.retired:
        con.execute("UPDATE customer_ids SET status = 'retired', updated_at = ? WHERE customer_id = ?",
                    [pd.Timestamp(now), retired])


def _write_golden(con) -> None:
    """Golden records: per attribute, the most recent non-null value, then the first-listed source.

    Orders and events only carry identifiers, and a customer's thousands of them repeat a few
    combinations, so they are first collapsed to one row per combination (keeping its latest
    record), which leaves the choice the same and the aggregate small.
    """
    con.execute("""CREATE OR REPLACE TEMP TABLE unify_golden_input AS
        WITH ids AS (
            SELECT l.customer_id, l.kind_code, l.src_row, l.source, l.source_key, l.source_rank, l.record_time AS t,
                   CASE WHEN x_email.id_key IS NULL THEN l.email_norm END AS email,
                   CASE WHEN x_phone.id_key IS NULL THEN l.phone_norm END AS phone,
                   CASE WHEN x_ext.id_key IS NULL THEN l.external_id END AS external_id
            FROM unify_linked l
            LEFT JOIN unify_excluded_keys x_email ON x_email.id_key = 'email:' || l.email_norm
            LEFT JOIN unify_excluded_keys x_phone ON x_phone.id_key = 'phone:' || l.phone_norm
            LEFT JOIN unify_excluded_keys x_ext ON x_ext.id_key = 'external_id:' || l.external_id
        ), activity AS (
            SELECT customer_id, kind_code, source, source_rank, email, phone, external_id,
                   max({'t': coalesce(t, '-infinity'::TIMESTAMP), 'key': source_key}) AS latest,
                   min(t) AS first_t, max(t) AS last_t, count(*) AS n
            FROM ids WHERE kind_code <> 0
            GROUP BY customer_id, kind_code, source, source_rank, email, phone, external_id
        )
        SELECT customer_id, kind_code, source, source_rank, latest.t AS t_sort, latest.key AS source_key,
               first_t, last_t, n, email, phone, external_id,
               NULL::VARCHAR AS first_name, NULL::VARCHAR AS last_name, NULL::DATE AS birth_date,
               NULL::VARCHAR AS gender, NULL::VARCHAR AS country, NULL::VARCHAR AS city,
               NULL::BOOLEAN AS consent_email, NULL::BOOLEAN AS consent_sms,
               NULL::BOOLEAN AS consent_ads
        FROM activity
        UNION ALL
        SELECT i.customer_id, 0, i.source, i.source_rank, coalesce(i.t, '-infinity'::TIMESTAMP), i.source_key,
               i.t, i.t, 1, i.email, i.phone, i.external_id,
               c.first_name, c.last_name, c.birth_date, c.gender, c.country, c.city, c.consent_email, c.consent_sms,
               c.consent_ads
        FROM ids i JOIN source_customers c ON c.rowid = i.src_row
        WHERE i.kind_code = 0""")

    def pick(column: str) -> str:
        return (f"arg_max({column}, {{'t': t_sort, 'rank': -source_rank, 'key': source_key}}) "
                f"FILTER (WHERE {column} IS NOT NULL) AS {column}")

    attributes = ("first_name", "last_name", "email", "phone", "external_id", "birth_date", "gender",
                  "country", "city", "consent_email", "consent_sms", "consent_ads")
    replace_table(con, "customers", "unify", f"""
        SELECT customer_id, {', '.join(pick(a) for a in attributes)},
            min(first_t) AS first_seen, max(last_t) AS last_seen,
            sum(n)::BIGINT AS n_records,
            coalesce(sum(n) FILTER (WHERE kind_code = 1), 0)::BIGINT AS n_orders,
            coalesce(sum(n) FILTER (WHERE kind_code = 2), 0)::BIGINT AS n_events,
            string_agg(DISTINCT source, ',' ORDER BY source) AS sources
        FROM unify_golden_input
        GROUP BY customer_id""")
    con.execute("DROP TABLE unify_golden_input")


def unify_on_engine(store: SqlStore, config: Config, now: datetime, run_id: str) -> UnifyReport:
    """`unify` where ``[engine]`` says: on Spark (`profiles.unify_spark`) for a Parquet store
    with ``kind = "spark"``, else in the store's own DuckDB."""
    from store.parquet_store import ParquetStore

    if config.engine.kind == "spark" and isinstance(store, ParquetStore):
        from profiles.unify_spark import unify_on_spark
        from store.spark import engine_session

        with engine_session(config.engine, app_name="cdp-ml unify") as (session, work):
            return unify_on_spark(store, config, session, work, now=now, run_id=run_id)
    return unify(store, config, now=now, run_id=run_id)


def unify_store(config: Config, now: datetime, run_id: str) -> UnifyReport:
    """`unify_on_engine` on the store ``config`` describes, opened (and closed) here."""
    with open_configured(config.store) as store:
        return unify_on_engine(store, config, now=now, run_id=run_id)
