"""Which record fields the exports write, in which order: the models' own fields.

The CSV columns, the XML elements (and so the published schema, ``assets/execgraph-export.xsd``,
which a test holds to :data:`RUN_FIELDS` and :data:`ITEM_FIELDS`) and the JSON keys all come from
:mod:`storage.models`, in the models' order: a field added to a model is exported by every
format without another edit. A field that must never leave the server is named here, in
:data:`NOT_EXPORTED`, and every format leaves it out.
"""

from __future__ import annotations

from typing import Any, Final

from storage.models import ExecutionItem, ExecutionRecord

#: Fields of the run and of an item that no export writes (none today): the one place to keep a
#: field on the server.
NOT_EXPORTED_RUN_FIELDS: Final[frozenset[str]] = frozenset()
NOT_EXPORTED_ITEM_FIELDS: Final[frozenset[str]] = frozenset()

#: The run's fields, in the models' order (its items follow them in every format).
RUN_FIELDS: Final[tuple[str, ...]] = tuple(
    name
    for name in ExecutionRecord.model_fields
    if name != "items" and name not in NOT_EXPORTED_RUN_FIELDS
)
#: An item's fields, in the models' order.
ITEM_FIELDS: Final[tuple[str, ...]] = tuple(
    name for name in ExecutionItem.model_fields if name not in NOT_EXPORTED_ITEM_FIELDS
)


def disk_dict(record: ExecutionRecord) -> dict[str, Any]:
    """The record in its on-disk shape (``to_disk_dict``), without the fields not exported."""
    disk = record.to_disk_dict()
    if NOT_EXPORTED_RUN_FIELDS:
        disk = {k: v for k, v in disk.items() if k not in NOT_EXPORTED_RUN_FIELDS}
    if NOT_EXPORTED_ITEM_FIELDS:
        disk["items"] = [
            {k: v for k, v in item.items() if k not in NOT_EXPORTED_ITEM_FIELDS}
            for item in disk["items"]
        ]
    return disk
