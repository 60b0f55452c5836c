"""Fixtures of the hardening tests: a server requiring tokens, one token per role."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from graph.access.tokens import Role
from graph.cli.token import add_token

ROLES = (None, "reader", "researcher", "admin")
"""Who asks: no token, then each role from the lowest."""


@pytest.fixture
def tokens_file(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A tokens file holding one token per role; the plain tokens by role name."""
    path = tmp_path / "secrets" / "tokens"
    tokens = {role.label: add_token(path, role, f"test {role.label}") for role in Role}
    return path, tokens


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    return tmp_path / "exports"


@pytest.fixture
def secured(
    populated_store: tuple[Path, list[dict[str, Any]]],
    make_client: Callable[..., TestClient],
    tokens_file: tuple[Path, dict[str, str]],
    export_dir: Path,
    tmp_path: Path,
) -> TestClient:
    """A client of a server that requires tokens (the populated store, exports enabled)."""
    return make_client(
        populated_store[0],
        tokens_file=tokens_file[0],
        export_dir=export_dir,
        audit_log=tmp_path / "audit.jsonl",
        pseudonym_key="a-test-key-of-enough-length",
    )


@pytest.fixture
def token_of(tokens_file: tuple[Path, dict[str, str]]) -> Callable[[str | None], str | None]:
    """The token of a role name (None: no token)."""
    return lambda role: None if role is None else tokens_file[1][role]


def bearer(token: str | None) -> dict[str, str]:
    """The Authorization header of ``token`` (none for None)."""
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def post(
    client: TestClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
) -> httpx2.Response:
    """POST a GraphQL operation as JSON, with ``token`` if given."""
    return client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=bearer(token)
    )


def codes(body: dict[str, Any]) -> list[str]:
    """The ``extensions.code`` of each error in a response body."""
    return [e.get("extensions", {}).get("code", "") for e in body.get("errors", [])]
