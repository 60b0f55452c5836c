"""Keyed pseudonyms replace user and session ids everywhere in a record."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from exports.pseudonymize import Pseudonymizer, pseudonymize_record
from storage.models import ExecutionRecord
from tests.factory import item_dict, record, record_dict

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
USER = "pupil-7f3a9c"
SESSION = "workshop-2025-11-koeln"


def expected(kind: str, prefix: str, raw: str, key: bytes = KEY) -> str:
    digest = hmac.new(key, f"{kind}:{raw}".encode(), hashlib.sha256).hexdigest()
    return prefix + digest[:16]


def leaky_record() -> ExecutionRecord:
    """A record whose ids also appear in content, metadata keys and values, and other fields."""
    data = record_dict(
        shape="image",
        user_id=USER,
        session_id=SESSION,
        prompt=f"Ich bin {USER} aus {SESSION}",
        extra_items=[
            item_dict(
                0,
                "backend_switch",
                stage=4,
                at=record().timestamp,
                content=None,
                file_path=f"/srv/outputs/{USER}/img.png",
                model_used=f"model-for-{SESSION}",
                metadata={USER: {"session": [SESSION, 3]}, "note": f"by {USER}"},
            )
        ],
    )
    return ExecutionRecord.model_validate(data)


def test_ids_become_prefixed_truncated_hmacs() -> None:
    result = pseudonymize_record(leaky_record(), KEY)

    assert result.user_id == expected("user", "u_", USER)
    assert result.session_id == expected("session", "s_", SESSION)
    assert re.fullmatch(r"u_[0-9a-f]{16}", result.user_id)
    assert re.fullmatch(r"s_[0-9a-f]{16}", result.session_id)


def test_pseudonyms_are_stable_for_a_key_and_differ_between_keys() -> None:
    first = pseudonymize_record(leaky_record(), KEY)
    again = pseudonymize_record(leaky_record(), KEY)
    other = pseudonymize_record(leaky_record(), OTHER_KEY)

    assert first == again
    assert first.user_id != other.user_id
    assert first.session_id != other.session_id


def test_raw_ids_are_replaced_inside_content_paths_names_and_metadata() -> None:
    result = pseudonymize_record(leaky_record(), KEY)

    dumped = result.model_dump_json()
    assert USER not in dumped
    assert SESSION not in dumped
    user, session = result.user_id, result.session_id
    assert result.items[1].content == f"Ich bin {user} aus {session}"
    extra = result.items[-1]
    assert extra.file_path == f"/srv/outputs/{user}/img.png"
    assert extra.model_used == f"model-for-{session}"
    assert extra.metadata == {user: {"session": [session, 3]}, "note": f"by {user}"}


def test_everything_else_is_unchanged() -> None:
    original = leaky_record()

    result = pseudonymize_record(original, KEY)

    assert result.execution_id == original.execution_id
    assert result.timestamp == original.timestamp
    assert [i.item_type for i in result.items] == [i.item_type for i in original.items]
    assert result.items[4:7] == original.items[4:7]  # safety check, output, complete
    assert original.user_id == USER  # the input is not modified


def test_writer_placeholders_are_kept() -> None:
    result = pseudonymize_record(record(prompt="the default anonymous look"), KEY)

    assert (result.user_id, result.session_id) == ("anonymous", "default")
    assert result.items[1].content == "the default anonymous look"


def test_short_ids_are_replaced_in_their_field_but_not_searched_in_text() -> None:
    result = pseudonymize_record(record(user_id="u7", prompt="u7 drew 7 cats"), KEY)

    assert result.user_id == expected("user", "u_", "u7")
    assert result.items[1].content == "u7 drew 7 cats"


def test_same_raw_user_and_session_id_get_their_own_pseudonyms() -> None:
    result = pseudonymize_record(record(user_id="abc-123", session_id="abc-123"), KEY)

    assert result.user_id == expected("user", "u_", "abc-123")
    assert result.session_id == expected("session", "s_", "abc-123")


def test_an_id_containing_the_other_is_replaced_whole() -> None:
    result = pseudonymize_record(
        record(user_id="class4", session_id="class4-monday", prompt="class4-monday and class4"),
        KEY,
    )

    assert result.items[1].content == f"{result.session_id} and {result.user_id}"


def test_selection_ids_are_pseudonymised() -> None:
    selection = {
        "filter": {
            "userIds": [USER],
            "sessionIds": [SESSION],
            "configNames": ["dada"],
            "text": f"{USER} Wolken",
        }
    }

    result = Pseudonymizer(KEY).selection(selection)

    assert result == {
        "filter": {
            "userIds": [expected("user", "u_", USER)],
            "sessionIds": [expected("session", "s_", SESSION)],
            "configNames": ["dada"],
            "text": f"{expected('user', 'u_', USER)} Wolken",
        }
    }


def test_short_keys_are_refused_and_the_key_is_never_shown() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes") as caught:
        Pseudonymizer(b"short")
    assert "short" not in str(caught.value)
    assert KEY.decode() not in repr(Pseudonymizer(KEY))


def test_lone_surrogates_in_ids_do_not_break_hashing() -> None:
    result = pseudonymize_record(record(user_id="pupil\ud800x"), KEY)

    assert re.fullmatch(r"u_[0-9a-f]{16}", result.user_id)
