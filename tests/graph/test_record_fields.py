"""The GraphQL types serve every field of the models: a field added to ``storage.models`` and
not to ``graph/api/types/execution.py`` fails here, by name."""

from __future__ import annotations

import pytest
from graphql import GraphQLObjectType

from graph.api.schema import build_schema
from storage.models import ExecutionItem, ExecutionRecord

#: Model fields the API serves under another shape (``items`` is a field with a filter).
SERVED_OTHERWISE: dict[str, frozenset[str]] = {
    "Execution": frozenset(),
    "ExecutionItem": frozenset(),
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@pytest.mark.parametrize(
    ("type_name", "model"), [("Execution", ExecutionRecord), ("ExecutionItem", ExecutionItem)]
)
def test_every_model_field_is_a_field_of_its_graphql_type(
    type_name: str, model: type[ExecutionRecord | ExecutionItem]
) -> None:
    gtype = build_schema()._schema.type_map[type_name]
    assert isinstance(gtype, GraphQLObjectType)
    missing = [
        name
        for name in model.model_fields
        if _camel(name) not in gtype.fields and name not in SERVED_OTHERWISE[type_name]
    ]
    assert not missing, f"graph/api/types/execution.py: {type_name} does not serve {missing}"
