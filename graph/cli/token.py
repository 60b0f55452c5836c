"""``execgraph token create``, and the access checks of ``execgraph serve``.

``token create`` makes a bearer token, shows it once and keeps only its hash.

The token goes to standard output alone (so it can be piped into a password manager or a
secret store); everything else goes to standard error. The tokens file is created readable by its
owner only. A running server re-reads the file when it changes: a new token works at once, and
deleting its line revokes it.

``serve`` refuses, before binding, to run without tokens on an address other than loopback (see
:func:`graph.access.tokens.open_bind_refusal`) or with a tokens file it cannot read.
"""

from __future__ import annotations

from pathlib import Path

import click

from graph.access.tokens import (
    Role,
    TokenConfigError,
    TokenEntry,
    TokenRegistry,
    hash_token,
    is_loopback,
    new_token,
    open_bind_refusal,
    read_tokens_file,
)
from graph.settings import Settings
from storage.files import append_durably

HEADER = (
    "# execgraph tokens: one 'role:sha256(token) [label]' per line (roles: reader, researcher,\n"
    "# admin). Only hashes are kept here; delete a line to revoke its token.\n"
)


def add_token(tokens_file: Path, role: Role, label: str = "") -> str:
    """Create a token for ``role``, append its hash to ``tokens_file``, return the token."""
    new_file = not tokens_file.exists() or tokens_file.stat().st_size == 0
    if not new_file:
        read_tokens_file(tokens_file)  # refuse to append to a file the server could not read
    token = new_token()
    entry = TokenEntry(role, hash_token(token), " ".join(label.split()))
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    text = (HEADER if new_file else "") + entry.line()
    append_durably(tokens_file, text.encode("utf-8"))  # one write of whole lines
    return token


@click.group("token")
def token_command() -> None:
    """Manage bearer tokens (only their hashes are stored)."""


@token_command.command("create")
@click.option(
    "--role",
    required=True,
    type=click.Choice([role.label for role in Role]),
    help="reader: queries and subscriptions; researcher: + exports and downloads; "
    "admin: + invalid-file details and index maintenance.",
)
@click.option(
    "--tokens-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="EXECGRAPH_TOKENS_FILE",
    required=True,
    help="File of token hashes to append to (created if missing); serve it with "
    "`execgraph serve --tokens-file`.",
)
@click.option("--label", default="", help="A note saying who or what uses the token.")
def create_command(role: str, tokens_file: Path, label: str) -> None:
    """Create a token, print it once, and store only its hash."""
    try:
        token = add_token(tokens_file, Role.parse(role), label)
    except TokenConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(token)
    click.echo(
        f"Stored the hash of this {role} token in {tokens_file}; the token itself is not kept "
        "and cannot be shown again.",
        err=True,
    )


def check_access(settings: Settings) -> str:
    """Refuse an unsafe or unreadable access setup (ClickException); else describe it."""
    refusal = open_bind_refusal(
        settings.host,
        tokens_configured=settings.tokens_configured,
        insecure_no_auth=settings.insecure_no_auth,
    )
    if refusal is not None:
        raise click.ClickException(refusal)
    if not settings.tokens_configured:
        if is_loopback(settings.host):
            return "Access: open (no tokens configured; this machine only)."
        return f"Access: open to anyone who can reach {settings.host} (--insecure-no-auth)."
    try:
        registry = TokenRegistry(settings.tokens_file, settings.token_hashes)
    except TokenConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return f"Access: bearer tokens required ({len(registry.entries())} configured)."


def access_environment(settings: Settings) -> dict[str, str]:
    """The variables that let server workers rebuild the same access rules and limits."""
    env = {
        "EXECGRAPH_HOST": settings.host,
        "EXECGRAPH_INSECURE_NO_AUTH": str(settings.insecure_no_auth).lower(),
        "EXECGRAPH_PRODUCTION": str(settings.production).lower(),
    }
    if settings.tokens_file is not None:
        env["EXECGRAPH_TOKENS_FILE"] = str(settings.tokens_file.resolve())
    return env
