"""The marketers' commands: attribution, the churn-risk list and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from cdp import environment, views
from cdp.app import (
    app,
    check_out_path,
    out,
    parse_day,
    read_config,
    run,
)
from cdp.errors import CdpError
from cdp.options import (
    DEFAULT_CONFIG,
    AsOfOption,
    ChurnHighOption,
    ChurnMediumOption,
    ConfigOption,
    ForceOption,
    ListHorizonOption,
)


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
    force: ForceOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Credit conversions to channels with rule-based, Markov and Shapley models: cdp attribution --out credit.html."""

    def action() -> None:
        import os

        from attribution.run import attribute_paths_file, attribute_store
        from attribution.tracking import log_attribution
        from marketing.attribution_report import output_format, summary_table, write_report

        output_format(out_file)
        check_out_path(out_file, force)
        if paths_file is not None:
            found = attribute_paths_file(paths_file, models, half_life_days, bootstrap, seed)
        else:
            found = attribute_store(read_config(config), parse_day(as_of, "--as-of") if as_of else None, window_days,
                                    models, half_life_days, bootstrap, seed)
        table, notes = found.table, found.notes
        currency = read_config(config).currency.base if paths_file is None or config.is_file() else None
        chart = write_report(table, out_file, notes, currency=currency)
        if paths_file is None or config.is_file():
            tracking = environment.tracking(read_config(config))
        else:  # a paths file and no shop: the run goes beside the file it was computed from
            from training.tracking import default_root, tracking_config

            tracking = tracking_config(os.environ, default_root(paths_file))
        run_id = log_attribution(tracking, table, chart, found.params, found.metrics)
        views.show_attribution(out, summary_table(table).T, notes, out_file, run_id)

    run(action)


# --- marketers' churn-risk lists and reports (issue #6) ---


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
    include_low_risk: Annotated[bool, typer.Option(
        "--include-low-risk", help="Also list customers whose churn risk is low (below --churn-medium).")] = False,
    horizon_days: ListHorizonOption = None,
    churn_medium: ChurnMediumOption = 0.5,
    churn_high: ChurnHighOption = 0.75,
    force: ForceOption = False,
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
        check_out_path(out_file, force)
        bands = ChurnRiskBands(medium=churn_medium, high=churn_high)
        from marketing.inputs import marketing_inputs

        cfg = read_config(config)
        found = marketing_inputs(cfg, environment.tracking(cfg), horizon_days)
        result = build_list(found.inputs, ListOptions(top=top, min_probability=min_probability, segment=segment,
                                                      include_no_consent=include_no_consent,
                                                      include_low_risk=include_low_risk,
                                                      horizon_days=found.horizon_days, bands=bands,
                                                      currency=cfg.currency.base))
        write_list(result, out_file)
        views.show_churn_list(out, summary_lines(result), result.by_segment, out_file)

    run(action)


@app.command()
def report(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the report (.html).")],
    top: Annotated[int, typer.Option("--top", min=1, help="Customers in the report's top list.")] = 25,
    horizon_days: ListHorizonOption = None,
    churn_medium: ChurnMediumOption = 0.5,
    churn_high: ChurnHighOption = 0.75,
    force: ForceOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """A self-contained HTML report for marketers: segments, churn risk, the top list, model quality."""

    def action() -> None:
        from marketing.lists import ListOptions
        from marketing.report import report_html
        from training.risk_bands import ChurnRiskBands

        if out_file.suffix.lower() not in (".html", ".htm"):
            raise CdpError(f"--out {out_file}: the report is an HTML page; give a file ending in .html")
        check_out_path(out_file, force)
        bands = ChurnRiskBands(medium=churn_medium, high=churn_high)
        from marketing.inputs import marketing_inputs

        cfg = read_config(config)
        found = marketing_inputs(cfg, environment.tracking(cfg), horizon_days)
        inputs, note = found.inputs, found.registry_note
        page = report_html(inputs, found.runs, ListOptions(horizon_days=found.horizon_days, bands=bands,
                                                           currency=cfg.currency.base),
                           registry_note=note, top=top)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(page, encoding="utf-8")
        out.print(escape(f"report on {len(inputs.scores):,} customers → {out_file} ({len(page) / 1e6:.1f} MB)"),
                  highlight=False)
        if note:
            out.print(escape(f"without model quality: {note}"), highlight=False)

    run(action)


@app.command()
def audience(
    fmt: Annotated[str, typer.Option(
        "--format", help="meta (Meta custom audience), google (Google Customer Match), email (an email platform's "
                         "import) or plain (no personal data).")],
    segment: Annotated[Optional[list[str]], typer.Option(
        "--segment", help="Customers of this segment (repeat for several).")] = None,
    band: Annotated[Optional[list[str]], typer.Option(
        "--band", help="Customers of this churn band: low, medium or high (repeat for several).")] = None,
    top: Annotated[Optional[int], typer.Option(
        "--top", min=1, help="Then only the first N in the churn list's order (revenue at risk).")] = None,
    everyone: Annotated[bool, typer.Option("--all", help="Every scored customer.")] = False,
    name: Annotated[Optional[str], typer.Option(
        "--name", help="The audience's name: exports of one name and format are diffed (default: from the "
                       "selection, e.g. band-high_top-500).")] = None,
    out_file: Annotated[Optional[Path], typer.Option(
        "--out", help="The full list (.csv); <stem>.joined.csv and <stem>.left.csv are written beside it "
                      "(default: audiences/<name>.<format>.csv beside the store, replaced on every export).")] = None,
    horizon_days: ListHorizonOption = None,
    churn_medium: ChurnMediumOption = 0.5,
    churn_high: ChurnHighOption = 0.75,
    force: ForceOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    # One docstring line, concatenated: typer shows a line break in it as one in `cdp --help`.
    ("An audience for an ad platform, an email platform or any tool, with who joined and left since the last "
     "export: cdp audience --band high --format meta.")

    def action() -> None:
        from dataclasses import replace

        from marketing.audiences import (
            AudienceRequest,
            AudienceSelection,
            change_paths,
            check_csv,
            export_audience,
            summary_lines,
        )
        from marketing.inputs import list_horizon_days
        from store.interface import open_configured
        from store.snapshot import ServingSnapshot
        from training.risk_bands import ChurnRiskBands

        selection = AudienceSelection(segments=tuple(segment or ()), bands=tuple(band or ()), top=top,
                                      everyone=everyone)
        cfg = read_config(config)
        regions = {s.default_phone_region for s in cfg.sources if s.kind == "customers" and s.default_phone_region}
        request = AudienceRequest(name=name or selection.default_name(), selection=selection, format=fmt.lower(),
                                  bands=ChurnRiskBands(medium=churn_medium, high=churn_high),
                                  phone_region=regions.pop() if len(regions) == 1 else None)
        if out_file is None:
            target = cfg.store.path.parent / "audiences" / f"{request.name}.{request.format}.csv"
            target.parent.mkdir(parents=True, exist_ok=True)
        else:
            target = check_csv(out_file)
            for path in (target, *change_paths(target)):
                check_out_path(path, force)
        with open_configured(cfg.store) as store:
            request = replace(request, horizon_days=list_horizon_days(store, environment.tracking(cfg), horizon_days))
            done = export_audience(store, ServingSnapshot.beside(cfg.store.path), request, target,
                                   now=environment.now(), export_id=environment.run_id())
        views.show_audience(out, summary_lines(done), done.files)

    run(action)


# --- right of access and right to be forgotten (issue #6) ---


