"""GraphiQL under its Content-Security-Policy, in headless Chromium: it renders and runs a query,
and the browser reports no violation (the policy allows the page's own assets and nothing else).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import mixed_records
from tests.e2e.server import serve
from tests.e2e.tools import CHROMIUM_ARGS, require_chromium
from tests.factory import write_record

SCREENSHOT = Path(os.environ.get("EXECGRAPH_GRAPHIQL_SCREENSHOT", "/tmp/graphiql.png"))

#: Collects the page's CSP violations before any of its scripts run.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.violatedDirective} blocked ${event.blockedURI} ` +
      `(${event.sourceFile}:${event.lineNumber})`,
  );
});
"""


def test_graphiql_runs_a_query_with_no_csp_violation(store: Path, index_path: Path) -> None:
    chromium = require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    for data in mixed_records(3):
        write_record(store, data)
    console: list[str] = []
    with serve(store, index_path, watch=False) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.add_init_script(RECORD_VIOLATIONS)
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            url = f"{server.http_url}/graphql?query={quote('{ __typename }')}"
            response: Any = page.goto(url, wait_until="load", timeout=20_000)
            assert response is not None
            assert response.status == 200
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy
            assert "frame-ancestors 'none'" in policy
            assert f"ws://127.0.0.1:{server.port}" in policy
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["referrer-policy"] == "no-referrer"
            page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=15_000)
            page.click(".graphiql-execute-button", timeout=5_000)
            result = page.locator(".graphiql-response")
            result.get_by_text('"Query"').wait_for(timeout=10_000)
            answer = result.inner_text()
            page.screenshot(path=str(SCREENSHOT))
            violations = page.evaluate("window.__cspViolations")
        finally:
            browser.close()
    assert '"__typename": "Query"' in answer.replace("\u00a0", " "), answer
    assert violations == [], violations
    problems = [line for line in console if line.startswith(("error", "pageerror"))]
    problems += [line for line in console if "Content Security Policy" in line]
    assert problems == [], console
