"""The marketers' churn-risk list: who is likely to leave, what they are worth, why, and what to do.

:func:`churn_list` is a pure function of three tables `cdp score` leaves behind — the
store's ``scores`` and ``customers`` tables and the feature snapshot
(``online_features.parquet``) — and returns the ranked rows and a summary;
:func:`read_list_inputs` and :func:`write_list` are the I/O at its edges.

Revenue at risk
    ``churn_probability × value_if_retained``, where the value if retained is what the
    customer would spend over the churn horizon at their own lifetime pace:
    ``revenue_total × horizon_days / max(tenure_days, horizon_days)``. A customer who
    spent 1,200 over two years (730 days) is worth 1,200 × 90 / 730 ≈ 148 over the next
    90 days if they stay, so with a churn probability of 0.8 about 118 is at risk. The
    pace comes from what the customer really spent, not from a model's forecast: the
    models' ``expected_revenue`` already discounts the revenue by the chance of losing
    the customer, so multiplying it by the churn probability would count the risk twice.
    A customer newer than the horizon counts everything spent so far as one horizon's
    worth (their pace cannot be measured over a shorter span without inflating it).

Consent
    Contact details come only from the store's ``customers`` table (a customer erased by
    `cdp forget` is not there, so cannot be listed). A customer appears only if they
    consented to email or to SMS; their email is shown only with email consent, their
    phone only with SMS consent. With ``include_no_consent`` the others are listed too,
    without first name, email or phone. A missing consent flag counts as no consent.

Ranking
    Revenue at risk, highest first; then churn probability, then customer id, so the order
    is the same every run.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cdp.cells import safe_cell as safe_cell  # the lists' cells; tests import it from here
from cdp.cells import safe_frame
from cdp.errors import CdpError
from store.interface import TableStore
from store.snapshot import AS_OF_COLUMN, ServingSnapshot
from training.reasons import reasons_in_words, typical_values
from training.risk_bands import ChurnRiskBands

__all__ = [
    "LIST_COLUMNS",
    "LIST_FORMATS",
    "ChurnList",
    "ListInputs",
    "ListOptions",
    "churn_list",
    "read_list_inputs",
    "revenue_at_risk",
    "suggested_action",
    "summary_lines",
    "value_if_retained",
    "write_list",
]

LIST_COLUMNS = (
    "customer_id", "first_name", "email", "phone", "segment", "churn_probability", "churn_risk",
    "revenue_at_risk", "last_purchase_date", "days_since_last_purchase", "reasons", "suggested_action",
)
LIST_FORMATS = (".csv", ".xlsx", ".html")
CONTACT_COLUMNS = ("customer_id", "first_name", "email", "phone", "consent_email", "consent_sms")

# Segment names of `training.segments` (a name may carry a qualifier: "Loyal (high value)",
# "At risk 2"); matched on the base name, first match wins.
SEGMENT_ACTIONS: dict[str, str] = {
    "Champions": "VIP call: thank them personally and offer early access",
    "Loyal": "loyalty reward: a thank-you gift or bonus points on the next order",
    "At risk": "win-back offer: a personal discount on their favourite category",
    "Promising": "second-purchase nudge: a welcome-back offer on what they bought",
    "Need attention": "re-engagement email with recommendations picked for them",
    "Hibernating": "win-back offer: one strong discount, then pause if there is no answer",
    "Prospects": "first-purchase offer",
}
DEFAULT_ACTION = "re-engagement email"


@dataclass(frozen=True)
class ListOptions:
    """What the marketer asked for (`cdp churn-list` options)."""

    top: int | None = None
    min_probability: float = 0.0
    segment: str | None = None
    include_no_consent: bool = False
    include_low_risk: bool = False
    horizon_days: int = 90
    bands: ChurnRiskBands = field(default_factory=ChurnRiskBands)
    currency: str | None = None  # the base currency of cdp.toml's [currency], shown with money


@dataclass(frozen=True)
class ListInputs:
    """The tables the list is built from: the store's ``scores`` and ``customers`` (contact
    columns only) and the feature snapshot of the same scoring run."""

    scores: pd.DataFrame
    customers: pd.DataFrame
    features: pd.DataFrame


@dataclass(frozen=True)
class ChurnList:
    """The ranked rows (:data:`LIST_COLUMNS`) and what a marketer sees first.

    ``by_segment`` has one row per segment on the list: ``customers`` and
    ``revenue_at_risk``, largest revenue at risk first. ``left_out_without_consent``
    counts customers who passed every filter but were left out for want of consent.
    """

    rows: pd.DataFrame
    by_segment: pd.DataFrame
    left_out_without_consent: int
    features_as_of: str
    horizon_days: int
    left_out_low_risk: int = 0
    currency: str | None = None

    @property
    def customers(self) -> int:
        return len(self.rows)

    @property
    def total_revenue_at_risk(self) -> float:
        return float(self.rows["revenue_at_risk"].sum())


# ------------------------------------------------------------------ pure parts

def value_if_retained(revenue_total: pd.Series, tenure_days: pd.Series, horizon_days: int) -> pd.Series:
    """What each customer would spend over ``horizon_days`` at their lifetime pace:
    ``revenue_total × horizon_days / max(tenure_days, horizon_days)`` (0 when unknown)."""
    revenue = pd.to_numeric(revenue_total, errors="coerce").astype(float).fillna(0.0).clip(lower=0.0)
    tenure = pd.to_numeric(tenure_days, errors="coerce").astype(float).fillna(0.0)
    return revenue * horizon_days / np.maximum(tenure, float(horizon_days))


def revenue_at_risk(churn_probability: pd.Series, value: pd.Series) -> pd.Series:
    """Churn probability × the value if retained."""
    return pd.to_numeric(churn_probability, errors="coerce").astype(float) * value


def suggested_action(segment: object) -> str:
    """The next step for a segment; names with a qualifier ("Loyal (high value)") take
    their base name's action, unknown names a re-engagement email."""
    name = str(segment or "").strip()
    for base, action in SEGMENT_ACTIONS.items():
        if name == base or name.startswith(base + " "):
            return action
    return DEFAULT_ACTION


def _consented(flags: pd.Series) -> pd.Series:
    return flags.astype("boolean").fillna(False).astype(bool)


def known_segments(scores: pd.DataFrame) -> list[str]:
    """The segments of the customers with a churn score, sorted (for error messages)."""
    scored = scores[pd.to_numeric(scores["churn_probability"], errors="coerce").notna()]
    return sorted(scored["segment"].dropna().astype(str).unique())


def churn_list(inputs: ListInputs, options: ListOptions, in_words: bool = True) -> ChurnList:
    """The ranked churn-risk list (see the module docstring for every rule).

    Only customers with a churn score (buyers) and in the ``customers`` table are listed;
    ``min_probability``, ``segment`` and consent filter them, ``top`` keeps the first N
    after ranking. Reasons and actions are worded for the rows kept only;
    ``in_words=False`` leaves them empty (for totals that need only the money).
    """
    scores = inputs.scores
    if options.segment is not None:
        segments = known_segments(scores)
        if options.segment not in segments:
            raise CdpError(f"--segment {options.segment!r} is not a segment of the scored customers; known "
                           f"segments: {', '.join(segments) or 'none'}")
    probability = pd.to_numeric(scores["churn_probability"], errors="coerce").astype(float)
    keep = probability.notna() & (probability >= options.min_probability)
    if options.segment is not None:
        keep &= scores["segment"].astype(str) == options.segment
    low = keep & (options.bands.bands(probability.fillna(0.0).to_numpy()) == "low")
    left_out_low = 0 if options.include_low_risk else int(low.sum())
    if not options.include_low_risk:
        keep &= ~low
    chosen = scores.loc[keep, ["customer_id", "segment", "churn_probability", "top_reasons"]]
    chosen = chosen.assign(customer_id=chosen["customer_id"].astype(str))

    contacts = inputs.customers.loc[:, list(CONTACT_COLUMNS)].assign(
        customer_id=lambda f: f["customer_id"].astype(str))
    rows = chosen.merge(contacts, on="customer_id", how="inner", validate="one_to_one")
    any_consent = _consented(rows["consent_email"]) | _consented(rows["consent_sms"])
    left_out = 0 if options.include_no_consent else int((~any_consent).sum())
    if not options.include_no_consent:
        rows = rows[any_consent]

    features = inputs.features.assign(customer_id=inputs.features["customer_id"].astype(str))
    features = features.drop(columns=[c for c in (*CONTACT_COLUMNS[1:], "segment", "top_reasons", "churn_probability")
                                      if c in features.columns])
    rows = rows.merge(features, on="customer_id", how="left", validate="one_to_one")
    missing = pd.Series(np.nan, index=rows.index)
    value = value_if_retained(rows.get("revenue_total", missing), rows.get("tenure_days", missing),
                              options.horizon_days)
    rows = rows.assign(_at_risk=revenue_at_risk(rows["churn_probability"], value),
                       _probability=rows["churn_probability"].astype(float).round(4))
    # Rank on the unrounded value (rounding must not reorder near-ties), then keep the top.
    rows = rows.sort_values(["_at_risk", "_probability", "customer_id"], ascending=[False, False, True],
                            kind="stable").reset_index(drop=True)
    if options.top is not None:
        rows = rows.head(options.top)
    email_ok, sms_ok = _consented(rows["consent_email"]), _consented(rows["consent_sms"])
    missing = pd.Series(np.nan, index=rows.index)
    out = pd.DataFrame({
        "customer_id": rows["customer_id"],
        "first_name": rows["first_name"].astype(object).where(email_ok | sms_ok, None),
        "email": rows["email"].astype(object).where(email_ok, None),
        "phone": rows["phone"].astype(object).where(sms_ok, None),
        "segment": rows["segment"].astype(object),
        "churn_probability": rows["_probability"],
        "churn_risk": options.bands.bands(rows["churn_probability"].astype(float).to_numpy()),
        "revenue_at_risk": rows["_at_risk"].round(2),
        "last_purchase_date": pd.to_datetime(rows.get("last_purchase_date", missing), errors="coerce")
                                .dt.strftime("%Y-%m-%d"),
        "days_since_last_purchase": pd.to_numeric(rows.get("recency_days", missing), errors="coerce").round()
                                      .astype("Int64"),
        "reasons": reasons_in_words(rows, typical_values(inputs.features)) if in_words else "",
        "suggested_action": [suggested_action(s) for s in rows["segment"]] if in_words else "",
    }, index=rows.index)
    as_of = scores["features_as_of"].dropna()
    return ChurnList(rows=out[list(LIST_COLUMNS)], by_segment=_by_segment(out), left_out_without_consent=left_out,
                     features_as_of=str(pd.Timestamp(as_of.iloc[0]).date()) if len(as_of) else "",
                     horizon_days=options.horizon_days, left_out_low_risk=left_out_low, currency=options.currency)


def _by_segment(rows: pd.DataFrame) -> pd.DataFrame:
    table = rows.groupby("segment", sort=False).agg(customers=("customer_id", "size"),
                                                    revenue_at_risk=("revenue_at_risk", "sum"))
    table["revenue_at_risk"] = table["revenue_at_risk"].round(2)
    return table.sort_values(["revenue_at_risk", "customers"], ascending=False, kind="stable").reset_index()


# ------------------------------------------------------------------ reading and writing

def read_list_inputs(store: TableStore, snapshot: ServingSnapshot) -> ListInputs:
    """The scores, the customers' contact columns and the feature snapshot, checked to belong together.

    ``store`` is an open store; ``snapshot`` the serving snapshot `cdp score` wrote beside it.
    """
    if not store.has_table("scores"):
        raise CdpError(f"store {store.path} has no scores yet: run `cdp score` first")
    if not store.has_table("customers"):
        raise CdpError(f"store {store.path} has no unified profiles yet: run `cdp unify` first")
    if not snapshot.exists():
        raise CdpError(f"no feature snapshot at {snapshot.path}: run `cdp score` first")
    scores = store.frame("SELECT * FROM scores")
    customers = store.frame(f"SELECT {', '.join(CONTACT_COLUMNS)} FROM customers")
    features = snapshot.read()  # checked as the service checks it: one day, unique ids
    scored = {str(pd.Timestamp(v).date()) for v in scores["features_as_of"].dropna().unique()}
    described = str(pd.Timestamp(features[AS_OF_COLUMN].iloc[0]).date())
    if scored and scored != {described}:
        raise CdpError(f"the scores are as of {', '.join(sorted(scored))} but the feature snapshot {snapshot.path} "
                       f"as of {described}: run `cdp score` again so both are of one run")
    return ListInputs(scores=scores, customers=customers, features=features.reset_index(drop=True))


def list_format(path: Path) -> str:
    """The output format from the file name's extension; a clear error for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in LIST_FORMATS:
        raise CdpError(f"--out {path}: unsupported file type {suffix or '(none)'!r}; use .csv, .xlsx or .html")
    return suffix


def _for_spreadsheet(rows: pd.DataFrame) -> pd.DataFrame:
    return safe_frame(rows)


def summary_lines(result: ChurnList) -> list[str]:
    """The summary in words: counts and money only (never a name, email or phone)."""
    noun = "customer" if result.customers == 1 else "customers"
    money = _money(result.total_revenue_at_risk) + (f" {result.currency}" if result.currency else "")
    lines = [f"{result.customers:,} {noun} on the list, {money} revenue at risk "
             f"over the next {result.horizon_days} days (scores as of {result.features_as_of})"]
    if result.left_out_low_risk:
        lines.append(f"{result.left_out_low_risk:,} low-risk customers matching the filters left out "
                     "(--include-low-risk lists them)")
    if result.left_out_without_consent:
        lines.append(f"{result.left_out_without_consent:,} customers matching the filters left out: no marketing "
                     "consent on any channel (--include-no-consent lists them without contact details)")
    return lines


def _money(x: float) -> str:
    return f"{x:,.2f}" if math.isfinite(x) else "n/a"


def write_list(result: ChurnList, path: Path) -> Path:
    """Write the list as CSV (exactly :data:`LIST_COLUMNS`), XLSX (the list and a summary
    sheet) or a self-contained HTML page, chosen by ``path``'s extension."""
    path = Path(path)
    kind = list_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == ".csv":
        _for_spreadsheet(result.rows).to_csv(path, index=False, encoding="utf-8")
    elif kind == ".xlsx":
        _write_xlsx(result, path)
    else:
        path.write_text(list_page(result), encoding="utf-8")
    return path


def _write_xlsx(result: ChurnList, path: Path) -> None:
    """The summary sheet first, then the list: typed cells (numbers, percentages, money in the
    base currency, real dates), the header row frozen and an autofilter on every column."""
    import datetime as dt

    from openpyxl.utils import get_column_letter

    money_format = "#,##0.00" + (f' "{result.currency}"' if result.currency else "")
    summary = pd.concat([
        pd.DataFrame({"segment": ["all segments"], "customers": [result.customers],
                      "revenue_at_risk": [round(result.total_revenue_at_risk, 2)]}),
        result.by_segment,
    ], ignore_index=True)
    rows = _for_spreadsheet(result.rows)
    rows = rows.assign(last_purchase_date=pd.to_datetime(rows["last_purchase_date"], errors="coerce").dt.date
                       .astype(object).where(rows["last_purchase_date"].notna(), None),
                       days_since_last_purchase=rows["days_since_last_purchase"].astype(object)
                       .where(rows["days_since_last_purchase"].notna(), None))
    lines = summary_lines(result)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        summary.to_excel(writer, sheet_name="Summary", index=False, startrow=len(lines) + 1)
        rows.to_excel(writer, sheet_name="Churn risk", index=False)
        sheet = writer.sheets["Summary"]
        for i, line in enumerate(lines, start=1):
            sheet.cell(row=i, column=1, value=line)
        for row in sheet.iter_rows(min_row=len(lines) + 3, min_col=3, max_col=3):
            row[0].number_format = money_format
        sheet.column_dimensions["A"].width = 28
        sheet.column_dimensions["C"].width = 18
        listed = writer.sheets["Churn risk"]
        listed.freeze_panes = "B2"
        listed.auto_filter.ref = f"A1:{get_column_letter(len(LIST_COLUMNS))}{len(rows) + 1}"
        formats = {"churn_probability": "0.0%", "revenue_at_risk": money_format, "last_purchase_date": "yyyy-mm-dd",
                   "days_since_last_purchase": "0"}
        for position, name in enumerate(LIST_COLUMNS, start=1):
            if name in formats:
                for (cell,) in listed.iter_rows(min_row=2, min_col=position, max_col=position):
                    if isinstance(cell.value, dt.datetime):
                        cell.value = cell.value.date()
                    cell.number_format = formats[name]
        for column, width in zip("ABCDEFGHIJKL", (20, 14, 28, 16, 20, 10, 10, 14, 12, 10, 80, 50)):
            listed.column_dimensions[column].width = width


def table_html(frame: pd.DataFrame, css_class: str = "") -> str:
    """An HTML table of ``frame`` with every value escaped (empty cells for missing values)."""
    head = "".join(f"<th>{html.escape(str(c).replace('_', ' '))}</th>" for c in frame.columns)
    body = []
    for record in frame.itertuples(index=False):
        cells = []
        for value in record:
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                text = ""
            elif isinstance(value, float):
                text = f"{value:,.2f}"
            else:
                text = str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="{html.escape(css_class)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1336px; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.summary li { margin: 0.2rem 0; }
figure { margin: 1rem 0; } img { max-width: 100%; }
"""


# The list's own layout: fixed column widths that add up to the page, long text wrapped, so the
# whole row (the suggested action included) is on screen at 1,400 px.
LIST_STYLE = """
table.churn-list { table-layout: fixed; width: 100%; }
table.churn-list td { overflow-wrap: break-word; }
table.churn-list th { cursor: pointer; user-select: none; position: sticky; top: 0; font-size: 0.75rem;
                      overflow-wrap: anywhere; }
table.churn-list th[aria-sort=ascending]::after { content: " \\25B2"; }
table.churn-list th[aria-sort=descending]::after { content: " \\25BC"; }
.filter { margin: 0.5rem 0; } .filter input { width: 24rem; padding: 0.25rem; }
"""
# Widths (in % of the table) of LIST_COLUMNS, in order.
LIST_WIDTHS = (8, 6, 10, 7, 7, 6, 6, 7, 7, 6, 20, 10)

# Sorting (click a header; again to reverse) and filtering (rows holding the text), offline:
# no library, nothing fetched. Numbers sort as numbers ("1,234.50 ILS", "20%"), the rest as text.
LIST_SCRIPT = """
(function () {
  var table = document.querySelector("table.churn-list"), body = table.tBodies[0];
  function key(cell) {
    var text = cell.textContent.trim(), number = parseFloat(text.replace(/[^0-9.-]/g, ""));
    return /^-?[0-9][0-9,]*(\\.[0-9]+)?(%| [A-Z]{3})?$/.test(text) ? number : text.toLowerCase();
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a.cells[column]), y = key(b.cells[column]);
        if (x === y) { return 0; }
        if (x === "") { return 1; } if (y === "") { return -1; }
        return (x < y ? -1 : 1) * (up ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  document.getElementById("filter").addEventListener("input", function (event) {
    var needle = event.target.value.toLowerCase(), shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var keep = row.textContent.toLowerCase().indexOf(needle) >= 0;
      row.hidden = !keep; shown += keep ? 1 : 0;
    });
    document.getElementById("shown").textContent = shown;
  });
})();
"""


def list_page(result: ChurnList) -> str:
    """The list as one self-contained HTML page: the summary, then the ranked rows."""
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(result))
    code = f" {result.currency}" if result.currency else ""

    def shown(frame: pd.DataFrame) -> pd.DataFrame:
        """Probabilities as percentages and money with the currency, as people read them."""
        out = frame.copy()
        if "churn_probability" in out:
            out["churn_probability"] = [f"{p:.0%}" if isinstance(p, float) and math.isfinite(p) else ""
                                        for p in out["churn_probability"]]
        if "revenue_at_risk" in out:
            out["revenue_at_risk"] = [f"{x:,.2f}{code}" if isinstance(x, float) and math.isfinite(x) else ""
                                      for x in out["revenue_at_risk"].astype(float)]
        return out

    widths = "".join(f'<col style="width:{w}%">' for w in LIST_WIDTHS)
    opening = '<table class="churn-list">'
    listed = table_html(shown(result.rows), "churn-list").replace(opening, f"{opening}<colgroup>{widths}</colgroup>", 1)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Churn-risk list</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{PAGE_STYLE}{LIST_STYLE}</style></head><body><h1>Churn-risk list</h1>"
            f'<ul class="summary">{lines}</ul><h2>By segment</h2>{table_html(shown(result.by_segment), "by-segment")}'
            f"<h2>Customers, by revenue at risk</h2>"
            f'<p class="filter"><label>Filter: <input id="filter" type="search" placeholder="any text: a segment, a '
            f'reason, a name"></label> <span id="shown">{len(result.rows)}</span> of {len(result.rows)} shown; '
            f"click a column's name to sort by it.</p>"
            f"{listed}<script>{LIST_SCRIPT}</script></body></html>")

