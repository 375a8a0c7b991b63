"""``socialsuggest keys create|revoke|ls``: the per-org API keys of the suggestion API.

The full key is printed once, by ``create``, on stdout alone (so ``KEY=$(socialsuggest
keys create --org acme)`` captures it); the store keeps only its hash, so a lost key
is revoked and replaced, never recovered. A running server picks up a new or revoked
key on its next request (it re-reads the store when the file changes).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from socialsuggest.cli.output import console, out
from socialsuggest.cli.output import fail as _fail
from socialsuggest.config import Settings, load_settings

if TYPE_CHECKING:  # FastAPI (a quarter second): imported by the commands that use it
    from socialsuggest.serving.auth import KeyStore

keys_app = typer.Typer(
    help="Per-org API keys of the suggestion API (stored hashed; shown once).",
    no_args_is_help=True,
)


def _store(settings: Settings | None = None) -> KeyStore:
    """The home's store, without the admin key: managing keys does not need it."""
    from socialsuggest.serving.auth import KeyStore, store_path

    return KeyStore(store_path(settings or load_settings()))


@keys_app.command("create")
def create(
    org: Annotated[str, typer.Option("--org", help="the org the key may reach")],
) -> None:
    """Create a key for ORG and print it once (stdout); it cannot be shown again."""
    from socialsuggest.serving.auth import KeyStoreError

    store = _store()
    try:
        key, secret_key = store.create(org)
    except KeyStoreError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"key [bold]{key.key_id}[/] for org [bold]{key.org}[/] created; it is shown only "
        "now: store it (revoke it with `socialsuggest keys revoke "
        f"{key.key_id}`)",
        soft_wrap=True,
    )
    typer.echo(secret_key)  # plain: no wrapping or markup around the key


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key id (see `socialsuggest keys ls`)")],
) -> None:
    """Revoke a key: a running server refuses it from its next request on."""
    from socialsuggest.serving.auth import KeyStoreError

    try:
        key = _store().revoke(key_id)
    except KeyStoreError as exc:
        raise _fail(str(exc)) from None
    out.print(f"key {key.key_id} of org {key.org} revoked at {key.revoked_at}")


@keys_app.command("ls")
def ls(
    org: Annotated[str | None, typer.Option(help="only this org's keys")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Keys with their org and dates (never secrets: the store does not know them)."""
    from socialsuggest.serving.auth import KeyStoreError

    store = _store()
    try:
        keys = store.list_keys(org)
    except KeyStoreError as exc:
        raise _fail(str(exc), code=1) from None
    if as_json:
        out.print_json(json.dumps([asdict(k) for k in keys]))
        return
    table = Table(title=f"API keys in {store.path}")
    for column in ("key id", "org", "created", "revoked"):
        table.add_column(column)
    for k in keys:
        table.add_row(k.key_id, k.org, k.created_at, k.revoked_at or "-")
    out.print(table)


def sample_key(settings: Settings, org: str = "acme") -> str | None:
    """A new key for ``org`` when it has none yet (for the ``make run`` banner), else None.

    Keys are stored hashed, so an existing key cannot be shown again: the banner then
    says how to create one instead.
    """
    from socialsuggest.serving.auth import KeyStoreError

    store = _store(settings)
    try:
        if store.has_active_key(org):
            return None
        _, secret_key = store.create(org)
    except (KeyStoreError, OSError) as exc:
        console.print(f"[yellow]no sample API key for {org}:[/] {exc}", soft_wrap=True)
        return None
    return secret_key


def curl_auth(key: str | None, org: str = "acme") -> str:
    """The ``-H 'authorization: …'`` part of a copy-pasteable curl example."""
    shown = key or f"<{org}'s key: socialsuggest keys create --org {org}>"
    return f"-H 'authorization: Bearer {shown}'"


def serving_keys(settings: Settings) -> KeyStore:
    """The key store a server authenticates with (admin key from the environment).

    Fails with a usage error, never a traceback, when the admin key is too short, and
    warns when nothing could pass yet (no key, no admin key).
    """
    from socialsuggest.serving.auth import KeyStore, KeyStoreError

    try:
        store = KeyStore.from_settings(settings)
        if not settings.admin_key.get_secret_value() and not any(
            k.active for k in store.list_keys()
        ):
            console.print(
                "[yellow]no API keys yet:[/] every org route answers 401 until you run "
                "`socialsuggest keys create --org ORG` (no restart needed)",
                soft_wrap=True,
            )
    except KeyStoreError as exc:
        raise _fail(str(exc)) from None
    return store
