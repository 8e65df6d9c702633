"""The attribution table as CSV or a self-contained HTML page, with a chart of the shares.

Everything here is aggregate (channels, counts, money): no customer appears.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cdp.cells import safe_frame
from cdp.errors import CdpError
from marketing.charts import data_uri, png_bytes

__all__ = ["EXPLANATIONS", "FORMATS", "explanation", "output_format", "shares_chart", "summary_table",
           "write_report"]

FORMATS = {".csv": "csv", ".html": "html", ".htm": "html"}

# One sentence per model, for people who did not write them (`attribution/`).
EXPLANATIONS = {
    "first_touch": "All credit to the first channel of the journey: what brought the customer in.",
    "last_touch": "All credit to the last channel before the order: what closed the sale.",
    "last_non_direct": "All credit to the last channel before the order that was not a direct visit (typing the "
                       "address or a bookmark), Google Analytics' classic rule.",
    "linear": "The credit split equally between every touch of the journey.",
    "time_decay": "More credit to touches close to the order: a touch's weight halves every half-life "
                  "(7 days by default) back from it.",
    "position_based": "40% to the first touch, 40% to the last, the other 20% shared by the touches between.",
    "markov": "Each channel's removal effect in a Markov chain of order {k} over the journeys (converting and "
              "not): how many conversions would be lost without the channel, the chain remembering the last "
              "{k} channel(s).",
    "shapley": "Each channel's Shapley value: its average marginal contribution to conversion over every "
               "combination of the other channels, the fair split of cooperative game theory.",
}
# Twelve colours told apart easily (matplotlib's tab10 plus two), one per model in table order.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#ad494a")


def model_colours(models: list[str]) -> list[str]:
    """A colour per model, all different while there are no more models than `PALETTE` holds."""
    return [PALETTE[i % len(PALETTE)] for i in range(len(models))]


def explanation(model: str) -> str:
    """The one-sentence explanation of ``model`` (``markov_3`` says order 3)."""
    if model.startswith("markov_"):
        return EXPLANATIONS["markov"].format(k=model.removeprefix("markov_"))
    return EXPLANATIONS.get(model, "")


def output_format(file: Path) -> str:
    """``csv`` or ``html`` from the file's extension; anything else is an error."""
    found = FORMATS.get(Path(file).suffix.lower())
    if found is None:
        raise CdpError(f"--out {file}: write the attribution table to a .csv or .html file")
    return found


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Channel × model shares (rows: channels, columns: models in the table's order)."""
    models = list(dict.fromkeys(table["model"]))
    return table.pivot(index="channel", columns="model", values="share")[models]


def shares_chart(table: pd.DataFrame) -> bytes:
    """Grouped horizontal bars: each channel's share of conversions under each model (PNG)."""
    wide = summary_table(table)
    channels, models = list(wide.index), list(wide.columns)
    fig = Figure(figsize=(9, 0.9 + 0.25 * len(channels) * max(len(models), 1) ** 0.6 + 0.4 * len(channels)),
                 layout="constrained")
    ax = fig.subplots()
    height = 0.8 / max(len(models), 1)
    colours = model_colours(models)
    y = np.arange(len(channels))
    for i, model in enumerate(models):
        ax.barh(y + i * height - 0.4 + height / 2, wide[model].to_numpy(float) * 100, height=height,
                color=colours[i], label=model)
    ax.set_yticks(y, channels, parse_math=False)  # a channel name is text: "$" is not mathtext
    ax.invert_yaxis()
    ax.set_xlabel("share of conversions (%)")
    ax.set_title("credit by channel and attribution model", fontsize=10)
    ax.legend(fontsize=7, ncols=2, loc="lower right")
    return png_bytes(fig, dpi=100)


def _html(table: pd.DataFrame, chart: bytes, notes: list[str], currency: str | None = None) -> str:
    wide = summary_table(table)
    code = f" {currency}" if currency else ""
    explained = "".join(f"<dt>{html.escape(m)}</dt><dd>{html.escape(explanation(m))}</dd>" for m in wide.columns)
    header = "".join(f"<th>{html.escape(m)}</th>" for m in wide.columns)
    rows = "".join("<tr><th>" + html.escape(str(ch)) + "</th>"
                   + "".join(f"<td>{v * 100:.1f}%</td>" for v in wide.loc[ch]) + "</tr>" for ch in wide.index)
    detail = table.copy()
    detail["conversions"] = detail["conversions"].map(lambda v: f"{v:,.2f}")
    detail["value"] = detail["value"].map(lambda v: f"{v:,.2f}{code}")
    for column in [c for c in ("share", "share_low", "share_high") if c in detail]:
        detail[column] = detail[column].map(lambda v: "" if pd.isna(v) else f"{v * 100:.1f}%")
    uri = data_uri(chart)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Multi-touch attribution</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} th{{background:#f4f4f4}}
img{{max-width:100%}} dt{{font-weight:bold;margin-top:0.4em}} dd{{margin-left:1.5em}}</style></head>
<body><h1>Multi-touch attribution</h1>
{''.join(f'<p>{html.escape(n)}</p>' for n in notes)}
<h2>Share of conversions by channel and model</h2>
<table><tr><th>channel</th>{header}</tr>{rows}</table>
<img alt="credit by channel and model" src="{uri}">
<h2>The models</h2>
<dl class="models">{explained}</dl>
<h2>Credited conversions and value</h2>
{detail.to_html(index=False, escape=True, border=0)}
</body></html>
"""


def write_report(table: pd.DataFrame, file: Path, notes: list[str] | None = None,
                 currency: str | None = None) -> bytes:
    """Write ``table`` to ``file`` (CSV: the long table as it is; HTML: summary, chart, what
    each model does and the detail, money in ``currency``) and return the chart's PNG bytes."""
    kind = output_format(file)
    chart = shares_chart(table)
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        # Full precision: the columns sum back to the totals. Channel names are the sources'
        # text, kept as they are except a leading apostrophe where a spreadsheet would see a formula.
        safe_frame(table).to_csv(file, index=False)
    else:
        file.write_text(_html(table, chart, notes or [], currency), encoding="utf-8")
    return chart
