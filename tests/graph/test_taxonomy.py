"""The GraphQL enums are the models' taxonomy lists plus UNKNOWN, and filter as they name.

``storage.models.KNOWN_ITEM_TYPES`` / ``KNOWN_MEDIA_TYPES`` are the one declaration of the
taxonomy: the index answers an ``UNKNOWN`` filter with ``NOT IN`` those lists. An enum member
the models do not know would be served under its own name yet also match ``UNKNOWN``; a type the
models know without a member would be served as ``UNKNOWN`` yet never match it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from graph.api.types.enums import ExecutionOrder, ItemType, MediaType
from storage.models import KNOWN_ITEM_TYPES, KNOWN_MEDIA_TYPES
from storage.query import RunOrder
from tests.conftest import data
from tests.factory import BASE_TIME, item_dict, record_dict, write_record


@pytest.mark.parametrize(
    ("enum", "known"), [(ItemType, KNOWN_ITEM_TYPES), (MediaType, KNOWN_MEDIA_TYPES)]
)
def test_each_enum_is_the_models_list_and_unknown(
    enum: type[ItemType | MediaType], known: frozenset[str]
) -> None:
    values = {member.value for member in enum if member.name != "UNKNOWN"}
    assert values == known, (
        f"{enum.__name__} (graph/api/types/enums.py) must list exactly storage.models' "
        f"values: missing {sorted(known - values)}, unknown to the models {sorted(values - known)}"
    )
    assert enum["UNKNOWN"].value not in known


def test_item_type_names_are_the_disk_values_upper_cased() -> None:
    """Clients (and the hardening suites) map a disk value to its name by upper-casing it."""
    assert all(member.name == member.value.upper() for member in ItemType)


def test_execution_orders_are_the_index_orders() -> None:
    assert [order.name for order in ExecutionOrder] == [order.name for order in RunOrder]


def test_every_item_type_filters_to_its_items_and_none_is_unknown(
    store: Path, make_client: Callable[..., TestClient]
) -> None:
    names = [member for member in ItemType if member is not ItemType.UNKNOWN]
    extra = [
        item_dict(0, member.value, stage=2, at=BASE_TIME + timedelta(seconds=n))
        for n, member in enumerate(names)
    ]
    extra.append(item_dict(0, "stage9_from_the_future", stage=2, at=BASE_TIME))
    write_record(store, record_dict(shape="text", extra_items=extra))
    client = make_client(store)
    query = """query($types: [ItemType!]) {
        items(filter: {itemTypes: $types}, first: 100) { edges { node { itemType rawItemType } } }
    }"""
    unknown = data(client, query, {"types": ["UNKNOWN"]})["items"]["edges"]
    assert [edge["node"] for edge in unknown] == [
        {"itemType": "UNKNOWN", "rawItemType": "stage9_from_the_future"}
    ]
    for member in names:
        edges = data(client, query, {"types": [member.name]})["items"]["edges"]
        assert {edge["node"]["itemType"] for edge in edges} == {member.name}
