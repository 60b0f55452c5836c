"""Traversal payloads on every id-taking argument and on the download route: answers are null,
``BAD_USER_INPUT`` or 404, and no file outside the server's own folders is ever opened.

The arguments: ``execution(executionId)``, ``node(id)`` (the payload itself, and global ids
built from it for runs and items), ``exportJob(id)``, ``exportExecutions(input:
{executionIds})`` (alone and next to a real id), the subscription ``exportJobProgress(id)``
(which ends with NOT_FOUND for an unknown job), and ``GET /exports/{token}`` (percent-encoded
through a client, and raw on a socket so that no client normalises ``..`` away).

The store and the export folder sit next to files a client must never reach: a valid record
outside the store (reachable through symlinks planted in the store), and export sidecars and
data files that are symlinks to the outside. ``sys.addaudithook`` sees every ``open``,
``os.listdir``, ``os.scandir`` and ``sqlite3.connect`` of the process, in every thread; while the
hostile requests run, each path it reports (as given and with symlinks resolved) must lie in the
store, the export folder, the index folder or the package's own assets. A control request then
shows the hook does see the server's reads, so the suite cannot pass by seeing nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import pytest

import exports
import graph
from tests.conftest import mixed_records
from tests.e2e.server import RunningServer, Subscriber, serve
from tests.factory import record_dict, write_record
from tests.hardening.robustness import GraphQLHttp, error_codes, global_id

SECRET_ID: Final = "exec_20251111_111111_5ec2e7ed"
#: Tokens of the exact generated shape (22 characters), planted as symlinks in the export folder.
TOKEN_SIDECAR_LINK: Final = "SymlinkedSidecar000000"
TOKEN_DATA_LINK: Final = "SymlinkedDataFile00000"
TOKEN_ESCAPING_NAME: Final = "EscapingFileName000000"
WATCHED_EVENTS: Final = frozenset({"open", "os.listdir", "os.scandir", "sqlite3.connect"})
PROGRESS: Final = "subscription($v: ID!) { exportJobProgress(id: $v) { id status } }"


def payloads(root: Path, store: Path, good_id: str) -> list[str]:
    """Traversal ids: relative, Windows, absolute, encoded, NUL, overlong, look-alike dots,
    symlink names, and paths that would lead back to a real record if ids were paths."""
    secret = root / "outside" / "secret.json"
    return [
        "../secret",
        "../secret.json",
        "../outside/secret",
        "../outside/secret.json",
        "../../etc/passwd",
        "../" * 64 + "etc/passwd",
        "..\\secret.json",
        "..\\..\\outside\\secret",
        "/etc/passwd",
        str(secret),
        str(secret.with_suffix("")),
        f"{secret}\x00",
        "/etc/passwd\x00.json",
        "exec_x\x00",
        "\x00",
        "%2e%2e%2fsecret",
        "%2e%2e/%2e%2e/etc/passwd",
        "%252e%252e%252fsecret",
        "..%2fsecret",
        "..%252foutside%252fsecret",
        "..%c0%afsecret",
        "..%c1%9csecret",
        "%2e%2e%5coutside%5csecret",
        "\u2024\u2024/secret",
        "\u2024\u2024/outside/secret",
        "\uff0e\uff0e/secret",
        "\uff0e\uff0e\uff0foutside\uff0fsecret",
        "\u2025/secret",
        "." * 300,
        "a" * 10_000,
        "exec_" + "9" * 250,
        "exec_x/../../secret",
        "exec_a/..",
        ".",
        "..",
        "",
        " ",
        "~/.ssh/id_rsa",
        "file:///etc/passwd",
        "/proc/self/environ",
        "\\\\server\\share\\x",
        "C:\\Windows\\win.ini",
        "secret",
        "secret.json",
        "link_out",
        "link_out.json",
        "linkdir/secret",
        "linkdir/secret.json",
        SECRET_ID,
        f"{SECRET_ID}.json",
        # Would reach a real, served record if an id were ever turned into a path.
        f"{good_id}.json",
        f"../{store.name}/{good_id}",
        f"./{good_id}",
        f"{good_id}/",
        f"{good_id}\x00",
        f"{good_id}/../{good_id}",
        str(store / good_id),
    ]


@dataclass
class Hostile:
    """The server under test, its folders, and the audit hook's findings."""

    root: Path
    store: Path
    export_dir: Path
    index_dir: Path
    server: RunningServer
    http: GraphQLHttp
    good_id: str
    real_token: str
    opened: list[tuple[str, str]] = field(default_factory=list)

    @property
    def allowed(self) -> list[Path]:
        """Where the server may open files: its store, export folder, index folder and the
        package's own assets (GraphiQL, fonts, the XSD)."""
        return [
            self.store.resolve(),
            self.export_dir.resolve(),
            self.index_dir.resolve(),
            (Path(graph.__file__).parent / "static").resolve(),
            (Path(exports.__file__).parent / "assets").resolve(),
        ]

    def outside(self) -> list[tuple[str, str]]:
        """Recorded (event, path) pairs whose path, as given or resolved, leaves the allowed
        folders."""
        roots = self.allowed
        bad = []
        for event, path in self.opened:
            for candidate in (Path(os.path.abspath(path)), Path(os.path.realpath(path))):
                if not any(candidate.is_relative_to(r) for r in roots):
                    bad.append((event, path))
                    break
        return bad


class _Recorder:
    """The one audit hook of the process (hooks cannot be removed): records while enabled."""

    def __init__(self) -> None:
        self.target: list[tuple[str, str]] | None = None
        self.lock = threading.Lock()

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        target = self.target
        if target is None or event not in WATCHED_EVENTS or not args:
            return
        path = args[0]
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        elif isinstance(path, os.PathLike):
            path = os.fspath(path)
        if isinstance(path, str):  # file descriptors and None (the cwd) name no new file
            with self.lock:
                target.append((event, path))


_RECORDER = _Recorder()
sys.addaudithook(_RECORDER)


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Hostile]:
    root = tmp_path
    store, outside = root / "store", root / "outside"
    store.mkdir()
    outside.mkdir()
    records = mixed_records(20)
    for record in records:
        write_record(store, record)
    good_id = records[0]["execution_id"]
    # A valid record outside the store, and symlinks in the store that lead to it.
    secret = write_record(outside, record_dict(SECRET_ID, prompt="secret"), name="secret.json")
    (store / "link_out.json").symlink_to(secret)
    (store / f"{SECRET_ID}.json").symlink_to(secret)
    (store / "linkdir").symlink_to(outside, target_is_directory=True)

    export_dir, index_dir = root / "exports", root / "cache"
    settings: dict[str, Any] = {
        "watch": False,
        "export_dir": export_dir,
        "audit_log": root / "audit" / "exports.jsonl",
        "pseudonym_key": "hardening-tests-pseudonym-key",
    }
    with serve(store, index_dir / "index.sqlite3", **settings) as server:
        http = GraphQLHttp(server.http_url)
        try:
            real_token, job_id = _warm_up(http, good_id)
            _warm_up_subscriptions(server, job_id)
            _plant_export_symlinks(export_dir, outside, real_token)
            yield Hostile(root, store, export_dir, index_dir, server, http, good_id, real_token)
        finally:
            _RECORDER.target = None
            http.close()


def _warm_up(http: GraphQLHttp, good_id: str) -> tuple[str, str]:
    """Send every request shape once with harmless values (so lazy imports and first-use
    set-ups such as the mime-type table happen now, not while files are counted); return
    the download token and the job id of a real export."""
    export = http.data(
        """mutation($ids: [String!]) { exportExecutions(input: {format: JSON, executionIds: $ids})
          { id status file { url } } }""",
        {"ids": [good_id]},
    )["exportExecutions"]
    assert export["status"] == "DONE", export
    response = http.get(export["file"]["url"])
    assert response.status_code == 200
    token = export["file"]["url"].rsplit("/", 1)[1]
    for value in (good_id, "nope"):
        _ask_everything(http, value)
        _download(http, value)
    return str(token), str(export["id"])


def _warm_up_subscriptions(server: RunningServer, job_id: str) -> None:
    """One subscription that works, so the WebSocket stack is loaded before files are counted."""

    async def scenario() -> None:
        sub = await Subscriber.connect(server.ws_url)
        try:
            await sub.subscribe(PROGRESS, {"v": job_id})
            message = await sub.receive(10)
            assert message["type"] == "next", message
        finally:
            await sub.close()

    asyncio.run(scenario())


def _plant_export_symlinks(export_dir: Path, outside: Path, real_token: str) -> None:
    """Export-folder entries that point outside it, each behind a token of the valid shape."""
    real_sidecar = json.loads((export_dir / f"{real_token}.meta.json").read_bytes())
    download_name = real_sidecar["file_name"].split(".", 1)[1]
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    def sidecar(file_name: str) -> bytes:
        data = {**real_sidecar, "file_name": file_name, "expires_at": expires}
        return json.dumps(data).encode()

    secret_data = outside / "exported-secret.json"
    secret_data.write_text('{"secret": true}', "utf-8")
    # 1. The sidecar itself is a symlink to a well-formed sidecar outside.
    outside_sidecar = outside / "sidecar.meta.json"
    outside_sidecar.write_bytes(sidecar(f"{TOKEN_SIDECAR_LINK}.{download_name}"))
    (export_dir / f"{TOKEN_SIDECAR_LINK}.meta.json").symlink_to(outside_sidecar)
    (export_dir / f"{TOKEN_SIDECAR_LINK}.{download_name}").symlink_to(secret_data)
    # 2. A genuine sidecar whose data file is a symlink to the outside.
    (export_dir / f"{TOKEN_DATA_LINK}.meta.json").write_bytes(
        sidecar(f"{TOKEN_DATA_LINK}.{download_name}")
    )
    (export_dir / f"{TOKEN_DATA_LINK}.{download_name}").symlink_to(secret_data)
    # 3. A genuine sidecar naming a file outside the folder.
    (export_dir / f"{TOKEN_ESCAPING_NAME}.meta.json").write_bytes(
        sidecar("../outside/exported-secret.json")
    )


def _ask_everything(http: GraphQLHttp, value: str) -> list[str]:
    """Every id-taking GraphQL argument with ``value``; the problems found in the answers."""
    node = """query($v: ID!) { node(id: $v) { id ... on Execution { items { content } }
      ... on ExecutionItem { content } } }"""
    asks: list[tuple[str, str, dict[str, Any]]] = [
        (
            "execution",
            "query($v: String!) { execution(executionId: $v) { executionId items { content } } }",
            {"v": value},
        ),
        ("exportJob", "query($v: ID!) { exportJob(id: $v) { id status } }", {"v": value}),
        ("node", node, {"v": value}),
        ("node", node, {"v": global_id("Execution", value)}),
        ("node", node, {"v": global_id("ExecutionItem", f"{value}:0")}),
        ("node", node, {"v": base64.urlsafe_b64encode(f"Execution:{value}".encode()).decode()}),
        (
            "exportExecutions",
            """mutation($ids: [String!]) {
              exportExecutions(input: {format: JSON, executionIds: $ids}) { id status file { url } }
            }""",
            {"ids": [value]},
        ),
    ]
    return [problem for ask in asks for problem in _judge(http, *ask, value)]


def _judge(
    http: GraphQLHttp, name: str, query: str, variables: dict[str, Any], value: str
) -> list[str]:
    answer = http.post(query, variables)
    if answer.status != 200:
        return [f"{name}({value[:60]!r}): {answer.describe()}"]
    codes = error_codes(answer.body)
    data = answer.body.get("data")
    if any(code != "BAD_USER_INPUT" for code in codes):
        return [f"{name}({value[:60]!r}): {answer.describe()}"]
    if data is not None and data.get(name) is not None:
        return [f"{name}({value[:60]!r}) answered {answer.text[:300]}"]
    return []


def _download(http: GraphQLHttp, value: str) -> list[str]:
    """GET /exports/<value>, percent-encoded whole (dots too, so no client normalises ``..``);
    the problem if the answer is not 404."""
    return _judge_download(http, "/exports/" + quote(value, safe="").replace(".", "%2E"))


def _download_raw(server: RunningServer, http: GraphQLHttp, value: str) -> list[str]:
    """GET /exports/<value> on a raw socket, with slashes, dots, backslashes and % as they are
    (no client normalises the path); the problem if the answer is not 404."""
    target = "/exports/" + quote(value, safe="/.%\\~:")
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request.encode("ascii"))
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1]) if lines[0].startswith("HTTP/1.1 ") else 0
    location = next(
        (ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("location:")), ""
    )
    return _judge_status(http, f"raw GET {target[:80]!r}", status, location)


def _judge_download(http: GraphQLHttp, target: str) -> list[str]:
    response = http.get(target)
    return _judge_status(
        http, f"GET {target[:80]!r}", response.status_code, response.headers.get("location", "")
    )


def _judge_status(http: GraphQLHttp, what: str, status: int, location: str) -> list[str]:
    """404 is the answer; Starlette's trailing-slash redirect is accepted only when it stays on
    the download route (``/exports/x/`` -> ``/exports/x``) and that answers 404 in turn."""
    if status == 404:
        return []
    path = urlsplit(location).path
    if status in (307, 308) and path.startswith("/exports/") and "/" not in path[9:]:
        return [f"{what} -> {p}" for p in _judge_download(http, path)]
    return [f"{what}: {status} {location}".rstrip()]


def _subscribe_all(server: RunningServer, values: list[str]) -> list[str]:
    """``exportJobProgress(id)`` over graphql-transport-ws with each value: the stream must end
    with errors only (NOT_FOUND: no such job, or BAD_USER_INPUT), never a job."""

    async def answers(sub: Subscriber, op_id: str) -> list[dict[str, Any]]:
        messages = []
        for _ in range(5):
            message = await sub.receive(10)
            assert message.get("id") == op_id, message
            messages.append(message)
            if message["type"] in ("complete", "error"):
                break
        return messages

    async def scenario() -> list[str]:
        problems = []
        sub = await Subscriber.connect(server.ws_url)
        try:
            for value in values:
                messages = await answers(sub, await sub.subscribe(PROGRESS, {"v": value}))
                errors = [
                    error
                    for m in messages
                    for error in (m["payload"] if m["type"] == "error" else [])
                    + (m["payload"].get("errors") or [] if m["type"] == "next" else [])
                ]
                data = [m["payload"].get("data") for m in messages if m["type"] == "next"]
                codes = {(e.get("extensions") or {}).get("code") for e in errors}
                allowed = codes <= {"NOT_FOUND", "BAD_USER_INPUT"}
                if not errors or not allowed or any(d is not None for d in data):
                    problems.append(f"exportJobProgress({value[:60]!r}): {messages}"[:400])
        finally:
            await sub.close()
        return problems

    return asyncio.run(scenario())


def test_hostile_ids_answer_null_or_bad_input_and_open_nothing_outside(
    hostile: Hostile,
) -> None:
    values = payloads(hostile.root, hostile.store, hostile.good_id)
    assert len(values) >= 25
    tokens = [
        TOKEN_SIDECAR_LINK,
        TOKEN_DATA_LINK,
        TOKEN_ESCAPING_NAME,
        f"{hostile.real_token}.meta.json",
        f"../{hostile.export_dir.name}/{hostile.real_token}",
        f"{hostile.real_token}/../{hostile.real_token}",
        f"{hostile.real_token}\x00",
        f"{hostile.real_token}%00",
    ]
    audit_log = hostile.root / "audit" / "exports.jsonl"
    audit_before = audit_log.read_bytes()
    exports_before = sorted(p.name for p in hostile.export_dir.iterdir())
    problems: list[str] = []
    _RECORDER.target = hostile.opened
    try:
        for value in values:
            problems += _ask_everything(hostile.http, value)
            # A hostile id next to a real one: the whole export is refused.
            problems += _judge(
                hostile.http,
                "exportExecutions",
                """mutation($ids: [String!]) { exportExecutions(
                  input: {format: CSV, executionIds: $ids}) { id status } }""",
                {"ids": [hostile.good_id, value]},
                value,
            )
        for value in values + tokens:
            problems += _download(hostile.http, value)
            problems += _download_raw(hostile.server, hostile.http, value)
        problems += _subscribe_all(hostile.server, values)
    finally:
        _RECORDER.target = None
    assert problems == [], "\n".join(problems)
    assert hostile.outside() == [], "files outside the server's folders were opened"
    assert audit_log.read_bytes() == audit_before, "a hostile request produced an export"
    assert sorted(p.name for p in hostile.export_dir.iterdir()) == exports_before

    # Control: the hook does see the server's reads, in the server's thread.
    _RECORDER.target = hostile.opened
    try:
        body = hostile.http.data(
            "query($v: String!) { execution(executionId: $v) { items { content } } }",
            {"v": hostile.good_id},
        )
    finally:
        _RECORDER.target = None
    assert body["execution"]["items"]
    assert ("open", str(hostile.store / f"{hostile.good_id}.json")) in hostile.opened


def test_the_hook_flags_a_read_outside(hostile: Hostile) -> None:
    """The judge itself can fail: a read of the planted secret counts as outside."""
    hostile.opened.append(("open", str(hostile.root / "outside" / "secret.json")))
    hostile.opened.append(("open", str(hostile.store / "link_out.json")))
    assert [path for _, path in hostile.outside()] == [
        str(hostile.root / "outside" / "secret.json"),
        str(hostile.store / "link_out.json"),
    ]
