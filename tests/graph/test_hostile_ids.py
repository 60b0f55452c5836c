"""Hostile ids return null (or BAD_USER_INPUT) and open nothing outside the store."""

from __future__ import annotations

import base64
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
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


#: Pieces hostile ids are made of: unicode digits (superscript, Arabic-Indic, fullwidth,
#: Devanagari), signs, whitespace, NUL, a lone surrogate, huge and empty numbers.
PIECES = [
    "²",
    "¹⁰",
    "٣",
    "０",
    "१",
    "+1",
    "-1",
    " 1",
    "1 ",
    "\t",
    "\n",
    "\x00",
    "\ud800",
    "\udfff",
    "9" * 30,
    "9" * 5000,
    "1_0",
    "01",
    "-0",
    "1e3",
    "0x1",
    ":",
    "",
    "=",
    "exec_",
]
HOSTILE_TEXT = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=4).map("".join),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None, categories=["Nd", "No", "Cs", "Zs"]), max_size=8),
)

ID_QUERIES = [
    ("query($v: String!) { execution(executionId: $v) { executionId } }", "execution"),
    ("query($v: ID!) { node(id: $v) { id } }", "node"),
    ("query($v: ID!) { exportJob(id: $v) { id } }", "exportJob"),
    ("query($v: String) { executions(after: $v) { totalCount } }", "executions"),
    ("query($v: String) { executions(before: $v, last: 2) { totalCount } }", "executions"),
    (
        "query($v: String) { executions(after: $v, orderBy: DURATION_ASC) { totalCount } }",
        "executions",
    ),
    ("query($v: String) { items(after: $v) { totalCount } }", "items"),
    ("query($v: String) { items(before: $v, last: 1) { totalCount } }", "items"),
    (
        "query($v: String!) { executions(filter: {configNames: [$v], text: $v}) { totalCount } }",
        "executions",
    ),
    (
        "mutation($v: String!) { exportExecutions(input: {format: JSON, executionIds: [$v]})"
        " { id } }",
        "exportExecutions",
    ),
]


def as_global(kind: str, local: str) -> str:
    raw = f"{kind}:{local}".encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _hostile_ids(real: str) -> st.SearchStrategy[str]:
    """Hostile text alone, or spliced into a real run's item id, or base64url-encoded as an
    item or run global id (so that it reaches the position parser)."""
    return st.one_of(
        HOSTILE_TEXT,
        st.sampled_from(PIECES).map(lambda text: as_global("ExecutionItem", f"{real}:{text}")),
        HOSTILE_TEXT.map(lambda text: as_global("ExecutionItem", f"{real}:{text}")),
        HOSTILE_TEXT.map(lambda text: as_global("ExecutionItem", f"{text}:0")),
        HOSTILE_TEXT.map(lambda text: as_global("Execution", text)),
        HOSTILE_TEXT.map(
            lambda text: base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode(
                "ascii"
            )
        ),
    )


def test_hostile_id_arguments_answer_null_or_bad_user_input(
    populated_store: tuple[Path, list[dict[str, Any]]],
    make_client: Callable[..., TestClient],
    tmp_path: Path,
) -> None:
    """Every id-taking argument, with ids built from unicode digits, signs, whitespace, NUL,
    lone surrogates and huge numbers: null / not found or BAD_USER_INPUT, never an internal
    error. Variables are sent as ASCII JSON (escapes), as a client library would."""
    client = make_client(populated_store[0], export_dir=tmp_path / "exports")
    real = populated_store[1][0]["execution_id"]
    codes: Counter[str] = Counter()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(ID_QUERIES), _hostile_ids(real))
    @example(ID_QUERIES[1], as_global("ExecutionItem", f"{real}:²"))  # issue 14, item 7
    @example(ID_QUERIES[0], "\ud800")
    @example(ID_QUERIES[-1], "\ud800")
    def probe(query: tuple[str, str], value: str) -> None:
        document, field = query
        body = json.dumps({"query": document, "variables": {"v": value}})  # ASCII escapes
        response = client.post(
            "/graphql", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        for error in answer.get("errors", []):
            codes[error["extensions"]["code"]] += 1
            assert error["extensions"]["code"] == "BAD_USER_INPUT", (value, error)
        if "errors" not in answer:
            codes["answered"] += 1
            result = answer["data"][field]
            if field in ("execution", "node", "exportJob") and result is not None:
                # Only an object's own id finds it (text can happen to spell a real one).
                assert value in (result.get("id"), result.get("executionId")), (value, result)
                codes["found"] += 1

    probe()
    assert codes["answered"] > 10
    assert codes["BAD_USER_INPUT"] > 10


@pytest.mark.parametrize(
    "position", ["²", "٣", "０", "१", "+0", " 0", "00", "-0", "0\x00", "9" * 8]
)
def test_an_item_id_with_a_non_canonical_position_is_null(
    populated_store: tuple[Path, list[dict[str, Any]]],
    make_client: Callable[..., TestClient],
    position: str,
) -> None:
    client = make_client(populated_store[0])
    real = populated_store[1][0]["execution_id"]
    canonical = base64.urlsafe_b64encode(f"ExecutionItem:{real}:0".encode()).decode().rstrip("=")
    assert gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": canonical}) == {
        "data": {"node": {"id": canonical}}
    }
    gid = base64.urlsafe_b64encode(f"ExecutionItem:{real}:{position}".encode()).decode()
    assert gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": gid}) == {
        "data": {"node": None}
    }
