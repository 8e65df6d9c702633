"""The churn-risk list: ranking by revenue at risk, consent rules, plain-words reasons, files.

Small hand-made tables check each rule with values worked out by hand; the trained
sample shop checks the same rules end to end through `cdp churn-list`, against values
recomputed here from the store's own tables and the feature snapshot.
"""

from __future__ import annotations

import html

import duckdb
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from cdp.cli import app
from cdp.errors import CdpError
from features.catalog import catalog
from marketing.lists import (
    LIST_COLUMNS,
    ListInputs,
    ListOptions,
    churn_list,
    suggested_action,
    summary_lines,
    write_list,
)
from tests.trained_shop import run_cli
from training.purchase import HISTORY_REASON, model_inputs
from training.reasons import Customer, plain_reasons, reason_mask, reason_sentence
from training.risk_bands import ChurnRiskBands

AS_OF = pd.Timestamp("2026-10-31")


def _inputs(rows: list[dict]) -> ListInputs:
    """Scores, contacts and features of a few customers, one dict each."""
    frame = pd.DataFrame(rows)
    scores = pd.DataFrame({
        "customer_id": frame["customer_id"], "segment": frame["segment"],
        "churn_probability": frame["churn_probability"], "top_reasons": frame.get("top_reasons", ""),
        "features_as_of": AS_OF,
    })
    customers = frame[["customer_id", "first_name", "email", "phone", "consent_email", "consent_sms"]]
    features = frame[["customer_id", "revenue_total", "tenure_days", "recency_days", "interpurchase_days_mean",
                      "purchase_days", "last_purchase_date"]].assign(features_as_of=AS_OF)
    return ListInputs(scores=scores, customers=customers, features=features)


def _customer(cid, p, revenue, tenure, *, segment="At risk", consent_email=True, consent_sms=True,
              recency=40.0, gap=30.0, purchase_days=3, reasons="recency_days"):
    return {"customer_id": cid, "segment": segment, "churn_probability": p, "top_reasons": reasons,
            "first_name": f"Name{cid}", "email": f"{cid}@mail.example", "phone": f"+970500000{ord(cid[0]):03d}",
            "consent_email": consent_email, "consent_sms": consent_sms, "revenue_total": revenue,
            "tenure_days": tenure, "recency_days": recency, "interpurchase_days_mean": gap,
            "purchase_days": purchase_days, "last_purchase_date": AS_OF - pd.Timedelta(days=recency)}


SHOP = [
    # 0.8 × 1,200 × 90 / 730 = 118.36: two years of spending, valued at their pace
    _customer("a", 0.8, 1200.0, 730),
    # 0.5 × 100 × 90 / 90 = 50: newer than the horizon, everything so far counts as one horizon
    _customer("b", 0.5, 100.0, 30),
    # 0.95 × 300 × 90 / 900 = 28.50: very likely gone, but worth little per quarter
    _customer("c", 0.95, 300.0, 900),
    # 0.2 × 5,000 × 90 / 365 = 246.58: unlikely to leave, but a lot at stake
    _customer("d", 0.2, 5000.0, 365),
]


def test_customers_are_ranked_by_revenue_at_risk_churn_times_their_quarterly_pace():
    result = churn_list(_inputs(SHOP), ListOptions(horizon_days=90, include_low_risk=True))
    assert list(result.rows["customer_id"]) == ["d", "a", "b", "c"]
    assert list(result.rows["revenue_at_risk"]) == [246.58, 118.36, 50.0, 28.5]
    assert result.total_revenue_at_risk == pytest.approx(246.58 + 118.36 + 50.0 + 28.5)


def test_low_risk_customers_are_left_out_unless_asked_for_and_counted():
    """d's 0.2 is below the medium band (0.5): a lot at stake, but not likely to leave."""
    result = churn_list(_inputs(SHOP), ListOptions(horizon_days=90))
    assert list(result.rows["customer_id"]) == ["a", "b", "c"]
    assert set(result.rows["churn_risk"]) <= {"medium", "high"} and result.left_out_low_risk == 1
    assert "1 low-risk customers matching the filters left out (--include-low-risk lists them)" in \
        summary_lines(result)
    stricter = churn_list(_inputs(SHOP), ListOptions(bands=ChurnRiskBands(medium=0.85, high=0.9)))
    assert list(stricter.rows["customer_id"]) == ["c"] and stricter.left_out_low_risk == 3


def test_top_and_min_probability_keep_the_riskiest_by_revenue_at_risk():
    result = churn_list(_inputs(SHOP), ListOptions(min_probability=0.5, top=2))
    assert list(result.rows["customer_id"]) == ["a", "b"]


def test_customers_without_email_consent_never_show_an_email():
    rows = [_customer("a", 0.8, 1200.0, 730, consent_email=False),
            _customer("b", 0.8, 1200.0, 730, consent_email=None)]
    result = churn_list(_inputs(rows), ListOptions())
    assert result.rows["email"].isna().all()
    assert list(result.rows["phone"]) == ["+970500000097", "+970500000098"]
    assert list(result.rows["first_name"]) == ["Namea", "Nameb"]


def test_customers_without_sms_consent_never_show_a_phone():
    result = churn_list(_inputs([_customer("a", 0.8, 1200.0, 730, consent_sms=False)]), ListOptions())
    assert result.rows["phone"].isna().all()
    assert list(result.rows["email"]) == ["a@mail.example"]


def test_customers_without_any_consent_are_left_out_unless_asked_for_then_without_name_or_contact():
    rows = [_customer("a", 0.8, 1200.0, 730), _customer("b", 0.9, 900.0, 400, consent_email=False, consent_sms=None)]
    default = churn_list(_inputs(rows), ListOptions())
    assert list(default.rows["customer_id"]) == ["a"]
    assert default.left_out_without_consent == 1
    everyone = churn_list(_inputs(rows), ListOptions(include_no_consent=True))
    b = everyone.rows.set_index("customer_id").loc["b"]
    assert b[["first_name", "email", "phone"]].isna().all()
    assert everyone.left_out_without_consent == 0


def test_customers_erased_from_the_store_are_not_listed_even_if_still_scored():
    inputs = _inputs(SHOP)
    erased = ListInputs(inputs.scores, inputs.customers[inputs.customers["customer_id"] != "d"], inputs.features)
    assert "d" not in set(churn_list(erased, ListOptions()).rows["customer_id"])


def test_customers_never_scored_for_churn_are_not_listed():
    rows = [_customer("a", 0.8, 1200.0, 730), _customer("p", float("nan"), 0.0, 0, segment="Prospects")]
    assert list(churn_list(_inputs(rows), ListOptions(include_no_consent=True)).rows["customer_id"]) == ["a"]


def test_an_unknown_segment_is_an_error_that_lists_the_known_ones():
    rows = [_customer("a", 0.8, 1200.0, 730, segment="Loyal (high value)"), _customer("b", 0.4, 10.0, 300)]
    with pytest.raises(CdpError, match=r"--segment 'Loyal'.*known segments: At risk, Loyal \(high value\)"):
        churn_list(_inputs(rows), ListOptions(segment="Loyal"))
    only = churn_list(_inputs(rows), ListOptions(segment="Loyal (high value)"))
    assert list(only.rows["customer_id"]) == ["a"]


def test_summary_by_segment_adds_up_customers_and_revenue_at_risk():
    rows = [_customer("a", 0.8, 1200.0, 730), _customer("b", 0.5, 100.0, 30, segment="Loyal"),
            _customer("c", 0.95, 300.0, 900)]
    by_segment = churn_list(_inputs(rows), ListOptions()).by_segment.set_index("segment")
    assert by_segment.loc["At risk"].tolist() == [2, pytest.approx(118.36 + 28.5)]
    assert by_segment.loc["Loyal"].tolist() == [1, 50.0]


def test_each_row_carries_band_dates_and_the_segments_action():
    row = churn_list(_inputs([_customer("a", 0.8, 1200.0, 730, recency=94.0)]), ListOptions()).rows.iloc[0]
    assert row["churn_risk"] == "high"
    assert row["last_purchase_date"] == "2026-07-29"
    assert row["days_since_last_purchase"] == 94
    # The only customer is the typical one: nothing to compare with.
    assert row["reasons"] == "hasn't bought for 94 days (usually buys every 30)"
    assert row["suggested_action"].startswith("win-back offer")


def test_segment_names_with_a_qualifier_take_their_base_actions_and_unknown_ones_a_default():
    assert suggested_action("Loyal (high value)") == suggested_action("Loyal")
    assert suggested_action("At risk 2") == suggested_action("At risk")
    assert suggested_action("Champions").startswith("VIP call")
    assert suggested_action("Something new") == "re-engagement email"


# ------------------------------------------------------------------ reasons in plain words

def _person(**values) -> Customer:
    return Customer(values, typical={"email_open_rate_30d": 0.4, "revenue_365d": 500.0, "web_sessions_90d": 6.0,
                                     "recency_days": 45.0, "email_opens_30d": 1.0, "overdue_ratio": 1.2})


def test_recency_reason_says_how_long_since_the_last_purchase_against_the_usual_gap_and_the_typical_customer():
    assert reason_sentence("recency_days", _person(recency_days=94, interpurchase_days_mean=30.4)) == \
        "hasn't bought for 94 days (usually buys every 30), longer than the typical customer (45)"


def test_an_open_rate_fallen_to_zero_after_earlier_opens_reads_stopped_opening_emails():
    person = _person(email_open_rate_30d=0.0, emails_sent_30d=4, email_opens_30d=0, email_opens=12)
    assert reason_sentence("email_open_rate_30d", person) == \
        "stopped opening emails (none of 4 in the last 30 days), lower than the typical customer (40%)"
    never = _person(email_open_rate=0.0, emails_sent=9, email_opens=0)
    assert reason_sentence("email_open_rate", never) == "has never opened an email (9 emails sent)"


def test_reasons_compare_with_the_typical_customer_in_the_direction_the_value_really_lies():
    assert reason_sentence("revenue_365d", _person(revenue_365d=120.0)) == \
        "spent 120 in the last 365 days, less than the typical customer (500)"
    assert reason_sentence("revenue_365d", _person(revenue_365d=2400.0)) == \
        "spent 2,400 in the last 365 days, more than the typical customer (500)"
    assert reason_sentence("web_sessions_90d", _person(web_sessions_90d=0)) == \
        "no website visits in the last 90 days, fewer than the typical customer (6)"
    # "0.3 times later than usual" was worded as lateness whatever the ratio.
    assert reason_sentence("overdue_ratio", _person(overdue_ratio=0.29, recency_days=22,
                                                    interpurchase_days_mean=77)) == \
        "22 days since the last purchase, 0.3 times their usual gap of 77 days, lower than the typical " \
        "customer (1.2 times)"


def test_purchase_history_says_the_history_makes_a_purchase_less_likely_not_that_they_buy_rarely():
    """A frequent buyer whose BG/NBD chance of buying is below average has gone quiet, not
    bought rarely: the sentence must not claim they buy less often than the average."""
    assert reason_sentence(HISTORY_REASON, _person(purchase_days=41, tenure_days=689, recency_days=200)) == \
        "judged by their whole history (41 purchase days in 689 days, the last 200 days ago), less likely to " \
        "buy again than the average customer"
    assert reason_sentence(HISTORY_REASON, _person(purchase_days=1, tenure_days=50, recency_days=50)) == \
        "bought only once, 50 days ago: less likely to buy again than the average customer"


def test_every_model_input_has_its_own_wording_and_a_risky_side():
    inputs = [s.name for s in catalog()]
    numeric, categorical = model_inputs(inputs)
    values = {name: 2.0 for name in numeric} | {name: "olive_oil" for name in categorical}
    person = _person(**values)
    generic = [name for name in [*numeric, *categorical, HISTORY_REASON]
               if reason_sentence(name, person).endswith("raises the risk")]
    assert generic == []
    frame = pd.DataFrame([values])
    allowed = reason_mask(frame, [*numeric, *categorical], {name: 1.0 for name in numeric})
    # Every input can be a reason on some side: none is silently never shown.
    either_side = allowed | reason_mask(frame, [*numeric, *categorical], {name: 3.0 for name in numeric})
    assert [n for n, ok in zip([*numeric, *categorical], either_side[0]) if not ok] == []


def test_an_unknown_feature_gets_an_honest_generic_sentence_naming_it():
    assert reason_sentence("loyalty_points", _person(loyalty_points=35)) == "loyalty points (35) raises the risk"
    assert reason_sentence("recency_days", _person()) == "recency days raises the risk"


def test_reasons_keep_the_models_order_and_skip_empty_ones():
    person = _person(recency_days=94, interpurchase_days_mean=30, purchase_days=3, tenure_days=400)
    assert plain_reasons("purchase_history, recency_days", person) == [
        "judged by their whole history (3 purchase days in 400 days, the last 94 days ago), less likely to buy "
        "again than the average customer",
        "hasn't bought for 94 days (usually buys every 30), longer than the typical customer (45)"]
    assert plain_reasons("", person) == [] and plain_reasons(None, person) == []


def test_a_reason_is_allowed_only_on_its_risky_side_of_the_typical_customer():
    rows = pd.DataFrame({"recency_days": [90.0, 10.0, 30.0, None], "revenue_total": [100.0, 900.0, 300.0, None],
                         "discount_order_share": [0.1, 0.5, 0.3, None], "country": ["PS", None, " ", "IL"]})
    typical = {"recency_days": 30.0, "revenue_total": 300.0, "discount_order_share": 0.3}
    names = ["recency_days", "revenue_total", "discount_order_share", "country", HISTORY_REASON, "loyalty_points"]
    assert reason_mask(rows, names, typical).tolist() == [
        # longer ago, spent less, discount share on either side, a known country, history, unknown never
        [True, True, True, True, True, False],
        [False, False, True, False, True, False],
        [False, False, False, False, True, False],   # exactly typical: no direction to state
        [False, False, False, True, True, False],
    ]


def test_never_opening_the_emails_sent_counts_as_long_since_the_last_open():
    rows = pd.DataFrame({"days_since_last_email_open": [None, None, 10.0], "emails_sent": [5.0, 0.0, 5.0]})
    assert reason_mask(rows, ["days_since_last_email_open"], {"days_since_last_email_open": 20.0})[:, 0].tolist() \
        == [True, False, False]


# ------------------------------------------------------------------ files

def test_csv_has_exactly_the_agreed_columns_and_neutralises_formulas(tmp_path):
    rows = [_customer("a", 0.8, 1200.0, 730), _customer("b", 0.7, 900.0, 400, consent_email=False)]
    rows[0]["first_name"] = "=HYPERLINK(\"http://evil.example\")"
    path = write_list(churn_list(_inputs(rows), ListOptions()), tmp_path / "list.csv")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert tuple(frame.columns) == LIST_COLUMNS
    assert frame.loc[frame["customer_id"] == "a", "first_name"].item().startswith("'=")
    assert frame.loc[frame["customer_id"] == "b", "email"].item() == ""
    assert frame.loc[frame["customer_id"] == "a", "phone"].item() == "+970500000097"


def test_xlsx_holds_the_list_and_a_summary_sheet(tmp_path):
    path = write_list(churn_list(_inputs(SHOP), ListOptions(include_low_risk=True)), tmp_path / "list.xlsx")
    book = openpyxl.load_workbook(path)
    listed = list(book["Churn risk"].values)
    assert listed[0] == LIST_COLUMNS
    assert [r[0] for r in listed[1:]] == ["d", "a", "b", "c"]
    summary = [cell for row in book["Summary"].values for cell in row if cell is not None]
    assert "4 customers on the list, 443.44 revenue at risk over the next 90 days (scores as of 2026-10-31)" in summary


def test_xlsx_cells_are_typed_filtered_and_in_the_shops_currency_with_the_summary_first(tmp_path):
    import datetime as dt

    result = churn_list(_inputs(SHOP), ListOptions(include_low_risk=True, currency="ILS"))
    book = openpyxl.load_workbook(write_list(result, tmp_path / "list.xlsx"))
    assert book.sheetnames == ["Summary", "Churn risk"]
    summary = [cell for row in book["Summary"].values for cell in row if cell is not None]
    assert "4 customers on the list, 443.44 ILS revenue at risk over the next 90 days (scores as of 2026-10-31)" \
        in summary
    sheet = book["Churn risk"]
    assert sheet.freeze_panes == "B2" and sheet.auto_filter.ref == "A1:L5"
    column = {name: i + 1 for i, name in enumerate(LIST_COLUMNS)}
    first = {name: sheet.cell(row=2, column=i) for name, i in column.items()}  # d: 0.2, 246.58, 40 days
    assert first["customer_id"].value == "d"
    assert (first["churn_probability"].value, first["churn_probability"].number_format) == (0.2, "0.0%")
    assert first["revenue_at_risk"].value == 246.58 and first["revenue_at_risk"].number_format == '#,##0.00 "ILS"'
    assert first["last_purchase_date"].is_date and first["last_purchase_date"].value.date() == dt.date(2026, 9, 21)
    assert first["last_purchase_date"].number_format == "yyyy-mm-dd"
    assert first["days_since_last_purchase"].value == 40 and first["days_since_last_purchase"].data_type == "n"


def test_an_unsupported_extension_is_a_clear_error(tmp_path):
    with pytest.raises(CdpError, match=r"--out .*list\.pdf: unsupported file type '\.pdf'"):
        write_list(churn_list(_inputs(SHOP), ListOptions()), tmp_path / "list.pdf")


# ------------------------------------------------------------------ the trained sample shop

def _store_tables(shop):
    con = duckdb.connect(str(shop.config.parent / "cdp.duckdb"), read_only=True)
    try:
        scores = con.sql("SELECT * FROM scores").df()
        customers = con.sql("SELECT customer_id, first_name, email, phone, consent_email, consent_sms "
                            "FROM customers").df()
    finally:
        con.close()
    features = pd.read_parquet(shop.snapshot)
    return scores, customers.set_index("customer_id"), features.set_index("customer_id")


def _list_csv(shop, tmp_path, *args) -> tuple[pd.DataFrame, str]:
    out = tmp_path / "list.csv"
    output = run_cli("churn-list", "--config", str(shop.config), "--out", str(out), "--force", *args,
                     tracking_uri=shop.tracking_uri)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    return frame, output


def test_sample_list_ranks_every_scored_buyer_by_revenue_at_risk_worked_out_from_the_store(trained_shop, tmp_path):
    listed, _ = _list_csv(trained_shop, tmp_path, "--include-no-consent", "--include-low-risk")
    scores, customers, features = _store_tables(trained_shop)
    buyers = scores[scores["churn_probability"].notna()].set_index("customer_id")
    assert set(listed["customer_id"]) == set(buyers.index)
    default, _ = _list_csv(trained_shop, tmp_path, "--include-no-consent")  # the default leaves out the low risk
    assert set(default["customer_id"]) == set(buyers.index[buyers["churn_probability"] >= 0.5])
    f = features.loc[buyers.index]
    expected = (buyers["churn_probability"] * f["revenue_total"].fillna(0) * 90
                / f["tenure_days"].clip(lower=90)).round(2)
    got = listed.set_index("customer_id")["revenue_at_risk"].astype(float)
    assert (got - expected.loc[got.index]).abs().max() < 0.006
    assert got.is_monotonic_decreasing
    assert listed["last_purchase_date"].tolist() == [
        f.loc[c, "last_purchase_date"].strftime("%Y-%m-%d") for c in listed["customer_id"]]
    assert listed["days_since_last_purchase"].astype(int).tolist() == [
        int(f.loc[c, "recency_days"]) for c in listed["customer_id"]]


def test_sample_list_shows_each_contact_only_with_that_channels_consent(trained_shop, tmp_path):
    listed, output = _list_csv(trained_shop, tmp_path)
    _, customers, _ = _store_tables(trained_shop)
    rows = customers.loc[listed["customer_id"]]
    email_ok = rows["consent_email"].fillna(False).astype(bool).to_numpy()
    sms_ok = rows["consent_sms"].fillna(False).astype(bool).to_numpy()
    assert (email_ok | sms_ok).all(), "a customer without any consent is on the default list"
    assert (listed["email"] != "").to_numpy().tolist() == (email_ok & rows["email"].notna().to_numpy()).tolist()
    assert (listed["phone"] != "").to_numpy().tolist() == (sms_ok & rows["phone"].notna().to_numpy()).tolist()
    shown = listed[listed["email"] != ""]
    assert shown["email"].tolist() == customers.loc[shown["customer_id"], "email"].tolist()
    # The printed summary is counts and money: no email, phone or name of anyone listed.
    for column in ("email", "phone", "first_name"):
        assert not any(value and value in output for value in listed[column] if len(value) > 2)


def test_sample_list_leaves_out_customers_without_consent_and_lists_them_bare_when_asked(trained_shop, tmp_path):
    _, customers, _ = _store_tables(trained_shop)
    everyone, output = _list_csv(trained_shop, tmp_path, "--include-no-consent")
    no_consent = ~(customers["consent_email"].fillna(False).astype(bool)
                   | customers["consent_sms"].fillna(False).astype(bool))
    bare = everyone[everyone["customer_id"].map(no_consent)]
    assert len(bare) > 0
    assert (bare[["first_name", "email", "phone"]] == "").all().all()
    default, printed = _list_csv(trained_shop, tmp_path)
    printed = " ".join(printed.split())  # Rich wraps long lines
    assert set(default["customer_id"]) == set(everyone["customer_id"]) - set(bare["customer_id"])
    assert f"{len(bare):,} customers matching the filters left out: no marketing consent" in printed


def test_sample_reasons_are_plain_words_from_the_customers_own_history(trained_shop, tmp_path):
    listed, _ = _list_csv(trained_shop, tmp_path, "--include-no-consent")
    scores, _, features = _store_tables(trained_shop)
    reasons = scores.set_index("customer_id")["top_reasons"].fillna("")
    checked = 0
    for row in listed.itertuples():
        if reasons[row.customer_id] == "":
            assert row.reasons == ""
        elif reasons[row.customer_id].startswith("purchase_history"):
            f = features.loc[row.customer_id]
            days, tenure, recency = int(f["purchase_days"]), int(f["tenure_days"]), int(f["recency_days"])
            expected = (f"bought only once, {recency:,} days ago: less likely to buy again than the average customer"
                        if days == 1 else
                        f"judged by their whole history ({days} purchase days in {tenure:,} days, the last "
                        f"{recency:,} days ago), less likely to buy again than the average customer")
            assert row.reasons.split("; ")[0] == expected
            checked += 1
    assert checked > 20


def test_sample_segment_and_min_probability_filters_pick_exactly_those_customers(trained_shop, tmp_path):
    scores, customers, _ = _store_tables(trained_shop)
    segment = scores["segment"][scores["churn_probability"].notna()].value_counts().index[0]
    listed, _ = _list_csv(trained_shop, tmp_path, "--include-no-consent", "--segment", segment,
                          "--min-probability", "0.6", "--top", "15")
    chosen = scores[(scores["segment"] == segment) & (scores["churn_probability"] >= 0.6)]
    assert len(listed) == min(15, len(chosen))
    assert set(listed["customer_id"]) <= set(chosen["customer_id"])
    assert (listed["segment"] == segment).all()


def test_churn_list_before_scoring_asks_for_cdp_score(tmp_path):
    shop = tmp_path / "shop"
    for args in (["sample", "--customers", "40", "--seed", "1", "--end", "2026-10-31", "--out", str(shop)],
                 ["ingest", "--config", str(shop / "cdp.toml")], ["unify", "--config", str(shop / "cdp.toml")]):
        assert CliRunner().invoke(app, args).exit_code == 0
    result = CliRunner().invoke(app, ["churn-list", "--config", str(shop / "cdp.toml"), "--out",
                                      str(tmp_path / "list.csv")])
    assert result.exit_code == 1
    assert "has no scores yet: run `cdp score` first" in result.output
    assert "Traceback" not in result.output


def test_churn_list_with_an_unknown_segment_names_the_known_ones(trained_shop, tmp_path):
    result = CliRunner().invoke(app, ["churn-list", "--config", str(trained_shop.config), "--segment", "VIPs",
                                      "--out", str(tmp_path / "list.csv")],
                                env={"MLFLOW_TRACKING_URI": trained_shop.tracking_uri})
    assert result.exit_code == 1
    assert "--segment 'VIPs' is not a segment of the scored customers; known segments: " in result.output
    assert not (tmp_path / "list.csv").exists()


def test_html_list_escapes_what_customers_typed_and_carries_the_summary(tmp_path):
    rows = [_customer("a", 0.8, 1200.0, 730)]
    rows[0]["first_name"] = "<script>alert(1)</script>"
    page = write_list(churn_list(_inputs(rows), ListOptions()), tmp_path / "list.html").read_text(encoding="utf-8")
    assert page.count("<script") == 1 and "<script>alert" not in page  # only the page's own sorting script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "1 customer on the list, 118.36 revenue at risk over the next 90 days" in page


# Names of every character class, as a shop's catalogue may hold them (and two differing by one comma).
ODD_NAMES = ["Oil, olive", "Oil olive", "grains; maftoul: 1kg", 'dates "Medjool" [box] {12}', "k=v + 1",
             "تطريز فلسطيني", "olive wood 🌿", "books\\kids it's\tnew", "=soap", "@mail", "100%"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_category_and_channel_names_reach_every_list_format_unaltered(tmp_path, name):
    inputs = _inputs([_customer("a", 0.8, 1200.0, 730, reasons="top_category, preferred_channel")])
    inputs = ListInputs(inputs.scores, inputs.customers,
                        inputs.features.assign(top_category=name, preferred_channel=f"{name} (channel)"))
    result = churn_list(inputs, ListOptions())
    expected = (f"mostly buys {name}: customers who do come back less often; mostly buys through the {name} "
                "(channel) channel: customers who do come back less often")
    assert result.rows["reasons"].tolist() == [expected]
    csv_rows = pd.read_csv(write_list(result, tmp_path / "list.csv"), dtype=str, keep_default_na=False)
    assert csv_rows["reasons"].tolist() == [expected]
    sheet = openpyxl.load_workbook(write_list(result, tmp_path / "list.xlsx"))["Churn risk"]
    assert sheet.cell(row=2, column=LIST_COLUMNS.index("reasons") + 1).value == expected
    page = write_list(result, tmp_path / "list.html").read_text(encoding="utf-8")
    assert f"<td>{html.escape(expected)}</td>" in page


def test_the_html_list_shows_percentages_and_money_in_the_shops_currency(tmp_path):
    page = write_list(churn_list(_inputs(SHOP), ListOptions(include_low_risk=True, currency="ILS")),
                      tmp_path / "list.html").read_text(encoding="utf-8")
    assert "<td>20%</td>" in page and "<td>246.58 ILS</td>" in page and "<td>95%</td>" in page
    assert "443.44 ILS revenue at risk" in page


def test_the_html_list_fits_1400_pixels_and_sorts_and_filters_offline(trained_shop, tmp_path):
    """The sample shop's list in headless Chromium at 1,400 × 900, with no network: every
    column (the suggested action last) ends inside the window, no request leaves the file,
    a click on a header sorts by it, typing in the filter hides the rows without the text."""
    from tests.browser import opened

    out = tmp_path / "list.html"
    run_cli("churn-list", "--config", str(trained_shop.config), "--include-no-consent", "--out", str(out),
            tracking_uri=trained_shop.tracking_uri)
    with opened(out.resolve().as_uri()) as (page, requested):
        rows = page.locator("table.churn-list tbody tr").count()
        right = page.eval_on_selector_all("table.churn-list th, table.churn-list td",
                                          "els => Math.max(...els.map(e => e.getBoundingClientRect().right))")
        page_width = page.evaluate("document.documentElement.scrollWidth")
        action = page.locator("table.churn-list th").last.inner_text()
        page.screenshot(path=str(tmp_path / "list.png"), full_page=False)
        page.locator("table.churn-list th", has_text="days since last purchase").click()
        days = page.eval_on_selector_all(
            "table.churn-list tbody tr td:nth-child(10)", "els => els.map(e => parseFloat(e.textContent))")
        segment = page.locator("table.churn-list tbody tr td:nth-child(5)").first.inner_text()
        page.fill("#filter", segment)
        shown = page.locator("table.churn-list tbody tr:not([hidden])").all_inner_texts()
        counter = page.inner_text("#shown")
    assert rows > 100 and action == "suggested action"
    assert right <= 1400 and page_width <= 1400, (right, page_width)
    assert requested == [out.resolve().as_uri()]
    known = [d for d in days if d == d]
    assert known == sorted(known) and len(known) > 100  # ascending after one click
    assert 0 < len(shown) < rows and all(segment in row for row in shown) and counter == str(len(shown))
