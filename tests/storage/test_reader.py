"""The tolerant reader: every shape the writer produced loads; every broken file gets a reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import storage.reader
from storage.models import ExecutionRecord
from storage.reader import InvalidRecordError, parse_record, read_file, read_record
from tests.factory import dump, record_dict

GOOD = dump(record_dict())


def reason_of(data: bytes) -> str:
    with pytest.raises(InvalidRecordError) as info:
        parse_record(data)
    return info.value.reason


def test_valid_record_loads_every_field() -> None:
    record = parse_record(GOOD)
    assert isinstance(record, ExecutionRecord)
    assert record.execution_id == "exec_20251103_143025_0000abcd"
    assert [i.sequence_number for i in record.items] == list(range(1, 8))
    assert record.items[2].backend_type == "ollama"


def test_old_backend_used_key_is_read_as_backend_type() -> None:
    record = parse_record(dump(record_dict(backend_key="backend_used")))
    assert record.items[2].backend_type == "ollama"
    assert "backend_used" not in str(record.to_disk_dict())


def test_unknown_item_and_media_types_load_with_raw_names() -> None:
    data = record_dict()
    data["items"][1]["item_type"] = "output_hologram"
    data["items"][1]["media_type"] = "smell"
    data["items"][1]["surprise_key"] = {"x": 1}
    data["new_top_level_key"] = True
    record = parse_record(dump(data))
    assert record.items[1].item_type == "output_hologram"
    assert record.items[1].media_type == "smell"
    assert not record.items[1].is_known_item_type


def test_naive_and_offset_timestamps_parse_and_keep_their_form() -> None:
    data = record_dict()
    data["items"][0]["timestamp"] = "2025-11-03T14:30:25+01:00"
    record = parse_record(dump(data))
    assert record.timestamp.tzinfo is None
    assert record.items[0].timestamp.utcoffset() is not None
    assert record.to_disk_dict()["timestamp"] == data["timestamp"]


def test_seed_above_64_bits_loads() -> None:
    record = parse_record(dump(record_dict(used_seed=2**70)))
    assert record.used_seed == 2**70


def _without(key: str) -> bytes:
    data = record_dict()
    del data[key]
    return dump(data)


def _with_item_value(key: str, value: object) -> bytes:
    data = record_dict()
    data["items"][1][key] = value
    return dump(data)


def _deep() -> bytes:
    data = record_dict()
    nested: object = 1
    for _ in range(200):
        nested = {"a": nested}
    data["items"][0]["metadata"] = {"deep": nested}
    return dump(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (GOOD[: len(GOOD) // 2], "truncated"),
        (GOOD[:-1], "truncated"),
        (GOOD.replace(b"Haus", b"H\xff\xfeus"), "not valid UTF-8"),
        (b"\xef\xbb\xbf" + GOOD, "byte order mark"),
        (b"[1, 2]", "array"),
        (b'"a string"', "string"),
        (b"42", "number"),
        (_without("execution_id"), "'execution_id' is missing"),
        (_without("items"), "'items' is missing"),
        (_with_item_value("stage", "three"), "items[1].stage"),
        (_with_item_value("sequence_number", True), "items[1].sequence_number"),
        (GOOD.replace(b'"used_seed": 42', b'"used_seed": NaN'), "not valid JSON"),
        (GOOD.replace(b'"used_seed": 42', b'"used_seed": Infinity'), "not valid JSON"),
        (_deep(), "nested deeper"),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, "JSON"),
        (GOOD.replace(b"Haus", b"\\ud800"), "surrogate"),
        (GOOD.replace(b'"items": [', b'"items": null, "x": [', 1), "items"),
    ],
)
def test_broken_files_are_refused_with_a_readable_reason(data: bytes, expected: str) -> None:
    assert expected in reason_of(data)


def test_size_cap_is_enforced_before_reading(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_bytes(GOOD + b" " * 5000)
    with pytest.raises(InvalidRecordError, match="byte limit"):
        read_record(tmp_path, "big.json", max_bytes=len(GOOD) + 100)
    assert read_record(tmp_path, "big.json", max_bytes=len(GOOD) + 6000).execution_id


def test_a_file_larger_than_one_read_is_read_whole(tmp_path: Path) -> None:
    record = record_dict(shape="stillepost", prompt="Wolken " * 30_000)
    (tmp_path / "long.json").write_bytes(dump(record))
    data, signature = read_file(tmp_path, "long.json")
    assert data == dump(record)
    assert len(data) > 200_000
    assert signature.size == len(data)


def _writer_during_read(
    monkeypatch: pytest.MonkeyPatch, path: Path, new_bytes: bytes, *, before: bool
) -> None:
    """Have the writer replace the file's content once the reader has it open: just before
    (``before``) or just after its first read."""
    real_read = os.read
    calls = []

    def write() -> None:
        with path.open("r+b") as handle:  # the writer's truncate-and-write, same inode
            handle.truncate(0)
            handle.write(new_bytes)
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

    def read(fd: int, size: int) -> bytes:
        first = not calls
        calls.append(size)
        if first and before:
            write()
        chunk = real_read(fd, size)
        if first and not before:
            write()
        return chunk

    monkeypatch.setattr(storage.reader.os, "read", read)


@pytest.mark.parametrize("now", [GOOD, GOOD[:50]], ids=["grown", "shrunk"])
def test_a_file_changing_size_while_read_is_refused_for_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, now: bytes
) -> None:
    path = tmp_path / "exec_a.json"
    path.write_bytes(GOOD[:100])
    _writer_during_read(monkeypatch, path, now, before=True)
    with pytest.raises(InvalidRecordError, match="changed while being read"):
        read_file(tmp_path, "exec_a.json")


def test_a_file_rewritten_while_read_keeps_the_signature_seen_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same size, new content: what was read is returned with the old signature, so the next
    sync sees a newer file and reads it again."""
    path = tmp_path / "exec_a.json"
    path.write_bytes(GOOD)
    before = path.stat()
    _writer_during_read(monkeypatch, path, GOOD.replace(b"Wolken", b"Wellen"), before=False)
    data, signature = read_file(tmp_path, "exec_a.json")
    assert data == GOOD
    assert signature.mtime_ns == before.st_mtime_ns
    assert path.stat().st_mtime_ns != signature.mtime_ns


def test_directory_named_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "exec_dir.json").mkdir()
    with pytest.raises(InvalidRecordError, match="directory"):
        read_record(tmp_path, "exec_dir.json")


def test_symlink_leaving_the_store_is_refused_but_one_inside_is_followed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    outside = tmp_path / "secret.json"
    outside.write_bytes(GOOD)
    (store / "exec_link.json").symlink_to(outside)
    with pytest.raises(InvalidRecordError, match="outside the store"):
        read_record(store, "exec_link.json")
    (store / "real.json").write_bytes(GOOD)
    (store / "exec_inner.json").symlink_to(store / "real.json")
    assert read_record(store, "exec_inner.json").execution_id


@pytest.mark.parametrize(
    "name", ["../x.json", "/etc/passwd", "a/b.json", ".hidden.json", "x\0.json"]
)
def test_only_plain_record_names_are_opened(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidRecordError):
        read_record(tmp_path, name)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "exec_fifo.json")
    with pytest.raises(InvalidRecordError, match="regular file"):
        read_record(tmp_path, "exec_fifo.json")
