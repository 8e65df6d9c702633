"""The marketing report's charts: small matplotlib figures as PNG bytes, and data URIs to embed them.

Each function takes an aggregate table (never customer rows with personal data) and
returns PNG bytes. Figures are built with the object API (``matplotlib.figure.Figure``),
not pyplot, so no global state is touched, and saved without the "Software" metadata so
the same table gives the same bytes.
"""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["BAND_COLOURS", "data_uri", "revenue_at_risk_chart", "risk_by_segment_chart", "risk_histogram",
           "segment_share_chart"]

BAND_COLOURS = {"high": "#c0392b", "medium": "#e67e22", "low": "#27ae60", "not scored": "#bdc3c7"}
DPI = 100


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes, without the writer's "Software" tag (same bytes on every machine)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Names are the shop's own text (emoji too): a character the font lacks is drawn as
        # a box, not worth a warning on the user's terminal.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI: the image travels inside the HTML, no network needed."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def segment_share_chart(overview: pd.DataFrame) -> bytes:
    """Side by side: each segment's share of customers and of the last year's revenue.

    ``overview`` has ``segment``, ``customer_share`` and ``revenue_share_365d`` (0..1)."""
    fig = Figure(figsize=(9, 0.5 * len(overview) + 1.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(overview))
    for ax, column, title, colour in ((axes[0], "customer_share", "share of customers", "#2c7fb8"),
                                      (axes[1], "revenue_share_365d", "share of revenue, last 365 days", "#7fcdbb")):
        values = overview[column].fillna(0).to_numpy(float) * 100
        ax.barh(y, values, color=colour)
        for yi, v in zip(y, values):
            ax.text(v, yi, f" {v:.0f}%", va="center", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlim(0, max(values.max(initial=0) * 1.25, 10))
        ax.set_xlabel("%")
    axes[0].set_yticks(y, overview["segment"].astype(str))
    axes[0].invert_yaxis()
    return png_bytes(fig)


def risk_by_segment_chart(risk: pd.DataFrame) -> bytes:
    """Stacked bars: customers per churn-risk band in each segment.

    ``risk`` is indexed by segment with one column per band (``high``, ``medium``,
    ``low``, ``not scored``)."""
    fig = Figure(figsize=(9, 0.5 * len(risk) + 1.6), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(risk))
    left = np.zeros(len(risk))
    for band in [b for b in BAND_COLOURS if b in risk.columns]:
        values = risk[band].to_numpy(float)
        ax.barh(y, values, left=left, color=BAND_COLOURS[band], label=f"{band} risk" if band != "not scored" else band)
        left += values
    ax.set_yticks(y, risk.index.astype(str))
    ax.invert_yaxis()
    ax.set_xlabel("customers")
    ax.set_title("Churn risk by segment", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return png_bytes(fig)


def risk_histogram(churn_probability: pd.Series, medium: float, high: float) -> bytes:
    """How the churn probabilities of scored customers spread, with the band cut-offs marked."""
    fig = Figure(figsize=(9, 3), layout="constrained")
    ax = fig.subplots()
    values = pd.to_numeric(churn_probability, errors="coerce").dropna().to_numpy(float)
    ax.hist(values, bins=np.linspace(0, 1, 21).tolist(), color="#5d6d7e", edgecolor="white")
    for cut, band in ((medium, "medium"), (high, "high")):
        ax.axvline(cut, color=BAND_COLOURS[band], linestyle="--")
        ax.text(cut, ax.get_ylim()[1] * 0.95, f" {band} from {cut:.0%}", color=BAND_COLOURS[band], fontsize=8,
                va="top")
    ax.set_xlabel("churn probability")
    ax.set_ylabel("customers")
    ax.set_title("How likely customers are to leave", fontsize=10)
    return png_bytes(fig)


def revenue_at_risk_chart(by_segment: pd.DataFrame) -> bytes:
    """Revenue at risk per segment (``segment``, ``revenue_at_risk``), largest first."""
    fig = Figure(figsize=(9, 0.5 * len(by_segment) + 1.6), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(by_segment))
    values = by_segment["revenue_at_risk"].to_numpy(float)
    ax.barh(y, values, color=BAND_COLOURS["high"])
    for yi, v in zip(y, values):
        ax.text(v, float(yi), f" {v:,.0f}", va="center", fontsize=8)
    ax.set_yticks(y, by_segment["segment"].astype(str))
    ax.invert_yaxis()
    ax.set_xlim(0, max(values.max(initial=0) * 1.2, 1))
    ax.set_xlabel("revenue at risk")
    ax.set_title("Revenue at risk by segment", fontsize=10)
    return png_bytes(fig)
