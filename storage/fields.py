"""The index's validation of record files: the models' rules, at the speed a sync needs.

A sync of a large store validates every file (100,000 of them on a cold build) only to learn
whether it is served and to take the few values the index stores. Validating into the pydantic
models costs several times what msgspec's typed JSON decoding does, so the index decodes
into the :class:`RecordFields` / :class:`ItemFields` structs below, which mirror
:class:`storage.models.ExecutionRecord` and :class:`storage.models.ExecutionItem` field for field
(same names, types, defaults, and the ``backend_used`` spelling).

The models stay the authority. :func:`parse_index_record` accepts a file through the structs
only where the models accept it too, with the same values; everything the structs refuse (or
might judge differently) goes to :func:`storage.reader.parse_record`, which gives the reason or,
where the models are more lenient (``14:30`` without seconds, numbers beyond a double in
metadata), the record. ``tests/storage/test_fields.py`` holds the two to the same answer on every
flawed shape the writer produces and on generated damage. The cases that differ, handled here:

* the record's ``timestamp`` is decoded as text and parsed by the models' own rules
  (:data:`_TIMESTAMP`): msgspec rounds digits beyond the microsecond where pydantic truncates;
* msgspec accepts JSON nested deeper than the models' parser does (:data:`MAX_NESTING`), so a
  file with enough brackets to be that deep is validated by the models instead.

Numbers need no case of their own: msgspec refuses NaN, Infinity and numbers beyond a double
anywhere (the models refuse them too, or read a metadata value beyond a double as Infinity
and refuse that), reads an integer into a ``float`` field as the same nearest double, and
stops at integers of 4,300 digits as pydantic's parser does.

Item timestamps are validated but their values are not used by the index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

import msgspec
from pydantic import TypeAdapter

from storage.models import MAX_EXECUTION_ID_LENGTH, ExecutionRecord, Timestamp
from storage.reader import MAX_NESTING, parse_record

#: :data:`storage.models.Int32`.
Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]


class ItemFields(msgspec.Struct, gc=False):
    """:class:`storage.models.ExecutionItem` as the index decodes it."""

    sequence_number: Int32
    timestamp: datetime
    stage: Int32
    media_type: str
    item_type: str
    stage_iteration: Int32 | None = None
    loop_iteration: Int32 | None = None
    content: str | None = None
    file_path: str | None = None
    config_used: str | None = None
    model_used: str | None = None
    #: Unset when the file has no ``backend_type`` key (see :attr:`backend`).
    backend_type: str | msgspec.UnsetType | None = msgspec.UNSET
    #: The older spelling, read only when ``backend_type`` is absent.
    backend_used: str | None = None
    #: :data:`storage.models.Seconds`: msgspec reads an integer as its nearest double too.
    execution_time: float | None = None
    metadata: dict[str, Any] | None = None

    @property
    def backend(self) -> str | None:
        """The item's backend: ``backend_type`` if the file has the key, else ``backend_used``."""
        value = self.backend_type
        return self.backend_used if isinstance(value, msgspec.UnsetType) else value


class RecordFields(msgspec.Struct, gc=False):
    """:class:`storage.models.ExecutionRecord` as the index decodes it."""

    execution_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EXECUTION_ID_LENGTH)]
    config_name: str
    #: As written; :func:`parse_index_record` parses it by the models' rules.
    timestamp: str
    items: list[ItemFields]
    user_id: str = "anonymous"
    session_id: str = "default"
    execution_mode: str | None = None
    safety_level: str | None = None
    used_seed: int | None = None
    total_execution_time: float | None = None
    taxonomy_version: str | None = None


_DECODER: Final = msgspec.json.Decoder(RecordFields)
#: The record timestamp's validation, as the model's (``storage.models.Timestamp``).
_TIMESTAMP: Final = TypeAdapter(Timestamp)


def parse_index_record(data: bytes) -> tuple[RecordFields, datetime]:
    """Validate a record file's bytes as :func:`storage.reader.parse_record` does; return its
    fields and its parsed timestamp, or raise :class:`storage.reader.InvalidRecordError` with
    the models' reason."""
    # Nesting deeper than MAX_NESTING takes more opening brackets than that.
    if data.count(b"{") + data.count(b"[") <= MAX_NESTING:
        try:
            fields = _DECODER.decode(data)
            return fields, _TIMESTAMP.validate_strings(fields.timestamp, strict=True)
        except ValueError:  # msgspec and pydantic errors, bad UTF-8 alike
            pass
    record = parse_record(data)  # the models decide, and give the reason
    return from_model(record), record.timestamp


def from_model(record: ExecutionRecord) -> RecordFields:
    """The structs holding a validated record's values (no second validation)."""
    items = [ItemFields(**item.model_dump()) for item in record.items]
    values = record.model_dump(exclude={"items", "timestamp"})
    return RecordFields(**values, timestamp=record.timestamp.isoformat(), items=items)
