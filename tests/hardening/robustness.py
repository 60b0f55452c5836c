"""Shared pieces of the hardening suites: an HTTP GraphQL client and what a served run must equal.

The suites talk to real servers over loopback (``tests.e2e.server.serve`` or a subprocess), so
they need a small client that never hides a status code, and a way to say precisely whether a run
the server returned is the run the writer wrote. The expected values are derived from the on-disk
record and the published contract (``schema.graphql``), never from the server's own code, so a
bug in the server's mapping shows up as a mismatch here instead of being mirrored.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import graphql
import httpx2

#: Every scalar field of a run, as the UI's detail view asks for them.
RUN_FIELDS: Final = (
    "id executionId configName timestamp userId sessionId executionMode safetyLevel usedSeed "
    "totalExecutionTime taxonomyVersion itemCount sizeBytes"
)
#: Every scalar field of an item.
ITEM_FIELDS: Final = (
    "id sequenceNumber timestamp stage stageIteration loopIteration mediaType rawMediaType "
    "itemType rawItemType content filePath configUsed modelUsed backendType executionTime metadata"
)

#: The published contract, which the expected values are read from (never the server's code).
PUBLISHED: Final = graphql.build_schema(
    (Path(__file__).resolve().parents[2] / "schema.graphql").read_text("utf-8")
)
_ITEM_TYPE: Final = PUBLISHED.type_map["ItemType"]
assert isinstance(_ITEM_TYPE, graphql.GraphQLEnumType)
#: ItemType names of the published schema, lower-cased as on disk.
KNOWN_ITEM_TYPES: Final = frozenset(name.lower() for name in _ITEM_TYPE.values if name != "UNKNOWN")
#: MediaType names of the published schema, keyed by the value on disk.
KNOWN_MEDIA_TYPES: Final = {
    "text": "TEXT",
    "image": "IMAGE",
    "audio": "AUDIO",
    "music": "MUSIC",
    "video": "VIDEO",
    "3d": "THREE_D",
    "metadata": "METADATA",
}


def global_id(kind: str, local_id: str) -> str:
    """A Relay global id as the API spells it (base64url of ``kind:local``, unpadded)."""
    return base64.urlsafe_b64encode(f"{kind}:{local_id}".encode()).decode("ascii").rstrip("=")


def expected_run(record: Mapping[str, Any], size_bytes: int | None = None) -> dict[str, Any]:
    """The summary fields the API must serve for an on-disk ``record``."""
    expected = {
        "id": global_id("Execution", record["execution_id"]),
        "executionId": record["execution_id"],
        "configName": record["config_name"],
        "timestamp": record["timestamp"],
        "userId": record.get("user_id", "anonymous"),
        "sessionId": record.get("session_id", "default"),
        "executionMode": record.get("execution_mode"),
        "safetyLevel": record.get("safety_level"),
        "usedSeed": record.get("used_seed"),
        "totalExecutionTime": record.get("total_execution_time"),
        "taxonomyVersion": record.get("taxonomy_version"),
        "itemCount": len(record["items"]),
    }
    if size_bytes is not None:
        expected["sizeBytes"] = size_bytes
    return expected


def expected_item(record: Mapping[str, Any], pos: int) -> dict[str, Any]:
    """The fields the API must serve for item ``pos`` (0-based) of an on-disk ``record``."""
    item = record["items"][pos]
    raw_type, raw_media = item["item_type"], item["media_type"]
    backend = item["backend_type"] if "backend_type" in item else item.get("backend_used")
    execution_time = item.get("execution_time")
    return {
        "id": global_id("ExecutionItem", f"{record['execution_id']}:{pos}"),
        "sequenceNumber": item["sequence_number"],
        "timestamp": item["timestamp"],
        "stage": item["stage"],
        "stageIteration": item.get("stage_iteration"),
        "loopIteration": item.get("loop_iteration"),
        "mediaType": KNOWN_MEDIA_TYPES.get(raw_media, "UNKNOWN"),
        "rawMediaType": raw_media,
        "itemType": raw_type.upper() if raw_type in KNOWN_ITEM_TYPES else "UNKNOWN",
        "rawItemType": raw_type,
        "content": item.get("content"),
        "filePath": item.get("file_path"),
        "configUsed": item.get("config_used"),
        "modelUsed": item.get("model_used"),
        "backendType": backend,
        "executionTime": None if execution_time is None else float(execution_time),
        "metadata": item.get("metadata", {}),
    }


def mismatches(expected: Mapping[str, Any], served: Mapping[str, Any], where: str) -> list[str]:
    """Every field of ``expected`` that ``served`` has with another value (or lacks)."""
    return [
        f"{where}.{key}: served {served.get(key, '<missing>')!r}, written {value!r}"
        for key, value in expected.items()
        if key not in served or served[key] != value
    ]


def run_mismatches(
    record: Mapping[str, Any], served: Mapping[str, Any], *, size_bytes: int | None = None
) -> list[str]:
    """How a served run (with whatever of RUN_FIELDS and ``items`` it holds) differs from
    ``record``; only the fields present in ``served`` are compared, plus every item."""
    where = str(record["execution_id"])
    expected = {k: v for k, v in expected_run(record, size_bytes).items() if k in served}
    problems = mismatches(expected, served, where)
    if "items" in served:
        items = served["items"]
        if len(items) != len(record["items"]):
            problems.append(f"{where}: {len(items)} items served, {len(record['items'])} written")
        for pos, item in enumerate(items[: len(record["items"])]):
            want = {k: v for k, v in expected_item(record, pos).items() if k in item}
            problems += mismatches(want, item, f"{where}.items[{pos}]")
    return problems


def server_errors(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The errors of a GraphQL response that are the server's fault (masked unexpected ones)."""
    return [
        error
        for error in body.get("errors") or []
        if (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
    ]


def error_codes(body: Mapping[str, Any]) -> list[str | None]:
    """``extensions.code`` of each error of a GraphQL response (None where there is none)."""
    return [(error.get("extensions") or {}).get("code") for error in body.get("errors") or []]


@dataclass
class Answer:
    """One HTTP answer of the GraphQL endpoint: the status and, when it is JSON, the body."""

    status: int
    body: dict[str, Any]
    text: str

    @property
    def ok(self) -> bool:
        """HTTP 200 with data and no error at all."""
        return self.status == 200 and not self.body.get("errors") and "data" in self.body

    def describe(self) -> str:
        return f"HTTP {self.status}: {self.text[:2000]}"


class GraphQLHttp:
    """A synchronous GraphQL-over-HTTP client for a server on 127.0.0.1 (one keep-alive pool).

    Creating the client may load TLS settings (certificate files); create it before any
    audit hook starts counting opened files.
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        if not base_url.startswith("http://127.0.0.1:"):
            raise ValueError("the hardening suites only talk to servers on 127.0.0.1")
        self.base_url = base_url
        self.client = httpx2.Client(base_url=base_url, timeout=timeout)

    def post(self, query: str, variables: Mapping[str, Any] | None = None) -> Answer:
        response = self.client.post("/graphql", json={"query": query, "variables": variables or {}})
        try:
            body = response.json()
        except ValueError:
            body = {}
        return Answer(response.status_code, body if isinstance(body, dict) else {}, response.text)

    def data(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST a query that must succeed without any error; return its data."""
        answer = self.post(query, variables)
        assert answer.ok, answer.describe()
        data: dict[str, Any] = answer.body["data"]
        return data

    def get(self, path: str) -> httpx2.Response:
        return self.client.get(path)

    def close(self) -> None:
        self.client.close()


def walk_executions(
    http: GraphQLHttp,
    *,
    fields: str = "executionId",
    variables: Mapping[str, Any] | None = None,
    page_size: int = 100,
    max_pages: int = 1000,
) -> tuple[list[dict[str, Any]], int]:
    """Every run matching ``variables['filter']``, page by page with cursors; and the
    ``totalCount`` the first page reported. Bounded by ``max_pages``."""
    query = f"""query($filter: ExecutionFilter, $first: Int, $after: String) {{
      executions(filter: $filter, first: $first, after: $after) {{
        totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {fields} }} }}
      }}
    }}"""
    nodes: list[dict[str, Any]] = []
    after: str | None = None
    total = -1
    for _ in range(max_pages):
        page = http.data(query, {**(variables or {}), "first": page_size, "after": after})
        connection = page["executions"]
        if total < 0:
            total = connection["totalCount"]
        nodes += [edge["node"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes, total
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError(f"more than {max_pages} pages: the walk does not end")


def duplicates(values: Iterable[str]) -> list[str]:
    """Values that occur more than once."""
    seen: set[str] = set()
    repeated = []
    for value in values:
        if value in seen:
            repeated.append(value)
        seen.add(value)
    return repeated
