"""Identifiers: valid phones in mixed styles, junk that belongs to nobody, persons linkable across sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sample.identifiers import hex_ids
from tests.sample.conftest import (
    SPECS,
    normalize_identifier,
    read,
    rejected_rows,
    source_with_truth,
)


def test_phones_that_are_not_junk_parse_as_valid_numbers_in_the_source_region(sample):
    junk = read(sample, "truth/junk_identifiers")
    junk_phones = set(junk.loc[junk["id_type"] == "phone", "value"])
    checked = 0
    for name, spec in SPECS.items():
        if "phone" not in spec.columns:
            continue
        region = spec.options["default_phone_region"]
        frame = read(sample, name)
        phones = frame.loc[~frame.index.isin([r - 1 for r in rejected_rows(sample, name)]), spec.columns["phone"]]
        for value in phones[(phones != "") & ~phones.isin(junk_phones)].unique():
            assert phonenumbers.is_valid_number(phonenumbers.parse(value, region)), (name, value)
            checked += 1
    assert checked > 500


def test_phone_styles_are_mixed_local_and_international(sample):
    phones = read(sample, "pos_receipts")["phone"]
    assert phones.str.fullmatch(r"05\d{8}").any()
    assert phones.str.fullmatch(r"05\d-\d{3} \d{4}").any()
    assert phones.str.fullmatch(r"\+970 5\d \d{3} \d{4}").any()
    assert phones.str.fullmatch(r"00970\d{9}").any()
    assert phones.str.match(r"(\+|00)972").any(), "customers from Israel keep their +972 numbers"


def test_junk_identifiers_are_shared_by_several_persons_and_belong_to_nobody(sample):
    junk = read(sample, "truth/junk_identifiers")
    identifiers = read(sample, "truth/identifiers")
    pos = source_with_truth(sample, "pos_receipts")
    web = source_with_truth(sample, "web_orders")
    walk_in = junk.loc[junk["reason"].eq("shop_shared") & junk["id_type"].eq("phone"), "value"].item()
    store_email = junk.loc[junk["reason"].eq("shop_shared") & junk["id_type"].eq("email"), "value"].item()
    assert pos.loc[pos["phone"] == walk_in, "person_id"].nunique() > 20
    assert web.loc[web["email"] == store_email, "person_id"].nunique() > 5
    assert not identifiers["value"].isin(junk["value"]).any()
    assert (identifiers.loc[identifiers["id_type"] == "phone", "value"] != "+97022741234").all()


def identity_graph(sample: Path, skip_junk: bool) -> pd.DataFrame:
    """Records that carry an identifier, with their true person and their component when
    records sharing an identifier are linked; ``known`` if one of them is not a cookie."""
    junk = set(read(sample, "truth/junk_identifiers")["value"])
    edges, records = [], []
    for name, spec in SPECS.items():
        frame = source_with_truth(sample, name)
        frame = frame[frame["person_id"] != ""]
        rec = len(records) + np.arange(len(frame))
        records.extend(frame["person_id"].tolist())
        for field in ("customer_key", "email", "phone", "external_id", "anonymous_id"):
            if field not in spec.columns:
                continue
            values = frame[spec.columns[field]].to_numpy()
            keep = values != ""
            if skip_junk:
                keep &= ~np.isin(values, list(junk))
            cache: dict[str, str] = {}
            for r, v in zip(rec[keep], values[keep]):
                if v not in cache:
                    try:
                        cache[v] = normalize_identifier(name, field, v)
                    except phonenumbers.NumberParseException:
                        cache[v] = f"unparsed:{v}"
                edges.append((r, cache[v]))
    edge = pd.DataFrame(edges, columns=["rec", "id"])
    ident = pd.factorize(edge["id"])[0] + len(records)
    n = len(records) + ident.max() + 1
    graph = coo_matrix((np.ones(len(edge)), (edge["rec"], ident)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    linked = np.zeros(len(records), dtype=bool)
    linked[edge["rec"].to_numpy()] = True
    known = np.zeros(len(records), dtype=bool)
    known[edge.loc[~edge["id"].str.startswith("anonymous_id:"), "rec"].to_numpy()] = True
    return pd.DataFrame({"person_id": records, "component": label[: len(records)], "known": known})[linked]


def test_without_junk_shared_identifiers_never_join_two_persons_and_link_across_sources(sample):
    graph = identity_graph(sample, skip_junk=True)
    assert (graph.groupby("component")["person_id"].nunique() == 1).all()
    # Cookie-only records (ad views never tied to a login) are islands by nature; leave them out.
    components_per_person = graph[graph["known"]].groupby("person_id")["component"].nunique()
    assert (components_per_person == 1).mean() > 0.75, "most persons are linkable across their records"
    assert (components_per_person > 1).any(), "some persons stay split into islands"
    # Transitive links exist: a component holding both a web order and a store receipt.
    web = source_with_truth(sample, "web_orders")
    pos = source_with_truth(sample, "pos_receipts")
    both = set(web["person_id"]) & set(pos["person_id"])
    assert len(both) > 50


def test_with_junk_identifiers_used_as_links_persons_would_be_glued(sample):
    graph = identity_graph(sample, skip_junk=False)
    sizes = graph.groupby("component")["person_id"].nunique()
    assert sizes.max() > 20


def test_cookie_ids_past_pyarrows_chunk_size_come_back_as_one_array():
    """Above ~466k ids (16 MiB) pyarrow returned a ChunkedArray, which `pa.concat_arrays`
    refused: the generator failed for shops above ~300k customers."""
    ids = hex_ids(np.random.default_rng(1), 500_000)
    assert isinstance(ids, pa.Array) and len(ids) == 500_000
    assert len(pa.concat_arrays([ids, hex_ids(np.random.default_rng(2), 3)])) == 500_003
    assert set(pc.utf8_length(ids).unique().to_pylist()) == {36}
