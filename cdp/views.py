"""What the CLI prints: each command's result as Rich tables and one-line notes.

Pure presentation: every function takes a stage's result and the console to print on,
so the commands in `cdp.cli` only parse, call and show. Values from the data (source,
channel and segment names, reasons) are escaped: Rich markup in them stays text.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

OUTSIDE_THE_STORE = ("Files written elsewhere with --out (scores, feature tables, churn lists, reports, exports) "
                     "are outside the store: delete them or write them again.")


def note(out: Console, text: str) -> None:
    """One line of plain text (no markup, no highlighting), wrapped as the terminal needs."""
    out.print(escape(text), highlight=False, soft_wrap=True)


def show_sample(out: Console, summary, out_dir: Path, seed: int, last_day) -> None:
    table = Table(title=f"sample data in {out_dir} (seed {seed}, last day {last_day})")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, rows in summary.files.items():
        table.add_row(name, f"{rows:,}")
    out.print(table)
    out.print(f"config: {out_dir / 'cdp.toml'}   ground truth: {out_dir / 'truth'}")


def show_ingest(out: Console, reports, store_path: Path) -> None:
    table = Table(title=f"ingest into {store_path}")
    for column in ("source", "read", "accepted", "rejected", "added", "updated", "unchanged"):
        table.add_column(column, justify="left" if column == "source" else "right", no_wrap=True)
    notes = []
    for r in reports:
        table.add_row(escape(r.source), f"{r.rows_read:,}", f"{r.accepted:,}", f"{r.rejected:,}", f"{r.added:,}",
                      f"{r.updated:,}", f"{r.unchanged:,}")
        if r.skipped:
            notes.append(f"{r.source}: file unchanged since the last ingest; nothing to do")
        if r.removed:
            notes.append(f"{r.source}: {r.removed:,} rows no longer in the file removed (mode = replace)")
        if r.invalid_emails or r.invalid_phones:
            notes.append(f"{r.source}: kept but not used for linking: {r.invalid_emails:,} invalid emails, "
                         f"{r.invalid_phones:,} invalid phones")
        if r.suppressed:
            notes.append(f"{r.source}: suppressed: {r.suppressed:,} records of erased people (tombstones)")
        notes += [f"{r.source}: {n:,} rows rejected: {reason}" for reason, n in r.top_reasons]
    out.print(table)
    for line in notes:
        out.print(f"  {escape(line)}", highlight=False)
    if any(r.rejected for r in reports):
        out.print("Every rejected row and all its reasons are in the store's `rejects` table: `cdp rejects`.")


def show_unify(out: Console, r) -> None:
    out.print(f"[bold]{r.customers:,}[/] customers from {r.records:,} records "
              f"({r.linked_records:,} linked; {r.new_customers:,} new ids, {r.merged_ids:,} merged, "
              f"{r.split_ids:,} split, {r.retired_ids:,} retired, {r.revived_ids:,} revived)")
    if r.unlinked_orders or r.unlinked_events:
        out.print(f"kept unlinked: {r.unlinked_orders:,} orders whose only identifiers were excluded, "
                  f"{r.unlinked_events:,} anonymous events")
    for reason, n in sorted(r.excluded_identifiers.items()):
        out.print(f"not used as links: {n:,} identifiers ({reason}); see table identifier_exclusions")


def show_status(out: Console, status, store_path: Path, tracking_uri: str, online: str | None = None) -> None:
    table = Table(title=f"store {store_path}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in status.rows.items():
        table.add_row(name, f"{n:,}")
    out.print(table)
    for step, at in (("ingest", status.last_ingest), ("unify", status.last_unify)):
        if at is not None:
            out.print(f"last {step}: {at:%Y-%m-%d %H:%M} UTC")
    if not status.customers_by_sources.empty:
        out.print("customers by the sources they appear in:")
        for row in status.customers_by_sources.itertuples():
            out.print(f"  {row.n:>8,}  {row.sources}")
    note(out, f"models and MLflow runs: {tracking_uri}")
    if online is not None:
        note(out, online)


def show_rejects(out: Console, frame: pd.DataFrame) -> None:
    table = Table(title="rejected rows")
    for column in ("source", "file", "row", "reason"):
        table.add_column(column)
    for row in frame.itertuples():
        table.add_row(escape(row.source), escape(Path(row.file).name), str(row.row_number), escape(row.reason))
    out.print(table)


def show_trained(out: Console, trained, horizon_days: int, tracking_uri: str) -> None:
    table = Table(title=f"models as of {trained.as_of} (horizon {horizon_days} days) → {tracking_uri}")
    for column in ("family", "version", "held-out metrics", "gate"):
        table.add_column(column)
    for r in trained.results:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in r.metrics.items())
        verdict = ("champion" if r.decision.promoted else "challenger") + f": {r.decision.reason}"
        if r.skipped:
            shown, verdict = "–", "skipped, not trained (see the note below)"
        table.add_row(r.family, r.version or "–", shown, escape(verdict))
    out.print(table)
    for r in trained.results:
        for line in (*r.notes.values(), *r.warnings):
            note(out, f"note ({r.family}): {line}")


def show_backtest(out: Console, found, median_gap: pd.Series, day, horizon_days: int) -> None:
    """The contenders' table, and cdp-ml minus BG/NBD with intervals (``median_gap``: the
    MAE difference of the median forecast, `training.evaluate.mae_differences`)."""
    table = found.table
    if found.window.carried_forward:
        note(out, f"note: {found.window.note}")
    shown = Table(title=f"backtest as of {day}: {len(found.test):,} customers, next {horizon_days} days")
    shown.add_column("model")
    for column in table.columns:
        shown.add_column(column.replace("_", " "), justify="right")
    for name, row in table.iterrows():
        shown.add_row(name, *["–" if pd.isna(v) else
                              f"{v:,.0f}" if c in ("customers", "predicted_purchase_days", "actual_purchase_days")
                              else f"{v:,.4f}" for c, v in row.items()])
    Console(width=max(out.width, 170)).print(shown)
    gaps = Table(title="cdp-ml minus BG/NBD (95% paired bootstrap over customers)")
    for column in ("figure", "difference", "low", "high"):
        gaps.add_column(column, justify="left" if column == "figure" else "right")
    for name, row in found.differences.iterrows():
        gaps.add_row(str(name), *[f"{v:+.4f}" for v in row[["difference", "low_95", "high_95"]]])
    gaps.add_row("MAE, median forecast", *[f"{v:+.4f}" for v in median_gap])
    out.print(gaps)


def show_attribution(out: Console, wide: pd.DataFrame, notes: list[str], out_file: Path, run_id: str) -> None:
    """``wide``: models × channels shares (`marketing.attribution_report.summary_table`, transposed)."""
    for line in notes:
        out.print(escape(line), highlight=False)
    shown = Table(title=f"share of conversions → {out_file} (MLflow run {run_id})")
    shown.add_column("model")
    for channel in wide.columns:
        shown.add_column(escape(str(channel)), justify="right")
    for model, row in wide.iterrows():
        shown.add_row(model, *(f"{v * 100:.1f}%" for v in row))
    out.print(shown)


def show_churn_list(out: Console, summary: list[str], by_segment: pd.DataFrame, out_file: Path) -> None:
    for line in summary:
        out.print(escape(line), highlight=False)
    table = Table(title=f"by segment → {out_file}")
    for column in ("segment", "customers", "revenue at risk"):
        table.add_column(column, justify="left" if column == "segment" else "right")
    for row in by_segment.itertuples():
        table.add_row(escape(str(row.segment)), f"{row.customers:,}", f"{row.revenue_at_risk:,.2f}")
    out.print(table)


def show_audience(out: Console, summary: list[str], files) -> None:
    """What `cdp audience` did: counts only, then the files (full list, joined, left)."""
    for line in summary:
        out.print(escape(line), highlight=False)
    out.print(escape("→ " + ", ".join(str(p) for p in files)), highlight=False)


def show_export(out: Console, done, out_file: Path) -> None:
    note(out, f"exported customer {done.customer_id}: " + ", ".join(
        f"{n:,} {what.replace('_', ' ')}" for what, n in done.counts.items()) + f" → {out_file}")
    out.print("The file holds the person's personal data: hand it over securely and do not keep a copy.",
              highlight=False)


def show_erasure(out: Console, done, requests_file: Path | None = None, store_is_directory: bool = False) -> None:
    """What `cdp forget` did: per person erased, then the snapshot, models and what is outside."""
    for r in done.reports:
        if r.already_erased:
            note(out, "already erased: that identifier is tombstoned by an earlier `cdp forget`; nothing of theirs "
                      "is left to delete")
            continue
        rows = sum(r.deleted.values())
        tables = ", ".join(f"{t} {n:,}" for t, n in r.deleted.items() if n)
        note(out, f"erased customer {r.customer_ref} (its reference in the audit log, entry {r.audit_id}): "
                  f"{rows:,} rows deleted ({tables})")
        written = ", ".join(f"{n} {t}" for t, n in sorted(r.tombstones.items())) or "none new"
        note(out, f"tombstones: {written}; `cdp ingest` keeps their records out from now on")
    for number, why in done.not_found:  # the number-th request: the file's row after its header
        note(out, f"{requests_file}, row {number + 1}: {why}; nothing erased for it")
    if done.online_removed is not None:
        note(out, f"online store: {done.online_removed:,} answer(s) deleted with their feature rows and look-up keys; "
                  "every service worker reading it stops answering for them at once")
    if done.snapshot_rows_removed:
        note(out, f"serving snapshot {done.snapshot} rewritten without them: the service stops answering "
                  "for them at its next poll (or POST /admin/reload)")
    if any(not r.already_erased for r in done.reports):
        if store_is_directory:
            note(out, "every older version of the store's tables was deleted: their values cannot be read back")
        else:
            note(out, "the store file was rebuilt without the deleted rows: their values cannot be read back from it")
    if done.models_to_retrain:
        note(out, "retrain: " + ", ".join(f"{m.name} v{m.version}" for m in done.models_to_retrain)
                  + " (trained on data that held them; `cdp train all`)")
    if done.registry_note:
        note(out, done.registry_note)
    note(out, OUTSIDE_THE_STORE)


def show_catalog(out: Console, specs) -> None:
    table = Table(title=f"{len(specs)} features")
    for column in ("feature", "family", "window", "model input", "description"):
        table.add_column(column)
    for s in specs:
        table.add_row(s.name, s.family, s.window, "yes" if s.model_input else "no", s.description)
    out.print(table)
