"""`cdp`: the one command line. The only module that reads argv, the environment and the clock.

Each command loads the config once, calls one stage with plain values, and prints what
it did. A `CdpError` becomes one clear line on stderr and exit code 1; anything else is
a bug, reported without a traceback (and without data values) unless --debug is given.
"""

from __future__ import annotations

import sys
import traceback
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Callable, Optional

import duckdb
import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cdp.config import Config, load_config
from cdp.errors import CdpError

app = typer.Typer(
    name="cdp",
    help="cdp-ml: unify customer data from every source, then score, segment and attribute.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Path to cdp.toml.", show_default=True)]
DEFAULT_CONFIG = Path("cdp.toml")
_state = {"debug": False}


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of unexpected errors.")] = False) -> None:
    """cdp-ml: unify customer data from every source, then score, segment and attribute."""
    _state["debug"] = debug


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except CdpError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except (MemoryError, duckdb.OutOfMemoryException):
        err.print("[bold red]error:[/] " + escape("out of memory: raise [store] memory_limit in cdp.toml, or run "
                                                  "the features with --engine spark"), highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[bold red]interrupted:[/] nothing of this run was written")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a raw traceback
        if _state["debug"]:
            traceback.print_exc()
        err.print(f"[bold red]internal error:[/] {type(exc).__name__} (a bug in cdp-ml; rerun with "
                  "`cdp --debug ...` for the traceback).", highlight=False)
        raise typer.Exit(2) from None


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def _run_id() -> str:
    return _now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _config(path: Path) -> Config:
    return load_config(path)


def _spinner() -> Progress:
    """A progress display on stderr (only when it is a terminal, so logs and pipes stay clean)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)


@app.command()
def sample(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the sources, cdp.toml and truth/ into.")],
    customers: Annotated[int, typer.Option("--customers", min=10, help="How many people to simulate.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same files.")] = 7,
    end: Annotated[Optional[str], typer.Option(
        "--end", help="Last day of data, YYYY-MM-DD (default: yesterday).")] = None,
) -> None:
    """Write realistic multi-source sample data for an olive-oil shop, with ground truth."""

    def action() -> None:
        from sample import write_sample

        last_day = _parse_day(end, "--end") if end else date.today() - timedelta(days=1)
        with _spinner() as progress:
            progress.add_task(f"generating {customers:,} people", total=None)
            summary = write_sample(out_dir, n_customers=customers, seed=seed, end=last_day)
        table = Table(title=f"sample data in {out_dir} (seed {seed}, last day {last_day})")
        table.add_column("file")
        table.add_column("rows", justify="right")
        for name, rows in summary.files.items():
            table.add_row(name, f"{rows:,}")
        out.print(table)
        out.print(f"config: {out_dir / 'cdp.toml'}   ground truth: {out_dir / 'truth'}")

    _run(action)


@app.command()
def ingest(
    config: ConfigOption = DEFAULT_CONFIG,
    source: Annotated[Optional[list[str]], typer.Option(
        "--source", "-s", help="Only this source (repeatable).")] = None,
) -> None:
    """Read every source file into the store: typed rows, rejects with reasons."""

    def action() -> None:
        from profiles.ingest import ingest as run_ingest
        from store.duckdb_store import Store

        cfg = _config(config)
        with Store(cfg.store.path, memory_limit=cfg.store.memory_limit) as store, _spinner() as progress:
            chosen = tuple(source or ())
            task = progress.add_task("ingesting", total=len(chosen) or len(cfg.sources))
            started: list[str] = []

            def on_source(name: str) -> None:
                if started:
                    progress.advance(task)
                started.append(name)
                progress.update(task, description=f"ingesting {name}")

            reports = run_ingest(store, cfg, now=_now(), run_id=_run_id(), sources=chosen, on_source=on_source,
                                 tombstone_key=_tombstone_key())
        table = Table(title=f"ingest into {cfg.store.path}")
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
        for note in notes:
            out.print(f"  {escape(note)}", highlight=False)
        if any(r.rejected for r in reports):
            out.print("Every rejected row and all its reasons are in the store's `rejects` table: `cdp rejects`.")

    _run(action)


@app.command()
def unify(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Resolve identities into one profile per person, keeping customer ids stable."""

    def action() -> None:
        from profiles.unify import unify as run_unify
        from store.duckdb_store import Store

        cfg = _config(config)
        with Store(cfg.store.path, memory_limit=cfg.store.memory_limit) as store, _spinner() as progress:
            progress.add_task("resolving identities", total=None)
            r = run_unify(store, cfg, now=_now(), run_id=_run_id())
        out.print(f"[bold]{r.customers:,}[/] customers from {r.records:,} records "
                  f"({r.linked_records:,} linked; {r.new_customers:,} new ids, {r.merged_ids:,} merged, "
                  f"{r.split_ids:,} split, {r.retired_ids:,} retired, {r.revived_ids:,} revived)")
        if r.unlinked_orders or r.unlinked_events:
            out.print(f"kept unlinked: {r.unlinked_orders:,} orders whose only identifiers were excluded, "
                      f"{r.unlinked_events:,} anonymous events")
        for reason, n in sorted(r.excluded_identifiers.items()):
            out.print(f"not used as links: {n:,} identifiers ({reason}); see table identifier_exclusions")

    _run(action)


features_app = typer.Typer(help="Build features as of a date, or show the feature catalog.", no_args_is_help=False)
app.add_typer(features_app, name="features")


@features_app.callback(invoke_without_command=True)
def features(
    context: typer.Context,
    as_of: Annotated[Optional[str], typer.Option(
        "--as-of", help="Features use data up to and including this day (YYYY-MM-DD).")] = None,
    out_file: Annotated[Optional[Path], typer.Option(
        "--out", help="Where to write the table (.parquet or .csv).")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    engine: Annotated[str, typer.Option(
        "--engine", help="duckdb (embedded) or spark (local Spark, needs Java).")] = "duckdb",
    label_horizon_days: Annotated[Optional[int], typer.Option(
        "--label-horizon-days", min=1,
        help="Add labels from the H days after the as-of day (a training snapshot: buyers only).")] = None,
    materialize: Annotated[bool, typer.Option(
        "--materialize", help="Keep the table in the store for `cdp score` to read instead of building it again "
                              "(--as-of defaults to the last day in the store, as cdp score's does).")] = False,
) -> None:
    """Build one row of features per customer as of a date: cdp features --as-of DATE --out FILE."""
    if context.invoked_subcommand is not None:
        return

    def action() -> None:
        from features.build import check_output, store_feature_table, write_table
        from features.engine import ENGINES
        from features.materialized import TABLE
        from features.materialized import materialize as materialize_store

        if out_file is None and not materialize:
            raise CdpError("cdp features needs --out FILE (.parquet or .csv) and --as-of YYYY-MM-DD, or --materialize; "
                           "`cdp features catalog` lists the features")
        if as_of is None and not materialize:
            raise CdpError("cdp features --out needs --as-of YYYY-MM-DD")
        if materialize and label_horizon_days:
            raise CdpError("--materialize keeps the scoring snapshot, which has no labels: "
                           "drop --label-horizon-days or --materialize")
        if materialize and engine != "duckdb":
            # Scoring reads the store through DuckDB, and the purchase histories' ordered
            # concatenation is not one Ibis compiles for Spark.
            raise CdpError(f"--materialize builds the scoring snapshot on duckdb, not {engine}: drop --engine")
        if engine not in ENGINES:
            raise CdpError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
        if out_file is not None:
            check_output(out_file)
        cfg = _config(config)
        day = _parse_day(as_of, "--as-of") if as_of else None
        places = []
        with _spinner() as progress:
            task = progress.add_task("building features", total=None)
            on_stage = lambda text: progress.update(task, description=text)  # noqa: E731
            if materialize:
                kept = materialize_store(cfg, day, on_stage=on_stage)
                frame, day = _pa_table(kept.features), date.fromisoformat(kept.stamp.as_of)
                places.append(f"the store's {TABLE} table (read by cdp score) and {kept.serving_snapshot} "
                              "(read by cdp serve)")
            else:
                assert day is not None  # --out needs --as-of (checked above)
                frame = store_feature_table(cfg, day, engine, label_horizon_days, on_stage=on_stage)
        if out_file is not None:
            write_table(frame, out_file)
            places.append(str(out_file))
        labelled = f", labels over the next {label_horizon_days} days" if label_horizon_days else ""
        out.print(f"{frame.num_rows:,} customers × {frame.num_columns - 1} columns as of {day}{labelled} "
                  f"({engine}) → {' and '.join(places)}")

    _run(action)


@features_app.command("catalog")
def features_catalog(
    markdown_file: Annotated[Optional[Path], typer.Option(
        "--markdown", help="Also write the catalog as Markdown to this file (docs/FEATURES.md).")] = None,
) -> None:
    """List every feature: name, family, window, whether models use it, and what it means."""

    def action() -> None:
        from features.catalog import SCORING_FAMILIES, catalog, markdown

        specs = catalog(SCORING_FAMILIES)
        table = Table(title=f"{len(specs)} features")
        for column in ("feature", "family", "window", "model input", "description"):
            table.add_column(column)
        for s in specs:
            table.add_row(s.name, s.family, s.window, "yes" if s.model_input else "no", s.description)
        out.print(table)
        if markdown_file:
            markdown_file.parent.mkdir(parents=True, exist_ok=True)
            markdown_file.write_text(markdown(specs), encoding="utf-8")
            out.print(f"written to {markdown_file}")

    _run(action)


@app.command()
def status(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Show what the store holds: table sizes and the last runs."""

    def action() -> None:
        from store.duckdb_store import Store
        from store.status import store_status

        cfg = _config(config)
        with Store(cfg.store.path, read_only=True) as store:
            status = store_status(store)
        table = Table(title=f"store {cfg.store.path}")
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
        out.print(escape(f"models and MLflow runs: {_tracking(cfg).tracking_uri}"), highlight=False, soft_wrap=True)

    _run(action)


@app.command()
def rejects(
    config: ConfigOption = DEFAULT_CONFIG,
    source: Annotated[Optional[str], typer.Option("--source", "-s", help="Only this source.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many rows to show.")] = 20,
) -> None:
    """List rejected rows with their reasons (raw values are not printed: they may hold personal data)."""

    def action() -> None:
        from store.duckdb_store import Store
        from store.status import rejected_rows

        cfg = _config(config)
        with Store(cfg.store.path, read_only=True) as store:
            frame = rejected_rows(store, source, limit)
        table = Table(title="rejected rows")
        for column in ("source", "file", "row", "reason"):
            table.add_column(column)
        for row in frame.itertuples():
            table.add_row(escape(row.source), escape(Path(row.file).name), str(row.row_number), escape(row.reason))
        out.print(table)

    _run(action)


def _tracking(cfg: Config):
    """The store's MLflow: MLFLOW_TRACKING_URI if set, else [tracking] uri of cdp.toml, else
    `<store>.mlflow/` beside the store (SQLite and artifacts); scoped to this store."""
    import logging
    import os

    # MLflow's INFO lines (schema migrations, ignored extra columns) are not for this audience.
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # MLflow 3 reports usage to its makers unless told not to; a customer-data tool stays
    # quiet by default (set MLFLOW_DISABLE_TELEMETRY=false to allow it).
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from training.tracking import store_tracking

    return store_tracking(cfg, os.environ)


def _last_day(store) -> date:
    """The last day with an order or event in the store (the default as-of date)."""
    return store.data_days()[1]


def _as_of(store, text: Optional[str], label_horizon_days: Optional[int] = None) -> date:
    """``--as-of`` (default: the last day with data), checked against the store's data
    (`features.as_of.resolve_as_of`)."""
    from features.as_of import resolve_as_of

    return resolve_as_of(store, _parse_day(text, "--as-of") if text else None, label_horizon_days)


def _pa_table(frame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def _tables(store, cfg):
    from features.engine import store_tables

    return store_tables(store, cfg)


HorizonOption = Annotated[int, typer.Option("--horizon-days", min=1, help="Days ahead the models look (label window).")]
ChosenHorizonOption = Annotated[Optional[int], typer.Option(
    "--horizon-days", min=1, help="Which models: those trained for this horizon (default: the store's only one).")]
AsOfOption = Annotated[Optional[str], typer.Option(
    "--as-of", help="Use data up to and including this day, YYYY-MM-DD (default: the last day in the store).")]
SnapshotsOption = Annotated[int, typer.Option("--snapshots", min=2, help="Rolling training snapshots.")]
StepOption = Annotated[int, typer.Option("--step-days", min=1, help="Days between training snapshots.")]


@app.command()
def train(
    family: Annotated[str, typer.Argument(help="segments, churn, next-purchase or all.")] = "all",
    as_of: AsOfOption = None,
    horizon_days: HorizonOption = 90,
    snapshots: SnapshotsOption = 4,
    step_days: StepOption = 30,
    force: Annotated[bool, typer.Option("--force", help="Promote to champion even if not better.")] = False,
    max_customers: Annotated[int, typer.Option(
        "--max-customers", min=0, help="Train on a hash sample of about this many customers; 0 for all.")] = 50_000,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Train, log to MLflow, register and gate models: cdp train all --as-of DATE --horizon-days 90."""

    def action() -> None:
        from training.run import FAMILIES, train_store

        families = FAMILIES if family == "all" else (family,)
        cfg = _config(config)
        tracking = _tracking(cfg)
        with _spinner() as progress:
            task = progress.add_task(f"training {', '.join(families)}", total=None)
            trained = train_store(cfg, tracking, families, _parse_day(as_of, "--as-of") if as_of else None,
                                  horizon_days, snapshots, step_days, force=force, max_customers=max_customers or None,
                                  on_stage=lambda text: progress.update(task, description=text))
        day, results = trained.as_of, trained.results
        table = Table(title=f"models as of {day} (horizon {horizon_days} days) → {tracking.tracking_uri}")
        for column in ("family", "version", "held-out metrics", "gate"):
            table.add_column(column)
        for r in results:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in r.metrics.items())
            verdict = ("champion" if r.decision.promoted else "challenger") + f": {r.decision.reason}"
            table.add_row(r.family, r.version, shown, escape(verdict))
        out.print(table)
        for r in results:
            for line in (*r.notes.values(), *r.warnings):
                out.print(escape(f"note ({r.family}): {line}"), highlight=False, soft_wrap=True)

    _run(action)


@app.command()
def score(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the scores (.parquet or .csv).")],
    as_of: AsOfOption = None,
    horizon_days: ChosenHorizonOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Score every customer with the champion models; also materialize the snapshot serving reads."""

    def action() -> None:
        import pyarrow as pa

        from features.build import check_output, write_table
        from training.score import score_store

        check_output(out_file)
        cfg = _config(config)
        with _spinner() as progress:
            task = progress.add_task("scoring", total=None)
            found = score_store(cfg, _tracking(cfg), _parse_day(as_of, "--as-of") if as_of else None, horizon_days,
                                on_stage=lambda text: progress.update(task, description=text))
        out.print(escape(found.features_note), highlight=False, soft_wrap=True)
        write_table(pa.Table.from_pandas(found.scores, preserve_index=False), out_file)
        at_risk = int((found.scores["churn_probability"] >= 0.5).sum())
        out.print(f"{len(found.scores):,} customers scored as of {found.as_of} → {out_file} ({at_risk:,} with churn "
                  f"risk ≥ 50%); {found.snapshot_note}")

    _run(action)


@app.command()
def serve(
    config: ConfigOption = DEFAULT_CONFIG,
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option("--host", help="Interface to bind; 0.0.0.0 for all (containers).")] = "127.0.0.1",
    poll_seconds: Annotated[float, typer.Option(
        "--poll-seconds", min=1, help="How often to look for a new champion and a rewritten feature snapshot.")] = 30,
    churn_medium: Annotated[float, typer.Option(
        "--churn-medium", help="Churn probability from which churn_risk is 'medium'.")] = 0.5,
    churn_high: Annotated[float, typer.Option(
        "--churn-high", help="Churn probability from which churn_risk is 'high'.")] = 0.75,
    public_docs: Annotated[bool, typer.Option(
        "--public-docs", help="Let the OpenAPI page and /docs.json be read without the API key.")] = False,
    horizon_days: ChosenHorizonOption = None,
) -> None:
    """Serve scores over HTTP (BentoML): cdp serve --config cdp.toml --port 3000.

    The API key is CDP_API_KEY; without it a key is made up for this run and printed once.
    """

    def action() -> None:
        import os
        import secrets

        from serving.settings import API_KEY, ServeSettings
        from store.snapshot import ServingSnapshot
        from training.risk_bands import ChurnRiskBands
        from training.score import scoring_horizon

        cfg = _config(config)
        tracking = _tracking(cfg)
        snapshot = ServingSnapshot.beside(cfg.store.path).path  # what `cdp score` writes
        if not snapshot.exists():
            raise CdpError(f"no feature snapshot at {snapshot}: run `cdp score --config {config} --out FILE` first")
        given_key = os.environ.get(API_KEY, "").strip()
        settings = ServeSettings(tracking=tracking, snapshot_path=snapshot.resolve(),
                                 api_key=given_key or secrets.token_urlsafe(32), poll_seconds=poll_seconds,
                                 risk_bands=ChurnRiskBands(medium=churn_medium, high=churn_high),
                                 public_docs=public_docs, horizon_days=scoring_horizon(tracking, horizon_days))
        if not given_key:
            err.print(f"{API_KEY} is not set: the API key of this run is {settings.api_key}", highlight=False,
                      soft_wrap=True)
        out.print(escape(f"serving {settings.snapshot_path} and the champions of {settings.tracking.tracking_uri} "
                         f"on http://{host}:{port} (OpenAPI document: /docs.json)"), highlight=False, soft_wrap=True)
        # BentoML reports usage to its makers unless told not to; a customer-data tool stays quiet.
        env = {**os.environ, **settings.to_env(), "BENTOML_DO_NOT_TRACK": "true"}
        command = [sys.executable, "-m", "bentoml", "serve", "serving.service:ScoringService",
                   "--host", host, "--port", str(port)]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, command, env)  # the server takes this process over: signals go straight to it

    _run(action)


@app.command()
def evaluate(
    as_of: Annotated[str, typer.Option("--as-of", help="Train on what was known by this day, then score it.")],
    horizon_days: HorizonOption = 90,
    snapshots: SnapshotsOption = 4,
    step_days: StepOption = 30,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Backtest: cdp-ml vs BG/NBD vs a recency heuristic on what really happened after --as-of."""

    def action() -> None:
        from store.duckdb_store import Store
        from training.evaluate import backtest, mae_differences
        from training.run import horizon_window

        cfg = _config(config)
        horizon_window(_parse_day(as_of, "--as-of"), horizon_days, snapshots, step_days)  # the numbers checked
        with Store(cfg.store.path, read_only=True) as store, _spinner() as progress:
            # Checked before any work: the day must be in the data and the next H days too.
            day = _as_of(store, as_of, label_horizon_days=horizon_days)
            progress.add_task(f"backtest as of {day}: training on what was known, then scoring", total=None)
            found = backtest(_tables(store, cfg), day, horizon_days, n_snapshots=snapshots, step_days=step_days,
                             model_params=cfg.model.params())
        table = found.table
        if found.window.carried_forward:
            out.print(escape(f"note: {found.window.note}"), highlight=False, soft_wrap=True)
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
        median = mae_differences(found.answers, found.test).loc["median"]
        gaps.add_row("MAE, median forecast", *[f"{v:+.4f}" for v in median])
        out.print(gaps)

    _run(action)


def _parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CdpError(f"{option} {text!r} is not a date in YYYY-MM-DD form") from None


@app.command()
def attribution(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the channel × model table (.csv or .html).")],
    paths_file: Annotated[Optional[Path], typer.Option(
        "--paths", help="A paths file (path;total_conversions;total_conversion_value;total_null) instead of the store.")
    ] = None,
    window_days: Annotated[float, typer.Option("--window-days", help="Days of touches before a conversion.")] = 30.0,
    models: Annotated[str, typer.Option("--models", help="all, or comma-separated model names.")] = "all",
    half_life_days: Annotated[float, typer.Option(
        "--half-life-days",
        help="Time decay: credit halves every this many days (in touches for a paths file).")] = 7.0,
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", min=0, help="Resamples for 95% intervals on the shares (0: none).")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the bootstrap.")] = 7,
    as_of: AsOfOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Credit conversions to channels with rule-based, Markov and Shapley models: cdp attribution --out credit.html."""

    def action() -> None:
        import os

        from attribution.run import attribute_paths_file, attribute_store
        from attribution.tracking import log_attribution
        from marketing.attribution_report import output_format, summary_table, write_report

        output_format(out_file)
        if paths_file is not None:
            found = attribute_paths_file(paths_file, models, half_life_days, bootstrap, seed)
        else:
            found = attribute_store(_config(config), _parse_day(as_of, "--as-of") if as_of else None, window_days,
                                    models, half_life_days, bootstrap, seed)
        table, notes = found.table, found.notes
        chart = write_report(table, out_file, notes)
        if paths_file is None or config.is_file():
            tracking = _tracking(_config(config))
        else:  # a paths file and no shop: the run goes beside the file it was computed from
            from training.tracking import default_root, tracking_config

            tracking = tracking_config(os.environ, default_root(paths_file))
        run_id = log_attribution(tracking, table, chart, found.params, found.metrics)
        for note in notes:
            out.print(escape(note), highlight=False)
        wide = summary_table(table).T
        shown = Table(title=f"share of conversions → {out_file} (MLflow run {run_id})")
        shown.add_column("model")
        for channel in wide.columns:
            shown.add_column(escape(str(channel)), justify="right")
        for model, row in wide.iterrows():
            shown.add_row(model, *(f"{v * 100:.1f}%" for v in row))
        out.print(shown)

    _run(action)


# --- marketers' churn-risk lists and reports (issue #6) ---


ChurnMediumOption = Annotated[float, typer.Option(
    "--churn-medium", help="Churn probability from which churn_risk is 'medium'.")]
ChurnHighOption = Annotated[float, typer.Option(
    "--churn-high", help="Churn probability from which churn_risk is 'high'.")]
ListHorizonOption = Annotated[Optional[int], typer.Option(
    "--horizon-days", min=1, help="Days the churn scores look ahead (default: the churn model's, else 90).")]


def _marketing_inputs(cfg, horizon_days: Optional[int]):
    from marketing.inputs import marketing_inputs

    found = marketing_inputs(cfg, _tracking(cfg), horizon_days)
    return found.inputs, found.runs, found.registry_note, found.horizon_days


@app.command("churn-list")
def churn_list(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the list (.csv, .xlsx or .html).")],
    top: Annotated[Optional[int], typer.Option("--top", min=1, help="Only the first N by revenue at risk.")] = None,
    min_probability: Annotated[float, typer.Option(
        "--min-probability", min=0.0, max=1.0, help="Only customers with at least this churn probability.")] = 0.0,
    segment: Annotated[Optional[str], typer.Option("--segment", help="Only this segment (e.g. 'At risk').")] = None,
    include_no_consent: Annotated[bool, typer.Option(
        "--include-no-consent",
        help="Also list customers without marketing consent (no name, email or phone).")] = False,
    horizon_days: ListHorizonOption = None,
    churn_medium: ChurnMediumOption = 0.5,
    churn_high: ChurnHighOption = 0.75,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    # One docstring line, concatenated: typer shows a line break in it as one in `cdp --help`.
    ("Customers likely to leave, ranked by revenue at risk, with reasons and a next step: "
     "cdp churn-list --out list.csv.")

    def action() -> None:
        from marketing.lists import ListOptions, list_format, summary_lines, write_list
        from marketing.lists import churn_list as build_list
        from training.risk_bands import ChurnRiskBands

        list_format(out_file)
        bands = ChurnRiskBands(medium=churn_medium, high=churn_high)
        inputs, _, _, horizon = _marketing_inputs(_config(config), horizon_days)
        result = build_list(inputs, ListOptions(top=top, min_probability=min_probability, segment=segment,
                                                include_no_consent=include_no_consent, horizon_days=horizon,
                                                bands=bands))
        write_list(result, out_file)
        for line in summary_lines(result):
            out.print(escape(line), highlight=False)
        table = Table(title=f"by segment → {out_file}")
        for column in ("segment", "customers", "revenue at risk"):
            table.add_column(column, justify="left" if column == "segment" else "right")
        for row in result.by_segment.itertuples():
            table.add_row(escape(str(row.segment)), f"{row.customers:,}", f"{row.revenue_at_risk:,.2f}")
        out.print(table)

    _run(action)


@app.command()
def report(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the report (.html).")],
    top: Annotated[int, typer.Option("--top", min=1, help="Customers in the report's top list.")] = 25,
    horizon_days: ListHorizonOption = None,
    churn_medium: ChurnMediumOption = 0.5,
    churn_high: ChurnHighOption = 0.75,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """A self-contained HTML report for marketers: segments, churn risk, the top list, model quality."""

    def action() -> None:
        from marketing.lists import ListOptions
        from marketing.report import report_html
        from training.risk_bands import ChurnRiskBands

        if out_file.suffix.lower() not in (".html", ".htm"):
            raise CdpError(f"--out {out_file}: the report is an HTML page; give a file ending in .html")
        bands = ChurnRiskBands(medium=churn_medium, high=churn_high)
        inputs, runs, note, horizon = _marketing_inputs(_config(config), horizon_days)
        page = report_html(inputs, runs, ListOptions(horizon_days=horizon, bands=bands), registry_note=note, top=top)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(page, encoding="utf-8")
        out.print(escape(f"report on {len(inputs.scores):,} customers → {out_file} ({len(page) / 1e6:.1f} MB)"),
                  highlight=False)
        if note:
            out.print(escape(f"without model quality: {note}"), highlight=False)

    _run(action)


# --- right of access and right to be forgotten (issue #6) ---


PersonIdOption = Annotated[Optional[str], typer.Option("--customer-id", help="The person's customer id.")]
PersonEmailOption = Annotated[Optional[str], typer.Option("--email", help="An email of the person (any case, spaces).")]
PersonPhoneOption = Annotated[Optional[str], typer.Option(
    "--phone", help="A phone number of the person (best with its country code).")]
ActorOption = Annotated[Optional[str], typer.Option(
    "--actor", help="Who makes the request, for the audit log (default: the OS user).")]
_OUTSIDE_THE_STORE = ("Files written elsewhere with --out (scores, feature tables, churn lists, reports, exports) "
                      "are outside the store: delete them or write them again.")


def _lookup(customer_id: Optional[str], email: Optional[str], phone: Optional[str]):
    """The one identifier the request gives (exactly one of --customer-id, --email, --phone)."""
    from profiles.subject import Lookup

    given = [Lookup(by, value) for by, value in (("customer_id", customer_id), ("email", email), ("phone", phone))
             if value is not None]
    if len(given) != 1 or not given[0].value.strip():
        raise CdpError("name the person with exactly one of --customer-id, --email or --phone")
    return given[0]


def _actor(actor: Optional[str]) -> str:
    import getpass

    if actor and actor.strip():
        return actor.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _tombstone_key() -> Optional[bytes]:
    """CDP_TOMBSTONE_KEY if set: the secret the tombstones of erased people are hashed with."""
    import os

    key = os.environ.get("CDP_TOMBSTONE_KEY", "").strip()
    if not key:
        return None
    if len(key) < 16:
        raise CdpError("CDP_TOMBSTONE_KEY is too short: use at least 16 random characters "
                       "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return key.encode("utf-8")


def _models_trained_before(cfg: Config, moment: datetime):
    """The registered versions of cdp-ml's models created before ``moment`` (UTC), and a note
    when the registry cannot be read (the erasure goes ahead either way)."""
    from profiles.erasure import ModelVersion
    from training.tracking import MODEL_NAMES, versions_created_before

    found, note = versions_created_before(_tracking(cfg), tuple(MODEL_NAMES.values()), moment)
    return tuple(ModelVersion(*version) for version in found), note


@app.command("export")
def export_person(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write everything held about the person (.json).")],
    customer_id: PersonIdOption = None,
    email: PersonEmailOption = None,
    phone: PersonPhoneOption = None,
    actor: ActorOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Right of access: everything held about one person, and where it came from, as JSON."""

    def action() -> None:
        from profiles.access import export_person as run_export

        lookup = _lookup(customer_id, email, phone)
        if out_file.suffix.lower() != ".json":
            raise CdpError(f"--out {out_file}: the export is JSON; give a file ending in .json")
        done = run_export(_config(config), lookup, out_file, actor=_actor(actor), now=_now(),
                          tombstone_key=_tombstone_key())
        shown = done.counts
        out.print(escape(f"exported customer {done.customer_id}: " + ", ".join(
            f"{n:,} {what.replace('_', ' ')}" for what, n in shown.items()) + f" → {out_file}"),
            highlight=False, soft_wrap=True)
        out.print("The file holds the person's personal data: hand it over securely and do not keep a copy.",
                  highlight=False)

    _run(action)


@app.command()
def forget(
    customer_id: PersonIdOption = None,
    email: PersonEmailOption = None,
    phone: PersonPhoneOption = None,
    actor: ActorOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Right to be forgotten: delete one person from the store and the served snapshot, and keep them out."""

    def action() -> None:
        from profiles.erasure import forget as erase
        from store.duckdb_store import Store
        from store.snapshot import ServingSnapshot

        lookup = _lookup(customer_id, email, phone)
        cfg = _config(config)
        key = _tombstone_key()
        now = _now()
        models, note = _models_trained_before(cfg, now)
        with Store(cfg.store.path, memory_limit=cfg.store.memory_limit) as store:
            r = erase(store, cfg, lookup, actor=_actor(actor), now=now, snapshot=ServingSnapshot.beside(cfg.store.path),
                      tombstone_key=key, models_to_retrain=models, registry_note=note)
        rows = sum(r.deleted.values())
        tables = ", ".join(f"{t} {n:,}" for t, n in r.deleted.items() if n)
        out.print(escape(f"erased customer {r.customer_ref} (its reference in the audit log, entry {r.audit_id}): "
                         f"{rows:,} rows deleted ({tables})"), highlight=False, soft_wrap=True)
        written = ", ".join(f"{n} {t}" for t, n in sorted(r.tombstones.items())) or "none new"
        out.print(escape(f"tombstones: {written}; `cdp ingest` keeps their records out from now on"),
                  highlight=False, soft_wrap=True)
        if r.snapshot_rows_removed:
            out.print(escape(f"serving snapshot {r.snapshot} rewritten without them: the service stops answering "
                             "for them at its next poll (or POST /admin/reload)"), highlight=False, soft_wrap=True)
        if r.models_to_retrain:
            out.print(escape("retrain: " + ", ".join(f"{m.name} v{m.version}" for m in r.models_to_retrain)
                             + " (trained before the erasure; `cdp train all`)"), highlight=False, soft_wrap=True)
        if note:
            out.print(escape(note), highlight=False, soft_wrap=True)
        out.print(escape(_OUTSIDE_THE_STORE), highlight=False, soft_wrap=True)

    _run(action)



if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
