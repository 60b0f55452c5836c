"""The execution id length limit, declared once (storage.models.MAX_EXECUTION_ID_LENGTH).

The models, the index's structs, the ``execution`` resolver and the cursors all take an id of
exactly the limit and refuse one character more.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from starlette.testclient import TestClient

from storage.fields import RecordFields
from storage.models import MAX_EXECUTION_ID_LENGTH
from storage.reader import InvalidRecordError, parse_record
from tests.conftest import data
from tests.factory import BASE_TIME, dump, record_dict, write_record

ROOT = Path(__file__).resolve().parents[2]
LONGEST = "x" * MAX_EXECUTION_ID_LENGTH
TOO_LONG = LONGEST + "x"


def test_the_models_and_the_index_structs_take_the_longest_id_only() -> None:
    assert parse_record(dump(record_dict(LONGEST))).execution_id == LONGEST
    assert msgspec.json.decode(dump(record_dict(LONGEST)), type=RecordFields).execution_id
    with pytest.raises(InvalidRecordError, match="execution_id"):
        parse_record(dump(record_dict(TOO_LONG)))
    with pytest.raises(msgspec.ValidationError, match="execution_id"):
        msgspec.json.decode(dump(record_dict(TOO_LONG)), type=RecordFields)


PAGE = """query($after: String) {
  executions(first: 1, after: $after) { edges { cursor node { executionId } } }
}"""


def test_the_api_serves_and_pages_past_a_run_with_the_longest_id(
    store: Path, make_client: Callable[..., TestClient]
) -> None:
    write_record(store, record_dict(LONGEST, at=BASE_TIME + timedelta(hours=1)))
    write_record(store, record_dict("exec_short"))
    client = make_client(store)

    query = "query($id: String!) { execution(executionId: $id) { executionId } }"
    assert data(client, query, {"id": LONGEST})["execution"] == {"executionId": LONGEST}
    assert data(client, query, {"id": TOO_LONG})["execution"] is None

    [first] = data(client, PAGE)["executions"]["edges"]
    assert first["node"]["executionId"] == LONGEST  # the newest
    [second] = data(client, PAGE, {"after": first["cursor"]})["executions"]["edges"]
    assert second["node"]["executionId"] == "exec_short"


#: The one declaration (in storage.models).
_DECLARED = "MAX_EXECUTION_ID_LENGTH"


def _literal_of(node: ast.AST) -> ast.expr | None:
    """The number a ``max_length=``, a comparison with ``len()`` or an ``*ID*`` name gets."""
    if isinstance(node, ast.keyword) and node.arg == "max_length":
        return node.value
    if isinstance(node, ast.Assign | ast.AnnAssign):
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        return node.value if "ID" in ast.unparse(target).upper().split("_") else None
    if isinstance(node, ast.Compare):
        sides = (node.left, *node.comparators)
        if any(
            isinstance(s, ast.Call) and isinstance(s.func, ast.Name) and s.func.id == "len"
            for s in sides
        ):
            return next((side for side in sides if isinstance(side, ast.Constant)), None)
    return None


def id_length_copies(source: str) -> list[int]:
    """Lines of ``source`` that write the id length limit as a number of their own."""
    return sorted(
        literal.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(literal := _literal_of(node), ast.Constant)
        and literal.value == MAX_EXECUTION_ID_LENGTH
        and not (isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == _DECLARED)
    )


def test_the_copy_finder_finds_the_old_copies() -> None:
    old = (
        "MAX_ID_LENGTH = 200\n"
        "x: Annotated[str, Field(min_length=1, max_length=200)]\n"
        "ok = isinstance(value, str) and len(value) <= 200\n"
        "PAGE = 200\n"
        "MAX_EXECUTION_ID_LENGTH: Final = 200\n"
    )
    assert id_length_copies(old) == [1, 2, 3]


def test_no_module_writes_its_own_id_length() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in ("graph", "storage", "exports")
        for path in sorted((ROOT / package).rglob("*.py"))
        for line in id_length_copies(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "use storage.models.MAX_EXECUTION_ID_LENGTH:\n" + "\n".join(found)
