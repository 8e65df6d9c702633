"""Money in one currency: revenue is never a sum of shekels and dollars."""

from __future__ import annotations

import datetime as dt
from types import MappingProxyType

import pandas as pd
import pytest

from cdp.config import CurrencyConfig
from cdp.errors import CdpError
from features.currency import check_currencies, tables_in_base_currency
from features.engine import SourceTables
from features.rfm import rfm_features
from tests.features.conftest import in_memory

ILS_USD = CurrencyConfig(base="ILS", rates=MappingProxyType({"USD": 3.7}))


def orders(*rows: tuple[str, float, str | None]) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": [r[0] for r in rows],
        "timestamp": pd.to_datetime(["2024-06-01"] * len(rows)).astype("datetime64[us]"),
        "amount": [r[1] for r in rows],
        "discount": [0.0] * len(rows),
        "currency": pd.Series([r[2] for r in rows], dtype="object"),
        "is_return": [False] * len(rows),
    })


def tables_of(frame: pd.DataFrame) -> SourceTables:
    con = in_memory(orders=frame, customers=pd.DataFrame({"customer_id": ["A"]}),
                    events=pd.DataFrame({"customer_id": ["A"]}))
    return SourceTables(con.table("customers"), con.table("orders"), con.table("events"))


def test_orders_in_another_currency_are_converted_at_its_rate_and_no_currency_means_base():
    tables = tables_in_base_currency(tables_of(orders(("A", 100.0, "ILS"), ("A", 10.0, "USD"), ("B", 20.0, None))),
                                     ILS_USD)
    revenue = rfm_features(tables.orders, dt.date(2024, 6, 30)).to_pandas().set_index("customer_id").revenue_total
    assert revenue["A"] == pytest.approx(100.0 + 10.0 * 3.7)
    assert revenue["B"] == pytest.approx(20.0)


def test_two_currencies_without_a_currency_section_are_refused_naming_both():
    with pytest.raises(CdpError, match=r"2 currencies \(ILS, USD\).*\[currency\]"):
        tables_in_base_currency(tables_of(orders(("A", 1.0, "USD"), ("B", 1.0, "ILS"))), CurrencyConfig())


def test_a_currency_without_a_rate_is_refused_naming_it():
    with pytest.raises(CdpError, match=r"orders in EUR .*add EUR = <ILS per 1 EUR>"):
        check_currencies(["ILS", "EUR", None], ILS_USD)


def test_one_currency_needs_no_configuration():
    check_currencies(["USD", None], CurrencyConfig())
    frame = orders(("A", 5.0, "USD"))
    assert tables_in_base_currency(tables_of(frame), CurrencyConfig()).orders.amount.to_pandas().tolist() == [5.0]
