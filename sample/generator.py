"""The whole sample in memory: every source table, the cdp.toml text and the truth."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa

from sample.config_file import SOURCE_SPECS, config_toml
from sample.dates import date_of_day, day_number
from sample.engagement import anonymous_visitors, email_activity, interest_activity, web_activity
from sample.identifiers import draw_identifiers
from sample.invalid_rows import inject_invalid_rows
from sample.journeys import draw_journeys
from sample.render import (
    ad_touchpoints_source,
    crm_customers,
    email_events_source,
    facebook_leads,
    order_sources,
    web_events_source,
)
from sample.shop import HISTORY_DAYS
from sample.text import seq_ids
from sample.truth import (
    channels_truth,
    identifiers_truth,
    journeys_truth,
    junk_truth,
    persons_truth,
    records_truth,
)
from sample.world import draw_persons, draw_purchases


@dataclass(frozen=True)
class SampleData:
    """Generated sources and their ground truth, all as text tables.

    ``sources`` maps a source name (see ``SOURCE_SPECS``) to its rows in file order,
    with exactly the file's columns; ``truth`` maps a truth table name (``records``,
    ``persons``, ``identifiers``, ``channels``, ``journeys``, ``expected_rejects``,
    ``junk_identifiers``) to its table; ``config_toml`` is the cdp.toml text.
    """

    start: dt.date
    end: dt.date
    sources: Mapping[str, pd.DataFrame]
    truth: Mapping[str, pd.DataFrame]
    config_toml: str


def generate(n_customers: int, seed: int, end: dt.date) -> SampleData:
    """Simulate ``n_customers`` persons and every source row they leave, with the truth.

    Pure: no I/O and no clock; the docstrings of :mod:`sample` and its modules describe
    the model.

    Parameters
    ----------
    n_customers : int
        Number of persons (at least 1).
    seed : int
        Seed; each stage draws from its own generator spawned from it, so the same
        arguments always give the same tables.
    end : datetime.date
        Last day of data.

    Returns
    -------
    SampleData
    """
    if n_customers < 1:
        raise ValueError(f"n_customers must be >= 1, got {n_customers}")
    # Stages are spawned in this order: a new stage goes last, so the others' draws stay the same.
    stages = ("persons", "ids", "orders", "journeys", "web", "email", "crm", "leads", "mess", "anon", "interest")
    rngs = {name: np.random.default_rng(s)
            for name, s in zip(stages, np.random.SeedSequence(seed).spawn(len(stages)))}
    end_day = day_number(end)
    persons = draw_persons(rngs["persons"], n_customers, end_day)
    ids = draw_identifiers(rngs["ids"], persons, end_day)
    purchases = draw_purchases(rngs["orders"], persons, end_day)
    journeys, touches = draw_journeys(rngs["journeys"], persons, purchases, end_day)
    anon_cookies, anon_rows = anonymous_visitors(rngs["anon"], n_customers, end_day, len(ids.cookies))
    web_rows = pd.concat([web_activity(rngs["web"], persons, ids, purchases, end_day),
                          interest_activity(rngs["interest"], persons, ids, end_day), anon_rows],
                         ignore_index=True)
    email_rows = email_activity(rngs["email"], persons, end_day)

    tables: dict[str, pd.DataFrame] = {}
    tables["crm_customers"] = crm_customers(rngs["crm"], persons, ids, end_day)
    tables["web_orders"], tables["pos_receipts"] = order_sources(rngs["orders"], persons, ids, purchases, journeys)
    tables["facebook_leads"] = facebook_leads(rngs["leads"], persons, ids, end_day)
    tables["web_events"] = web_events_source(ids, pa.concat_arrays([ids.cookies, anon_cookies]), web_rows)
    tables["email_events"] = email_events_source(rngs["email"], ids, email_rows, touches, end_day)
    tables["ad_touchpoints"] = ad_touchpoints_source(rngs["journeys"], ids, touches)

    rejects = []
    for spec in SOURCE_SPECS:
        tables[spec.name], bad = inject_invalid_rows(rngs["mess"], spec, tables[spec.name])
        rejects.append(bad)

    person_ids = seq_ids("P", n_customers, 7)
    sources = {spec.name: tables[spec.name].drop(columns=["_person", "_journey"]) for spec in SOURCE_SPECS}
    truth = {
        "records": pd.concat([records_truth(s.name, tables[s.name], person_ids) for s in SOURCE_SPECS],
                             ignore_index=True),
        "persons": persons_truth(persons, ids, person_ids, end_day),
        "identifiers": identifiers_truth(ids, person_ids),
        "channels": channels_truth(journeys),
        "journeys": journeys_truth(journeys, tables, person_ids),
        "expected_rejects": pd.concat(rejects, ignore_index=True),
        "junk_identifiers": junk_truth(),
    }
    return SampleData(
        start=date_of_day(end_day - HISTORY_DAYS + 1),
        end=end,
        sources=MappingProxyType(sources),
        truth=MappingProxyType(truth),
        config_toml=config_toml(seed=seed, end=end, n_customers=n_customers),
    )
