"""`cdp`: the one command line. With `cdp.environment`, the only code that reads argv, the
environment and the clock.

Each command loads the config once, calls one stage function with plain values, and
prints what it did (`cdp.views`). This module holds the data commands and registers the
marketers' (`cdp.marketing_commands`) and the privacy ones (`cdp.privacy_commands`).
"""

from __future__ import annotations

import errno
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from cdp import environment, views
from cdp.app import (
    app,
    check_out_path,
    err,
    out,
    parse_day,
    read_config,
    run,
    spinner,
    stage_display,
)
from cdp.errors import CdpError, StoreError
from cdp.options import (
    DEFAULT_CONFIG,
    AsOfOption,
    ChosenHorizonOption,
    ConfigOption,
    ForceOption,
    HorizonOption,
    SnapshotsOption,
    StepOption,
)


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

        last_day = parse_day(end, "--end") if end else date.today() - timedelta(days=1)
        with spinner() as progress:
            progress.add_task(f"generating {customers:,} people", total=None)
            summary = write_sample(out_dir, n_customers=customers, seed=seed, end=last_day)
        views.show_sample(out, summary, out_dir, seed, last_day)

    run(action)


@app.command()
def ingest(
    config: ConfigOption = DEFAULT_CONFIG,
    source: Annotated[Optional[list[str]], typer.Option(
        "--source", "-s", help="Only this source (repeatable).")] = None,
) -> None:
    """Read every source file into the store: typed rows, rejects with reasons."""

    def action() -> None:
        from profiles.ingest import ingest_on_engine as run_ingest
        from store.interface import open_configured

        cfg = read_config(config)
        with open_configured(cfg.store) as store, spinner() as progress:
            chosen = tuple(source or ())
            task = progress.add_task("ingesting", total=len(chosen) or len(cfg.sources))
            started: list[str] = []

            def on_source(name: str) -> None:
                if started:
                    progress.advance(task)
                started.append(name)
                progress.update(task, description=f"ingesting {name}")

            reports = run_ingest(store, cfg, now=environment.now(), run_id=environment.run_id(), sources=chosen,
                                 on_source=on_source, tombstone_key=environment.tombstone_key())
        views.show_ingest(out, reports, cfg.store.path)

    run(action)


@app.command()
def unify(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Resolve identities into one profile per person, keeping customer ids stable."""

    def action() -> None:
        from profiles.unify import unify_on_engine
        from store.interface import open_configured

        cfg = read_config(config)
        with open_configured(cfg.store) as store, spinner() as progress:
            progress.add_task("resolving identities", total=None)
            r = unify_on_engine(store, cfg, now=environment.now(), run_id=environment.run_id())
        views.show_unify(out, r)

    run(action)


features_app = typer.Typer(help="Build features as of a date, or show the feature catalog.", no_args_is_help=False)
app.add_typer(features_app, name="features")


@features_app.callback(invoke_without_command=True)
def features(
    context: typer.Context,
    as_of: Annotated[Optional[str], typer.Option(
        "--as-of", help="Features use data up to and including this day (YYYY-MM-DD).")] = None,
    out_file: Annotated[Optional[Path], typer.Option(
        "--out", help="Where to write the table (.parquet or .csv).")] = None,
    force: ForceOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
    engine: Annotated[Optional[str], typer.Option(
        "--engine", help="duckdb (embedded) or spark (needs Java; on [engine] master of cdp.toml, local by "
                         "default). Default: [engine] kind, else duckdb.")] = None,
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
        if engine is not None and engine not in ENGINES:
            raise CdpError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
        if out_file is not None:
            check_output(out_file)
            check_out_path(out_file, force)
        cfg = read_config(config)
        used = engine or cfg.engine.kind
        day = parse_day(as_of, "--as-of") if as_of else None
        places = []
        with spinner() as progress:
            on_stage = stage_display(progress, "building features")
            if materialize:
                kept = materialize_store(cfg, day, on_stage=on_stage, engine=used)
                import pyarrow as pa

                frame = pa.Table.from_pandas(kept.features, preserve_index=False)
                day = date.fromisoformat(kept.stamp.as_of)
                places.append(f"the store's {TABLE} table (read by cdp score) and {kept.serving_snapshot} "
                              "(read by cdp serve)")
            else:
                assert day is not None  # --out needs --as-of (checked above)
                frame = store_feature_table(cfg, day, used, label_horizon_days, on_stage=on_stage)
        if out_file is not None:
            write_table(frame, out_file)
            places.append(str(out_file))
        labelled = f", labels over the next {label_horizon_days} days" if label_horizon_days else ""
        out.print(f"{frame.num_rows:,} customers × {frame.num_columns - 1} columns as of {day}{labelled} "
                  f"({used}) → {' and '.join(places)}")

    run(action)


@features_app.command("catalog")
def features_catalog(
    markdown_file: Annotated[Optional[Path], typer.Option(
        "--markdown", help="Also write the catalog as Markdown to this file (docs/FEATURES.md).")] = None,
) -> None:
    """List every feature: name, family, window, whether models use it, and what it means."""

    def action() -> None:
        from features.catalog import SCORING_FAMILIES, catalog, markdown

        specs = catalog(SCORING_FAMILIES)
        views.show_catalog(out, specs)
        if markdown_file:
            markdown_file.parent.mkdir(parents=True, exist_ok=True)
            markdown_file.write_text(markdown(specs), encoding="utf-8")
            out.print(f"written to {markdown_file}")

    run(action)


@app.command()
def status(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Show what the store holds: table sizes and the last runs."""

    def action() -> None:
        from store.interface import open_store
        from store.status import store_status

        cfg = read_config(config)
        with open_store(cfg.store.path, read_only=True) as store:
            status = store_status(store)
        views.show_status(out, status, cfg.store.path, environment.tracking(cfg).tracking_uri, online_status(cfg))

    run(action)


def online_status(cfg) -> str | None:
    """One line on the store's online store (None without one): what is published, or why not."""
    try:
        online = environment.online_store(cfg)
    except StoreError as unreachable:
        return str(unreachable)
    if online is None:
        return None
    served = online.current()
    if served is None:
        return f"online store {online.shown_url}: nothing published yet (`cdp score` publishes)"
    meta = served.meta
    return (f"online store {online.shown_url}: {int(meta.get('customers', 0)):,} customers' answers as of "
            f"{meta.get('features_as_of')}, published {meta.get('published_at')} (generation {served.id})")


@app.command()
def rejects(
    config: ConfigOption = DEFAULT_CONFIG,
    source: Annotated[Optional[str], typer.Option("--source", "-s", help="Only this source.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many rows to show.")] = 20,
) -> None:
    """List rejected rows with their reasons (raw values are not printed: they may hold personal data)."""

    def action() -> None:
        from store.interface import open_store
        from store.status import rejected_rows

        cfg = read_config(config)
        with open_store(cfg.store.path, read_only=True) as store:
            frame = rejected_rows(store, source, limit)
        views.show_rejects(out, frame)

    run(action)


@app.command()
def train(
    family: Annotated[str, typer.Argument(help="segments, churn, next-purchase, first-purchase or all.")] = "all",
    as_of: AsOfOption = None,
    horizon_days: HorizonOption = 90,
    snapshots: SnapshotsOption = 4,
    step_days: StepOption = 30,
    force: Annotated[bool, typer.Option("--force", help="Promote to champion even if not better.")] = False,
    max_customers: Annotated[int | None, typer.Option(
        "--max-customers", min=0,
        help="Train on a hash sample of about this many customers; 0 for all. "
             "Default: training.max_customers in cdp.toml (50000).")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Train, log to MLflow, register and gate models: cdp train all --as-of DATE --horizon-days 90."""

    def action() -> None:
        from training.run import FAMILIES, train_store

        families = FAMILIES if family == "all" else (family,)
        cfg = read_config(config)
        tracking = environment.tracking(cfg)
        with spinner() as progress:
            trained = train_store(cfg, tracking, families, parse_day(as_of, "--as-of") if as_of else None,
                                  horizon_days, snapshots, step_days, force=force, max_customers=max_customers,
                                  on_stage=stage_display(progress, f"training {', '.join(families)}"))
        views.show_trained(out, trained, horizon_days, tracking.tracking_uri)

    run(action)


@app.command()
def score(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the scores (.parquet or .csv).")],
    as_of: AsOfOption = None,
    horizon_days: ChosenHorizonOption = None,
    force: ForceOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Score every customer with the champion models; also materialize the snapshot serving reads."""

    def action() -> None:
        import pyarrow as pa

        from features.build import check_output, write_table
        from training.score import score_store

        check_output(out_file)
        check_out_path(out_file, force)
        cfg = read_config(config)
        publish = environment.online_publisher(cfg)
        with spinner() as progress:
            found = score_store(cfg, environment.tracking(cfg), parse_day(as_of, "--as-of") if as_of else None,
                                horizon_days, on_stage=stage_display(progress, "scoring"), publish=publish)
        out.print(escape(found.features_note), highlight=False, soft_wrap=True)
        write_table(pa.Table.from_pandas(found.scores, preserve_index=False), out_file)
        at_risk = int((found.scores["churn_probability"] >= 0.5).sum())
        out.print(f"{len(found.scores):,} customers scored as of {found.as_of} → {out_file} ({at_risk:,} with churn "
                  f"risk ≥ 50%); {found.snapshot_note}")
        if found.online_note:
            out.print(escape(found.online_note), highlight=False, soft_wrap=True)

    run(action)


EXIT_BUSY = 75  # EX_TEMPFAIL: another refresh of the store is running; try again later


@app.command()
def refresh(
    retrain_after_days: Annotated[Optional[int], typer.Option(
        "--retrain-after-days", min=0,
        help="Retrain when the champions are older than this (default: [refresh] in cdp.toml, else 7).")] = None,
    horizon_days: Annotated[Optional[int], typer.Option(
        "--horizon-days", min=1, help="The horizon trained and scored (default: [refresh], else 90).")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """The daily job: ingest, unify, features --materialize, train when the models are old, score.

    Exit codes: 0 done, 1 a step failed (named), 75 another refresh of the store is running.
    """

    def action() -> None:
        from training.refresh import RefreshBusy, RefreshFailed, RefreshSettings
        from training.refresh import refresh as run_refresh

        cfg = read_config(config)
        settings = RefreshSettings(
            retrain_after_days=cfg.refresh.retrain_after_days if retrain_after_days is None else retrain_after_days,
            horizon_days=cfg.refresh.horizon_days if horizon_days is None else horizon_days)
        try:
            with spinner() as progress:
                report = run_refresh(cfg, environment.tracking(cfg), settings, now=environment.now(),
                                     run_id=environment.run_id(), tombstone_key=environment.tombstone_key(),
                                     on_stage=stage_display(progress, "refreshing"),
                                     publish=environment.online_publisher(cfg))
        except RefreshBusy as busy:
            err.print(f"[bold yellow]busy:[/] {escape(str(busy))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BUSY) from None
        except RefreshFailed as failed:
            for name, what in failed.report.steps:  # what was done before the step that failed
                out.print(f"{name}: {escape(what)}", highlight=False, soft_wrap=True)
            raise
        for name, what in report.steps:
            out.print(f"{name}: {escape(what)}", highlight=False, soft_wrap=True)
        out.print(escape(report.summary()), highlight=False, soft_wrap=True)

    run(action)


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
    workers: Annotated[int, typer.Option(
        "--workers", min=1, max=64,
        help="Worker processes. With [online_store] url each reads the answers `cdp score` published there; "
             "without, each holds and scores the whole snapshot in its own memory.")] = 1,
) -> None:
    """Serve scores over HTTP (BentoML): cdp serve --config cdp.toml --port 3000.

    The API key is CDP_API_KEY; without it a key is made up for this run and written to a file
    beside the store that only you can read (never to the console or the server log).
    """

    def action() -> None:
        import os
        import secrets

        from serving.settings import API_KEY, ServeSettings
        from store.snapshot import ServingSnapshot
        from training.risk_bands import ChurnRiskBands
        from training.score import scoring_horizon

        cfg = read_config(config)
        tracking = environment.tracking(cfg)
        online = environment.online_store(cfg)
        snapshot = ServingSnapshot.beside(cfg.store.path).path  # what `cdp score` writes
        if not snapshot.exists():
            raise CdpError(f"no feature snapshot at {snapshot}: run `cdp score --config {config} --out FILE` first")
        check_port_free(host, port)
        given_key = os.environ.get(API_KEY, "").strip()
        settings = ServeSettings(tracking=tracking, snapshot_path=snapshot.resolve(),
                                 api_key=given_key or secrets.token_urlsafe(32), poll_seconds=poll_seconds,
                                 risk_bands=ChurnRiskBands(medium=churn_medium, high=churn_high),
                                 public_docs=public_docs, horizon_days=scoring_horizon(tracking, horizon_days),
                                 online_store=online.url if online is not None else None,
                                 online_scope=online.scope if online is not None else "", workers=workers)
        if not given_key:
            key_file = write_private(Path(cfg.store.path).with_name(".cdp-api-key"), settings.api_key or "")
            err.print(escape(f"{API_KEY} is not set: the API key of this run is in {key_file} (readable by you "
                             "only)"), highlight=False, soft_wrap=True)
        out.print(escape(f"serving {settings.snapshot_path} and the champions of {settings.tracking.tracking_uri} "
                         f"on http://{host}:{port} (OpenAPI document: /docs.json)"), highlight=False, soft_wrap=True)
        # BentoML reports usage to its makers unless told not to; a customer-data tool stays quiet.
        env = {**os.environ, **settings.to_env(), "BENTOML_DO_NOT_TRACK": "true"}
        command = [sys.executable, "-m", "bentoml", "serve", "serving.service:ScoringService",
                   "--host", host, "--port", str(port)]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, command, env)  # the server takes this process over: signals go straight to it

    run(action)


def check_port_free(host: str, port: int) -> None:
    """A one-line error, before the server starts, when ``host:port`` cannot be listened on."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except PermissionError:
            raise CdpError(f"--port {port}: not allowed to listen on {host}:{port}; pick a port above 1023") from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CdpError(f"--port {port}: {host}:{port} is in use by another program; stop it or pick "
                               "another port with --port") from None
            raise CdpError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None


def write_private(path: Path, text: str) -> Path:
    """``text`` in a new file at ``path`` only its owner can read (0600), replacing any earlier one."""
    import os

    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    return path


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
        from training.evaluate import backtest_store, mae_differences

        cfg = read_config(config)
        with spinner() as progress:
            task = progress.add_task("backtest", total=None)
            found = backtest_store(cfg, parse_day(as_of, "--as-of"), horizon_days, snapshots, step_days,
                                   on_stage=lambda text: progress.update(task, description=text))
        views.show_backtest(out, found, mae_differences(found.answers, found.test).loc["median"], found.window.as_of,
                            horizon_days)

    run(action)


# The marketers' and the privacy commands register themselves on `app` when imported.
from cdp import marketing_commands, privacy_commands  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
