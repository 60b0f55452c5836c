"""What execgraph is measured against, in the same run: a naive baseline and a floor.

* The **naive baseline** is the plan this project replaced: a REST endpoint that lists the store,
  parses every file with :mod:`json` and filters on each request. It shows what the index buys.
* The **in-memory floor** is a minimal Strawberry schema answering the very same query texts
  from objects already in memory, on the same stack (Starlette, Strawberry with its parser and
  validation caches, uvicorn). Nothing can answer those queries faster on this stack, so our
  figure divided by the floor's is what storage, context and middleware cost.

Both are ASGI app factories for ``uvicorn --factory``, configured by environment variables, so
they run in their own process exactly as the real server does.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig

from graph.api.types.enums import ItemType, MediaType
from graph.api.types.scalars import JSON, SCALAR_MAP, BigInt

NAIVE_STORE_ENV: Final = "EXECGRAPH_BENCH_STORE"
FLOOR_DATA_ENV: Final = "EXECGRAPH_BENCH_FLOOR_DATA"


async def _healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


# -- the naive baseline ----------------------------------------------------------------------


def naive_list(
    store: Path,
    *,
    config_names: set[str],
    since: str | None = None,
    until: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """The plan's list endpoint: read and parse every file, filter, sort newest first, slice."""
    matches: list[dict[str, Any]] = []
    for name in os.listdir(store):
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            with open(os.path.join(store, name), encoding="utf-8") as stream:
                record = json.load(stream)
        except (OSError, ValueError, RecursionError):
            continue  # unreadable, not JSON or absurdly nested: skipped
        if not isinstance(record, dict) or not isinstance(record.get("timestamp"), str):
            continue
        if config_names and record.get("config_name") not in config_names:
            continue
        if since is not None and record["timestamp"] < since:
            continue
        if until is not None and record["timestamp"] >= until:
            continue
        matches.append(record)
    matches.sort(key=lambda r: (r["timestamp"], str(r.get("execution_id"))), reverse=True)
    page = matches[offset : offset + limit]
    return {
        "total": len(matches),
        "runs": [
            {
                "execution_id": r.get("execution_id"),
                "config_name": r.get("config_name"),
                "timestamp": r["timestamp"],
                "user_id": r.get("user_id"),
                "session_id": r.get("session_id"),
                "safety_level": r.get("safety_level"),
                "execution_mode": r.get("execution_mode"),
                "item_count": len(r.get("items") or ()),
                "total_execution_time": r.get("total_execution_time"),
                "used_seed": r.get("used_seed"),
            }
            for r in page
        ],
    }


def naive_app() -> Starlette:
    """``GET /runs?config=...&limit=50``: the naive baseline over ``$EXECGRAPH_BENCH_STORE``."""
    store = Path(os.environ[NAIVE_STORE_ENV])

    def runs(request: Request) -> JSONResponse:  # sync: Starlette runs it in a thread
        params = request.query_params
        return JSONResponse(
            naive_list(
                store,
                config_names=set(params.getlist("config")),
                since=params.get("since"),
                until=params.get("until"),
                limit=int(params.get("limit", "50")),
                offset=int(params.get("offset", "0")),
            )
        )

    return Starlette(routes=[Route("/healthz", _healthz), Route("/runs", runs)])


# -- the in-memory floor ---------------------------------------------------------------------


@strawberry.type(name="ExecutionItem")
class FloorItem:
    sequence_number: int
    timestamp: datetime
    stage: int
    stage_iteration: int | None
    loop_iteration: int | None
    media_type: MediaType
    raw_media_type: str
    item_type: ItemType
    raw_item_type: str
    content: str | None
    file_path: str | None
    config_used: str | None
    model_used: str | None
    backend_type: str | None
    execution_time: float | None
    metadata: JSON


@strawberry.type(name="Execution")
class FloorExecution:
    execution_id: str
    config_name: str
    timestamp: datetime
    user_id: str = "anonymous"
    session_id: str = "default"
    safety_level: str | None = None
    execution_mode: str | None = None
    item_count: int = 0
    total_execution_time: float | None = None
    used_seed: BigInt | None = None
    items: list[FloorItem] = strawberry.field(default_factory=list)


@strawberry.type(name="PageInfo")
class FloorPageInfo:
    has_next_page: bool
    has_previous_page: bool = False
    start_cursor: str | None = None
    end_cursor: str | None = None


@strawberry.type(name="ExecutionEdge")
class FloorEdge:
    cursor: str
    node: FloorExecution


@strawberry.type(name="ExecutionConnection")
class FloorConnection:
    total_count: int
    page_info: FloorPageInfo
    edges: list[FloorEdge]


@strawberry.input(name="ExecutionFilter")
class FloorFilter:
    config_names: list[str] | None = None
    until: datetime | None = None


@strawberry.type(name="Query")
class FloorQuery:
    connection: strawberry.Private[FloorConnection]
    runs: strawberry.Private[dict[str, FloorExecution]]

    @strawberry.field
    def executions(
        self,
        filter: FloorFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> FloorConnection:
        return self.connection

    @strawberry.field
    def execution(self, execution_id: str) -> FloorExecution | None:
        return self.runs.get(execution_id)


def floor_schema() -> strawberry.Schema:
    """The floor's schema: the same extensions as the real one's caches, nothing else."""
    return strawberry.Schema(
        query=FloorQuery,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
    )


def _run(data: dict[str, Any]) -> FloorExecution:
    seed = data.get("usedSeed")
    return FloorExecution(
        execution_id=data["executionId"],
        config_name=data["configName"],
        timestamp=datetime.fromisoformat(data["timestamp"]),
        user_id=data.get("userId", "anonymous"),
        session_id=data.get("sessionId", "default"),
        safety_level=data.get("safetyLevel"),
        execution_mode=data.get("executionMode"),
        item_count=data.get("itemCount", 0),
        total_execution_time=data.get("totalExecutionTime"),
        used_seed=None if seed is None else BigInt(seed),
        items=[_item(item) for item in data.get("items", ())],
    )


def _item(data: dict[str, Any]) -> FloorItem:
    return FloorItem(
        sequence_number=data["sequenceNumber"],
        timestamp=datetime.fromisoformat(data["timestamp"]),
        stage=data["stage"],
        stage_iteration=data["stageIteration"],
        loop_iteration=data["loopIteration"],
        media_type=MediaType[data["mediaType"]],
        raw_media_type=data["rawMediaType"],
        item_type=ItemType[data["itemType"]],
        raw_item_type=data["rawItemType"],
        content=data["content"],
        file_path=data["filePath"],
        config_used=data["configUsed"],
        model_used=data["modelUsed"],
        backend_type=data["backendType"],
        execution_time=data["executionTime"],
        metadata=JSON(data["metadata"]),
    )


def floor_root(list_data: dict[str, Any], detail_data: dict[str, Any]) -> FloorQuery:
    """The floor's objects, built from the real server's responses to the same queries."""
    page = list_data["executions"]
    connection = FloorConnection(
        total_count=page["totalCount"],
        page_info=FloorPageInfo(
            has_next_page=page["pageInfo"]["hasNextPage"],
            end_cursor=page["pageInfo"]["endCursor"],
        ),
        edges=[FloorEdge(cursor=e["cursor"], node=_run(e["node"])) for e in page["edges"]],
    )
    detail = _run(detail_data["execution"])
    return FloorQuery(connection=connection, runs={detail.execution_id: detail})


class _FloorGraphQL(GraphQL[None, FloorQuery]):
    def __init__(self, root: FloorQuery) -> None:
        super().__init__(floor_schema())
        self.root = root

    async def get_root_value(self, request: Any) -> FloorQuery:
        return self.root


def floor_app() -> Starlette:
    """The floor over ``$EXECGRAPH_BENCH_FLOOR_DATA`` (``{"list": data, "detail": data}``)."""
    data = orjson.loads(Path(os.environ[FLOOR_DATA_ENV]).read_bytes())
    graphql = _FloorGraphQL(floor_root(data["list"], data["detail"]))
    return Starlette(
        routes=[
            Route("/healthz", _healthz),
            Route("/graphql", graphql, methods=["GET", "POST"]),
        ]
    )
