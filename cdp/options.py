"""The options several `cdp` commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DEFAULT_CONFIG = Path("cdp.toml")

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Path to cdp.toml.", show_default=True)]
HorizonOption = Annotated[int, typer.Option("--horizon-days", min=1, help="Days ahead the models look (label window).")]
ChosenHorizonOption = Annotated[Optional[int], typer.Option(
    "--horizon-days", min=1, help="Which models: those trained for this horizon (default: the store's only one).")]
AsOfOption = Annotated[Optional[str], typer.Option(
    "--as-of", help="Use data up to and including this day, YYYY-MM-DD (default: the last day in the store).")]
SnapshotsOption = Annotated[int, typer.Option("--snapshots", min=2, help="Rolling training snapshots.")]
StepOption = Annotated[int, typer.Option("--step-days", min=1, help="Days between training snapshots.")]
ChurnMediumOption = Annotated[float, typer.Option(
    "--churn-medium", help="Churn probability from which churn_risk is 'medium'.")]
ChurnHighOption = Annotated[float, typer.Option(
    "--churn-high", help="Churn probability from which churn_risk is 'high'.")]
ListHorizonOption = Annotated[Optional[int], typer.Option(
    "--horizon-days", min=1, help="Days the churn scores look ahead (default: the churn model's, else 90).")]
PersonIdOption = Annotated[Optional[str], typer.Option("--customer-id", help="The person's customer id.")]
PersonEmailOption = Annotated[Optional[str], typer.Option("--email", help="An email of the person (any case, spaces).")]
PersonPhoneOption = Annotated[Optional[str], typer.Option(
    "--phone", help="A phone number of the person (best with its country code).")]
ActorOption = Annotated[Optional[str], typer.Option(
    "--actor", help="Who makes the request, for the audit log (default: the OS user).")]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace the --out file if it exists.")]
