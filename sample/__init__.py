"""Synthetic multi-source sample data with known ground truth, for a fictional shop.

The shop (``zaytoun.example``) sells olive oil, za'atar, maftoul, dates, Nabulsi soap,
Hebron ceramics, tatreez embroidery, olive-wood carvings and books, online and in two
stores (Bethlehem and Ramallah), and advertises on Facebook, Instagram, Google and by
email. :func:`generate` builds seven source tables in the shapes real exports have, a
``cdp.toml`` describing them, and the ground truth behind every row; :func:`write_sample`
writes them to a folder (``cdp sample``). Demo, identity-resolution tests and, later, churn,
segmentation and attribution tests are checked against that truth.

The package is a test and demo tool, not a stage: only the CLI, the tests and the
benchmarks import it, and the scoring service's Bento does not ship it. Its modules, in the
order :func:`generate` uses them:

``shop``
    the shop's fixed facts: catalogue, stores, countries, its own contact details, junk.
``world``
    persons, their latent behavioural group and purchase process, and their purchases.
``identifiers``
    each person's true names, emails, phones, cards, CRM keys and cookies, and how
    sources write them.
``journeys``
    the channels, their true causal effects, and the tracked journeys and touches.
``engagement``
    web sessions, checkouts, anonymous visitors, newsletters and their opens and clicks.
``render``
    the seven source tables as the shop's systems export them.
``invalid_rows``
    the bad rows planted in order and event files.
``truth``
    the ``truth/`` tables; ``oracles``: the best predictions that truth allows.
``config_file``
    how each file is described in ``cdp.toml``, and its text.
``generator``, ``files``
    :func:`generate` (pure) and :func:`write_sample` (the files).
``text``, ``dates``
    Arrow text columns, day numbers and timestamps, shared by all of the above.

Everything is vectorized and deterministic: the same arguments give byte-identical files.
"""

from __future__ import annotations

from sample.config_file import SOURCE_SPECS, SourceSpec, config_toml
from sample.files import SampleSummary, write_sample
from sample.generator import SampleData, generate
from sample.journeys import BASE_CONVERSION, CHANNELS, Channel
from sample.oracles import (
    history_oracle_purchase_probability,
    oracle_purchase_probability,
)
from sample.shop import STORE_TIMEZONE
from sample.world import GROUPS, GroupProfile

__all__ = [
    "BASE_CONVERSION",
    "CHANNELS",
    "GROUPS",
    "SOURCE_SPECS",
    "STORE_TIMEZONE",
    "Channel",
    "GroupProfile",
    "SampleData",
    "SampleSummary",
    "SourceSpec",
    "config_toml",
    "generate",
    "history_oracle_purchase_probability",
    "oracle_purchase_probability",
    "write_sample",
]
