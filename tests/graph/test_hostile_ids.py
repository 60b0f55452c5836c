"""Hostile ids return null (or BAD_USER_INPUT) and open nothing outside the store."""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import gql

PAYLOADS = [
    "../secret",
    "../secret.json",
    "../../etc/passwd",
    "..\\..\\secret",
    "/etc/passwd",
    "/etc/passwd\x00.json",
    "%2e%2e%2fsecret",
    "%252e%252e%252fsecret",
    "..%2fsecret",
    "..%c0%afsecret",
    "\u2024\u2024/secret",
    "\uff0e\uff0e/secret",
    "exec_x/../../secret",
    "exec_x\x00",
    "." * 300,
    "a" * 10000,
    "~/.ssh/id_rsa",
    "file:///etc/passwd",
    "\\\\server\\share\\x",
    "C:\\Windows\\win.ini",
    "secret",
    "secret.json",
    "link_out",
    "link_out.json",
    "exec_a/..",
    " ",
    "",
]


@pytest.fixture
def opened() -> Iterator[list[str]]:
    paths: list[str] = []
    active = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if active[0] and event == "open" and isinstance(args[0], str | bytes | Path):
            paths.append(str(args[0]))

    sys.addaudithook(hook)
    yield paths
    active[0] = False


def test_hostile_ids_are_null_and_nothing_outside_is_opened(
    tmp_path: Path,
    populated_store: tuple[Path, list[dict[str, Any]]],
    make_client: Callable[..., TestClient],
    opened: list[str],
) -> None:
    store = populated_store[0]
    secret = tmp_path / "secret.json"
    secret.write_text(Path(store / f"{populated_store[1][0]['execution_id']}.json").read_text())
    (store / "link_out.json").symlink_to(secret)
    client = make_client(store)
    opened.clear()
    for payload in PAYLOADS:
        body = gql(
            client,
            "query($id: String!) { execution(executionId: $id) { executionId items { content } } }",
            {"id": payload},
        )
        assert body == {"data": {"execution": None}}, payload
        for kind in ("Execution", "ExecutionItem"):
            gid = base64.urlsafe_b64encode(f"{kind}:{payload}:0".encode()).decode()
            body = gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": gid})
            assert body.get("data", {}).get("node") is None
            for error in body.get("errors", []):
                assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert opened == [], "no file at all was opened for a hostile id"
    # Control: the hook does see the reader's opens.
    good = populated_store[1][0]["execution_id"]
    body = gql(client, f'{{ execution(executionId: "{good}") {{ items {{ content }} }} }}')
    assert body["data"]["execution"]["items"]
    assert [Path(p).name for p in opened] == [f"{good}.json"]
    assert len(PAYLOADS) >= 25
