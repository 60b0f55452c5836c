"""Subscriptions through clients written by others, against a real uvicorn server on 127.0.0.1.

* ``gql`` (Python, the client the README shows), its ``WebsocketsTransport``: subscriptions,
  a query, a refusal, and the README's example code as written;
* ``graphql-ws`` (npm) under Node, through ``tests/e2e/graphql_ws_client.mjs``.

Both clients reject binary frames themselves (gql: "Binary data received in the websocket";
graphql-ws: "Message is missing the 'type' property"), and the tests count the frames too.
GraphiQL in Chromium has its own module (``test_graphiql_browser.py``).
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from graph.errors import ErrorCode
from storage.demo.writer import write_atomically
from tests.e2e.server import serve
from tests.e2e.tools import require_node
from tests.factory import record_dict

ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENT = Path(__file__).with_name("graphql_ws_client.mjs")
ADDED = "subscription { executionAdded { executionId configName itemCount } }"
#: The message types a graphql-transport-ws server may send.
SERVER_MESSAGES = {"connection_ack", "ping", "pong", "next", "error", "complete"}


def new_runs(prefix: int, count: int) -> list[dict[str, Any]]:
    return [
        record_dict(f"exec_20251204_{prefix:02d}{n:04d}_{prefix:04x}{n:04x}", shape="text")
        for n in range(count)
    ]


def write_run(store: Path, record: dict[str, Any]) -> None:
    write_atomically(store / f"{record['execution_id']}.json", record)


class Lines:
    """The lines a child process writes, read in a thread so that a test can wait with a limit."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next(self, timeout: float) -> str | None:
        """The next line, None at the end of the output; fails after ``timeout`` seconds."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output within {timeout} s")


@pytest.fixture
def child_processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes the test starts; any still running at the end are stopped."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def recording_transport(url: str) -> tuple[WebsocketsTransport, list[str]]:
    """gql's WebSocket transport, keeping every message it receives (as text: gql refuses
    binary frames with TransportProtocolError)."""
    transport = WebsocketsTransport(url=url)
    received: list[str] = []
    receive = transport.adapter.receive

    async def recording() -> str:
        message = await receive()
        received.append(message)
        return message

    transport.adapter.receive = recording  # type: ignore[method-assign]
    return transport, received


def assert_protocol_messages(received: list[str]) -> None:
    types = [json.loads(message)["type"] for message in received]
    assert types[:1] == ["connection_ack"], types
    assert set(types) <= SERVER_MESSAGES, types


def test_gql_subscriber_receives_each_new_run_once(store: Path, index_path: Path) -> None:
    runs = new_runs(1, 12)

    async def scenario(url: str) -> list[dict[str, Any]]:
        transport, received = recording_transport(url)
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        async with Client(transport=transport) as session:

            async def listen() -> None:
                async for event in session.subscribe(gql(ADDED)):
                    await events.put(event["executionAdded"])

            listener = asyncio.create_task(listen())
            await asyncio.sleep(0.5)  # the subscription is registered
            for run in runs:
                write_run(store, run)
            got = [await asyncio.wait_for(events.get(), 10) for _ in runs]
            with pytest.raises(TimeoutError):  # nothing more: no run twice
                await asyncio.wait_for(events.get(), 0.8)
            listener.cancel()
            with pytest.raises(asyncio.CancelledError):
                await listener
        assert_protocol_messages(received)
        assert len(received) == 1 + len(runs)  # the ack, then one 'next' per run
        return got

    with serve(store, index_path) as server:
        got = asyncio.run(scenario(server.ws_url))
    assert [event["executionId"] for event in got] == [run["execution_id"] for run in runs]
    assert [event["itemCount"] for event in got] == [len(run["items"]) for run in runs]
    assert {event["configName"] for event in got} == {"dada"}


def test_gql_runs_a_query_and_reads_a_refusal_over_the_websocket(
    store: Path, index_path: Path
) -> None:
    runs = new_runs(2, 3)
    for run in runs:
        write_run(store, run)

    async def scenario(url: str) -> tuple[dict[str, Any], TransportQueryError]:
        transport, received = recording_transport(url)
        async with Client(transport=transport) as session:
            answer = await session.execute(gql("{ storageStats { totalRecords } }"))
            with pytest.raises(TransportQueryError) as refused:
                await session.execute(gql("{ storageStats { noSuchField } }"))
            # The connection is still good after the refusal.
            again = await session.execute(gql("{ storageStats { totalRecords } }"))
            assert again == answer
        assert_protocol_messages(received)
        return answer, refused.value

    with serve(store, index_path) as server:
        answer, refusal = asyncio.run(scenario(server.ws_url))
    assert answer == {"storageStats": {"totalRecords": len(runs)}}
    assert refusal.errors
    assert [e["extensions"]["code"] for e in refusal.errors] == [
        ErrorCode.GRAPHQL_VALIDATION_FAILED
    ]


def readme_gql_example() -> str:
    """The README's gql code block, as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    examples = [block for block in blocks if "WebsocketsTransport" in block]
    assert len(examples) == 1, "the README has one gql example"
    return str(examples[0])


def test_the_readmes_gql_example_prints_new_runs(
    store: Path, index_path: Path, tmp_path: Path, child_processes: list[subprocess.Popen[str]]
) -> None:
    code = readme_gql_example()
    readme_url = "ws://127.0.0.1:8000/graphql"
    assert code.count(readme_url) == 1
    runs = iter(new_runs(3, 40))
    with serve(store, index_path) as server:
        script = tmp_path / "readme_example.py"
        script.write_text(code.replace(readme_url, server.ws_url), encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, str(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        child_processes.append(process)
        output = Lines(process.stdout)  # type: ignore[arg-type]
        # Until the example has subscribed, a run goes by unseen: write one every half second
        # until one is printed (the example prints nothing else).
        written: list[str] = []
        first = None
        deadline = time.monotonic() + 20
        while first is None and time.monotonic() < deadline:
            run = next(runs)
            write_run(store, run)
            written.append(run["execution_id"])
            try:
                first = output.lines.get(timeout=0.5)
            except queue.Empty:
                continue
        assert first is not None, f"the example printed nothing ({process.poll()=})"
        printed = [ast.literal_eval(first)]
        # From now on each run is printed once, in order.
        later = [next(runs) for _ in range(3)]
        for run in later:
            write_run(store, run)
        for _ in later:
            line = output.next(10)
            assert line is not None, process.stderr.read() if process.stderr else ""
            printed.append(ast.literal_eval(line))
        process.terminate()
        process.wait(10)
    assert printed[0]["executionId"] in written
    assert [p["executionId"] for p in printed[1:]] == [run["execution_id"] for run in later]
    assert set(printed[0]) == {"executionId", "configName", "itemCount"}


def test_graphql_ws_node_client_receives_each_new_run_once(
    store: Path, index_path: Path, child_processes: list[subprocess.Popen[str]]
) -> None:
    node = require_node()
    runs = new_runs(4, 15)
    with serve(store, index_path) as server:
        process = subprocess.Popen(
            [node, str(NODE_CLIENT), server.ws_url, ADDED, str(len(runs)), "30"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        child_processes.append(process)
        output = Lines(process.stdout)  # type: ignore[arg-type]
        assert output.next(15) == json.dumps({"event": "connected"}, separators=(",", ":"))
        time.sleep(0.5)  # the subscription is registered
        for run in runs:
            write_run(store, run)
        lines: list[str] = []
        while (line := output.next(40)) is not None:
            lines.append(line)
        assert process.wait(10) == 0, [*lines, process.stderr.read() if process.stderr else ""]
    messages = [json.loads(line) for line in lines]
    nexts = [m for m in messages if m["event"] == "next"]
    done = messages[-1]
    assert [m["event"] for m in messages] == ["next"] * len(runs) + ["done"], messages
    ids = [m["payload"]["data"]["executionAdded"]["executionId"] for m in nexts]
    assert ids == [run["execution_id"] for run in runs]  # each once, none lost, in order
    assert all("errors" not in m["payload"] for m in nexts)
    assert done["reason"] == "received"
    assert done["received"] == len(runs)
    assert done["binaryFrames"] == 0
    assert done["textFrames"] == 1 + len(runs)  # connection_ack and one 'next' per run


def test_graphql_ws_node_client_gets_a_refusal_as_an_operation_error(
    store: Path, index_path: Path
) -> None:
    node = require_node()
    with serve(store, index_path) as server:
        done = subprocess.run(
            [node, str(NODE_CLIENT), server.ws_url, "subscription { executionAdded { ", "1", "15"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1, messages
    events = [m["event"] for m in messages]
    assert events == ["connected", "error", "done"], messages
    errors = messages[1]["errors"]
    assert messages[1]["where"] == "operation"
    assert [e["extensions"]["code"] for e in errors] == [ErrorCode.GRAPHQL_PARSE_FAILED]
    assert messages[-1]["binaryFrames"] == 0
    assert messages[-1]["textFrames"] == 2
