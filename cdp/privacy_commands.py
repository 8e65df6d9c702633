"""The right of access and the right to be forgotten: `cdp export` and `cdp forget`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cdp import environment, views
from cdp.app import (
    app,
    check_out_path,
    out,
    read_config,
    run,
    spinner,
    stage_display,
)
from cdp.errors import CdpError
from cdp.options import (
    DEFAULT_CONFIG,
    ActorOption,
    ConfigOption,
    ForceOption,
    PersonEmailOption,
    PersonIdOption,
    PersonPhoneOption,
)


def lookup_of(customer_id: Optional[str], email: Optional[str], phone: Optional[str]):
    """The one identifier the request gives (exactly one of --customer-id, --email, --phone)."""
    from profiles.subject import Lookup

    given = [Lookup(by, value) for by, value in (("customer_id", customer_id), ("email", email), ("phone", phone))
             if value is not None]
    if len(given) != 1 or not given[0].value.strip():
        raise CdpError("name the person with exactly one of --customer-id, --email or --phone")
    return given[0]


@app.command("export")
def export_person(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write everything held about the person (.json).")],
    customer_id: PersonIdOption = None,
    email: PersonEmailOption = None,
    phone: PersonPhoneOption = None,
    actor: ActorOption = None,
    force: ForceOption = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Right of access: everything held about one person, and where it came from, as JSON."""

    def action() -> None:
        from profiles.access import export_person as run_export

        lookup = lookup_of(customer_id, email, phone)
        if out_file.suffix.lower() != ".json":
            raise CdpError(f"--out {out_file}: the export is JSON; give a file ending in .json")
        check_out_path(out_file, force)
        done = run_export(read_config(config), lookup, out_file, actor=environment.actor(actor), now=environment.now(),
                          tombstone_key=environment.tombstone_key())
        views.show_export(out, done, out_file)

    run(action)


@app.command()
def forget(
    customer_id: PersonIdOption = None,
    email: PersonEmailOption = None,
    phone: PersonPhoneOption = None,
    requests_file: Annotated[Optional[Path], typer.Option(
        "--file", help="A CSV of erasure requests: a header with any of customer_id, email, phone, and one person "
                       "per row named in exactly one of them. All are erased together and the store file is "
                       "rebuilt once.")] = None,
    actor: ActorOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Right to be forgotten: delete people from the store and the served snapshot, and keep them out."""

    def action() -> None:
        from profiles.erasure import forget_many
        from store.interface import open_configured
        from store.snapshot import ServingSnapshot

        if requests_file is not None:
            if customer_id is not None or email is not None or phone is not None:
                raise CdpError("give either --file or one of --customer-id, --email, --phone, not both")
            lookups = lookups_in(requests_file)
        else:
            lookups = [lookup_of(customer_id, email, phone)]
        cfg = read_config(config)
        key = environment.tombstone_key()
        online = environment.online_store(cfg)
        with open_configured(cfg.store) as store, spinner() as progress:
            done = forget_many(store, cfg, lookups, actor=environment.actor(actor), now=environment.now(),
                               snapshot=ServingSnapshot.beside(cfg.store.path), tombstone_key=key,
                               list_models=environment.registered_models(cfg),
                               on_stage=stage_display(progress, "finding the people"), online=online)
        if requests_file is None and done.not_found:
            raise CdpError(done.not_found[0][1])
        views.show_erasure(out, done, requests_file, store_is_directory=cfg.store.path.is_dir())

    run(action)


def lookups_in(path: Path):
    """The requests of a `cdp forget --file` CSV, in order; a clear error naming the row otherwise."""
    import csv

    from profiles.subject import Lookup

    kinds = ("customer_id", "email", "phone")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = [c.strip() for c in reader.fieldnames or []]
    except FileNotFoundError:
        raise CdpError(f"--file {path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CdpError(f"--file {path}: not a UTF-8 CSV file ({type(exc).__name__})") from None
    known = [c for c in header if c in kinds]
    if not known:
        raise CdpError(f"--file {path}: the header must name at least one of {', '.join(kinds)}")
    unknown = [c for c in header if c and c not in kinds]
    if unknown:
        raise CdpError(f"--file {path}: unknown column(s) {', '.join(unknown)}; use {', '.join(kinds)}")
    lookups = []
    for number, row in enumerate(rows, start=2):
        given = [(k, (row.get(k) or "").strip()) for k in known if (row.get(k) or "").strip()]
        if len(given) != 1:
            raise CdpError(f"--file {path}, row {number}: name the person in exactly one of {', '.join(known)} "
                           f"({len(given)} given)")
        lookups.append(Lookup(*given[0]))
    if not lookups:
        raise CdpError(f"--file {path}: no requests in it")
    return lookups
