"""schema.graphql is the published contract: equal to the code, and documented everywhere."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType

from graph.api.schema import build_schema, print_sdl

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_equals_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text("utf-8")
    assert committed == print_sdl(), "run `execgraph schema > schema.graphql` and commit it"


def test_every_type_field_and_argument_is_described() -> None:
    schema = build_schema()._schema
    missing = []
    for name, gtype in schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not gtype.description:
            missing.append(name)
        if isinstance(gtype, GraphQLObjectType | GraphQLInterfaceType):
            for fname, field in gtype.fields.items():
                if not field.description:
                    missing.append(f"{name}.{fname}")
                for aname, arg in field.args.items():
                    if not arg.description:
                        missing.append(f"{name}.{fname}({aname})")
        if isinstance(gtype, GraphQLInputObjectType):
            missing += [f"{name}.{f}" for f, v in gtype.fields.items() if not v.description]
        if isinstance(gtype, GraphQLEnumType):
            assert gtype.values
    assert missing == []


def names(text: str) -> dict[str, str]:
    """Field names that must exist, whatever their type."""
    return dict.fromkeys(text.split(), "")


CONTRACT = {
    "Query": {
        "execution": "Execution",
        "executions": "ExecutionConnection!",
        "items": "ItemConnection!",
        "storageStats": "StorageStats!",
        "node": "Node",
    },
    "Execution": names(
        "id executionId configName timestamp userId sessionId executionMode safetyLevel "
        "usedSeed totalExecutionTime taxonomyVersion itemCount items"
    ),
    "ExecutionItem": names(
        "sequenceNumber timestamp stage stageIteration loopIteration mediaType itemType "
        "rawItemType content filePath configUsed modelUsed backendType executionTime "
        "metadata execution"
    ),
    "ExecutionConnection": {"edges": "", "pageInfo": "PageInfo!", "totalCount": "Int!"},
    "ItemConnection": {"edges": "", "pageInfo": "PageInfo!", "totalCount": "Int!"},
    "PageInfo": {
        "hasNextPage": "Boolean!",
        "hasPreviousPage": "Boolean!",
        "startCursor": "String",
        "endCursor": "String",
    },
    "StorageStats": names(
        "totalRecords totalSizeBytes invalidRecordCount invalidRecords oldestTimestamp "
        "newestTimestamp byConfig bySafetyLevel byItemType byModel byDay"
    ),
}


def test_contract_fields_exist_with_their_types() -> None:
    schema = build_schema()._schema
    for type_name, fields in CONTRACT.items():
        gtype = schema.type_map[type_name]
        assert isinstance(gtype, GraphQLObjectType)
        for field_name, field_type in fields.items():
            assert field_name in gtype.fields, f"{type_name}.{field_name}"
            if field_type:
                assert str(gtype.fields[field_name].type) == field_type, f"{type_name}.{field_name}"
    executions = schema.query_type.fields["executions"]  # type: ignore[union-attr]
    assert set(executions.args) >= {"filter", "orderBy", "first", "after", "last", "before"}
    assert "orderBy: ExecutionOrder = TIMESTAMP_DESC" in print_sdl()
    execution = schema.type_map["Execution"]
    assert isinstance(execution, GraphQLObjectType)
    assert [i.name for i in execution.interfaces] == ["Node"]
    flt = schema.type_map["ExecutionFilter"]
    assert isinstance(flt, GraphQLInputObjectType)
    assert set(flt.fields) >= {
        "configNames",
        "userIds",
        "sessionIds",
        "safetyLevels",
        "executionModes",
        "since",
        "until",
        "hasItemTypes",
        "text",
    }
    item_filter = schema.type_map["ItemFilter"]
    assert isinstance(item_filter, GraphQLInputObjectType)
    assert set(item_filter.fields) >= {
        "itemTypes",
        "mediaTypes",
        "stages",
        "stageIteration",
        "loopIteration",
        "modelsUsed",
        "backendTypes",
        "configsUsed",
        "text",
    }
    media = schema.type_map["MediaType"]
    assert isinstance(media, GraphQLEnumType)
    assert "THREE_D" in media.values
    item_type = schema.type_map["ItemType"]
    assert isinstance(item_type, GraphQLEnumType)
    assert {"UNKNOWN", "OUTPUT_3D", "STAGE3_BLOCKED", "INTERCEPTION_ITERATION"} <= set(
        item_type.values
    )
    order = schema.type_map["ExecutionOrder"]
    assert isinstance(order, GraphQLEnumType)
    assert set(order.values) == {"TIMESTAMP_DESC", "TIMESTAMP_ASC", "DURATION_DESC", "DURATION_ASC"}
