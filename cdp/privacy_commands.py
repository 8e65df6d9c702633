"""The right of access and the right to be forgotten: `cdp export` and `cdp forget`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cdp import environment, views
from cdp.app import (
    app,
    out,
    read_config,
    run,
)
from cdp.errors import CdpError
from cdp.options import (
    DEFAULT_CONFIG,
    ActorOption,
    ConfigOption,
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
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Right of access: everything held about one person, and where it came from, as JSON."""

    def action() -> None:
        from profiles.access import export_person as run_export

        lookup = lookup_of(customer_id, email, phone)
        if out_file.suffix.lower() != ".json":
            raise CdpError(f"--out {out_file}: the export is JSON; give a file ending in .json")
        done = run_export(read_config(config), lookup, out_file, actor=environment.actor(actor), now=environment.now(),
                          tombstone_key=environment.tombstone_key())
        views.show_export(out, done, out_file)

    run(action)


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

        lookup = lookup_of(customer_id, email, phone)
        cfg = read_config(config)
        key = environment.tombstone_key()
        now = environment.now()
        models, note = environment.models_trained_before(cfg, now)
        with Store(cfg.store.path, memory_limit=cfg.store.memory_limit) as store:
            r = erase(store, cfg, lookup, actor=environment.actor(actor), now=now,
                      snapshot=ServingSnapshot.beside(cfg.store.path), tombstone_key=key, models_to_retrain=models,
                      registry_note=note)
        views.show_erasure(out, r, note)

    run(action)


