"""`cdp report`: one self-contained HTML page for marketers.

Sections: the segments (size, share of customers and of the last year's revenue, a
profile of medians and the suggested action), churn risk by segment (bands and revenue
at risk), the top of the churn-risk list, and the models' quality in plain words. Charts
are matplotlib PNGs embedded as base64 data URIs, so the file opens anywhere without a
network. :func:`report_html` is a pure function of the list inputs and the model runs;
the CLI reads them and writes the file.

Personal data: the page carries only what the churn-risk list would show a marketer
under its consent rules, minus email and phone (a report travels further than a list:
`cdp churn-list` has the contact details). Aggregates (segment sizes, risk, revenue at
risk) cover every scored customer, consent or not: they name nobody.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

from marketing.charts import data_uri, revenue_at_risk_chart, risk_by_segment_chart, risk_histogram, segment_share_chart
from marketing.lists import PAGE_STYLE, ChurnList, ListInputs, ListOptions, churn_list, suggested_action, table_html
from marketing.model_quality import ModelRun, quality_in_words

__all__ = ["REPORT_TOP", "report_html", "risk_by_segment", "segment_overview"]

REPORT_TOP = 25
PROFILE_MEDIANS = {
    "recency_days": "days since last purchase",
    "purchase_days": "purchase days",
    "revenue_total": "revenue, all time",
    "mean_order_value": "order value",
    "email_open_rate": "email open rate",
}
BANDS = ("high", "medium", "low", "not scored")


def segment_overview(scores: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """One row per segment, largest first: ``customers``, ``customer_share``,
    ``revenue_365d`` and ``revenue_share_365d`` (the segment's part of the last year's
    revenue), the median of each :data:`PROFILE_MEDIANS` feature (``<feature>_median``)
    and the ``suggested_action``."""
    frame = scores[["customer_id", "segment"]].astype({"customer_id": str}).merge(
        features.assign(customer_id=features["customer_id"].astype(str)).drop(columns=["segment"], errors="ignore"),
        on="customer_id", how="left")
    frame["segment"] = frame["segment"].fillna("unknown").astype(str)
    grouped = frame.groupby("segment", sort=False)
    revenue = pd.to_numeric(frame.get("revenue_365d", pd.Series(0.0, index=frame.index)), errors="coerce").fillna(0.0)
    table = pd.DataFrame({"customers": grouped.size(), "revenue_365d": revenue.groupby(frame["segment"]).sum()})
    table["customer_share"] = table["customers"] / max(len(frame), 1)
    total = table["revenue_365d"].sum()
    table["revenue_share_365d"] = table["revenue_365d"] / total if total > 0 else 0.0
    for feature in PROFILE_MEDIANS:
        if feature in frame:
            table[f"{feature}_median"] = (pd.to_numeric(frame[feature], errors="coerce")
                                          .groupby(frame["segment"]).median())
    table = table.sort_values(["customers", "revenue_365d"], ascending=False, kind="stable")
    table["suggested_action"] = [suggested_action(s) for s in table.index]
    return table.rename_axis("segment").reset_index()


def risk_by_segment(scores: pd.DataFrame, options: ListOptions, order: Sequence[str]) -> pd.DataFrame:
    """Customers per churn-risk band (columns :data:`BANDS`) of each segment (index, in ``order``)."""
    probability = pd.to_numeric(scores["churn_probability"], errors="coerce").astype(float).to_numpy()
    bands = [band or "not scored" for band in options.bands.bands(probability)]
    counts = pd.crosstab(scores["segment"].fillna("unknown").astype(str), pd.Series(bands, index=scores.index))
    return counts.reindex(index=list(order), columns=list(BANDS), fill_value=0)


def _money(x: float) -> str:
    return f"{x:,.0f}"


def _figure(png: bytes, alt: str) -> str:
    return f'<figure><img src="{data_uri(png)}" alt="{html.escape(alt)}"></figure>'


def _overview_table(overview: pd.DataFrame) -> pd.DataFrame:
    shown = pd.DataFrame({"segment": overview["segment"], "customers": overview["customers"].map("{:,}".format),
                          "share of customers": overview["customer_share"].map("{:.0%}".format),
                          "share of revenue (365 days)": overview["revenue_share_365d"].map("{:.0%}".format)})
    for feature, label in PROFILE_MEDIANS.items():
        column = f"{feature}_median"
        if column in overview:
            fmt = "{:.0%}" if feature.endswith("rate") else "{:,.0f}"
            shown[f"median {label}"] = overview[column].map(lambda v, f=fmt: "" if pd.isna(v) else f.format(v))
    shown["suggested action"] = overview["suggested_action"]
    return shown


def report_html(inputs: ListInputs, runs: Mapping[str, ModelRun], options: ListOptions,
                registry_note: str | None = None, top: int = REPORT_TOP) -> str:
    """The whole report as one HTML string (charts inline). ``options`` carries the horizon
    and the risk bands; its filters are ignored: the report covers every scored customer."""
    everyone: ChurnList = churn_list(inputs, replace(options, top=None, min_probability=0.0, segment=None,
                                                     include_no_consent=True, include_low_risk=True), in_words=False)
    listed: ChurnList = churn_list(inputs, replace(options, top=top, min_probability=0.0, segment=None,
                                                   include_no_consent=False))
    overview = segment_overview(inputs.scores, inputs.features)
    risk = risk_by_segment(inputs.scores, options, overview["segment"])
    scored = pd.to_numeric(inputs.scores["churn_probability"], errors="coerce")
    as_of, horizon = everyone.features_as_of, options.horizon_days
    code = f" {options.currency}" if options.currency else ""
    high = int((risk["high"]).sum())

    headline = (f"{len(inputs.scores):,} customers scored as of {as_of}; {int(scored.notna().sum()):,} have bought "
                f"and have a churn score. {high:,} are at high churn risk (≥ {options.bands.high:.0%}) over the next "
                f"{horizon} days, and {_money(everyone.total_revenue_at_risk)}{code} of revenue is at risk "
                f"(churn probability × what the customer would spend in {horizon} days at their usual pace).")
    quality = quality_in_words(runs)
    if registry_note:
        quality.append(f"Model quality unavailable: {registry_note}.")
    if not quality:
        quality.append("No model quality figures were found for these scores.")
    top_rows = listed.rows.drop(columns=["email", "phone"])
    top_rows = top_rows.assign(churn_probability=top_rows["churn_probability"].map("{:.0%}".format),
                               revenue_at_risk=top_rows["revenue_at_risk"].map(lambda x: f"{x:,.2f}{code}"))
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>Customer report as of {html.escape(as_of)}</title><style>{PAGE_STYLE}</style></head><body>",
        f"<h1>Customers, segments and churn risk — as of {html.escape(as_of)}</h1>",
        f'<p class="headline">{html.escape(headline)}</p>',
        '<section id="segments"><h2>Segments</h2>',
        _figure(segment_share_chart(overview), "Share of customers and of revenue per segment"),
        table_html(_overview_table(overview), "segments"),
        "</section>",
        '<section id="churn-risk"><h2>Churn risk by segment</h2>',
        _figure(risk_by_segment_chart(risk), "Customers per churn-risk band in each segment"),
        _figure(risk_histogram(scored, options.bands.medium, options.bands.high),
                "Distribution of churn probabilities"),
        _figure(revenue_at_risk_chart(everyone.by_segment), "Revenue at risk per segment"),
        table_html(risk.rename_axis("segment").reset_index(), "risk-by-segment"),
        "</section>",
        f'<section id="top-list"><h2>Top {len(top_rows):,} customers by revenue at risk</h2>',
        "<p>Customers who agreed to hear from us on at least one channel. Contact details are in "
        "<code>cdp churn-list</code>, shown only for the channels each customer agreed to.</p>",
        table_html(top_rows, "top-list"),
        "</section>",
        '<section id="model-quality"><h2>How good are the models?</h2><ul>',
        "".join(f"<li>{html.escape(line)}</li>" for line in quality),
        "</ul></section></body></html>",
    ]
    return "".join(parts)
