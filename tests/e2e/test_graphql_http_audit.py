"""The GraphQL-over-HTTP conformance audit of ``graphql-http`` (npm), against a real server.

``graphql_http_audit.mjs`` runs the package's ``auditServer`` under Node against uvicorn on
127.0.0.1 and prints every audit's result. Every MUST and every SHOULD must be ok, and every
MAY but those that ask for queries over GET: this server never runs them (GET serves GraphiQL;
see the README's Security section), and answers them with a GraphQL-shaped 400 instead.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import mixed_records
from tests.e2e.server import serve
from tests.e2e.tools import require_node
from tests.factory import write_record

SCRIPT = Path(__file__).with_name("graphql_http_audit.mjs")

#: MAY audits this server declines on purpose: each runs a query over GET.
DECLINED_MAY = {
    "5A70": "MAY accept application/x-www-form-urlencoded formatted GET requests",
    "D6D5": "MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting "
    "application/graphql-response+json",
    "6A70": "MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting "
    "application/json",
}


def run_audit(node: str, url: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [node, str(SCRIPT), url], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def test_the_server_passes_the_graphql_over_http_audit(store: Path, index_path: Path) -> None:
    node = require_node()
    for data in mixed_records(7):
        write_record(store, data)
    with serve(store, index_path, watch=False) as server:
        results = run_audit(node, f"{server.http_url}/graphql")
    levels = Counter((r["name"].split()[0], r["status"]) for r in results)
    print("graphql-http audit:", dict(sorted(levels.items())))
    assert len(results) > 50, results  # the audit ran in full
    assert {r["name"].split()[0] for r in results} == {"MUST", "SHOULD", "MAY"}
    failing = [
        f"{r['id']} {r['status']} {r['name']}: {r.get('reason')} "
        f"(HTTP {r.get('responseStatus')} {r.get('responseType')}: {r.get('responseBody')})"
        for r in results
        if r["status"] != "ok" and r["id"] not in DECLINED_MAY
    ]
    assert not failing, "\n".join(failing)
    declined = {r["id"]: r for r in results if r["id"] in DECLINED_MAY}
    assert {key: r["name"] for key, r in declined.items()} == DECLINED_MAY
    for result in declined.values():
        # Declined, but as the README says: a GraphQL-shaped 400 with a code, no execution.
        assert result["status"] == "notice", result
        assert result["responseStatus"] == 400, result
        body = json.loads(result["responseBody"])
        assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST", body
