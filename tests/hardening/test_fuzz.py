"""Schemathesis fuzzes every root field of the live GraphQL schema: no server error, no answer
that breaks the schema.

A real uvicorn server on 127.0.0.1 serves a small store (records of every shape from the test
factory, a few malformed files) and writes exports under ``tmp_path``. Schemathesis loads the
schema by introspection from that server and generates queries for each Query field and each
Mutation field (``exportExecutions``, ``syncIndex``): 200 examples each, from a fixed seed, so
a run is repeatable. A new root field fails ``test_every_root_field_is_fuzzed`` until it is
listed in OPERATIONS.

Random strings alone rarely get past argument checks (an unknown id answers null, a random
cursor is refused), so most examples would never reach a resolver that reads a record. The
schemathesis configuration therefore binds *dictionaries* of real values (execution ids, node
ids, cursors, page sizes, configs, models, ...) to the arguments that take them; schemathesis
substitutes one with a set probability and keeps the generated value otherwise. A
``flatmap_body`` hook (:class:`Steering`) also offers variants of each generated document that
the API can serve (only one of ``first``/``last``; an export selecting runs one way). So every
operation is fuzzed both with nonsense and with data that reaches deep into the server.
Schemathesis' cursors are random strings that never decode; ``test_forged_cursors_...`` adds
Hypothesis-generated cursors that decode to JSON of every shape and size.

Every response goes through schemathesis' own GraphQL checks (``not_a_server_error``: HTTP 5xx,
or errors marked ``INTERNAL_SERVER_ERROR``; ``response_schema_conformance``: not JSON, not a
GraphQL response, null in a non-null field) plus an explicit check of the same contract. All
failures of a run are collected and reported together (deduplicated), instead of stopping and
shrinking the first one, so one run shows every distinct bug with a request that reproduces it.

Hypothesis settings, and why:

* ``deadline=None``: each example is an HTTP round trip to a server thread (and an export may
  write a PDF); timing on a loaded 2-core CI machine says nothing about correctness, and a
  deadline would make the suite flaky.
* ``suppress_health_check=[too_slow, data_too_large]``: the generated GraphQL documents are
  large nested ASTs, slow to draw by Hypothesis' standards; that is the nature of the input,
  not a broken strategy.
* ``database=None`` and ``phases=(explicit, generate)``: no example database (no state carried
  between runs, the seed alone decides) and no shrinking (every failure is recorded with the
  exact request that produced it, and the time stays bounded).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import graphql
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.graphql import from_url
from schemathesis.specs.openapi.checks import response_schema_conformance

from storage.demo import write_malformed
from tests.conftest import mixed_records
from tests.e2e.server import serve
from tests.factory import write_record
from tests.hardening.robustness import GraphQLHttp, error_codes, server_errors

#: Every root field of the schema, each fuzzed on its own.
OPERATIONS: Final = (
    "Query.execution",
    "Query.executions",
    "Query.items",
    "Query.storageStats",
    "Query.exportJob",
    "Query.node",
    "Mutation.exportExecutions",
    "Mutation.syncIndex",
)
EXAMPLES: Final = 200
SEED: Final = 20251103
#: Few enough records that every export (PDF and DOCX included) finishes inside the mutation.
RECORDS: Final = 14


@dataclass
class Target:
    """The running server and the schema schemathesis loaded from it."""

    url: str
    schema: Any
    session: requests.Session
    store: Path
    records: list[dict[str, Any]]
    store_before: dict[str, tuple[int, int]]  # name -> (size, mtime) at the start


@dataclass
class Tally:
    """What one operation's examples got back, for the report and the assertions."""

    examples: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # kind -> first request showing it

    def record_failure(self, kind: str, body: Any, response: str) -> None:
        self.failures.setdefault(kind[:300], f"request: {body}\nresponse: {response[:1500]}")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("fuzz")
    store = root / "store"
    store.mkdir()
    records = mixed_records(RECORDS)
    for record in records:
        write_record(store, record)
    for kind in ("empty", "truncated", "duplicate_id", "symlink_outside"):
        write_malformed(store, kind)  # duplicate_id adds its valid original: RECORDS + 1 runs
    export_dir = root / "exports"
    with serve(
        store,
        root / "cache" / "index.sqlite3",
        watch=False,
        export_dir=export_dir,
        audit_log=root / "audit" / "exports.jsonl",
        pseudonym_key="hardening-fuzz-pseudonym-key",
    ) as server:
        http = GraphQLHttp(server.http_url)
        config = schemathesis.Config.from_dict(_dictionaries(http))
        http.close()
        schema = from_url(f"{server.http_url}/graphql", config=config, timeout=30)
        ids = [record["execution_id"] for record in records]
        configs = sorted({record["config_name"] for record in records})
        schema.hook(Steering(ids, configs).hook())
        with requests.Session() as session:
            yield Target(server.http_url, schema, session, store, records, _snapshot(store))


def _snapshot(store: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.lstat().st_size, p.lstat().st_mtime_ns) for p in store.iterdir()}


def _dictionaries(http: GraphQLHttp) -> dict[str, Any]:
    """A schemathesis configuration binding real values of the store to the arguments that
    take them (each substituted with the given probability, generated otherwise)."""
    runs = http.data(
        """{ executions(first: 500) { edges { cursor node { id executionId configName userId
            sessionId safetyLevel executionMode items { id modelUsed backendType configUsed } } } }
        }"""
    )["executions"]["edges"]
    # Mostly cursors of the default order (null and TIMESTAMP_DESC), one of each other order.
    run_cursors = [edge["cursor"] for edge in runs[1::3]]
    for order in ("TIMESTAMP_ASC", "DURATION_DESC", "DURATION_ASC"):
        page = http.data(f"{{ executions(orderBy: {order}, first: 3) {{ edges {{ cursor }} }} }}")
        run_cursors.append(page["executions"]["edges"][1]["cursor"])
    item_page = http.data("{ items(first: 100) { edges { cursor } } }")["items"]["edges"]
    item_cursors = [edge["cursor"] for edge in item_page[::7]]
    job = http.data(
        "mutation { exportExecutions(input: {format: JSONL, filter: {}}) { id status } }"
    )["exportExecutions"]
    assert job["status"] == "DONE", job
    nodes = [edge["node"] for edge in runs]
    items = [item for node in nodes for item in node["items"]]

    def values_of(values: Any) -> dict[str, list[Any]]:
        # In order: Hypothesis favours the first entries, so the likelier-useful come first.
        unique = list(dict.fromkeys(v for v in values if v is not None))
        assert unique, "a dictionary must not be empty"
        return {"values": unique}

    dictionaries = {
        "execution-ids": values_of(node["executionId"] for node in nodes),
        "node-ids": values_of([n["id"] for n in nodes] + [i["id"] for i in items[::3]]),
        "job-ids": values_of([job["id"]]),
        "run-cursors": values_of(run_cursors),
        "item-cursors": values_of(item_cursors),
        "page-sizes": values_of([3, 1, 7, 20, 0, 2, 100, 500, 501]),
        "small-ints": values_of(range(0, 9)),
        "configs": values_of(node["configName"] for node in nodes),
        "users": values_of(node["userId"] for node in nodes),
        "sessions": values_of(node["sessionId"] for node in nodes),
        "levels": values_of(node["safetyLevel"] for node in nodes),
        "modes": values_of(node["executionMode"] for node in nodes),
        "models": values_of(item["modelUsed"] for item in items),
        "backends": values_of(item["backendType"] for item in items),
        "item-configs": values_of(item["configUsed"] for item in items),
        "words": values_of(["Haus", "wolken", "KÖLN", "고래", "bicycle 🚲", "Final EN", "100%"]),
    }
    bindings: dict[str, tuple[str, float]] = {
        "Query.execution.executionId": ("execution-ids", 0.6),
        "Query.node.id": ("node-ids", 0.6),
        "Query.exportJob.id": ("job-ids", 0.5),
        "Mutation.exportExecutions.input.executionIds[*]": ("execution-ids", 0.7),
        "*.*.first": ("page-sizes", 0.7),
        "*.*.last": ("page-sizes", 0.7),
        "Query.executions.after": ("run-cursors", 0.6),
        "Query.executions.before": ("run-cursors", 0.6),
        "Query.items.after": ("item-cursors", 0.6),
        "Query.items.before": ("item-cursors", 0.6),
    }
    for run_filter in ("*.*.filter", "*.*.executionFilter", "*.*.input.filter"):
        bindings |= {
            f"{run_filter}.configNames[*]": ("configs", 0.7),
            f"{run_filter}.userIds[*]": ("users", 0.7),
            f"{run_filter}.sessionIds[*]": ("sessions", 0.7),
            f"{run_filter}.safetyLevels[*]": ("levels", 0.7),
            f"{run_filter}.executionModes[*]": ("modes", 0.7),
            f"{run_filter}.text": ("words", 0.8),
        }
    for item_filter in ("*.*.filter", "*.*.input.itemFilter"):
        bindings |= {
            f"{item_filter}.modelsUsed[*]": ("models", 0.7),
            f"{item_filter}.backendTypes[*]": ("backends", 0.7),
            f"{item_filter}.configsUsed[*]": ("item-configs", 0.7),
            f"{item_filter}.stages[*]": ("small-ints", 0.7),
            f"{item_filter}.stageIteration": ("small-ints", 0.7),
            f"{item_filter}.loopIteration": ("small-ints", 0.7),
        }
    return {
        "seed": SEED,
        "dictionaries": dictionaries,
        "parameters": {
            key: {"dictionary": name, "probability": p} for key, (name, p) in bindings.items()
        },
    }


class Steering:
    """A schemathesis ``flatmap_body`` hook on each generated document: keep it, or make it one
    the API can serve, by dropping (or adding) arguments that it accepts only one at a time.

    Generation fills in most optional arguments, so ``first`` comes with ``last`` in most
    examples, and an export's input tends to hold both ``executionIds`` and ``filter``, or
    neither; the server refuses all of those before doing any work. Variants with only the
    forward (``first``/``after``) or only the backward (``last``/``before``) page arguments,
    and exports with exactly one way of selecting runs (real ids, or a filter on one config),
    let most examples reach the index, the record reader and the exporters. The document as
    generated stays one of the choices.
    """

    def __init__(self, execution_ids: list[str], config_names: list[str]) -> None:
        self.execution_ids = execution_ids
        self.config_names = config_names

    def hook(self) -> Callable[[schemathesis.HookContext, Any], st.SearchStrategy[Any]]:
        """The hook function to register (schemathesis knows hooks by their function name)."""

        def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
            return self.variants(body)

        return flatmap_body

    def variants(self, body: Any) -> st.SearchStrategy[Any]:
        """What may be sent instead of the generated ``body``."""
        if not isinstance(body, graphql.DocumentNode):
            return st.just(body)
        # Hypothesis favours the first choice (its simplest); the document as generated is last.
        variants = st.sampled_from(
            [
                _without(body, {"last", "before", "executionIds"}),
                _without(body, {"first", "after", "filter"}),
                _without(body, {"last", "before", "filter"}),
                _without(body, {"first", "after", "executionIds"}),
                body,
            ]
        )
        if not _selects_nothing(body):
            return variants
        some_ids = st.lists(st.sampled_from(self.execution_ids), min_size=1, max_size=4)
        with_ids = some_ids.map(
            lambda ids: _with_input(
                body,
                "executionIds",
                graphql.ListValueNode(values=tuple(graphql.StringValueNode(value=i) for i in ids)),
            )
        )
        # A filter on one config (a quarter of the runs: PDF reports of every run are slow).
        with_filter = st.sampled_from(self.config_names).map(
            lambda name: _with_input(
                body,
                "filter",
                graphql.ObjectValueNode(
                    fields=(
                        graphql.ObjectFieldNode(
                            name=graphql.NameNode(value="configNames"),
                            value=graphql.ListValueNode(
                                values=(graphql.StringValueNode(value=name),)
                            ),
                        ),
                    )
                ),
            )
        )
        return st.one_of(with_ids, with_filter, variants)


def _input_argument(document: graphql.DocumentNode) -> graphql.ObjectValueNode | None:
    """The ``input`` object of the document's root field, if it has one."""
    for definition in document.definitions:
        if isinstance(definition, graphql.OperationDefinitionNode):
            for field in definition.selection_set.selections:
                if isinstance(field, graphql.FieldNode):
                    for argument in field.arguments:
                        if argument.name.value == "input" and isinstance(
                            argument.value, graphql.ObjectValueNode
                        ):
                            return argument.value
    return None


def _selects_nothing(document: graphql.DocumentNode) -> bool:
    """An export input that names neither runs nor a filter (absent or null)."""
    value = _input_argument(document)
    return value is not None and not any(
        f.name.value in ("executionIds", "filter")
        and not isinstance(f.value, graphql.NullValueNode)
        for f in value.fields
    )


def _with_input(
    document: graphql.DocumentNode, name: str, value: graphql.ValueNode
) -> graphql.DocumentNode:
    """``document`` with the field ``name`` of the root field's ``input`` object set to
    ``value`` (replacing a null one)."""
    extra = graphql.ObjectFieldNode(name=graphql.NameNode(value=name), value=value)

    def argument(node: graphql.ArgumentNode) -> graphql.ArgumentNode:
        if node.name.value == "input" and isinstance(node.value, graphql.ObjectValueNode):
            fields = tuple(f for f in node.value.fields if f.name.value != name)
            return _replace(node, value=_replace(node.value, fields=(*fields, extra)))
        return node

    return _map_root_arguments(document, argument, keep=lambda _: True)


def _replace(node: Any, **changes: Any) -> Any:
    """A copy of an AST node with some fields replaced (nodes are immutable in graphql-core)."""
    return type(node)(**{**{key: getattr(node, key) for key in node.keys}, **changes})


def _without(document: graphql.DocumentNode, names: set[str]) -> graphql.DocumentNode:
    """``document`` without the root field's arguments called ``names``, nor the fields of
    that name in an ``input`` object argument (the mutation's ``ExportInput``); a root field's
    ``filter`` argument stays (only the export's is one of two alternatives)."""

    def argument(node: graphql.ArgumentNode) -> graphql.ArgumentNode:
        if node.name.value == "input" and isinstance(node.value, graphql.ObjectValueNode):
            fields = tuple(f for f in node.value.fields if f.name.value not in names)
            return _replace(node, value=_replace(node.value, fields=fields))
        return node

    return _map_root_arguments(
        document, argument, keep=lambda a: a.name.value == "filter" or a.name.value not in names
    )


def _map_root_arguments(
    document: graphql.DocumentNode,
    change: Callable[[graphql.ArgumentNode], graphql.ArgumentNode],
    keep: Callable[[graphql.ArgumentNode], bool],
) -> graphql.DocumentNode:
    """``document`` with each argument of its root fields kept or not, and changed."""

    def field(node: graphql.SelectionNode) -> graphql.SelectionNode:
        if not isinstance(node, graphql.FieldNode):
            return node
        return _replace(node, arguments=tuple(change(a) for a in node.arguments if keep(a)))

    definitions = [
        _replace(
            d,
            selection_set=_replace(
                d.selection_set, selections=tuple(field(s) for s in d.selection_set.selections)
            ),
        )
        if isinstance(d, graphql.OperationDefinitionNode)
        else d
        for d in document.definitions
    ]
    return _replace(document, definitions=tuple(definitions))


def test_every_root_field_is_fuzzed(target: Target) -> None:
    """A new Query or Mutation field fails this until it is added to OPERATIONS."""
    labels = {result.ok().label for result in target.schema.get_all_operations()}
    assert labels == set(OPERATIONS)


@pytest.mark.slow
@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzzed_operation_never_fails_on_the_server_side(target: Target, label: str) -> None:
    root, name = label.split(".")
    operation = target.schema[root][name]
    tally = Tally()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @seed(SEED)
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        tally.examples += 1
        try:
            response = case.call(session=target.session, timeout=60)
        except requests.RequestException as exc:
            tally.record_failure(f"no response: {type(exc).__name__}", case.body, str(exc))
            return
        _classify(tally, case, response)

    fuzz()
    summary = ", ".join(f"{kind} {n}" for kind, n in tally.answers.most_common())
    print(f"\n{label}: {tally.examples} examples: {summary}")
    assert tally.examples >= EXAMPLES
    report = "\n\n".join(f"== {kind}\n{example}" for kind, example in tally.failures.items())
    assert tally.failures == {}, f"{len(tally.failures)} distinct failures of {label}:\n{report}"


def _classify(tally: Tally, case: Any, response: requests.Response) -> None:
    """Count the answer; record every failure of the checks, schemathesis' and ours."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 500:
        tally.record_failure(f"HTTP {response.status_code}", case.body, response.text)
    if isinstance(body, dict):
        for error in server_errors(body):
            tally.record_failure(
                f"INTERNAL_SERVER_ERROR at {'.'.join(map(str, error.get('path') or []))}",
                case.body,
                json.dumps(body)[:1500],
            )
        codes = error_codes(body)
        if not codes:
            tally.answers["data"] += 1
        else:
            tally.answers[" ".join(sorted({str(code) for code in codes}))] += 1
    else:
        tally.answers[f"HTTP {response.status_code} not JSON"] += 1
    try:
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    except Exception as failure:  # schemathesis raises a group of its failures
        tally.record_failure(f"schemathesis: {failure}", case.body, response.text)


#: Integers at and beyond the edges of SQLite's 64-bit INTEGER (and of orjson's 64-bit range).
EDGE_INTEGERS: Final = (2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**30)
ORDERS: Final = ("TIMESTAMP_DESC", "TIMESTAMP_ASC", "DURATION_DESC", "DURATION_ASC")


@st.composite
def forged_cursors(draw: st.DrawFn, records: list[dict[str, Any]]) -> tuple[str, str, Any]:
    """A cursor a client made up: (field, orderBy, decoded payload).

    Schemathesis sends random strings as cursors, which never decode; these decode to JSON of
    the shape this API issues (``["r", order, value, id]`` for executions, ``["i", ts, id, pos]``
    for items), each slot mostly of a plausible type (real ids and timestamps, numbers of any
    size, integers at the 64-bit edges) and sometimes of any JSON type, or to other JSON.
    """
    anything = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
        st.lists(st.integers(), max_size=2),
    )
    numbers = st.one_of(
        st.sampled_from(EDGE_INTEGERS),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
    )

    def mostly(plausible: st.SearchStrategy[Any]) -> Any:
        # Four in five (Hypothesis favours the first entry of a sampled_from).
        return draw(plausible if draw(st.sampled_from([1, 1, 1, 1, 0])) else anything)

    timestamps = st.sampled_from([r["timestamp"] for r in records])
    ids = st.sampled_from([r["execution_id"] for r in records])
    field = draw(st.sampled_from(["executions", "items"]))
    order = draw(st.sampled_from(ORDERS))
    if not draw(st.sampled_from([1] * 9 + [0])):
        return field, order, draw(st.lists(anything, max_size=6))
    if field == "items":
        return field, order, ["i", mostly(timestamps), mostly(ids), mostly(numbers)]
    value = mostly(timestamps if order.startswith("TIMESTAMP") else numbers)
    return field, order, ["r", mostly(st.just(order)), value, mostly(ids)]


@pytest.mark.slow
def test_forged_cursors_are_refused_or_served(target: Target) -> None:
    """Decodable cursors with made-up contents: BAD_USER_INPUT or a page, never a server error."""
    tally = Tally()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow],
    )
    @seed(SEED)
    @given(forged=forged_cursors(target.records))
    def fuzz(forged: tuple[str, str, Any]) -> None:
        field, order, payload = forged
        cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
        for direction, size in (("after", "first"), ("before", "last")):
            tally.examples += 1
            order_argument = f"orderBy: {order}, " if field == "executions" else ""
            query = f"""query($cursor: String) {{ {field}({order_argument}{direction}: $cursor,
              {size}: 3) {{ totalCount edges {{ cursor }} }} }}"""
            response = target.session.post(
                f"{target.url}/graphql", json={"query": query, "variables": {"cursor": cursor}}
            )
            request = f"{query} with cursor {cursor} = base64url({json.dumps(payload)})"
            try:
                body = response.json()
            except ValueError:
                body = {}
            codes = error_codes(body)
            tally.answers[" ".join(sorted({str(c) for c in codes})) or "data"] += 1
            if response.status_code != 200 or any(c != "BAD_USER_INPUT" for c in codes):
                kind = f"HTTP {response.status_code} {sorted({str(c) for c in codes})} {field}"
                tally.record_failure(f"{kind} {_shape(payload)}", request, response.text)

    fuzz()
    summary = ", ".join(f"{kind} {n}" for kind, n in tally.answers.most_common())
    print(f"\nforged cursors: {tally.examples} requests: {summary}")
    assert tally.examples >= EXAMPLES
    report = "\n\n".join(f"== {kind}\n{example}" for kind, example in tally.failures.items())
    assert tally.failures == {}, f"{len(tally.failures)} distinct failures:\n{report}"


def _shape(payload: Any) -> str:
    """The JSON types of a cursor's slots, integers beyond 64 bits told apart (for grouping)."""

    def kind(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            return "int" if -(2**63) <= value < 2**63 else "int beyond 64-bit"
        return type(value).__name__

    return "[" + ", ".join(kind(v) for v in payload) + "]" if isinstance(payload, list) else "?"


def test_the_store_was_never_written(target: Target) -> None:
    """Whatever was fuzzed (exports and index syncs included), the store is only ever read."""
    assert _snapshot(target.store) == target.store_before
