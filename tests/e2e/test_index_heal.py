"""Real ``execgraph serve`` processes and a damaged or vanished index file.

A start on an index with garbage in a middle page rebuilds it from the store (one warning) and
serves what it served before; an index file unlinked or replaced under a running server makes
``/healthz`` answer 503 ``index.status: missing``. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.server import Server, http_json, serving
from tests.factory import record_dict, write_record
from tests.storage.test_index_heal import damage_middle_page

ANSWER = "{ executions(first: 500) { totalCount edges { node { executionId configName } } } }"
COUNT = 200


def answer(server: Server) -> Any:
    body = http_json(f"{server.http}/graphql", {"query": ANSWER}, timeout=10)
    assert "errors" not in body, body
    return body["data"]


def health(server: Server) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{server.http}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def fill(store: Path) -> None:
    for n in range(COUNT):
        write_record(store, record_dict(f"exec_20251103_143025_{n:08x}", config_name=f"cfg{n % 7}"))


def test_a_start_on_an_index_with_a_damaged_page_rebuilds_and_serves_the_same(
    store: Path, index_path: Path, tmp_path: Path
) -> None:
    fill(store)
    with serving(store, tmp_path / "home", index=index_path, name="first") as server:
        before = answer(server)
    assert before["executions"]["totalCount"] == COUNT
    damage_middle_page(index_path)
    start = time.monotonic()
    with serving(store, tmp_path / "home", index=index_path, name="second") as server:
        took = time.monotonic() - start
        assert answer(server) == before
        assert health(server)[0] == 200
        log = server.log.read_text()
    print(f"start on a damaged index ready in {took:.2f} s")  # the report's figure
    assert log.count("unusable") == 1, log
    assert "Traceback" not in log, log


def test_an_index_unlinked_under_the_server_makes_healthz_503(
    store: Path, index_path: Path, tmp_path: Path
) -> None:
    fill(store)
    with serving(store, tmp_path / "home", index=index_path) as server:
        assert health(server)[0] == 200
        os.unlink(index_path)
        code, body = health(server)
        assert code == 503, body
        assert body["status"] == "degraded", body
        assert body["index"]["status"] == "missing", body
        assert body["index"]["path"] == str(index_path), body
        assert body["watching"] is True, body  # the store is fine; only the index is gone
        # Another file at the path (say, restored by hand) is not the one this server reads.
        index_path.write_bytes(b"")
        code, body = health(server)
        assert code == 503, body
        assert body["index"]["status"] == "missing", body
        assert "Traceback" not in server.log.read_text()
