"""Keyed pseudonyms for user and session ids, so exports can leave the server without them.

The tracker's ids are already pseudonymous, but they are the same ids the school's tool shows,
so a researcher holding an export could link runs back to a pupil. An export made with a key
replaces them everywhere they occur:

* ``user_id`` becomes ``u_`` + the first 16 hex digits of HMAC-SHA-256(key, ``"user:" + id``),
  ``session_id`` likewise ``s_`` + HMAC of ``"session:" + id``. 64 bits leave collisions out of
  reach for any realistic number of pupils; the same id and key always give the same pseudonym
  (runs of one pupil stay linkable within and across exports made with that key), another key
  gives unrelated ones, and without the key nobody can test a guessed id against a pseudonym;
* every other text of the record (item content, file path, model and config names, metadata keys
  and values at any depth, run-level strings) has each occurrence of the raw ids replaced by the
  same pseudonyms, so an id a pupil typed into a prompt or a backend echoed into metadata is
  not left behind. ``execution_id`` and timestamps are kept: they are the run's key and never
  carry a user id;
* the writer's placeholders ``anonymous`` and ``default`` are kept as they are: they identify
  nobody, and researchers need to tell un-attributed runs apart. Ids shorter than 4 characters
  are replaced in their own field but not searched for inside text, where they would corrupt
  ordinary words and numbers without protecting anyone.

The key is held only by the ``Pseudonymizer`` (its ``repr`` hides it) and never written, logged or
put in an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Final

from storage.models import ExecutionItem, ExecutionRecord

#: Writer defaults that mean "no id"; kept unchanged.
PLACEHOLDER_IDS: Final[frozenset[str]] = frozenset({"anonymous", "default"})
#: Hex digits kept from the HMAC.
PSEUDONYM_HEX_DIGITS: Final[int] = 16
#: Shortest key accepted: 128 bits.
MIN_KEY_BYTES: Final[int] = 16
#: Ids shorter than this are not searched for inside other text.
MIN_SEARCHED_ID_LENGTH: Final[int] = 4

#: Fields replaced whole (the ids) or kept (the run's key); every other field of the record and
#: of its items has the ids replaced wherever they occur in it (numbers and times hold none).
_NOT_SEARCHED_RUN_FIELDS: Final = frozenset({"execution_id", "user_id", "session_id", "items"})
_SEARCHED_RUN_FIELDS: Final[tuple[str, ...]] = tuple(
    name for name in ExecutionRecord.model_fields if name not in _NOT_SEARCHED_RUN_FIELDS
)
_SEARCHED_ITEM_FIELDS: Final[tuple[str, ...]] = tuple(ExecutionItem.model_fields)


class Pseudonymizer:
    """Replaces user and session ids with keyed pseudonyms; caches pseudonyms per id."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise ValueError(f"The pseudonymisation key must be at least {MIN_KEY_BYTES} bytes.")
        self._key = key
        self._cache: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        return "Pseudonymizer(key=<hidden>)"

    def _pseudonym(self, kind: str, prefix: str, raw: str) -> str:
        if raw in PLACEHOLDER_IDS:
            return raw
        cached = self._cache.get((kind, raw))
        if cached is None:
            message = f"{kind}:{raw}".encode("utf-8", "surrogatepass")
            digest = hmac.new(self._key, message, hashlib.sha256).hexdigest()
            cached = prefix + digest[:PSEUDONYM_HEX_DIGITS]
            self._cache[(kind, raw)] = cached
        return cached

    def user(self, raw: str) -> str:
        """The pseudonym of a user id (``u_`` + 16 hex digits; placeholders kept)."""
        return self._pseudonym("user", "u_", raw)

    def session(self, raw: str) -> str:
        """The pseudonym of a session id (``s_`` + 16 hex digits; placeholders kept)."""
        return self._pseudonym("session", "s_", raw)

    def record(self, record: ExecutionRecord) -> ExecutionRecord:
        """A copy of ``record`` with its ids replaced in every field where they occur."""
        user, session = self.user(record.user_id), self.session(record.session_id)
        searched = {
            raw: pseudonym
            for raw, pseudonym in ((record.session_id, session), (record.user_id, user))
            if raw not in PLACEHOLDER_IDS and len(raw) >= MIN_SEARCHED_ID_LENGTH
        }
        scrub = _Scrubber(searched)
        update: dict[str, Any] = {
            "user_id": user,
            "session_id": session,
            "items": [scrub.item(item) for item in record.items],
        }
        for name in _SEARCHED_RUN_FIELDS:
            update[name] = scrub.value(getattr(record, name))
        return record.model_copy(update=update)

    def selection(self, selection: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of an export selection with user and session ids replaced by pseudonyms.

        Strings under any key naming users (``userIds``, ``user_id``) or sessions are mapped,
        at any depth; those ids are then also replaced inside every other string of the
        selection (a search text, say), so the selection written into the file names
        pseudonyms only.
        """
        found: dict[str, str] = {}
        self._selection_ids(selection, "", found)
        scrub = _Scrubber(
            {
                raw: pseudonym
                for raw, pseudonym in found.items()
                if raw not in PLACEHOLDER_IDS and len(raw) >= MIN_SEARCHED_ID_LENGTH
            }
        )
        return {key: self._selection_value(key, value, scrub) for key, value in selection.items()}

    def _id_kind(self, key: str) -> str | None:
        folded = key.lower()
        return "user" if "user" in folded else "session" if "session" in folded else None

    def _selection_ids(self, value: Any, key: str, found: dict[str, str]) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                self._selection_ids(v, str(k), found)
        elif isinstance(value, list | tuple):
            for v in value:
                self._selection_ids(v, key, found)
        elif isinstance(value, str) and (kind := self._id_kind(key)) is not None:
            found[value] = self.user(value) if kind == "user" else self.session(value)

    def _selection_value(self, key: str, value: Any, scrub: _Scrubber) -> Any:
        if isinstance(value, Mapping):
            return {
                scrub.text(str(k)): self._selection_value(str(k), v, scrub)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._selection_value(key, v, scrub) for v in value]
        if isinstance(value, str):
            kind = self._id_kind(key)
            if kind == "user":
                return self.user(value)
            if kind == "session":
                return self.session(value)
            return scrub.text(value)
        return value


class _Scrubber:
    """Replaces raw ids inside arbitrary text and nested JSON values in one regex pass."""

    def __init__(self, replacements: Mapping[str, str]) -> None:
        self._replacements = dict(replacements)
        # Longest first, so an id containing another is replaced whole.
        alternatives = sorted(self._replacements, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None

    def text(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self._replacements[match.group()], text)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def item(self, item: ExecutionItem) -> ExecutionItem:
        if self._pattern is None:
            return item
        update = {name: self.value(getattr(item, name)) for name in _SEARCHED_ITEM_FIELDS}
        return item.model_copy(update=update)


def pseudonymize_record(record: ExecutionRecord, key: bytes) -> ExecutionRecord:
    """``record`` with user and session ids replaced by HMAC-SHA-256 pseudonyms under ``key``.

    For many records, build one ``Pseudonymizer(key)`` and call ``.record`` on each: it caches
    pseudonyms. Raises ``ValueError`` for a key shorter than 16 bytes.
    """
    return Pseudonymizer(key).record(record)
