"""The API reads through one reader API (storage.catalog) and keeps none of storage's objects.

The HTTP and GraphQL layers never import sqlite3; no GraphQL type holds an index row, a page or
a connection (types copy what they need from the catalog's value objects); cursors name the
API's orders; a page of runs with items reads its files in one worker-thread call; and a served
run whose file changed is NOT_FOUND, with the same check the exports make.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import sqlite3
import threading
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient
from strawberry.types.base import StrawberryObjectDefinition

import graph
from graph.api.cursor import decode_run_cursor, encode_run_cursor
from graph.api.schema import build_schema
from graph.api.types.enums import ExecutionOrder
from graph.api.types.execution import Execution, ExecutionItem
from storage.catalog import Catalog
from storage.index import RecordIndex
from storage.query import ItemRef, Page, RunRow
from tests.conftest import data

GRAPH = Path(graph.__file__).parent
API_LAYERS = ("api", "server")
#: What a GraphQL type must never hold: storage's rows and pages, and what reads the index.
STORAGE_OBJECTS: tuple[type, ...] = (RunRow, ItemRef, Page, sqlite3.Connection, RecordIndex)


def imported_modules(source: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` statement of ``source`` names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
    return found


def layer_modules() -> Iterator[Path]:
    for layer in API_LAYERS:
        yield from sorted((GRAPH / layer).rglob("*.py"))


def test_the_import_check_sees_sqlite3_wherever_it_is_imported() -> None:
    assert "sqlite3" in imported_modules("import os, sqlite3")
    assert "sqlite3" in imported_modules("def f():\n    from sqlite3 import Connection\n")
    assert "sqlite3" in imported_modules("import typing\nif typing.TYPE_CHECKING:\n import sqlite3")
    assert "sqlite3" not in imported_modules("from storage.catalog import Catalog")


def test_the_http_and_graphql_layers_never_import_sqlite3() -> None:
    modules = list(layer_modules())
    assert len(modules) > 20, modules  # the walk found the packages
    offenders = [
        str(path.relative_to(GRAPH))
        for path in modules
        if any(
            name == "sqlite3" or name.startswith("sqlite3.")
            for name in imported_modules(path.read_text("utf-8"))
        )
    ]
    assert offenders == []


def test_graphql_types_import_no_application_service() -> None:
    offenders = {
        str(path.relative_to(GRAPH)): sorted(
            name
            for name in imported_modules(path.read_text("utf-8"))
            if name.startswith("graph.services")
        )
        for path in sorted((GRAPH / "api" / "types").glob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def _mentions(hint: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(hint, type) and issubclass(hint, kinds):
        return True
    return any(_mentions(arg, kinds) for arg in typing.get_args(hint))


def test_no_graphql_type_declares_a_storage_object() -> None:
    schema = build_schema()
    declared: dict[str, list[str]] = {}
    checked = 0
    for name, concrete in schema.schema_converter.type_map.items():
        definition = concrete.definition
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        checked += 1
        hints = typing.get_type_hints(definition.origin, include_extras=True)
        bad = [field for field, hint in hints.items() if _mentions(hint, STORAGE_OBJECTS)]
        if bad:
            declared[name] = bad
    assert checked > 15
    assert declared == {}
    # The control: a hint like the one Execution used to have is caught.
    assert _mentions(typing.Annotated[RunRow, "private"], STORAGE_OBJECTS)
    assert _mentions(list[ItemRef] | None, STORAGE_OBJECTS)


def test_types_built_while_answering_hold_no_storage_object(
    populated_store: tuple[Path, list[dict[str, Any]]],
    make_client: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[object] = []
    for cls, name in ((Execution, "from_summary"), (ExecutionItem, "build")):
        real = getattr(cls, name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            made = _real(*args, **kwargs)
            built.append(made)
            return made

        monkeypatch.setattr(cls, name, spy)
    client = make_client(populated_store[0])
    data(
        client,
        """{ executions(first: 5) { edges { node { executionId items { content } } } }
             items(first: 5) { edges { node { content execution { executionId } } } } }""",
    )
    kinds = {type(obj) for obj in built}
    assert kinds == {Execution, ExecutionItem}
    held = [
        (type(obj).__name__, field.name)
        for obj in built
        for field in dataclasses.fields(obj)  # type: ignore[arg-type]
        if isinstance(getattr(obj, field.name), STORAGE_OBJECTS)
    ]
    assert held == []


def test_run_cursors_name_the_api_order() -> None:
    cursor = encode_run_cursor(ExecutionOrder.DURATION_ASC, 1.5, "exec_a")
    assert decode_run_cursor(cursor, ExecutionOrder.DURATION_ASC, "after") == (1.5, "exec_a")
    payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert payload == ["r", "DURATION_ASC", 1.5, "exec_a"]


def test_a_page_of_runs_with_items_reads_its_files_in_one_thread_call(
    populated_store: tuple[Path, list[dict[str, Any]]],
    make_client: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, str]] = []
    real = Catalog.read_runs

    def spy(self: Catalog, keys: Any, **kwargs: Any) -> Any:
        calls.append((len(keys), threading.current_thread().name))
        return real(self, keys, **kwargs)

    monkeypatch.setattr(Catalog, "read_runs", spy)
    client = make_client(populated_store[0])
    got = data(
        client,
        """{ executions(first: 30) { edges { node { executionId items { sequenceNumber }
             again: items(filter: {stages: [2]}) { content } } } } }""",
    )
    assert len(got["executions"]["edges"]) == 30
    assert [count for count, _ in calls] == [30]
    assert calls[0][1].startswith("asyncio_")  # a worker of the event loop's executor
    calls.clear()
    data(client, "{ items(first: 100) { edges { node { content } } } }")
    assert len(calls) == 1


ITEMS_OF = """query($id: String!) { execution(executionId: $id) { executionId
    items { sequenceNumber } } }"""


def test_a_run_whose_file_changed_is_not_found_and_then_no_longer_served(
    store: Path, make_client: Callable[..., TestClient]
) -> None:
    """The API's side of the read-and-verify: one error, NOT_FOUND, and the index catches up."""
    from tests.conftest import gql
    from tests.factory import record_dict, write_record

    write_record(store, record_dict("exec_a"))
    write_record(store, record_dict("exec_b"))
    client = make_client(store)  # no watcher: only the read can notice
    write_record(store, record_dict("exec_c"), name="exec_a.json")
    (store / "exec_b.json").unlink()
    for execution_id, reason in (
        ("exec_a", "the file now holds another run"),
        ("exec_b", "file disappeared while being read"),
    ):
        body = gql(client, ITEMS_OF, {"id": execution_id})
        [error] = body["errors"]
        assert error["extensions"] == {"code": "NOT_FOUND", "executionId": execution_id}
        assert error["message"] == (
            f"run {execution_id} cannot be read right now ({reason}); try again shortly"
        )
        assert data(client, ITEMS_OF, {"id": execution_id})["execution"] is None
    assert data(client, ITEMS_OF, {"id": "exec_c"})["execution"]["executionId"] == "exec_c"


def test_an_export_of_a_run_whose_file_changed_fails_with_the_same_check(
    store: Path, index_path: Path, tmp_path: Path
) -> None:
    """The export's side: the same check, its reason in the export's error."""
    from exports.errors import ExportError
    from graph.services.export_jobs import ExportJobs
    from graph.settings import Settings
    from storage.query import RunOrder
    from tests.factory import record_dict, write_record

    write_record(store, record_dict("exec_a"))
    settings = Settings(store=store, index=index_path, export_dir=tmp_path / "exports")
    with RecordIndex(store, index_path) as index:
        index.sync()
        catalog = Catalog(index, max_file_bytes=settings.max_file_bytes)
        jobs = ExportJobs(settings, catalog)
        plan = jobs.plan(
            format="JSON",
            execution_ids=["exec_a"],
            flt=None,
            order=RunOrder.TIMESTAMP_DESC,
            item_criteria=None,
            pseudonymize=False,
            selection={},
        )
        assert [record.execution_id for record in jobs.records(plan)] == ["exec_a"]
        write_record(store, record_dict("exec_c"), name="exec_a.json")
        with pytest.raises(ExportError, match=r"run exec_a could not be read during the export"):
            list(jobs.records(plan))
        assert catalog.get_run("exec_a") is None  # caught up, as for the API
