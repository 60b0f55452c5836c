"""Query limits: depth, aliases, tokens, cost, body size, batching, GET and content type."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql.language import Lexer, Source, TokenKind
from starlette.testclient import TestClient

from graph.api import resolvers
from graph.settings import Settings
from tests.hardening.conftest import codes, post

DEFAULTS = {name: field.default for name, field in Settings.model_fields.items()}


@pytest.fixture
def client(
    populated_store: tuple[Path, list[dict[str, Any]]], make_client: Callable[..., TestClient]
) -> TestClient:
    """A server with the default limits (open mode: limits apply to everyone)."""
    return make_client(populated_store[0])


@pytest.fixture
def resolver_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the root resolvers that ran (executions, items, storageStats)."""
    calls: list[str] = []
    for name in ("resolve_executions", "resolve_items", "resolve_storage_stats"):
        real = getattr(resolvers, name)

        def spy(*args: Any, _real: Any = real, _name: str = name) -> Any:
            calls.append(_name)
            return _real(*args)

        monkeypatch.setattr(resolvers, name, spy)
    return calls


def files_read(client: TestClient) -> int:
    count: int = client.app.state.execgraph.files_read  # type: ignore[attr-defined]
    return count


GRAPHQL_RESPONSE = "application/graphql-response+json"


def refused(
    client: TestClient, query: str, code: str, variables: dict[str, Any] | None = None
) -> str:
    """POST ``query``, which must be refused with no data and ``code``; the error's message.

    Asked both ways: as ``application/json`` (200, ``data: null``) and as
    ``application/graphql-response+json`` (400, no ``data`` entry), with the same error.
    """
    response = post(client, query, variables)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None, body
    assert codes(body) == [code], body
    strict = client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Accept": GRAPHQL_RESPONSE},
    )
    assert strict.status_code == 400, strict.text
    assert strict.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert strict.json() == {"errors": body["errors"]}
    message: str = body["errors"][0]["message"]
    return message


# -- depth ---------------------------------------------------------------------------------------

CHAIN = ("items", "execution")


def chained(depth: int) -> str:
    """A query whose deepest field sits at ``depth`` (root fields at 0), one run, small pages."""
    fields = ["executions(first: 1)", "edges", "node"]
    while len(fields) < depth:
        fields.append(CHAIN[(len(fields) - 3) % 2])
    leaf = "content" if fields[-1] == "items" else "executionId"
    return "{ " + " { ".join(fields) + " { " + leaf + " }" * len(fields) + " }"


def test_deepest_allowed_query_runs_and_one_level_more_is_refused_unrun(
    client: TestClient, resolver_calls: list[str]
) -> None:
    deepest = DEFAULTS["max_query_depth"]
    body = post(client, chained(deepest)).json()
    assert "errors" not in body, body
    assert resolver_calls == ["resolve_executions"]
    reads = files_read(client)
    message = refused(client, chained(deepest + 1), "QUERY_TOO_DEEP")
    assert f"exceeds maximum operation depth of {deepest}" in message
    assert resolver_calls == ["resolve_executions"]
    assert files_read(client) == reads


def test_depth_limit_follows_the_setting(
    populated_store: tuple[Path, Any], make_client: Callable[..., TestClient]
) -> None:
    client = make_client(populated_store[0], max_query_depth=3)
    assert "errors" not in post(client, chained(3)).json()
    assert "maximum operation depth of 3" in refused(client, chained(4), "QUERY_TOO_DEEP")


def test_fragments_do_not_hide_depth(client: TestClient, resolver_calls: list[str]) -> None:
    too_deep = DEFAULTS["max_query_depth"] + 1
    named = """{ executions(first: 1) { edges { node { ...A } } } }
      fragment A on Execution { items { ...B } }
      fragment B on ExecutionItem { execution { ...C } }
      fragment C on Execution { items { ...D } }
      fragment D on ExecutionItem { execution { ...E } }
      fragment E on Execution { items { ...F } }
      fragment F on ExecutionItem { execution { executionId } }"""
    inline = """{ executions(first: 1) { edges { node { ... on Execution { items {
      ... { execution { ... on Execution { items { execution { ... on Execution {
      items { execution { executionId } } } } } } } } } } } } } }"""
    for query in (named, inline):
        message = refused(client, query, "QUERY_TOO_DEEP")
        assert f"maximum operation depth of {too_deep - 1}" in message
    assert resolver_calls == []


# -- aliases -------------------------------------------------------------------------------------


def aliased(count: int) -> str:
    return (
        "{ " + " ".join(f"a{n}: executions(first: 0) {{ totalCount }}" for n in range(count)) + " }"
    )


def test_alias_limit(client: TestClient, resolver_calls: list[str]) -> None:
    limit = DEFAULTS["max_aliases"]
    body = post(client, aliased(limit)).json()
    assert "errors" not in body
    assert len(body["data"]) == limit
    del resolver_calls[:]
    message = refused(client, aliased(limit + 1), "TOO_MANY_ALIASES")
    assert message == f"{limit + 1} aliases found. Allowed: {limit}"
    assert resolver_calls == []


def test_aliases_in_fragments_count_each_time_they_are_spread(
    client: TestClient, resolver_calls: list[str]
) -> None:
    half = DEFAULTS["max_aliases"] // 2 + 1
    fields = " ".join(f"c{n}: totalCount" for n in range(half))
    query = f"""{{ x: executions(first: 0) {{ ...F }} executions(first: 0) {{ ...F }} }}
      fragment F on ExecutionConnection {{ {fields} }}"""
    assert "aliases found" in refused(client, query, "TOO_MANY_ALIASES")
    assert resolver_calls == []


# -- tokens --------------------------------------------------------------------------------------


def token_count(query: str) -> int:
    lexer, count = Lexer(Source(query)), 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


def with_tokens(count: int) -> str:
    """A valid query of exactly ``count`` tokens (the filler is a list of config names)."""
    head, tail = '{ executions(first: 0, filter: {configNames: ["dada"', "]}) { totalCount } }"
    query = head + ' "x"' * (count - token_count(head + tail)) + tail
    assert token_count(query) == count
    return query


def test_token_limit(client: TestClient, resolver_calls: list[str]) -> None:
    limit = DEFAULTS["max_tokens"]
    assert "errors" not in post(client, with_tokens(limit)).json()
    assert resolver_calls == ["resolve_executions"]
    message = refused(client, with_tokens(limit + 1), "TOO_MANY_TOKENS")
    assert f"Document contains more than {limit} tokens" in message
    assert resolver_calls == ["resolve_executions"]


# -- cost ----------------------------------------------------------------------------------------

NESTED = "edges { node { items { execution { items { content } } } } }"


def cost_of(client: TestClient, query: str, variables: dict[str, Any] | None = None) -> int:
    body = post(client, query, variables).json()
    assert body["data"] is None
    assert codes(body) == ["QUERY_TOO_COMPLEX"]
    cost: int = body["errors"][0]["extensions"]["cost"]
    assert f"could return {cost} objects" in body["errors"][0]["message"]
    assert f"at most {DEFAULTS['max_query_cost']}" in body["errors"][0]["message"]
    return cost


def test_costly_query_is_refused_with_its_cost_and_nothing_runs(
    client: TestClient, resolver_calls: list[str]
) -> None:
    # 1 connection + 500 edges + 500 runs + 500*20 items + 10000 runs + 10000*20 items
    assert cost_of(client, f"{{ executions(first: 500) {{ {NESTED} }} }}") == 221_001
    assert resolver_calls == []
    assert files_read(client) == 0


def test_fragment_and_repetition_tricks_cost_the_same(
    client: TestClient, resolver_calls: list[str]
) -> None:
    plain = cost_of(client, f"{{ executions(first: 500) {{ {NESTED} }} }}")
    tricks = [
        f"{{ ...Q }} fragment Q on Query {{ executions(first: 500) {{ ...C }} }} "
        f"fragment C on ExecutionConnection {{ {NESTED} }}",
        f"{{ ... on Query {{ executions(first: 500) {{ ... {{ {NESTED} }} }} }} }}",
        f"{{ executions(first: 500) {{ edges {{ cursor }} }} "
        f"executions(first: 500) {{ {NESTED} }} }}",
        f"query($n: Int) {{ executions(first: $n) {{ {NESTED} }} }}",
        f"query($n: Int = 500) {{ executions(first: $n) {{ {NESTED} }} }}",
        "{ executions(first: 500) { edges { node { ...I } } } } "
        "fragment I on Execution { items { execution { ...I2 } } } "
        "fragment I2 on Execution { items { content } }",
    ]
    for query in tricks:
        assert cost_of(client, query, {"n": 500} if "$n: Int)" in query else None) == plain, query
    assert resolver_calls == []


def test_aliases_and_interfaces_add_up(client: TestClient, resolver_calls: list[str]) -> None:
    page = "edges { node { items { content } } }"  # 1 + 250 + 250 + 5000 = 5501
    one = f"executions(first: 250) {{ {page} }}"
    five = " ".join(f"a{n}: {one}" for n in range(5))
    assert cost_of(client, f"{{ {five} }}") == 5 * 5501
    node = (
        '{ node(id: "x") { ... on Execution { items { execution { items { execution { items { '
        "execution { items { content } } } } } } } } ... on ExecutionItem { content } } }"
    )
    assert cost_of(client, node) == 1 + 20 + 20 + 400 + 400 + 8000 + 8000 + 160_000
    assert resolver_calls == []


def test_research_queries_fit_the_budget(client: TestClient) -> None:
    queries = [
        "{ executions(first: 500) { totalCount edges { node { executionId items { content } } } } "
        "}",
        "{ items(first: 500) { edges { node { content execution { executionId } } } } }",
        "{ storageStats { byConfig { value count } byDay { value count } byModel { value } } }",
    ]
    for query in queries:
        body = post(client, query).json()
        assert "errors" not in body, (query, body)


def test_cost_budget_follows_the_setting(
    populated_store: tuple[Path, Any], make_client: Callable[..., TestClient]
) -> None:
    client = make_client(populated_store[0], max_query_cost=41, items_per_execution=2)
    query = "{ executions(first: 10) { edges { node { items { content } } } } }"  # 1+10+10+20
    assert "errors" not in post(client, query).json()
    body = post(client, query.replace("10", "11")).json()
    assert body["errors"][0]["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "cost": 45,
        "maxCost": 41,
    }


def test_introspection_is_bounded(client: TestClient) -> None:
    nested = (
        "{ __schema { types { fields { type { fields { type { fields { type { fields { name "
        "} } } } } } } } } }"
    )
    assert "Maximum introspection depth exceeded" in refused(client, nested, "QUERY_TOO_DEEP")


# -- the HTTP transport ----------------------------------------------------------------------------


def test_body_over_the_limit_is_413_before_parsing(
    client: TestClient, resolver_calls: list[str]
) -> None:
    limit = DEFAULTS["max_body_bytes"]
    query = "{ executions { totalCount } }"
    padding = " " * (limit - len(query) - len('{"query":""}'))
    exact = client.post(
        "/graphql",
        content=f'{{"query":"{query}{padding}"}}',
        headers={"Content-Type": "application/json"},
    )
    assert exact.status_code == 200
    assert resolver_calls == ["resolve_executions"]
    over = client.post(
        "/graphql",
        content=f'{{"query":"{query}{padding} "}}',
        headers={"Content-Type": "application/json"},
    )
    assert over.status_code == 413
    assert codes(over.json()) == ["PAYLOAD_TOO_LARGE"]
    assert resolver_calls == ["resolve_executions"]


def test_streamed_body_is_counted(client: TestClient, resolver_calls: list[str]) -> None:
    chunk = b" " * 65_536

    def body() -> Iterator[bytes]:
        yield b'{"query": "{ executions { totalCount } }'
        for _ in range(DEFAULTS["max_body_bytes"] // len(chunk) + 1):
            yield chunk
        yield b'"}'

    response = client.post("/graphql", content=body(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert resolver_calls == []


def test_batches_are_refused(client: TestClient, resolver_calls: list[str]) -> None:
    batch = [{"query": "{ executions { totalCount } }"}, {"query": "{ items { totalCount } }"}]
    response = client.post("/graphql", json=batch)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert codes(response.json()) == ["BAD_REQUEST"]
    assert "Batching is not enabled" in response.json()["errors"][0]["message"]
    assert resolver_calls == []


def test_nothing_runs_over_get(
    client: TestClient, resolver_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    index = client.app.state.execgraph.index  # type: ignore[attr-defined]
    syncs: list[object] = []
    monkeypatch.setattr(index, "sync", lambda *a: syncs.append(a))
    for query in ("{ executions { totalCount } }", "mutation { syncIndex { scanned } }"):
        response = client.get("/graphql", params={"query": query})
        assert response.status_code == 400
        assert codes(response.json()) == ["BAD_REQUEST"]
        assert "never run over GET" in response.json()["errors"][0]["message"]
    assert resolver_calls == []
    assert syncs == []


def test_subscriptions_never_run_over_http(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    subscription = "subscription { executionAdded { executionId } }"
    for response in (
        post(client, subscription),
        client.get("/graphql", params={"query": subscription}),
    ):
        assert response.status_code == 400
        assert codes(response.json()) == ["BAD_REQUEST"]
        assert "WebSocket" in response.json()["errors"][0]["message"] or "GET" in response.text
    assert not [record for record in caplog.records if record.exc_info]  # no traceback logged


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/graphql",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "text/application/json",
    ],
)
def test_post_must_be_json(
    client: TestClient, resolver_calls: list[str], content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post(
        "/graphql", content=b'{"query": "{ executions { totalCount } }"}', headers=headers
    )
    assert response.status_code == 415
    assert codes(response.json()) == ["UNSUPPORTED_MEDIA_TYPE"]
    assert resolver_calls == []
    strict = client.post(
        "/graphql",
        content=b'{"query": "{ executions { totalCount } }"}',
        headers={**headers, "Accept": GRAPHQL_RESPONSE},
    )
    assert strict.status_code == 415
    assert strict.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert strict.json() == {"errors": response.json()["errors"]}  # no data entry


def test_json_with_a_charset_is_json(client: TestClient) -> None:
    response = client.post(
        "/graphql",
        content=b'{"query": "{ executions { totalCount } }"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"executions": {"totalCount": 60}}}


# -- production mode: suggestions ------------------------------------------------------------------

MISTAKES: list[tuple[str, dict[str, Any] | None]] = [
    ("{ executons { totalCount } }", None),
    ("{ executions(frist: 1) { totalCount } }", None),
    ("{ executions(orderBy: TIMESTAMP_DES) { totalCount } }", None),
    ('{ executions(filter: {configName: ["dada"]}) { totalCount } }', None),
    ("{ executions { edges { nodee { id } } } }", None),
    (
        "query($f: ExecutionFilter) { executions(filter: $f) { totalCount } }",
        {"f": {"configName": []}},
    ),
]


@pytest.mark.parametrize(("query", "variables"), MISTAKES)
def test_production_mode_hides_suggestions(
    populated_store: tuple[Path, Any],
    make_client: Callable[..., TestClient],
    query: str,
    variables: dict[str, Any] | None,
) -> None:
    development = make_client(populated_store[0])
    assert "Did you mean" in post(development, query, variables).json()["errors"][0]["message"]
    production = make_client(populated_store[0], production=True)
    body = post(production, query, variables).json()
    assert body["errors"]
    assert all("Did you mean" not in error["message"] for error in body["errors"])


def test_limit_rules_keep_the_validation_cache_hitting(client: TestClient) -> None:
    from strawberry.extensions.validation_cache import _get_validate_cache

    cache: Any = _get_validate_cache(256)
    query = "{ executions(first: 3) { totalCount } }"
    post(client, query)
    before = cache.cache_info()
    post(client, query)
    after = cache.cache_info()
    assert after.hits == before.hits + 1
    assert after.misses == before.misses
