"""`flask providers sample`: walk a provider from the shell and print normalised records."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from datetime import datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from . import PROVIDER_NAMES, get_provider_class
from .base import ProviderError

providers_cli = click.Group("providers", help="Provider clients: sample records for support.")


def _record_json(record) -> str:
    def default(value):
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)

    return json.dumps(dataclasses.asdict(record), default=default, ensure_ascii=False)


@providers_cli.command("sample")
@click.argument("provider", type=click.Choice(PROVIDER_NAMES))
@click.option("--config", "config_file", type=click.File("r"), required=True,
              help='JSON file: {"settings": {...}, "credentials": {...}} (see README).')
@click.option("--group", help="Group to read (default: the provider's first).")
@click.option("--source", default=None, help="Source within the group (default: the first).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d",
                                                       "%Y-%m-%dT%H:%M:%S"]),
              help="Only records changed at or after this ISO time (UTC when no offset).")
@click.option("--limit", type=int, default=10, show_default=True, help="Records to print.")
@click.option("--all", "walk_all", is_flag=True, help="Walk every record (ignores --limit).")
@with_appcontext
def sample(provider, config_file, group, source, since, limit, walk_all):
    """Print records as JSON lines on stdout and a summary line on stderr."""
    config = json.load(config_file)
    if since is not None and since.tzinfo is None:
        from datetime import UTC

        since = since.replace(tzinfo=UTC)
    started = time.monotonic()
    count = pages = 0
    try:
        client = get_provider_class(provider)(
            config.get("settings", {}),
            config.get("credentials", {}),
            allow_loopback=current_app.config["ALLOW_LOOPBACK_PROVIDERS"],
            on_credentials=lambda _new: click.echo(
                "note: the provider refreshed its credentials (not saved by the sampler)",
                err=True,
            ),
        )
        group = group or client.groups()[0].id
        source = source or client.sources(group)[0].id
        out = sys.stdout
        for page in client.iter_pages(group, source, since=since):
            pages += 1
            for record in page.records:
                if not walk_all and count >= limit:
                    break
                out.write(_record_json(record) + "\n")
                count += 1
            if not walk_all and count >= limit:
                break
    except ProviderError as exc:
        raise click.ClickException(f"{exc.kind}: {exc.reason}") from exc
    elapsed = time.monotonic() - started
    rate = count / elapsed if elapsed else 0.0
    click.echo(
        f"{provider} {group}/{source}: {count} records in {pages} pages, "
        f"{elapsed:.2f} s ({rate:,.0f} records/s)",
        err=True,
    )
