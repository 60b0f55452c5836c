"""Tests of the offline GraphiQL page and its vendored assets (graph/server/ide.py).

A tiny Starlette app stands in for execgraph's: a one-field Strawberry schema served
by a ``GraphQL`` subclass whose ``render_graphql_ide`` returns our page, and the
assets mounted at ``/graphiql-assets``. The tests check that the page loads
everything from that mount (with matching integrity hashes), that nothing in it or
in the vendored files points the browser at another host, and that the files are
shipped inside the package.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncGenerator, Callable, Iterator
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path

import pytest
import strawberry
from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from graph.server.ide import (
    ASSET_DIR,
    DEFAULT_QUERY,
    SCRIPTS,
    STYLESHEETS,
    graphiql_assets_app,
    graphiql_headers,
    graphiql_html,
)

ASSETS_URL = "/graphiql-assets"

# sha384 of the vendored third-party files. All but graphiql.min.js are byte for
# byte the npm tarballs' files (the same hashes Strawberry's CDN page pins);
# graphiql.min.js is the esbuild re-minification described in VENDORED.md.
VENDORED_SHA384 = {
    "react-18.2.0/react.production.min.js": (
        "tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8"
    ),
    "react-dom-18.2.0/react-dom.production.min.js": (
        "bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh"
    ),
    "graphiql-3.8.3/graphiql.min.css": (
        "Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM"
    ),
    "graphiql-3.8.3/graphiql.min.js": (
        "pqk97/0M2uKtgbeB51PSDDJF99ObKUw0ySv+syRx1v6wvVyr6TclJ38NB2RNzvkW"
    ),
    "graphiql-plugin-explorer-1.0.2/index.umd.js": (
        "2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9"
    ),
    "graphiql-plugin-explorer-1.0.2/style.css": (
        "5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi"
    ),
}
VENDORED_PACKAGES = (
    "react-18.2.0",
    "react-dom-18.2.0",
    "graphiql-3.8.3",
    "graphiql-plugin-explorer-1.0.2",
)


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[int, None]:
        yield 1


class IDEGraphQL(GraphQL[None, None]):
    """How execgraph's GraphQL app is meant to use the page."""

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(graphiql_html(endpoint="/graphql", assets_url=ASSETS_URL))


def make_app() -> Starlette:
    schema = strawberry.Schema(query=Query, subscription=Subscription)
    graphql_app = IDEGraphQL(schema)
    return Starlette(
        routes=[
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
            Mount(ASSETS_URL, app=graphiql_assets_app()),
        ]
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app()) as test_client:
        yield test_client


@pytest.fixture
def page(client: TestClient) -> str:
    response = client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


class _Loads(HTMLParser):
    """Collects the URLs a browser would load from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[str, str | None]] = []
        self.stylesheets: list[tuple[str, str | None]] = []
        self.other: list[str] = []
        self.inline_scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            if attributes.get("src") is None:
                self.inline_scripts.append(attributes)
            else:
                self.scripts.append((attributes["src"] or "", attributes.get("integrity")))
        elif tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append((attributes.get("href") or "", attributes.get("integrity")))
        else:
            for name in ("src", "href", "srcset", "poster", "data", "action"):
                if attributes.get(name) is not None:
                    self.other.append(attributes[name] or "")


def parse(page: str) -> _Loads:
    parser = _Loads()
    parser.feed(page)
    parser.close()
    return parser


def sri(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")


def page_config(page: str) -> dict[str, str]:
    match = re.search(
        r'<script id="execgraph-ide-config" type="application/json">(.*?)</script>',
        page,
        re.DOTALL,
    )
    assert match is not None
    config: dict[str, str] = json.loads(match.group(1))
    return config


# A URL that makes a browser contact another host: absolute or protocol-relative.
REMOTE = r"""(?:[a-z][a-z0-9+.-]*:)?//"""
REMOTE_LOADS = [
    re.compile(rf"""\b(?:src|href|srcset|action|poster)\s*=\s*["']?\s*{REMOTE}""", re.I),
    re.compile(rf"""url\(\s*["']?\s*{REMOTE}""", re.I),
    re.compile(rf"""@import\s+(?:url\()?\s*["']?\s*{REMOTE}""", re.I),
    re.compile(rf"""\bimport\s*\(\s*["'`]\s*{REMOTE}""", re.I),
    re.compile(rf"""\bimport\s+[^;]*?\bfrom\s*["'`]\s*{REMOTE}""", re.I),
    re.compile(rf"""\bimportScripts\s*\(\s*["'`]\s*{REMOTE}""", re.I),
    re.compile(rf"""\b(?:Shared)?Worker\s*\(\s*["'`]\s*{REMOTE}""", re.I),
]


def remote_loads(text: str) -> list[str]:
    return [m.group(0) for pattern in REMOTE_LOADS for m in pattern.finditer(text)]


def test_get_with_accept_html_returns_our_page(page: str) -> None:
    assert "<title>execgraph GraphiQL</title>" in page
    assert 'id="graphiql"' in page
    loads = parse(page)
    assert [src.split("?")[0] for src, _ in loads.scripts] == [
        f"{ASSETS_URL}/{relative}" for relative in SCRIPTS
    ]
    assert [href.split("?")[0] for href, _ in loads.stylesheets] == [
        f"{ASSETS_URL}/{relative}" for relative in STYLESHEETS
    ]
    # The only inline <script> is the non-executable JSON settings block.
    assert loads.inline_scripts == [{"id": "execgraph-ide-config", "type": "application/json"}]
    assert "<style" not in page
    assert " style=" not in page


def test_every_script_and_stylesheet_is_served_locally_with_matching_integrity(
    client: TestClient, page: str
) -> None:
    loads = parse(page)
    expected_types = [("javascript", url) for url in loads.scripts] + [
        ("text/css", url) for url in loads.stylesheets
    ]
    assert len(expected_types) == len(SCRIPTS) + len(STYLESHEETS)
    for content_type, (url, integrity) in expected_types:
        assert url.startswith(f"{ASSETS_URL}/"), url
        response = client.get(url)
        assert response.status_code == 200, url
        assert content_type in response.headers["content-type"], url
        assert response.headers["x-content-type-options"] == "nosniff"
        assert integrity == sri(response.content), url


def test_page_loads_nothing_from_another_host(page: str) -> None:
    loads = parse(page)
    for url in loads.other:
        assert url.startswith(("/", "data:")), url
    assert remote_loads(page) == []
    assert "http://" not in page
    assert "https://" not in page


def test_remote_load_scan_catches_remote_urls() -> None:
    for text in (
        '<script src="https://cdn.example/x.js">',
        "<link href=//cdn.example/x.css>",
        "a { background: url('https://cdn.example/a.png') }",
        '@import "http://cdn.example/x.css";',
        "import('https://cdn.example/m.js')",
        'import x from "https://cdn.example/m.js"',
        "importScripts('https://cdn.example/w.js')",
        'new Worker("https://cdn.example/w.js")',
    ):
        assert remote_loads(text), text
    assert remote_loads('<a title="see https://spec.graphql.org">') == []


@pytest.mark.parametrize(
    "path",
    sorted(p for p in ASSET_DIR.rglob("*") if p.suffix in {".js", ".css"}),
    ids=lambda p: str(p.relative_to(ASSET_DIR)),
)
def test_vendored_file_loads_nothing_from_another_host(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert remote_loads(text) == []
    if path.suffix == ".css":
        # Fonts and icons are inlined, never fetched.
        for url in re.findall(r"""url\(\s*["']?([^"')]*)""", text):
            assert url.startswith("data:"), url[:80]


def test_page_settings_configure_endpoint_and_default_query(page: str) -> None:
    assert page_config(page) == {"endpoint": "/graphql", "defaultQuery": DEFAULT_QUERY}
    assert DEFAULT_QUERY.startswith("# Welcome to execgraph")
    assert "executions(first: 5)" in DEFAULT_QUERY


def test_arguments_are_escaped_and_cannot_break_out_of_the_page() -> None:
    hostile = "</script><script>alert(1)</script> & <!--"
    page = graphiql_html(
        endpoint="/api/graphql",
        assets_url="/static/ide/",
        title="<b>runs</b>",
        default_query=hostile,
    )
    assert "<title>&lt;b&gt;runs&lt;/b&gt;</title>" in page
    assert page_config(page) == {"endpoint": "/api/graphql", "defaultQuery": hostile}
    assert page.count("<script") == page.count("</script>") == 1 + len(SCRIPTS)
    loads = parse(page)
    assert [src.split("?")[0] for src, _ in loads.scripts] == [
        f"/static/ide/{relative}" for relative in SCRIPTS
    ]


def test_fingerprinted_urls_are_cached_for_good_others_revalidate(
    client: TestClient, page: str
) -> None:
    url, _ = parse(page).scripts[0]
    assert "?v=" in url
    cached = client.get(url)
    assert cached.headers["cache-control"] == "public, max-age=31536000, immutable"

    for other in (url.split("?")[0], url.split("?")[0] + "?v=0123456789abcdef"):
        response = client.get(other)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-cache"

    revalidated = client.get(url.split("?")[0], headers={"If-None-Match": cached.headers["etag"]})
    assert revalidated.status_code == 304


def test_missing_asset_is_404(client: TestClient) -> None:
    assert client.get(f"{ASSETS_URL}/nope.js").status_code == 404


def test_queries_and_subscriptions_reach_the_endpoint_the_page_uses(
    client: TestClient, page: str
) -> None:
    endpoint = page_config(page)["endpoint"]
    response = client.post(endpoint, json={"query": "{ hello }"})
    assert response.json() == {"data": {"hello": "world"}}

    with client.websocket_connect(endpoint, subprotocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL]) as ws:
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json(
            {"type": "subscribe", "id": "1", "payload": {"query": "subscription { ticks }"}}
        )
        assert ws.receive_json() == {"type": "next", "id": "1", "payload": {"data": {"ticks": 1}}}
        assert ws.receive_json() == {"type": "complete", "id": "1"}


def test_vendored_files_are_the_pinned_builds() -> None:
    for relative, digest in VENDORED_SHA384.items():
        assert sri((ASSET_DIR / relative).read_bytes()) == f"sha384-{digest}", relative


def test_assets_and_licences_ship_inside_the_package() -> None:
    packaged = files("graph").joinpath("static", "graphiql", "assets")
    assert Path(str(packaged)).resolve() == ASSET_DIR
    for relative in (*SCRIPTS, *STYLESHEETS):
        assert packaged.joinpath(*relative.split("/")).is_file(), relative
    for folder in VENDORED_PACKAGES:
        licence = packaged.joinpath(folder, "LICENSE").read_text(encoding="utf-8")
        assert "MIT License" in licence
        assert "Permission is hereby granted, free of charge" in licence
    assert files("graph").joinpath("static", "graphiql", "page.html").is_file()


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        assert name not in parsed, f"{name} given twice"
        parsed[name] = sources
    return parsed


def test_execgraph_serves_the_page_with_a_strict_policy(
    store: Path, make_client: Callable[..., TestClient]
) -> None:
    response = make_client(store).get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", "ws://testserver"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    everything = [source for sources in policy.values() for source in sources]
    assert not [s for s in everything if "unsafe" in s or s == "*" or s.startswith("http")]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_websocket_source_follows_the_scheme_and_refuses_odd_hosts() -> None:
    connect = directives(
        graphiql_headers(URL("https://example.org:8443/graphql"))["Content-Security-Policy"]
    )["connect-src"]
    assert connect == ["'self'", "wss://example.org:8443"]
    assert directives(
        graphiql_headers(URL("http://[::1]:8000/graphql"))["Content-Security-Policy"]
    )["connect-src"] == ["'self'", "ws://[::1]:8000"]
    for host in ("a;script-src", "a b", "a'b"):
        policy = graphiql_headers(URL(f"http://{host}/graphql"))["Content-Security-Policy"]
        assert directives(policy)["connect-src"] == ["'self'"], host
        assert directives(policy)["script-src"] == ["'self'"], host
