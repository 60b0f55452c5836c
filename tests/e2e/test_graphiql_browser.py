"""GraphiQL itself, in headless Chromium, against a real server: a query and a live subscription.

The test types into the IDE's editor as a person would, runs the operation with the run button,
writes a run into the store and waits for its ``executionId`` in the result pane. Every frame of
the page's WebSocket is recorded (GraphiQL's client rejects binary frames, which the server used to
send), and so is every console message: a Content-Security-Policy that blocks the page's own
assets or its WebSocket shows up there ("Refused to ..."), so the failure says which it is.
Screenshots: ``/tmp/graphiql-query.png`` and ``/tmp/graphiql-sub.png``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from storage.demo.writer import write_atomically
from tests.e2e.server import serve
from tests.e2e.tools import CHROMIUM_ARGS, require_chromium
from tests.factory import record_dict

sync_api = pytest.importorskip("playwright.sync_api")

SCREENSHOTS = Path("/tmp")
QUERY = "{ storageStats { totalRecords } }"
SUBSCRIPTION = "subscription {\n  executionAdded { executionId configName itemCount }\n}"
#: Longest wait for anything the page does (it runs on a busy two-core machine in CI).
TIMEOUT_MS = 20_000


@dataclass
class PageLog:
    """What the page said on its console and what went over its WebSockets."""

    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    binary_frames: list[bytes] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)

    def on_frame_received(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.binary_frames.append(payload)
        else:
            self.received.append(json.loads(payload))

    def on_frame_sent(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            self.sent.append(json.loads(payload))

    def watch(self, socket: Any) -> None:
        self.sockets.append(socket.url)
        socket.on("framereceived", self.on_frame_received)
        socket.on("framesent", self.on_frame_sent)

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line]

    def __str__(self) -> str:
        return (
            f"console: {self.console}\npage errors: {self.page_errors}\nsockets: {self.sockets}\n"
            f"sent: {self.sent}\nreceived: {self.received}\nbinary: {self.binary_frames[:3]}"
        )


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = require_chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


def open_graphiql(browser: Any, url: str, log: PageLog) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", lambda message: log.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.on("websocket", log.watch)
    response = page.goto(f"{url}/graphql", wait_until="networkidle")
    assert response is not None
    assert response.status == 200
    page.locator(".graphiql-query-editor .CodeMirror").wait_for()
    return page


def type_and_run(page: Any, operation: str) -> None:
    """Replace the editor's text by typing ``operation``, then press the run button."""
    page.locator(".graphiql-query-editor .CodeMirror").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    # Typed as text input: key by key, CodeMirror would close every bracket a second time.
    page.keyboard.insert_text(operation)
    editor_text = page.evaluate(
        "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()"
    )
    assert editor_text == operation
    # GraphiQL reads the document's operation names after a pause in typing; run before that
    # and it sends the name of the operation the editor held before.
    page.wait_for_timeout(600)
    page.locator("button.graphiql-execute-button").click()


def result_pane(page: Any) -> Any:
    return page.locator(".graphiql-response")


def wait_until(page: Any, condition: Any, what: str, log: PageLog, seconds: float = 20) -> None:
    """Wait for ``condition``, letting the page run meanwhile.

    Playwright's sync API hands over events (WebSocket frames, console lines) only while one of
    its calls is in progress, so the wait goes through the page, never through ``time.sleep``.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s\n{log}"
        page.wait_for_timeout(50)


def test_graphiql_runs_a_query_and_a_live_subscription(
    browser: Any, store: Path, index_path: Path
) -> None:
    existing = record_dict("exec_20251205_090000_0000b001", shape="image")
    write_atomically(store / f"{existing['execution_id']}.json", existing)
    new = record_dict("exec_20251205_091500_0000b002", shape="stillepost")
    log = PageLog()
    with serve(store, index_path) as server:
        page = open_graphiql(browser, server.http_url, log)

        # A query, over HTTP.
        type_and_run(page, QUERY)
        sync_api.expect(result_pane(page)).to_contain_text('"totalRecords": 1', timeout=TIMEOUT_MS)
        page.screenshot(path=str(SCREENSHOTS / "graphiql-query.png"))

        # A subscription, over the page's WebSocket (graphql-transport-ws).
        type_and_run(page, SUBSCRIPTION)
        wait_until(
            page,
            lambda: any(m.get("type") == "subscribe" for m in log.sent),
            "GraphiQL subscribing",
            log,
        )
        wait_until(
            page,
            lambda: any(m.get("type") == "connection_ack" for m in log.received),
            "the server acknowledging the connection",
            log,
        )
        page.wait_for_timeout(500)  # the server registers the subscription
        write_atomically(store / f"{new['execution_id']}.json", new)
        pane = result_pane(page)
        sync_api.expect(pane).to_contain_text(new["execution_id"], timeout=TIMEOUT_MS)
        sync_api.expect(pane).to_contain_text(
            f'"itemCount": {len(new["items"])}', timeout=TIMEOUT_MS
        )
        page.screenshot(path=str(SCREENSHOTS / "graphiql-sub.png"))
        page.close()

    assert not log.csp_violations(), f"the page's Content-Security-Policy blocked:\n{log}"
    assert not log.page_errors, str(log)
    assert log.sockets == [server.ws_url], str(log)
    assert not log.binary_frames, str(log)
    types = [m["type"] for m in log.received]
    assert types == ["connection_ack", "next"], str(log)
    event = log.received[1]["payload"]["data"]["executionAdded"]
    assert event == {
        "executionId": new["execution_id"],
        "configName": "stillepost",
        "itemCount": len(new["items"]),
    }
