"""How each generated file is described in cdp.toml, and the cdp.toml text itself."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sample.identifiers import e164_of_local
from sample.shop import ILS_PER_USD, STORE_EMAIL, STORE_TIMEZONE, WALK_IN_PHONE


@dataclass(frozen=True)
class SourceSpec:
    """How one generated file is described in cdp.toml (``columns``: canonical = file column)."""

    name: str
    kind: str
    columns: Mapping[str, str]
    options: Mapping[str, str]
    with_bom: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"


SOURCE_SPECS: tuple[SourceSpec, ...] = (
    SourceSpec("crm_customers", "customers", MappingProxyType({
        "source_key": "customer_id", "customer_key": "customer_id", "email": "email",
        "phone": "phone", "first_name": "first_name", "last_name": "last_name",
        "birth_date": "birth_date", "gender": "gender", "country": "country", "city": "city",
        "consent_email": "consent_email", "consent_sms": "consent_sms", "consent_ads": "consent_ads",
        "created_at": "created_at",
    }), MappingProxyType({"default_phone_region": "PS", "timezone": STORE_TIMEZONE}), with_bom=True),
    SourceSpec("web_orders", "orders", MappingProxyType({
        "source_key": "order_id", "email": "email", "phone": "delivery_phone", "timestamp": "created_at",
        "amount": "amount",
        "quantity": "items", "product_id": "sku", "category": "category", "channel": "channel",
        "currency": "currency", "discount": "discount", "is_return": "is_return",
    }), MappingProxyType({"default_phone_region": "PS"})),
    SourceSpec("pos_receipts", "orders", MappingProxyType({
        "source_key": "receipt_id", "phone": "phone", "external_id": "loyalty_card",
        "timestamp": "date", "amount": "amount", "quantity": "items", "product_id": "sku",
        "category": "category", "channel": "channel", "currency": "currency",
        "discount": "discount", "is_return": "is_return",
    }), MappingProxyType({"default_phone_region": "PS", "timestamp_format": "%Y%m%d %H:%M",
                          "timezone": STORE_TIMEZONE})),
    SourceSpec("facebook_leads", "customers", MappingProxyType({
        "source_key": "lead_id", "email": "email", "phone": "phone", "first_name": "first_name",
        "last_name": "last_name", "created_at": "created_time",
    }), MappingProxyType({"default_phone_region": "PS"})),
    SourceSpec("web_events", "events", MappingProxyType({
        "source_key": "event_id", "anonymous_id": "anonymous_id", "email": "email",
        "timestamp": "timestamp", "event_type": "event_type", "channel": "channel",
        "product_id": "product_id", "category": "category", "value": "value",
    }), MappingProxyType({})),
    SourceSpec("email_events", "events", MappingProxyType({
        "source_key": "event_id", "email": "email", "timestamp": "timestamp",
        "event_type": "event_type", "campaign": "campaign", "channel": "channel",
    }), MappingProxyType({})),
    SourceSpec("ad_touchpoints", "events", MappingProxyType({
        "source_key": "touch_id", "email": "email", "customer_key": "customer_key",
        "anonymous_id": "anonymous_id", "timestamp": "timestamp", "event_type": "event_type",
        "channel": "channel", "campaign": "campaign",
    }), MappingProxyType({"customer_key_namespace": "crm_customers"})),
)


def config_toml(seed: int, end: dt.date, n_customers: int) -> str:
    """The cdp.toml text describing the generated files (paths relative to it)."""
    lines = [
        "# Sample data of a fictional olive-oil and Palestinian-products shop, written by",
        f"# `cdp sample --customers {n_customers} --seed {seed} --end {end.isoformat()}`.",
        "# The ground truth is in truth/ (not a source).",
        "",
        "[store]",
        'path = "cdp.duckdb"',
        "",
        "[unify]",
        "# The shop's own email (phone orders) and walk-in phone (store receipts) are shared by many customers.",
        f"blocked_identifiers = [{_toml_str(STORE_EMAIL)}, {_toml_str(e164_of_local(WALK_IN_PHONE))}]",
        "",
        "[currency]",
        "# The website also sells in US dollars; money features are in shekels.",
        'base = "ILS"',
        f"rates = {{ USD = {ILS_PER_USD} }}",
    ]
    for spec in SOURCE_SPECS:
        lines += ["", "[[sources]]", f"name = {_toml_str(spec.name)}", f"kind = {_toml_str(spec.kind)}",
                  f"path = {_toml_str(spec.file_name)}"]
        lines += [f"{k} = {_toml_str(v)}" for k, v in spec.options.items()]
        lines += ["", "[sources.columns]"]
        lines += [f"{k} = {_toml_str(v)}" for k, v in spec.columns.items()]
    return "\n".join(lines) + "\n"


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
