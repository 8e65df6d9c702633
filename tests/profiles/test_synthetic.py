"""The sample-data generator, checked against its own ground truth.

One sample of 1,500 persons is written once per module; each test reads the files as a
user of them would (CSV text, cdp.toml) and compares what it sees with ``truth/``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cdp.config import load_config
from profiles.synthetic import (
    CHANNELS,
    GROUPS,
    SOURCE_SPECS,
    STORE_TIMEZONE,
    generate,
    oracle_purchase_probability,
    write_sample,
)

END = dt.date(2025, 3, 31)
N_PERSONS = 1500
SPECS = {s.name: s for s in SOURCE_SPECS}
ORDER_SOURCES = [s.name for s in SOURCE_SPECS if s.kind == "orders"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    write_sample(out, n_customers=N_PERSONS, seed=5, end=END)
    return out


def read(sample: Path, name: str) -> pd.DataFrame:
    """A source or truth file exactly as written: all text, empty cells as ""."""
    path = sample / f"{name}.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def source_with_truth(sample: Path, name: str) -> pd.DataFrame:
    """A source's rows with their true person and journey (from truth/records.csv)."""
    frame = read(sample, name)
    records = read(sample, "truth/records")
    records = records[records["source"] == name].reset_index(drop=True)
    assert (records["source_key"].to_numpy() == frame.iloc[:, 0].to_numpy()).all()
    return frame.assign(person_id=records["person_id"].to_numpy(), journey_id=records["journey_id"].to_numpy(),
                        row_number=records["row_number"].astype(int).to_numpy())


def rejected_rows(sample: Path, name: str) -> set[int]:
    rejects = read(sample, "truth/expected_rejects")
    return set(rejects.loc[rejects["source"] == name, "row_number"].astype(int))


def order_times_utc(frame: pd.DataFrame, name: str) -> pd.Series:
    """Order timestamps as UTC instants, read the way cdp.toml describes them (NaT if unreadable)."""
    spec = SPECS[name]
    text = frame[spec.columns["timestamp"]]
    if "timestamp_format" in spec.options:
        local = pd.to_datetime(text, format=spec.options["timestamp_format"], errors="coerce")
        return local.dt.tz_localize(spec.options["timezone"], nonexistent="shift_forward",
                                    ambiguous="NaT").dt.tz_convert("UTC")
    return pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")


def order_local_dates(frame: pd.DataFrame, name: str) -> pd.Series:
    """The shop-local calendar day of each order as written (web: the offset's wall clock)."""
    text = frame[SPECS[name].columns["timestamp"]]
    if name == "pos_receipts":
        return pd.to_datetime(text.str.slice(0, 8), format="%Y%m%d", errors="coerce")
    return pd.to_datetime(text.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")


def all_orders(sample: Path) -> pd.DataFrame:
    """Valid purchases (not returns, not expected rejects) of both order sources, with person and day."""
    parts = []
    for name in ORDER_SOURCES:
        frame = source_with_truth(sample, name)
        is_return = frame[SPECS[name].columns["is_return"]].isin(["true", "1"])
        valid = ~frame["row_number"].isin(rejected_rows(sample, name))
        frame = frame.assign(day=order_local_dates(frame, name), at=order_times_utc(frame, name), source=name)
        parts.append(frame.loc[valid & ~is_return, ["source", "person_id", "journey_id", "day", "at"]])
    return pd.concat(parts, ignore_index=True)


def persons(sample: Path) -> pd.DataFrame:
    frame = read(sample, "truth/persons")
    for column in ("first_seen_date", "first_purchase_date", "death_date"):
        frame[column] = pd.to_datetime(frame[column])
    frame["purchase_rate_per_day"] = frame["purchase_rate_per_day"].astype(float)
    return frame


# --------------------------------------------------------------------------- files and config


def test_same_arguments_give_byte_identical_files_and_another_seed_does_not(tmp_path):
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_sample(first, n_customers=300, seed=11, end=END)
    write_sample(second, n_customers=300, seed=11, end=END)
    write_sample(other, n_customers=300, seed=12, end=END)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 7 + 1 + 7
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for f in files:
        assert (first / f).read_bytes() == (second / f).read_bytes(), f
    assert (first / "web_orders.csv").read_bytes() != (other / "web_orders.csv").read_bytes()


def test_config_loads_and_every_mapped_column_is_in_its_file(sample):
    config = load_config(sample / "cdp.toml")
    assert [s.name for s in config.sources] == list(SPECS)
    assert config.store.path == sample / "cdp.duckdb"
    for source in config.sources:
        assert source.path == sample / f"{source.name}.csv"
        header = read(sample, source.name).columns
        missing = [c for c in source.columns.values() if c not in header]
        assert not missing, (source.name, missing)
    pos = config.source("pos_receipts")
    assert (pos.timestamp_format, pos.timezone, pos.default_phone_region) == ("%Y%m%d %H:%M", STORE_TIMEZONE, "PS")
    assert config.source("ad_touchpoints").key_namespace == "crm_customers"


def test_crm_export_has_a_bom_and_string_ids_with_leading_zeros(sample):
    raw = (sample / "crm_customers.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfcustomer_id,")
    crm = read(sample, "crm_customers")
    assert crm["customer_id"].str.fullmatch(r"\d{6}").all()
    assert crm["customer_id"].iloc[0] == "000001"
    assert set(crm["consent_email"]) <= {"yes", "no", "true", "false", "1", "0"}
    assert len(set(crm["consent_email"])) == 6, "consent is written in mixed styles"
    arabic = crm["first_name"].str.contains(r"[\u0600-\u06FF]")
    assert 0.1 < arabic.mean() < 0.6, "a mix of Arabic-script and Latin names"


def test_every_written_row_has_exactly_one_truth_record_and_keys_are_unique(sample):
    records = read(sample, "truth/records")
    assert not records.duplicated(["source", "row_number"]).any()
    for name in SPECS:
        frame = read(sample, name)
        key = frame.columns[0]
        assert frame[key].is_unique, name
        mine = records[records["source"] == name]
        assert mine["row_number"].astype(int).tolist() == list(range(1, len(frame) + 1)), name
        assert mine["source_key"].tolist() == frame[key].tolist(), name
    assert set(records["source"]) == set(SPECS)
    person_ids = set(read(sample, "truth/persons")["person_id"])
    known = records["person_id"] != ""
    assert set(records.loc[known, "person_id"]) <= person_ids
    # Only web events of visitors who are nobody have no person.
    assert set(records.loc[~known, "source"]) == {"web_events"}


def test_summary_counts_what_was_written(tmp_path):
    summary = write_sample(tmp_path, n_customers=200, seed=3, end=END)
    for name, rows in summary.files.items():
        assert len(read(tmp_path, name.removesuffix(".csv"))) == rows
    for name, rows in summary.truth_files.items():
        assert len(read(tmp_path, name.removesuffix(".csv"))) == rows
    assert summary.n_persons == 200
    assert summary.n_order_rows == summary.files["web_orders.csv"] + summary.files["pos_receipts.csv"]
    assert summary.start == END - dt.timedelta(days=3 * 365 - 1)


def test_generate_refuses_an_empty_population():
    with pytest.raises(ValueError, match="n_customers"):
        generate(0, seed=1, end=END)


# --------------------------------------------------------------------------- identifiers and mess


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


def test_expected_rejects_are_exactly_the_invalid_order_and_event_rows(sample):
    rejects = read(sample, "truth/expected_rejects")
    assert set(rejects["problem"]) == {"bad_timestamp", "bad_amount", "negative_amount", "no_identifier"}
    for name, spec in SPECS.items():
        if spec.kind == "customers":
            continue
        frame = read(sample, name)
        ids = [c for f, c in spec.columns.items() if f in ("customer_key", "email", "phone", "external_id")]
        if spec.kind == "orders":
            bad_time = order_times_utc(frame, name).isna()
            amount = pd.to_numeric(frame[spec.columns["amount"]], errors="coerce")
            problem = pd.Series("", index=frame.index)
            problem[(frame[ids] == "").all(axis=1)] = "no_identifier"
            problem[amount < 0] = "negative_amount"
            problem[amount.isna()] = "bad_amount"
            problem[bad_time] = "bad_timestamp"
        else:
            parsed = pd.to_datetime(frame[spec.columns["timestamp"]], format="ISO8601", utc=True, errors="coerce")
            problem = pd.Series(np.where(parsed.isna(), "bad_timestamp", ""), index=frame.index)
        found = {(i + 1, p) for i, p in problem.items() if p}
        expected = rejects[rejects["source"] == name]
        assert found == set(zip(expected["row_number"].astype(int), expected["problem"])), name
        assert len(found) >= 1


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


def _normalize(name: str, field: str, value: str) -> str:
    """A plain normalization of identifiers: the least a resolver must do."""
    if field == "email":
        return "email:" + value.strip().lower()
    if field == "phone":
        number = phonenumbers.parse(value, SPECS[name].options.get("default_phone_region"))
        return "phone:" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if field == "customer_key":
        return f"key:{SPECS[name].options.get('customer_key_namespace', name)}:{value}"
    return f"{field}:{value}"


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
                        cache[v] = _normalize(name, field, v)
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


def test_duplicate_crm_rows_share_an_email_or_phone_with_their_person(sample):
    crm = source_with_truth(sample, "crm_customers")
    twice = crm[crm.duplicated("person_id", keep=False)]
    assert twice["person_id"].nunique() >= 5
    for _, rows in twice.groupby("person_id"):
        emails = set(rows["email"].str.strip().str.lower()) - {""}
        phones = {_normalize("crm_customers", "phone", p) for p in rows["phone"] if p and p != "0000000000"}
        assert len(emails) < len(rows["email"][rows["email"] != ""]) or len(phones) < (rows["phone"] != "").sum()


# --------------------------------------------------------------------------- purchase process


def test_group_purchase_rates_are_what_the_order_files_show(sample):
    truth = persons(sample)
    orders = all_orders(sample)
    counts = orders.groupby("person_id").size()
    truth["n_orders"] = truth["person_id"].map(counts).fillna(0)
    by_group = truth.groupby("group")["n_orders"].mean()
    assert by_group["champions"] > by_group["loyal"] > by_group["hibernating"]
    assert by_group["prospects"] == 0
    # Repeat purchases: observed count vs the expectation sum(rate * active days), per group.
    end = pd.Timestamp(END)
    buyers = truth[truth["first_purchase_date"] <= end]
    active_days = ((buyers["death_date"].clip(upper=end + pd.Timedelta(days=1))
                    - (buyers["first_purchase_date"] + pd.Timedelta(days=1))).dt.days).clip(lower=0)
    expected = (buyers["purchase_rate_per_day"] * active_days).groupby(buyers["group"]).sum()
    observed = (buyers["n_orders"] - 1).clip(lower=0).groupby(buyers["group"]).sum()
    for group in expected.index:
        # Poisson sums; a small allowance for the invalid rows left out.
        assert abs(observed[group] - expected[group]) < 4 * np.sqrt(expected[group]) + 0.01 * expected[group], group


def test_nobody_buys_before_their_first_purchase_day_or_on_or_after_their_death_day(sample):
    truth = persons(sample).set_index("person_id")
    orders = all_orders(sample).dropna(subset=["day"])
    first = truth.loc[orders["person_id"], "first_purchase_date"].to_numpy()
    death = truth.loc[orders["person_id"], "death_date"].to_numpy()
    assert (orders["day"].to_numpy() >= first).all()
    assert (orders["day"].to_numpy() < death).all()
    first_seen_day = orders.groupby("person_id")["day"].min()
    assert (first_seen_day == truth.loc[first_seen_day.index, "first_purchase_date"]).mean() > 0.99
    # And dead persons exist on both sides of the end date.
    alive = read(sample, "truth/persons")["is_alive_at_end"]
    assert 0.2 < (alive == "true").mean() < 0.8


def test_the_oracle_purchase_probability_is_calibrated_on_the_files(sample):
    truth = persons(sample)
    as_of = END - dt.timedelta(days=120)
    horizon = 90
    p = oracle_purchase_probability(read(sample, "truth/persons"), as_of, horizon)
    orders = all_orders(sample)
    start = pd.Timestamp(as_of)
    window = orders[(orders["day"] > start) & (orders["day"] <= start + pd.Timedelta(days=horizon))]
    bought = truth["person_id"].isin(window["person_id"]).to_numpy()
    # Three standard errors of a mean of Bernoulli(p_i), plus room for the invalid rows left out.
    assert abs(bought.mean() - p.mean()) < 3 * np.sqrt((p * (1 - p)).sum()) / len(p) + 0.01
    assert bought[p.to_numpy() > 0.6].mean() > 0.5 > bought[p.to_numpy() < 0.05].mean()


def test_email_opens_fade_before_death(sample):
    emails = source_with_truth(sample, "email_events")
    letters = emails[~emails["campaign"].str.startswith("flow_")]
    sent = letters[letters["event_type"] == "email_sent"]
    opened = letters[letters["event_type"] == "email_open"][["person_id", "campaign"]].drop_duplicates()
    sent = sent.merge(opened.assign(opened=True), on=["person_id", "campaign"], how="left")
    sent["opened"] = sent["opened"].fillna(False).astype(bool)
    death = persons(sample).set_index("person_id")["death_date"]
    sent_day = pd.to_datetime(sent["timestamp"].str.slice(0, 10), errors="coerce")
    days_left = (death.loc[sent["person_id"]].to_numpy() - sent_day).dt.days
    far, near, after = days_left > 365, (days_left >= 0) & (days_left < 45), days_left < 0
    assert far.sum() > 200 and after.sum() > 50
    assert sent.loc[far, "opened"].mean() > 2 * sent.loc[near, "opened"].mean()
    assert sent.loc[after, "opened"].mean() < 0.06


# --------------------------------------------------------------------------- journeys and channels


def journey_touches(sample: Path) -> pd.DataFrame:
    """Touch rows (ad touchpoints and email clicks) of tracked journeys, with UTC times."""
    ads = source_with_truth(sample, "ad_touchpoints")
    emails = source_with_truth(sample, "email_events")
    emails = emails[emails["event_type"] == "email_click"]
    touches = pd.concat([ads, emails], ignore_index=True)
    touches = touches[touches["journey_id"] != ""]
    return touches.assign(at=pd.to_datetime(touches["timestamp"], format="ISO8601", utc=True, errors="coerce"))


def test_touchpoints_precede_their_purchase_within_thirty_days(sample):
    touches = journey_touches(sample).dropna(subset=["at"])
    orders = all_orders(sample)
    orders = orders[orders["journey_id"] != ""].dropna(subset=["at"]).set_index("journey_id")["at"]
    converted = touches[touches["journey_id"].isin(orders.index)]
    assert len(converted) > 300
    bought_at = orders.loc[converted["journey_id"]].to_numpy()
    lead_time = bought_at - converted["at"].to_numpy()
    assert (lead_time > pd.Timedelta(0)).all()
    assert (lead_time <= pd.Timedelta(days=30)).all()
    # Web checkouts precede their orders too (by minutes, not days).
    web = source_with_truth(sample, "web_events")
    checkouts = web[web["event_type"] == "checkout"]
    assert len(checkouts) > 100


def test_upper_funnel_channels_cause_most_conversions_but_are_seldom_their_last_touch(sample):
    journeys = read(sample, "truth/journeys")
    channels = read(sample, "truth/channels").set_index("channel")
    touches = journey_touches(sample).dropna(subset=["at"])
    present = pd.crosstab(touches["journey_id"], touches["channel"]) > 0
    converted = (journeys.set_index("journey_id").loc[present.index, "converted"] == "true").to_numpy()
    share_converting = present[converted].mean()
    share_not = present[~converted].mean()
    for channel in ("facebook", "instagram"):
        assert share_converting[channel] > share_not[channel] + 0.08, channel
    last = (touches[touches["journey_id"].isin(present.index[converted])].sort_values("at")
            .groupby("journey_id")["channel"].last())
    # Of the converting journeys a channel is in, the share it is the last touch of: touches
    # fall by funnel stage, so upper-funnel channels are seldom last and lower-funnel ones mostly.
    last_when_present = last.value_counts() / present[converted].sum()
    for channel, stage in channels["funnel_stage"].items():
        if stage == "upper":
            assert last_when_present[channel] < 0.4, channel
        elif stage == "lower":
            assert last_when_present[channel] > 0.7, channel
    true_share = channels["true_share"].astype(float)
    last_touch = last.value_counts(normalize=True)
    assert true_share["facebook"] + true_share["instagram"] > 0.6
    assert last_touch["facebook"] + last_touch["instagram"] < 0.4
    assert set(channels.index) == {c.name for c in CHANNELS}


def test_true_share_is_what_switching_a_channel_off_loses_on_the_journeys_drawn(sample):
    """``lost_conversions`` (closed form over all tracked intents) against the same quantity
    re-computed journey by journey: the noisy-OR conversion probability of each journey's
    exposure set minus that of the set without the channel, summed. Intents without any
    exposure are not in truth/journeys.csv, but they lose nothing."""
    channels = read(sample, "truth/channels").set_index("channel")
    journeys = read(sample, "truth/journeys")
    effect = channels["true_effect"].astype(float).to_numpy()
    base = float(channels["base_conversion"].iloc[0])
    exposed = np.column_stack([journeys[f"exposed_{c}"] == "true" for c in channels.index])
    assert exposed.any(axis=1).all()

    def conversion(x):
        return 1 - (1 - base) * np.prod(1 - x * effect, axis=1)

    lost = np.column_stack([conversion(exposed) - conversion(exposed & (np.arange(len(effect)) != k))
                            for k in range(len(effect))])
    expected = channels["lost_conversions"].astype(float).to_numpy()
    spread = np.sqrt((lost ** 2).sum(axis=0))  # standard deviation of a sum of independent journeys, at most
    assert (np.abs(lost.sum(axis=0) - expected) <= 4 * spread + 0.01).all(), (lost.sum(axis=0), expected)
    share = channels["true_share"].astype(float)
    assert share.to_numpy() == pytest.approx(expected / expected.sum(), abs=1e-4)
    assert share.to_numpy() == pytest.approx(lost.sum(axis=0) / lost.sum(), abs=0.02)
    # The share depends on reach as well as on the activation: search and organic social
    # activate alike, but search is in more journeys; direct activates no one.
    reach = channels["exposure_probability"].astype(float)
    activation = channels["true_effect"].astype(float)
    assert activation["google_search"] == activation["organic_social"]
    assert reach["google_search"] > reach["organic_social"] and share["google_search"] > share["organic_social"]
    assert activation["direct"] == share["direct"] == 0


def test_truth_persons_cover_every_group_with_its_latent_parameters(sample):
    truth = persons(sample)
    assert set(truth["group"]) == {g.name for g in GROUPS}
    rates = truth.groupby("group")["purchase_rate_per_day"].mean()
    for g in GROUPS:
        assert rates[g.name] == pytest.approx(g.purchase_rate_per_day, rel=0.25), g.name
    prospects = truth[truth["group"] == "prospects"]
    assert (prospects["first_purchase_date"] > pd.Timestamp(END)).all()


@pytest.mark.slow
def test_ingest_rejects_exactly_the_expected_rows(tmp_path):
    from profiles.ingest import ingest
    from store.duckdb_store import Store

    write_sample(tmp_path, n_customers=400, seed=9, end=END)
    config = load_config(tmp_path / "cdp.toml")
    with Store(config.store.path) as store:
        ingest(store, config, now=dt.datetime(2025, 4, 1), run_id="sample-test")
        rejected = store.frame("SELECT source, row_number FROM rejects")
    expected = read(tmp_path, "truth/expected_rejects")
    assert set(zip(rejected["source"], rejected["row_number"].astype(int))) == set(
        zip(expected["source"], expected["row_number"].astype(int)))
