"""Bearer tokens, roles, and who is asking.

The records hold pupils' prompts, so the server must not hand them to whoever can reach its port.
Access is by bearer token (``Authorization: Bearer <token>``), each token carrying one role:

* ``reader``: queries and subscriptions;
* ``researcher``: also exports (``exportExecutions``, ``exportJob``, ``exportJobProgress``) and
  their downloads;
* ``admin``: also the details of files that are not served (``storageStats.invalidRecords``) and
  index maintenance (``syncIndex``).

Only SHA-256 hashes of tokens are configured (a tokens file, or ``EXECGRAPH_TOKEN_HASHES``), so a
leaked configuration grants nothing; ``execgraph token create`` shows a new token once. Tokens are
256-bit random strings, so a plain SHA-256 suffices (no salt or slow hash is needed against
guessing), and hashes are compared in constant time.

With no tokens configured the server runs in *open mode*: every request acts as an admin that did
not authenticate. That is meant for one person on their own machine, so :func:`open_bind_refusal`
refuses it on any address but loopback unless ``--insecure-no-auth`` is given.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starlette.authentication import BaseUser

log = logging.getLogger(__name__)

TOKEN_PREFIX: Final = "egt_"  # noqa: S105 (a marker for secret scanners, not a secret)
_HEX_DIGITS: Final = frozenset("0123456789abcdef")


class Role(enum.IntEnum):
    """What a token may do; each role may do everything the lower ones may."""

    READER = 1
    RESEARCHER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        """The role's name as written in tokens files and messages (``reader``, ...)."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named ``text``; ValueError for anything else."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(role.label for role in cls)
            raise ValueError(f"unknown role {text!r} (one of: {names})") from None


@dataclass(frozen=True, slots=True)
class Principal(BaseUser):
    """Who a request acts as: a role, and whether a token proved it."""

    role: Role
    label: str
    via_token: bool

    @property
    def is_authenticated(self) -> bool:
        return self.via_token

    @property
    def display_name(self) -> str:
        return self.label

    @property
    def identity(self) -> str:
        return self.label

    def may(self, role: Role) -> bool:
        """Whether this principal has ``role`` or a higher one."""
        return self.role >= role

    @property
    def scopes(self) -> list[str]:
        """The role names it holds (Starlette's ``request.auth.scopes``)."""
        return [role.label for role in Role if self.may(role)]


OPEN: Final = Principal(Role.ADMIN, "open mode", via_token=False)
"""Every request's principal when no tokens are configured."""


def new_token() -> str:
    """A fresh token: 256 random bits, with a prefix that secret scanners can recognise."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token, as stored in the configuration."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenConfigError(ValueError):
    """The configured token hashes cannot be used (missing file, malformed entry)."""


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One configured token: its role, its hash, and a note saying whose it is."""

    role: Role
    digest: str
    label: str = ""

    @classmethod
    def parse(cls, text: str, where: str) -> TokenEntry:
        """Parse ``role:sha256hex [label]``; ``where`` names the place for error messages."""
        head, _, label = text.strip().partition(" ")
        role_name, sep, digest = head.partition(":")
        digest = digest.lower()
        if not sep or len(digest) != 64 or not set(digest) <= _HEX_DIGITS:
            raise TokenConfigError(
                f"{where}: expected 'role:<64 hex digits of SHA-256>', got {head[:20]!r}..."
            )
        try:
            role = Role.parse(role_name)
        except ValueError as exc:
            raise TokenConfigError(f"{where}: {exc}") from None
        return cls(role, digest, label.strip())

    def line(self) -> str:
        """The entry as one line of a tokens file."""
        return f"{self.role.label}:{self.digest} {self.label}".rstrip() + "\n"


def read_tokens_file(path: Path) -> list[TokenEntry]:
    """The entries of a tokens file (``#`` starts a comment line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TokenConfigError(f"tokens file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenConfigError(f"tokens file {path} cannot be read: {exc}") from None
    return [
        TokenEntry.parse(line, f"{path}, line {number}")
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def parse_hashes(values: Iterable[str]) -> list[TokenEntry]:
    """Entries given as ``role:sha256hex`` strings (``EXECGRAPH_TOKEN_HASHES``)."""
    return [
        TokenEntry.parse(value, f"token hash #{n}") for n, value in enumerate(values, 1) if value
    ]


class TokenRegistry:
    """The configured tokens; re-reads the tokens file when it changes (revoking = deleting a line).

    Whether authentication is required is fixed at start (:attr:`enabled`): an emptied or broken
    tokens file then refuses every token; it never turns the server into open mode.
    """

    def __init__(self, tokens_file: Path | None = None, hashes: Iterable[str] = ()) -> None:
        self.tokens_file = tokens_file
        self._fixed = parse_hashes(hashes)
        self.enabled = tokens_file is not None or bool(self._fixed)
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._from_file: list[TokenEntry] = []
        if tokens_file is not None:
            self._from_file = read_tokens_file(tokens_file)  # fail at start, with the reason
            self._signature = _signature(tokens_file)
            if not self._from_file and not self._fixed:
                log.warning("tokens file %s holds no tokens: every request is refused", tokens_file)

    def entries(self) -> list[TokenEntry]:
        """The tokens valid now."""
        return [*self._fixed, *self._current_file_entries()]

    def _current_file_entries(self) -> list[TokenEntry]:
        path = self.tokens_file
        if path is None:
            return []
        signature = _signature(path)
        with self._lock:
            if signature != self._signature:
                try:
                    self._from_file = read_tokens_file(path)
                except TokenConfigError as exc:
                    log.error("%s; refusing the tokens of that file until it is fixed", exc)
                    self._from_file = []
                self._signature = signature
            return self._from_file

    def lookup(self, token: str) -> Principal | None:
        """The principal of ``token``, or None when no configured hash matches it."""
        digest = hash_token(token)
        found: TokenEntry | None = None
        for entry in self.entries():  # no early exit: the time taken does not tell which matched
            if hmac.compare_digest(entry.digest, digest):
                found = entry
        if found is None:
            return None
        return Principal(found.role, found.label or f"{found.role.label} token", via_token=True)


def _signature(path: Path) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value; None if it is not one."""
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def token_from_params(params: Mapping[str, object]) -> str | None:
    """The token in a WebSocket ``connection_init`` payload.

    Accepts ``{"Authorization": "Bearer <token>"}`` (what GraphiQL sends from its headers editor;
    any case of the key) or ``{"token": "<token>"}``.
    """
    for key, value in params.items():
        if key.lower() == "authorization" and isinstance(value, str):
            return bearer_token(value)
    token = params.get("token")
    return token if isinstance(token, str) and token else None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``); unknown names are not."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_bind_refusal(host: str, *, tokens_configured: bool, insecure_no_auth: bool) -> str | None:
    """Why the server must not start on ``host`` as configured; None when it may."""
    if tokens_configured or insecure_no_auth or is_loopback(host):
        return None
    return (
        f"refusing to serve on {host} without access tokens: anyone who can reach it could read "
        "every record. Create a token with `execgraph token create --role reader --tokens-file "
        "PATH` and pass `--tokens-file PATH`, bind to 127.0.0.1, or (only on a trusted network) "
        "pass --insecure-no-auth."
    )
