"""Access control: every operation and route under each role and without a token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from click.testing import CliRunner
from graphql import get_introspection_query
from starlette.testclient import TestClient
from websockets.typing import Subprotocol

from graph.access.tokens import Role, TokenRegistry, hash_token, open_bind_refusal
from graph.api.schema import build_schema
from graph.cli.main import main
from graph.server.app import create_app
from graph.settings import Settings
from tests.e2e.server import serve
from tests.factory import record_dict, write_record
from tests.hardening.conftest import ROLES, bearer, codes, post

EXPORT = 'mutation { exportExecutions(input: {format: JSON, filter: {configNames: ["dada"]}}) '
NODE_ID = "RXhlY3V0aW9uOmV4ZWNfbm9wZQ=="  # Execution:exec_nope

OPERATIONS: dict[str, tuple[str, str]] = {
    # field -> (operation, role it needs)
    "execution": ('{ execution(executionId: "exec_nope") { executionId } }', "reader"),
    "executions": (
        "{ executions(first: 2) { totalCount edges { node { executionId } } } }",
        "reader",
    ),
    "items": ("{ items(first: 2) { totalCount edges { node { content } } } }", "reader"),
    "storageStats": (
        "{ storageStats { totalRecords invalidRecordCount byConfig { value } } }",
        "reader",
    ),
    "storageStats.invalidRecords": (
        "{ storageStats { invalidRecords { fileName reason } } }",
        "admin",
    ),
    "node": (f'{{ node(id: "{NODE_ID}") {{ id }} }}', "reader"),
    "exportJob": ('{ exportJob(id: "no-such-job") { id status } }', "researcher"),
    "exportExecutions": (EXPORT + "{ status recordCount } }", "researcher"),
    "syncIndex": ("mutation { syncIndex { scanned added updated removed invalid } }", "admin"),
}

SUBSCRIPTIONS: dict[str, str] = {
    "executionAdded": "reader",
    "executionChanged": "reader",
    "exportJobProgress": "researcher",
}


def rank(role: str | None) -> int:
    return 0 if role is None else int(Role.parse(role))


def test_every_root_field_is_in_the_access_tables() -> None:
    schema = build_schema()._schema
    assert schema.query_type
    assert schema.mutation_type
    assert schema.subscription_type
    roots = set(schema.query_type.fields) | set(schema.mutation_type.fields)
    assert roots == {name.split(".")[0] for name in OPERATIONS}
    assert set(schema.subscription_type.fields) == set(SUBSCRIPTIONS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_operation_under_each_role(
    secured: TestClient,
    token_of: Callable[[str | None], str | None],
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
    role: str | None,
) -> None:
    query, needed = OPERATIONS[operation]
    index = secured.app.state.execgraph.index  # type: ignore[attr-defined]
    syncs: list[object] = []
    real_sync = index.sync

    def counted_sync(*args: Any) -> Any:
        syncs.append(args)
        return real_sync(*args)

    monkeypatch.setattr(index, "sync", counted_sync)
    response = post(secured, query, token=token_of(role))
    body = response.json()
    if role is None:
        assert response.status_code == 401
        assert body == {
            "data": None,
            "errors": [
                {
                    "message": "a valid token is required: send 'Authorization: Bearer <token>'",
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ],
        }
        assert response.headers["www-authenticate"] == 'Bearer realm="execgraph"'
    elif rank(role) < rank(needed):
        assert response.status_code == 200
        assert codes(body) == ["FORBIDDEN"]
        assert needed in body["errors"][0]["message"]
        assert body["errors"][0]["path"] == operation.split(".")
    else:
        assert response.status_code == 200
        assert "errors" not in body, body
    allowed = rank(role) >= rank(needed)
    if operation == "exportExecutions":
        files = list(export_dir.iterdir()) if export_dir.exists() else []
        assert bool(files) == allowed
    if operation == "syncIndex":
        assert len(syncs) == int(allowed)


def test_forbidden_field_leaves_the_rest_of_the_answer(
    secured: TestClient, token_of: Callable[[str | None], str | None]
) -> None:
    query = "{ storageStats { totalRecords invalidRecordCount invalidRecords { fileName } } }"
    body = post(secured, query, token=token_of("reader")).json()
    assert body["data"] == {
        "storageStats": {"totalRecords": 60, "invalidRecordCount": 2, "invalidRecords": None}
    }
    assert codes(body) == ["FORBIDDEN"]
    admin = post(secured, query, token=token_of("admin")).json()
    assert len(admin["data"]["storageStats"]["invalidRecords"]) == 2


def test_graphiql_requests_with_a_token_from_its_headers_editor_work(
    secured: TestClient, token_of: Callable[[str | None], str | None]
) -> None:
    headers = {  # what GraphiQL's fetcher sends, plus the headers editor's content
        "content-type": "application/json",
        "accept": "application/json, multipart/mixed",
        "Authorization": f"Bearer {token_of('reader')}",
    }
    query = get_introspection_query(descriptions=True, input_value_deprecation=True)
    response = secured.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    query = "{ executions(first: 1) { totalCount } }"
    response = secured.post("/graphql", json={"query": query}, headers=headers)
    assert response.json() == {"data": {"executions": {"totalCount": 60}}}


@pytest.mark.parametrize(
    "header", ["Bearer egt_not-a-token", "Bearer", "Basic dXNlcjpwYXNz", "egt_no_scheme"]
)
def test_unknown_or_malformed_token_is_unauthenticated(secured: TestClient, header: str) -> None:
    response = secured.post(
        "/graphql",
        json={"query": "{ executions { totalCount } }"},
        headers={"Authorization": header},
    )
    assert response.status_code == 401
    assert codes(response.json()) == ["UNAUTHENTICATED"]
    assert "invalid_token" in response.headers["www-authenticate"]


def test_token_hashes_from_the_environment(
    populated_store: tuple[Path, Any],
    make_client: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader, admin = "egt_reader-token-for-this-test", "egt_admin-token-for-this-test"
    hashes = f"reader:{hash_token(reader)}, ADMIN:{hash_token(admin).upper()}"
    monkeypatch.setenv("EXECGRAPH_TOKEN_HASHES", hashes)
    client = make_client(populated_store[0])
    sync = "mutation { syncIndex { scanned } }"
    assert post(client, sync).status_code == 401
    assert codes(post(client, sync, token=reader).json()) == ["FORBIDDEN"]
    assert post(client, sync, token=admin).json()["data"]["syncIndex"]["scanned"] == 62


def test_revoked_token_stops_working_at_once(
    secured: TestClient, tokens_file: tuple[Path, dict[str, str]]
) -> None:
    path, tokens = tokens_file
    query = "{ executions { totalCount } }"
    assert post(secured, query, token=tokens["reader"]).status_code == 200
    kept = [line for line in path.read_text().splitlines() if not line.startswith("reader:")]
    path.write_text("\n".join(kept) + "\n")
    assert post(secured, query, token=tokens["reader"]).status_code == 401
    assert post(secured, query, token=tokens["admin"]).status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_download_route_needs_the_researcher_role(
    secured: TestClient, token_of: Callable[[str | None], str | None], role: str | None
) -> None:
    job = post(secured, EXPORT + "{ status file { url } } }", token=token_of("researcher")).json()
    url = job["data"]["exportExecutions"]["file"]["url"]
    response = secured.get(url, headers=bearer(token_of(role)))
    expected = {None: 401, "reader": 403, "researcher": 200, "admin": 200}[role]
    assert response.status_code == expected
    if expected == 200:
        assert json.loads(response.content)["records"]
    else:
        assert codes(response.json()) == [{401: "UNAUTHENTICATED", 403: "FORBIDDEN"}[expected]]
        assert "records" not in response.text


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/healthz", {}),
        ("/exports/schema.xsd", {}),
        ("/graphql", {"Accept": "text/html"}),
        ("/graphql?query=%7B%20executions%20%7B%20totalCount%20%7D%20%7D", {"Accept": "text/html"}),
        ("/graphiql-assets/execgraph/ide.js", {}),
    ],
)
def test_public_routes_answer_everyone(
    secured: TestClient,
    token_of: Callable[[str | None], str | None],
    path: str,
    headers: dict[str, str],
    role: str | None,
) -> None:
    response = secured.get(path, headers={**headers, **bearer(token_of(role))})
    assert response.status_code == 200
    assert "exec_2025" not in response.text  # no record data


def test_graphiql_page_does_not_run_the_query_in_its_address(secured: TestClient) -> None:
    page = secured.get("/graphql?query=%7B%20executions%20%7B%20totalCount%20%7D%20%7D")
    assert page.status_code == 400  # not a browser: no page, and queries never run over GET
    html = secured.get("/graphql?query=x", headers={"Accept": "text/html"})
    assert html.headers["content-type"].startswith("text/html")


def test_open_mode_allows_everything_without_a_token(
    populated_store: tuple[Path, Any], make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(
        populated_store[0],
        export_dir=tmp_path / "exports",
        audit_log=tmp_path / "audit.jsonl",
        pseudonym_key="a-test-key-of-enough-length",
    )
    for name, (query, _) in OPERATIONS.items():
        response = post(client, query)
        assert response.status_code == 200, name
        assert "errors" not in response.json(), (name, response.json())
    job = post(client, EXPORT + "{ file { url } } }").json()
    assert client.get(job["data"]["exportExecutions"]["file"]["url"]).status_code == 200
    # A token sent to a server without tokens changes nothing.
    assert post(client, OPERATIONS["syncIndex"][0], token="egt_whatever").status_code == 200


def test_cors_is_off_unless_origins_are_configured(
    populated_store: tuple[Path, Any],
    make_client: Callable[..., TestClient],
    tokens_file: tuple[Path, dict[str, str]],
) -> None:
    preflight = {
        "Origin": "https://ui.example.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    closed = make_client(populated_store[0], tokens_file=tokens_file[0])
    response = closed.options("/graphql", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    opened = make_client(
        populated_store[0], tokens_file=tokens_file[0], allowed_origins=["https://ui.example.org"]
    )
    response = opened.options("/graphql", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://ui.example.org"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    refused = opened.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://ui.example.org"}
    )
    assert refused.status_code == 401  # readable by the page: it carries the CORS header
    assert refused.headers["access-control-allow-origin"] == "https://ui.example.org"
    other = opened.options("/graphql", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


# -- production mode: introspection ----------------------------------------------------------

INTROSPECTION = "{ __schema { queryType { name } } }"


def test_production_open_mode_refuses_introspection(
    populated_store: tuple[Path, Any], make_client: Callable[..., TestClient]
) -> None:
    client = make_client(populated_store[0], production=True)
    body = post(client, INTROSPECTION).json()
    assert body["data"] is None
    assert codes(body) == ["FORBIDDEN"]
    assert "introspection" in body["errors"][0]["message"]
    assert codes(post(client, '{ __type(name: "Execution") { name } }').json()) == ["FORBIDDEN"]
    assert post(client, "{ __typename executions { totalCount } }").json()["data"] == {
        "__typename": "Query",
        "executions": {"totalCount": 60},
    }


def test_introspection_is_open_outside_production(
    populated_store: tuple[Path, Any], make_client: Callable[..., TestClient]
) -> None:
    client = make_client(populated_store[0])
    assert post(client, INTROSPECTION).json() == {
        "data": {"__schema": {"queryType": {"name": "Query"}}}
    }


def test_production_with_tokens_introspects_for_every_role(
    populated_store: tuple[Path, Any],
    make_client: Callable[..., TestClient],
    tokens_file: tuple[Path, dict[str, str]],
) -> None:
    client = make_client(populated_store[0], tokens_file=tokens_file[0], production=True)
    assert post(client, INTROSPECTION).status_code == 401
    graphiql = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    for token in tokens_file[1].values():
        body = post(client, graphiql, token=token).json()
        assert "errors" not in body
        assert body["data"]["__schema"]["queryType"]["name"] == "Query"


# -- subscriptions over WebSocket --------------------------------------------------------------

PROTOCOL = Subprotocol("graphql-transport-ws")
PROGRESS = 'subscription { exportJobProgress(id: "no-such-job") { status } }'
ADDED = "subscription { executionAdded { executionId } }"
CHANGED = "subscription { executionChanged { executionId } }"


@contextlib.asynccontextmanager
async def open_socket(
    url: str, payload: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[Any]:
    """Connect and send connection_init; yield the socket once acknowledged."""
    async with websockets.connect(url, subprotocols=[PROTOCOL], additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert message == {"type": "connection_ack"}
        yield ws


async def subscribe(ws: Any, op_id: str, query: str) -> None:
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))


async def receive(ws: Any, timeout: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


def error_codes(message: dict[str, Any]) -> list[str]:
    """Codes of an 'error' message (refused) or of a 'next' message's errors (failed later)."""
    payload = message["payload"]
    errors = payload if message["type"] == "error" else payload["errors"]
    return [e["extensions"]["code"] for e in errors]


@pytest.fixture
def live(store: Path, index_path: Path, tokens_file: tuple[Path, dict[str, str]]) -> Iterator[str]:
    """A real server requiring tokens, watching ``store``; its WebSocket URL."""
    with serve(store, index_path, tokens_file=tokens_file[0]) as server:
        yield server.ws_url


@pytest.mark.parametrize("role", ["reader", "researcher", "admin"])
def test_subscriptions_under_each_role(
    live: str, store: Path, token_of: Callable[[str | None], str | None], role: str
) -> None:
    async def scenario() -> None:
        async with open_socket(live, {"Authorization": f"Bearer {token_of(role)}"}) as ws:
            await subscribe(ws, "progress", PROGRESS)
            message = await receive(ws)
            assert message["id"] == "progress"
            if role == "reader":
                assert message["type"] == "error"  # refused before it started
                assert error_codes(message) == ["FORBIDDEN"]
            else:
                assert error_codes(message) == ["NOT_FOUND"]  # allowed: the job is unknown
                assert await receive(ws) == {"id": "progress", "type": "complete"}
            await subscribe(ws, "added", ADDED)
            await subscribe(ws, "changed", CHANGED)
            await asyncio.sleep(0.3)
            record = record_dict("exec_20251201_100000_0000abcd")
            write_record(store, record)
            message = await receive(ws)
            assert message["id"] == "added", message
            assert message["payload"] == {
                "data": {"executionAdded": {"executionId": record["execution_id"]}}
            }

    asyncio.run(scenario())


def test_subscriptions_need_a_valid_token(live: str) -> None:
    async def refused(payload: dict[str, Any]) -> int | None:
        async with websockets.connect(live, subprotocols=[PROTOCOL]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            code: int | None = ws.close_code
            return code

    for payload in ({}, {"Authorization": "Bearer egt_unknown"}, {"token": "egt_unknown"}):
        assert asyncio.run(refused(payload)) == 4403


def test_subscription_token_in_payload_or_handshake_header(
    live: str, token_of: Callable[[str | None], str | None]
) -> None:
    token = token_of("researcher")

    async def scenario() -> None:
        for payload, headers in (
            ({"token": token}, None),
            ({"authorization": f"Bearer {token}"}, None),
            ({}, {"Authorization": f"Bearer {token}"}),
        ):
            async with open_socket(live, payload, headers) as ws:
                await subscribe(ws, "1", PROGRESS)
                assert error_codes(await receive(ws)) == ["NOT_FOUND"]
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(
                live,
                subprotocols=[PROTOCOL],
                additional_headers={"Authorization": "Bearer egt_unknown"},
            ):
                pass

    asyncio.run(scenario())


# -- serve and token create --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "tokens", "insecure", "refused"),
    [
        ("127.0.0.1", False, False, False),
        ("127.0.0.2", False, False, False),
        ("::1", False, False, False),
        ("[::1]", False, False, False),
        ("localhost", False, False, False),
        ("0.0.0.0", False, False, True),
        ("::", False, False, True),
        ("192.168.1.20", False, False, True),
        ("pupils.example.org", False, False, True),
        ("0.0.0.0", True, False, False),
        ("0.0.0.0", False, True, False),
    ],
)
def test_open_bind_check(host: str, tokens: bool, insecure: bool, refused: bool) -> None:
    reason = open_bind_refusal(host, tokens_configured=tokens, insecure_no_auth=insecure)
    assert (reason is not None) == refused
    if refused:
        assert f"refusing to serve on {host} without access tokens" in str(reason)
        assert "--tokens-file" in str(reason)


@pytest.fixture
def clean_environment() -> Iterator[None]:
    """``serve`` exports its settings to the environment for workers: restore it afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Calls ``serve`` makes to uvicorn.run (which is replaced: nothing binds)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("graph.cli.main.uvicorn.run", lambda *a, **kw: calls.append(kw))
    return calls


def serve_args(store: Path, index_path: Path, *more: str) -> list[str]:
    return ["serve", "--store", str(store), "--index", str(index_path), *more]


@pytest.mark.usefixtures("clean_environment")
def test_serve_refuses_a_public_bind_without_tokens(
    populated_store: tuple[Path, Any], index_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    args = serve_args(populated_store[0], index_path, "--host", "0.0.0.0")
    result = CliRunner().invoke(main, args, env={"EXECGRAPH_TOKENS_FILE": None})
    assert result.exit_code == 1
    assert "Error: refusing to serve on 0.0.0.0 without access tokens" in result.output
    assert uvicorn_calls == []
    assert not index_path.exists()  # refused before any work


@pytest.mark.usefixtures("clean_environment")
def test_serve_binds_publicly_with_tokens_or_when_told_to(
    populated_store: tuple[Path, Any],
    index_path: Path,
    uvicorn_calls: list[dict[str, Any]],
    tokens_file: tuple[Path, dict[str, str]],
) -> None:
    public = ["--host", "0.0.0.0"]
    args = serve_args(populated_store[0], index_path, *public, "--tokens-file", str(tokens_file[0]))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "bearer tokens required (3 configured)" in result.output
    assert os.environ["EXECGRAPH_TOKENS_FILE"] == str(tokens_file[0].resolve())
    result = CliRunner().invoke(
        main, [*serve_args(populated_store[0], index_path, *public), "--insecure-no-auth"]
    )
    assert result.exit_code == 0, result.output
    assert [call["host"] for call in uvicorn_calls] == ["0.0.0.0", "0.0.0.0"]


@pytest.mark.usefixtures("clean_environment")
def test_serve_refuses_a_missing_tokens_file(
    populated_store: tuple[Path, Any],
    index_path: Path,
    uvicorn_calls: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nope" / "tokens"
    args = serve_args(populated_store[0], index_path, "--tokens-file", str(missing))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert f"tokens file not found: {missing}" in result.output
    assert uvicorn_calls == []


def test_app_factory_refuses_a_public_bind_without_tokens(store: Path, index_path: Path) -> None:
    settings = Settings(store=store, index=index_path, host="0.0.0.0")
    with pytest.raises(ValueError, match=r"refusing to serve on 0\.0\.0\.0"):
        create_app(settings)


def test_token_create_prints_the_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "tokens"
    runner = CliRunner()
    first = runner.invoke(
        main, ["token", "create", "--role", "researcher", "--tokens-file", str(path)]
    )
    second = runner.invoke(
        main, ["token", "create", "--role", "reader", "--tokens-file", str(path), "--label", "UI"]
    )
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    tokens = [first.stdout.strip(), second.stdout.strip()]
    assert tokens[0] != tokens[1]
    assert all(t.startswith("egt_") and len(t) >= 40 for t in tokens)
    text = path.read_text("utf-8")
    for token in tokens:
        assert token not in text
        assert token[4:20] not in text
        assert hash_token(token) in text
    assert f"reader:{hash_token(tokens[1])} UI" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "cannot be shown again" in first.stderr
    registry = TokenRegistry(path)
    assert [registry.lookup(t).role for t in tokens] == [Role.RESEARCHER, Role.READER]  # type: ignore[union-attr]
    assert registry.lookup("egt_" + "x" * 43) is None


def test_token_create_refuses_an_unknown_role_and_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    result = CliRunner().invoke(
        main, ["token", "create", "--role", "root", "--tokens-file", str(path)]
    )
    assert result.exit_code == 2
    assert not path.exists()
    path.write_text("reader:not-a-hash\n")
    result = CliRunner().invoke(
        main, ["token", "create", "--role", "reader", "--tokens-file", str(path)]
    )
    assert result.exit_code == 1
    assert "line 1" in result.output
    assert path.read_text() == "reader:not-a-hash\n"
