"""Smoke test of an installed execgraph, as a new user meets it.

    python -m tests.smoke.installed /path/to/venv/bin/execgraph [--installed]

Starts ``execgraph serve --demo`` on a free port of 127.0.0.1 with fresh user folders (HOME and
every XDG folder in a new temporary directory) from a working directory outside the checkout,
then checks, as a browser and a client would:

* ``/healthz`` answers;
* the GraphiQL page answers 200 and every asset it references (``src``/``href``, and ``url()``
  in its stylesheets) answers 200 with the right content type and the integrity hash the page
  states;
* every README GraphQL example (:mod:`tests.smoke.readme`) answers with data and no errors
  (subscriptions over ``graphql-transport-ws``, in text frames, with a run written into the
  store), and each export file it makes downloads; the XSD and a PDF report (the packaged fonts)
  download too;
* the server stops cleanly on SIGTERM, with no traceback in its log.

``--installed`` also requires the package to be imported from outside the checkout (CI installs
the wheel into a fresh virtual environment; an editable install would pass without it). Stdlib
only, plus ``websockets`` (a dependency of ``uvicorn[standard]``, so of execgraph itself). Prints
one line per check and ends with ``N passed, N failed``; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Final

from tests.smoke.readme import README, Example, answer_problems, examples

CHECKOUT: Final = README.parent
START_TIMEOUT_S: Final = 180.0
REQUEST_TIMEOUT_S: Final = 60.0
EVENT_TIMEOUT_S: Final = 20.0
STOP_TIMEOUT_S: Final = 30.0
#: Content types an asset must be served with, by file extension.
CONTENT_TYPES: Final = {
    ".js": ("text/javascript", "application/javascript"),
    ".mjs": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".html": ("text/html",),
    ".svg": ("image/svg+xml",),
    ".png": ("image/png",),
    ".ico": ("image/x-icon", "image/vnd.microsoft.icon"),
    ".woff2": ("font/woff2",),
    ".woff": ("font/woff",),
    ".ttf": ("font/ttf",),
    ".json": ("application/json",),
}
_CSS_URL: Final = re.compile(r"url\(([^)]*)\)")
_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SmokeError(Exception):
    """A check failed (the message says what was expected and what came)."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
    """One HTTP request (no proxy); an HTTP error status is a reply, not an exception."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=REQUEST_TIMEOUT_S) as response:
            return Reply(response.status, response.headers.get("content-type", ""), response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers.get("content-type", ""), exc.read())


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Results:
    """The outcome of each check, printed as it comes."""

    passed: int = 0
    failed: list[str] = field(default_factory=list)

    def check(self, name: str, run: Callable[[], str | None]) -> None:
        try:
            detail = run()
        except Exception as exc:  # every failure is reported, then the next check runs
            self.fail(name, exc)
        else:
            self.passed += 1
            print(f"ok   {name}{f' ({detail})' if detail else ''}", flush=True)

    def fail(self, name: str, problem: object) -> None:
        self.failed.append(f"{name}: {problem}")
        print(f"FAIL {name}: {problem}", flush=True)


# --- the server ---------------------------------------------------------------------------------


def user_environment(home: Path) -> dict[str, str]:
    """The environment of a user who never ran execgraph: fresh folders, no EXECGRAPH_*."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EXECGRAPH_", "PYTHON", "VIRTUAL_ENV", "XDG_"))
    }
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_CONFIG_HOME=str(home / ".config"),
    )
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    store: Path
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serve_demo(execgraph: Path, workdir: Path, env: dict[str, str]) -> Iterator[Server]:
    """``execgraph serve --demo`` on a free port, until /healthz answers; stopped at the end."""
    port = free_port()
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(execgraph), "serve", "--demo", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    store = Path(env["XDG_CACHE_HOME"]) / "execgraph" / "demo-store"
    server = Server(process, f"http://127.0.0.1:{port}", store, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise SmokeError(f"the server exited ({process.returncode}):\n{server.log_text()}")
            try:
                if request(f"{server.base}/healthz").status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SmokeError(f"/healthz did not answer in {START_TIMEOUT_S:.0f} s")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# --- the GraphiQL page --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Asset:
    url: str
    integrity: str | None


class _AssetParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.assets: list[Asset] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            url = values.get(name)
            if url and not url.startswith(("data:", "#", "javascript:")):
                self.assets.append(Asset(url, values.get("integrity")))


def page_assets(html: str, page_url: str) -> list[Asset]:
    """Every URL the page loads or links, absolute, in order."""
    parser = _AssetParser()
    parser.feed(html)
    return [Asset(urllib.parse.urljoin(page_url, a.url), a.integrity) for a in parser.assets]


def css_urls(css: str, css_url: str) -> list[str]:
    """``url(...)`` references of a stylesheet other than ``data:`` ones, absolute."""
    found = []
    for raw in _CSS_URL.findall(css):
        url = raw.strip().strip("'\"")
        if url and not url.startswith(("data:", "#")):
            found.append(urllib.parse.urljoin(css_url, url))
    return found


def check_asset(base: str, url: str, integrity: str | None) -> str:
    if urllib.parse.urlsplit(url)[:2] != urllib.parse.urlsplit(base)[:2]:
        raise SmokeError(f"{url} is not served by execgraph (the page must work offline)")
    reply = request(url)
    if reply.status != 200:
        raise SmokeError(f"{url} answered {reply.status}: {reply.body[:300]!r}")
    if not reply.body:
        raise SmokeError(f"{url} is empty")
    suffix = Path(urllib.parse.urlsplit(url).path).suffix
    expected = CONTENT_TYPES.get(suffix)
    if expected is not None and media_type(reply.content_type) not in expected:
        raise SmokeError(f"{url} has content type {reply.content_type!r}, expected {expected}")
    if integrity:
        algorithm, _, value = integrity.partition("-")
        digest = base64.b64encode(hashlib.new(algorithm, reply.body).digest()).decode()
        if digest != value:
            raise SmokeError(f"{url} does not match its integrity attribute {integrity}")
    return f"{len(reply.body):,} bytes, {media_type(reply.content_type)}"


def check_graphiql(base: str, results: Results) -> None:
    page_url = f"{base}/graphql"
    page = request(page_url, headers={"Accept": "text/html"})
    assets: list[Asset] = []

    def the_page() -> str:
        if page.status != 200 or media_type(page.content_type) != "text/html":
            raise SmokeError(f"GET /graphql answered {page.status} {page.content_type!r}")
        assets.extend(page_assets(page.body.decode("utf-8"), page_url))
        if not assets:
            raise SmokeError("the page references no asset")
        return f"{len(assets)} assets"

    results.check("GraphiQL page", the_page)
    for asset in assets:
        results.check(f"asset {urllib.parse.urlsplit(asset.url).path}", _asset_check(base, asset))


def _asset_check(base: str, asset: Asset) -> Callable[[], str]:
    def run() -> str:
        detail = check_asset(base, asset.url, asset.integrity)
        if asset.url.split("?", 1)[0].endswith(".css"):
            css = request(asset.url).body.decode("utf-8", errors="replace")
            for url in css_urls(css, asset.url):
                check_asset(base, url, None)
        return detail

    return run


# --- the README's examples ----------------------------------------------------------------------


def post_graphql(base: str, document: str, variables: dict[str, Any] | None = None) -> Any:
    body = json.dumps({"query": document, "variables": variables or {}}).encode()
    reply = request(
        f"{base}/graphql",
        data=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    if media_type(reply.content_type) not in (
        "application/json",
        "application/graphql-response+json",
    ):
        raise SmokeError(f"answered {reply.status} {reply.content_type!r}: {reply.body[:300]!r}")
    return reply.json()


def file_urls(value: Any) -> Iterator[str]:
    """Every ``file { url }`` in an answer (export files to download)."""
    if isinstance(value, dict):
        file = value.get("file")
        if isinstance(file, dict) and isinstance(file.get("url"), str):
            yield file["url"]
        for item in value.values():
            yield from file_urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from file_urls(item)


def download(base: str, url: str, *, expected: str | None = None) -> str:
    reply = request(urllib.parse.urljoin(f"{base}/", url))
    if reply.status != 200 or not reply.body:
        raise SmokeError(f"GET {url} answered {reply.status}: {reply.body[:300]!r}")
    if expected is not None and media_type(reply.content_type) != expected:
        raise SmokeError(f"GET {url} has content type {reply.content_type!r}, not {expected}")
    return f"{len(reply.body):,} bytes, {media_type(reply.content_type)}"


def run_query_example(base: str, example: Example) -> str:
    payload = post_graphql(base, example.document)
    require_data(payload)
    downloads = [download(base, url) for url in file_urls(payload["data"])]
    return ", ".join(["data", *(f"downloaded {d}" for d in downloads)])


def write_new_run(store: Path) -> str:
    """Write a copy of a Stille Post run of the store under a new id (atomically); its id."""
    for path in sorted(store.glob("exec_*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(record, dict) and record.get("config_name") == "stillepost":
            break
    else:
        raise SmokeError(f"no Stille Post run in {store} to copy")
    execution_id = f"exec_{datetime.now():%Y%m%d_%H%M%S}_{secrets.token_hex(4)}"
    record["execution_id"] = execution_id
    hidden = store / f".{execution_id}.json.tmp"
    hidden.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
    hidden.replace(store / f"{execution_id}.json")
    return execution_id


def receive(ws: Any) -> dict[str, Any]:
    """The next graphql-transport-ws message, which must come in a text frame."""
    frame = ws.recv(timeout=EVENT_TIMEOUT_S)
    if not isinstance(frame, str):
        raise SmokeError(f"a binary frame: {frame[:200]!r} (graphql-transport-ws uses text)")
    message: dict[str, Any] = json.loads(frame)
    return message


@contextmanager
def subscribed(base: str, document: str) -> Iterator[Any]:
    """A graphql-transport-ws connection, acknowledged, with ``document`` subscribed as id 1."""
    from websockets.sync.client import connect

    url = base.replace("http://", "ws://", 1) + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        if (ack := receive(ws)).get("type") != "connection_ack":
            raise SmokeError(f"expected connection_ack, got {ack}")
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": document}}))
        time.sleep(0.5)  # the protocol acknowledges no subscribe: let the server start it
        yield ws


def require_data(payload: Any) -> None:
    problems = answer_problems(payload)
    if problems:
        raise SmokeError("; ".join(problems))


def run_subscription_example(base: str, store: Path, example: Example) -> str:
    with subscribed(base, example.document) as ws:
        execution_id = write_new_run(store)
        message = receive(ws)
        if message.get("type") != "next":
            raise SmokeError(f"expected a next message, got {message}")
        require_data(message.get("payload"))
        [event] = message["payload"]["data"].values()
        if event.get("executionId") != execution_id:
            raise SmokeError(f"announced {event}, not the run written ({execution_id})")
        ws.send(json.dumps({"id": "1", "type": "complete"}))
    return f"got {execution_id} in a text frame"


def check_readme_examples(server: Server, results: Results) -> None:
    found = examples()
    results.check("README has GraphQL examples", lambda: f"{len(found)} blocks")
    for example in found:
        if example.kind == "subscription":
            results.check(
                str(example),
                lambda e=example: run_subscription_example(server.base, server.store, e),
            )
        else:
            results.check(str(example), lambda e=example: run_query_example(server.base, e))


def check_packaged_files(server: Server, results: Results) -> None:
    """The export files that need package data: the XSD, and a PDF (fonts)."""
    results.check(
        "GET /exports/schema.xsd",
        lambda: download(server.base, "/exports/schema.xsd"),
    )

    def pdf_report() -> str:
        first = post_graphql(
            server.base, "{ executions(first: 1) { edges { node { executionId } } } }"
        )
        [edge] = first["data"]["executions"]["edges"]
        payload = post_graphql(
            server.base,
            "mutation($ids: [String!]) { exportExecutions(input: {format: PDF, executionIds: $ids})"
            " { status error file { url } } }",
            {"ids": [edge["node"]["executionId"]]},
        )
        require_data(payload)
        [url] = file_urls(payload["data"])
        return download(server.base, url, expected="application/pdf")

    results.check("PDF report (packaged fonts)", pdf_report)


def stop(server: Server) -> str:
    """SIGTERM, as a service manager stops it: an open subscription gets a close frame (a graceful
    shutdown, not a killed process), the process exits, and its log holds no traceback."""
    from websockets.exceptions import ConnectionClosed

    with subscribed(server.base, "subscription { executionAdded { executionId } }") as ws:
        server.process.send_signal(signal.SIGTERM)
        try:
            for _ in range(10):
                ws.recv(timeout=STOP_TIMEOUT_S)  # a "complete", then the close
        except ConnectionClosed as exc:
            if exc.rcvd is None:
                raise SmokeError("the connection dropped without a close frame") from None
            closed = f"close frame {exc.rcvd.code}"
        else:
            raise SmokeError("the subscription stayed open after SIGTERM")
    try:
        status = server.process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SmokeError(f"still running {STOP_TIMEOUT_S:.0f} s after SIGTERM") from None
    log = server.log_text()
    # uvicorn shuts down, then raises the signal it caught again: exit status -SIGTERM.
    if status not in (0, -signal.SIGTERM):
        raise SmokeError(f"exit status {status}:\n{log[-3000:]}")
    if "Traceback" in log:
        raise SmokeError(f"a traceback in the server's log:\n{log[-3000:]}")
    return f"{closed} to the open subscription, exit status {status}, no traceback in the log"


# --- the whole run ------------------------------------------------------------------------------


def check_import_location(execgraph: Path, workdir: Path, env: dict[str, str]) -> str:
    python = execgraph.with_name("python")
    found = subprocess.run(
        [str(python), "-c", "import graph, storage, exports; print(graph.__file__)"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    if Path(found).resolve().is_relative_to(CHECKOUT):
        raise SmokeError(f"graph is imported from the checkout ({found}), not an installed copy")
    return found


def smoke(execgraph: Path, *, installed: bool) -> Results:
    results = Results()
    with tempfile.TemporaryDirectory(prefix="execgraph-smoke-") as tmp:
        home, workdir = Path(tmp) / "home", Path(tmp) / "work"
        home.mkdir()
        workdir.mkdir()
        env = user_environment(home)
        if installed:
            results.check(
                "the package comes from the install",
                lambda: check_import_location(execgraph, workdir, env),
            )
        started = time.monotonic()
        try:
            with serve_demo(execgraph, workdir, env) as server:
                elapsed = time.monotonic() - started
                results.check("serve --demo answers /healthz", lambda: f"after {elapsed:.1f} s")
                check_graphiql(server.base, results)
                check_readme_examples(server, results)
                check_packaged_files(server, results)
                results.check("the server stops cleanly on SIGTERM", lambda: stop(server))
        except SmokeError as exc:
            results.fail("serve --demo starts", exc)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("execgraph", type=Path, help="the execgraph executable of a venv")
    parser.add_argument(
        "--installed",
        action="store_true",
        help="fail if the package is imported from the checkout (not an installed copy)",
    )
    args = parser.parse_args(argv)
    results = smoke(args.execgraph.absolute(), installed=args.installed)
    print(f"smoke: {results.passed} passed, {len(results.failed)} failed", flush=True)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
