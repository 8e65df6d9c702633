"""Every table of the store, declared once: who writes it and whether it holds personal data.

A stage writes only the tables it owns; erasure (`profiles.erasure`) empties every
``personal`` table of the person, and refuses to run while the store holds a table with a
``customer_id`` column that is declared nowhere (its rows could not be promised gone).
Tables whose shape comes from a query (the unified tables, the materialized features,
the scores) have no DDL here: their owner writes them whole with `replace_table`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.errors import StoreError

# Who writes a table: the stage (a package and its command) that owns it.
OWNERS = ("store", "ingest", "unify", "features", "training", "privacy", "marketing")


@dataclass(frozen=True)
class TableSpec:
    """One table: its ``owner`` (of `OWNERS`), whether it holds ``personal`` data (rows about
    a person, by identifier or customer id: erasure empties it of them), what it holds, and
    its DDL when its shape is fixed (None: written whole by its owner from a query)."""

    name: str
    owner: str
    personal: bool
    holds: str
    ddl: str | None = None


_IDENTITY = """
    source VARCHAR NOT NULL, source_key VARCHAR NOT NULL, row_number BIGINT NOT NULL,
    row_digest UBIGINT NOT NULL, file VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL,
    customer_key VARCHAR, key_namespace VARCHAR, email VARCHAR, email_norm VARCHAR,
    phone VARCHAR, phone_norm VARCHAR, external_id VARCHAR,
"""

_SPECS = (
    TableSpec("meta", "store", False, "the schema version and the stamps of derived tables",
              "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)"),
    TableSpec("source_customers", "ingest", True, "typed customer records, one per source record",
              f"""CREATE TABLE IF NOT EXISTS source_customers ({_IDENTITY}
        first_name VARCHAR, last_name VARCHAR, birth_date DATE, gender VARCHAR, country VARCHAR,
        city VARCHAR, consent_email BOOLEAN, consent_sms BOOLEAN, created_at TIMESTAMP, consent_ads BOOLEAN)"""),
    TableSpec("source_orders", "ingest", True, "typed order records, one per source record",
              f"""CREATE TABLE IF NOT EXISTS source_orders ({_IDENTITY}
        timestamp TIMESTAMP NOT NULL, amount DOUBLE NOT NULL, quantity BIGINT, product_id VARCHAR,
        category VARCHAR, channel VARCHAR, currency VARCHAR, discount DOUBLE, is_return BOOLEAN)"""),
    TableSpec("source_events", "ingest", True, "typed engagement events, one per source record",
              f"""CREATE TABLE IF NOT EXISTS source_events ({_IDENTITY}
        anonymous_id VARCHAR, timestamp TIMESTAMP NOT NULL, event_type VARCHAR NOT NULL,
        channel VARCHAR, campaign VARCHAR, product_id VARCHAR, category VARCHAR, value DOUBLE)"""),
    TableSpec("rejects", "ingest", True, "rejected source rows as read, with the reason",
              """CREATE TABLE IF NOT EXISTS rejects (source VARCHAR NOT NULL, file VARCHAR NOT NULL,
        row_number BIGINT NOT NULL, raw VARCHAR, reason VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL,
        sha256 VARCHAR NOT NULL, source_key VARCHAR)"""),
    TableSpec("ingestions", "ingest", False, "one row per source file ingested: counts and digests",
              """CREATE TABLE IF NOT EXISTS ingestions (run_id VARCHAR NOT NULL, source VARCHAR NOT NULL,
        file VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, config_digest VARCHAR NOT NULL,
        rows_read BIGINT, accepted BIGINT, rejected BIGINT, added BIGINT, updated BIGINT,
        removed BIGINT, unchanged BIGINT, skipped BOOLEAN, ingested_at TIMESTAMP NOT NULL)"""),
    TableSpec("customer_ids", "unify", True, "every customer id ever issued and what became of it",
              """CREATE TABLE IF NOT EXISTS customer_ids (customer_id VARCHAR PRIMARY KEY,
        created_at TIMESTAMP NOT NULL, created_run VARCHAR NOT NULL, status VARCHAR NOT NULL,
        merged_into VARCHAR, updated_at TIMESTAMP NOT NULL, founder_source VARCHAR, founder_key VARCHAR)"""),
    TableSpec("id_events", "unify", True, "creations, merges and splits of customer ids",
              """CREATE TABLE IF NOT EXISTS id_events (run_id VARCHAR NOT NULL, happened_at TIMESTAMP NOT NULL,
        event VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, other_id VARCHAR, records BIGINT)"""),
    TableSpec("unify_runs", "unify", False, "one row per unify run: counts",
              """CREATE TABLE IF NOT EXISTS unify_runs (run_id VARCHAR NOT NULL, ran_at TIMESTAMP NOT NULL,
        records BIGINT, linked_records BIGINT, customers BIGINT, new_customers BIGINT,
        merged_ids BIGINT, split_ids BIGINT)"""),
    TableSpec("record_map", "unify", True, "which customer each source record belongs to"),
    TableSpec("identifier_map", "unify", True, "which customer each normalized identifier belongs to"),
    TableSpec("identifier_exclusions", "unify", True, "identifiers kept from linking records, and why"),
    TableSpec("customers", "unify", True, "golden records, one per customer"),
    TableSpec("orders", "unify", True, "orders linked to customers"),
    TableSpec("events", "unify", True, "engagement events linked to customers"),
    TableSpec("scoring_features", "features", True, "the materialized features of every customer as of a day"),
    TableSpec("scores", "training", True, "the latest scores of every customer, with the model versions"),
    TableSpec("tombstones", "privacy", False, "keyed hashes of erased people's identifiers, kept out of ingest",
              """CREATE TABLE IF NOT EXISTS tombstones (id_type VARCHAR NOT NULL, id_hash VARCHAR NOT NULL,
        key_id VARCHAR NOT NULL, erased_at TIMESTAMP NOT NULL, audit_id VARCHAR NOT NULL)"""),
    TableSpec("audit_log", "privacy", False,
              "who exported or erased whom, when, and what was deleted (no personal data)",
              """CREATE TABLE IF NOT EXISTS audit_log (audit_id VARCHAR NOT NULL, logged_at TIMESTAMP NOT NULL,
        action VARCHAR NOT NULL, actor VARCHAR NOT NULL, details VARCHAR NOT NULL)"""),
    TableSpec("audience_members", "marketing", True,
              "who the last export of each audience sent, per format: SHA-256 hashes of the normalized email "
              "and phone as the platform was sent them (never the values); customer ids to diff and erase by",
              """CREATE TABLE IF NOT EXISTS audience_members (audience VARCHAR NOT NULL, format VARCHAR NOT NULL,
        customer_id VARCHAR NOT NULL, email_sha256 VARCHAR, phone_sha256 VARCHAR, export_id VARCHAR NOT NULL,
        exported_at TIMESTAMP NOT NULL)"""),
    TableSpec("audience_removals", "marketing", False,
              "hashes of erased people an audience held, owed to its next removal list: `cdp forget` moves them "
              "here from audience_members, the next export of that audience sends and deletes them",
              """CREATE TABLE IF NOT EXISTS audience_removals (audience VARCHAR NOT NULL, format VARCHAR NOT NULL,
        customer_id_sha256 VARCHAR, email_sha256 VARCHAR, phone_sha256 VARCHAR, erased_at TIMESTAMP NOT NULL)"""),
    TableSpec("audience_exports", "marketing", False, "one row per audience export: its selection and counts",
              """CREATE TABLE IF NOT EXISTS audience_exports (export_id VARCHAR NOT NULL, audience VARCHAR NOT NULL,
        format VARCHAR NOT NULL, selection VARCHAR NOT NULL, exported_at TIMESTAMP NOT NULL, members BIGINT NOT NULL,
        joined BIGINT NOT NULL, "left" BIGINT NOT NULL, erased_removed BIGINT NOT NULL, file VARCHAR NOT NULL)"""),
)

# Columns added to a fixed-shape table after stores were made with it: (table, column, type).
# A store made before gains them when it is next opened for writing (DDL above has them last,
# so a new store and an old one put them in the same place).
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("source_customers", "consent_ads", "BOOLEAN"),
)

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in _SPECS}
SOURCE_TABLES = {"customers": "source_customers", "orders": "source_orders", "events": "source_events"}


def table(name: str, owner: str | None = None) -> TableSpec:
    """The declaration of ``name``; with ``owner``, checked to be that stage's table."""
    spec = TABLES.get(name)
    if spec is None:
        raise StoreError(f"table {name!r} is not declared in store/tables.py")
    if owner is not None and spec.owner != owner:
        raise StoreError(f"table {name!r} belongs to {spec.owner}, not {owner}")
    return spec


def personal_tables() -> tuple[str, ...]:
    """The tables erasure must empty of a person, in declaration order."""
    return tuple(spec.name for spec in _SPECS if spec.personal)


def delete_rows(con, name: str, owner: str, match: dict[str, str]) -> int:
    """Delete the rows of fixed-shape table ``name`` whose columns equal ``match`` (inside the
    caller's transaction), by its declared ``owner`` only; the number of rows deleted."""
    spec = table(name, owner)
    if spec.ddl is None:
        raise StoreError(f"table {name!r} is written whole; it has no rows to delete by value")
    where = " AND ".join(f'"{column}" = ?' for column in match) or "TRUE"
    return int(con.execute(f'DELETE FROM "{name}" WHERE {where}', list(match.values())).fetchall()[0][0])


def append_rows(con, name: str, owner: str, view: str) -> None:
    """Insert the rows of the registered ``view`` (its columns named as the table's) into
    fixed-shape table ``name`` (inside the caller's transaction), by its declared ``owner`` only."""
    spec = table(name, owner)
    if spec.ddl is None:
        raise StoreError(f"table {name!r} is written whole; append to it is not allowed")
    con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM {view}')


def replace_table(con, name: str, owner: str, select_sql: str) -> None:
    """Write ``name`` whole from ``select_sql`` (inside the caller's transaction): the one way
    a table without fixed DDL is written, by its declared ``owner`` only."""
    table(name, owner)
    con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {select_sql}')
