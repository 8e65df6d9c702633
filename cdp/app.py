"""The `cdp` application and what every command shares: the error boundary, progress,
config loading, date parsing and the store's tables. The commands live in `cdp.cli`,
`cdp.marketing_commands` and `cdp.privacy_commands`; `cdp.cli.app` is the entry point.

A `CdpError` becomes one clear line on stderr and exit code 1; anything else is a bug,
reported without a traceback (and without data values) unless --debug is given.
"""

from __future__ import annotations

import traceback
from datetime import date
from pathlib import Path
from typing import Annotated, Callable

import duckdb
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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

_state = {"debug": False}


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of unexpected errors.")] = False) -> None:
    """cdp-ml: unify customer data from every source, then score, segment and attribute."""
    _state["debug"] = debug


def run(action: Callable[[], None]) -> None:
    try:
        action()
    except typer.Exit:  # an exit code the command chose
        raise
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


def read_config(path: Path) -> Config:
    return load_config(path)


def spinner() -> Progress:
    """A progress display on stderr (only when it is a terminal, so logs and pipes stay clean)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)


def stage_display(progress: Progress, first: str) -> Callable[[str], None]:
    """An ``on_stage`` for a stage function: the spinner shows each step as it begins. With
    CDP_FAULT_AT set (`cdp.environment.fault_at`), the process kills itself with SIGKILL
    when a step starting with it begins: how the fault tests crash a command mid-way."""
    from cdp import environment

    task = progress.add_task(first, total=None)
    fault = environment.fault_at()

    def on_stage(text: str) -> None:
        progress.update(task, description=text)
        if fault and text.startswith(fault):
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)

    return on_stage


def check_out_path(path: Path, force: bool) -> None:
    """One line, before any work, when ``--out`` cannot be written as asked: its folder does
    not exist (it is not made: outputs hold personal data and belong where the operator
    meant), or the file exists and ``--force`` was not given."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CdpError(f"--out {path}: the folder {folder} does not exist; create it first")
    if path.is_dir():
        raise CdpError(f"--out {path} is a folder; give a file name")
    if path.exists() and not force:
        raise CdpError(f"--out {path} exists; pass --force to replace it")


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CdpError(f"{option} {text!r} is not a date in YYYY-MM-DD form") from None
