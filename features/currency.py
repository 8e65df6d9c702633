"""Money in one currency: order amounts converted before any feature or label adds them up.

A shop that sells in ILS on its store tills and in USD on its website would otherwise
sum shekels and dollars into one "revenue". Rates are fixed per currency (from
``[currency]`` in cdp.toml): features describe habits, and a daily exchange-rate feed
would make a customer's "value" move when nothing they did changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import ibis

from cdp.config import CurrencyConfig
from cdp.errors import CdpError
from features.engine import SourceTables

MONEY_COLUMNS = ("amount", "discount")


def check_currencies(present: Iterable[str | None], config: CurrencyConfig) -> None:
    """Refuse to add up money that cannot be put in one currency.

    ``present`` is every currency code found on the orders (None for orders without
    one). Without a base currency, more than one code is an error; with one, every code
    must be the base or have a rate.
    """
    codes = sorted({c for c in present if c is not None})
    if config.base is None:
        if len(codes) > 1:
            raise CdpError(f"orders come in {len(codes)} currencies ({', '.join(codes)}): add a [currency] "
                           f"section to cdp.toml with a base currency and rates, e.g. "
                           f"[currency] base = \"{codes[0]}\" and rates = {{ {codes[1]} = <{codes[0]} per 1 "
                           f"{codes[1]}> }}")
        return
    unknown = [c for c in codes if c != config.base and c not in config.rates]
    if unknown:
        raise CdpError(f"orders in {', '.join(unknown)} but [currency] rates has no rate for "
                       f"{'it' if len(unknown) == 1 else 'them'}: add {unknown[0]} = <{config.base} per 1 "
                       f"{unknown[0]}> to [currency.rates] in cdp.toml")


def in_base_currency(orders: ibis.Table, base: str | None, rates: Mapping[str, float]) -> ibis.Table:
    """``orders`` with ``amount`` and ``discount`` in ``base`` (orders without a currency are in base).

    Call :func:`check_currencies` first: a currency with no rate is left unconverted here.
    """
    if base is None or not rates:
        return orders
    factor = ibis.cases(*[(orders.currency == code, ibis.literal(rate)) for code, rate in sorted(rates.items())],
                        else_=ibis.literal(1.0))
    converted = {c: orders[c] * factor for c in MONEY_COLUMNS if c in orders.columns}
    return orders.mutate(**converted)


def tables_in_base_currency(tables: SourceTables, config: CurrencyConfig) -> SourceTables:
    """The source tables with every order's money in the base currency, after checking
    that the currencies found on the orders can be converted (one query on the engine)."""
    present = tables.orders.select("currency").distinct().to_pyarrow().column("currency").to_pylist()
    check_currencies(present, config)
    return replace(tables, orders=in_base_currency(tables.orders, config.base, config.rates))
