"""The export service: atomic unguessable files, downloads by token, expiry, audit, cleanup."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from exports import service
from exports.base import ExportOptions
from exports.errors import ExportFailedError, MissingPseudonymKeyError, UnknownFormatError
from exports.pseudonymize import Pseudonymizer
from exports.registry import xsd_path
from exports.service import ExportResult, purge_expired, resolve_export, run_export
from storage.files import temporary_name
from storage.models import ExecutionRecord
from tests.exports.hostile import HOSTILE_SESSION, HOSTILE_USER, hostile_record
from tests.exports.support import make_meta, mixed
from tests.factory import record

KEY = b"a-pseudonymisation-key-of-32-byt"
FORMATS = ["JSON", "JSONL", "CSV", "XML"]
FINAL_NAME = re.compile(r"[A-Za-z0-9_-]{22}\.execgraph-2026-11-24-143000\.[a-z]+")


def export(
    export_dir: Path,
    records: list[ExecutionRecord] | None = None,
    *,
    format: str = "CSV",
    **kwargs: Any,
) -> ExportResult:
    records = list(mixed(7)) if records is None else records
    kwargs.setdefault("meta", make_meta(len(records)))
    return run_export(
        records, format=format, export_dir=export_dir, options=ExportOptions(), **kwargs
    )


def failing_records(after: int) -> Iterator[ExecutionRecord]:
    for n, rec in enumerate(mixed(after + 5)):
        if n == after:
            raise OSError("the record store went away: /srv/records/exec_x.json")
        yield rec


@pytest.mark.parametrize("format", FORMATS)
def test_an_export_is_a_private_file_with_an_unguessable_readable_name(
    tmp_path: Path, format: str
) -> None:
    result = export(tmp_path, format=format)

    assert FINAL_NAME.fullmatch(result.file_name)
    assert result.download_name == f"execgraph-2026-11-24-143000.{format.lower()}"
    assert result.file_name == f"{result.token}.{result.download_name}"
    assert result.path == tmp_path / result.file_name
    data = result.path.read_bytes()
    assert result.size_bytes == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.record_count == 7
    assert result.format == format
    assert result.expires_at - result.created_at == timedelta(hours=24)
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [result.file_name, f"{result.token}.meta.json"]
    )


def test_two_exports_never_share_a_name(tmp_path: Path) -> None:
    first, second = export(tmp_path), export(tmp_path)

    assert first.token != second.token
    assert first.path.exists()
    assert second.path.exists()


def test_progress_counts_records(tmp_path: Path) -> None:
    seen: list[int] = []

    export(tmp_path, format="JSONL", progress=seen.append)

    assert seen == [1, 2, 3, 4, 5, 6, 7]


def test_resolve_finds_an_unexpired_export_by_its_token(tmp_path: Path) -> None:
    result = export(tmp_path, ttl=timedelta(minutes=5))

    assert resolve_export(tmp_path, result.token) == result
    later = result.created_at + timedelta(minutes=5, seconds=1)
    assert resolve_export(tmp_path, result.token, now=later) is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "..",
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "/etc/passwd",
        "AAAAAAAAAAAAAAAAAAAAA",  # 21
        "AAAAAAAAAAAAAAAAAAAAAAA",  # 23
        "AAAAAAAAAA/AAAAAAAAAAA",
        "AAAAAAAAAA.AAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAA\n",
        "AAAAAAAAAAAAAAAAAAAAAＡ",  # full-width A
        "AAAAAAAAAAAAAAAAAAAAAA\x00",
    ],
)
def test_resolve_rejects_anything_but_a_generated_token(
    tmp_path: Path, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    export(tmp_path / "exports")

    def no_file_access(*args: object) -> None:
        raise AssertionError("an invalid token reached the file system")

    monkeypatch.setattr(service, "_load_sidecar", no_file_access)

    assert resolve_export(tmp_path / "exports", token) is None


def test_resolve_rejects_a_full_file_name_and_unknown_tokens(tmp_path: Path) -> None:
    result = export(tmp_path)

    assert resolve_export(tmp_path, result.file_name) is None
    assert resolve_export(tmp_path, "A" * 22) is None


def test_resolve_ignores_a_sidecar_pointing_outside_its_export(tmp_path: Path) -> None:
    result = export(tmp_path)
    other = export(tmp_path)
    sidecar = tmp_path / f"{result.token}.meta.json"
    data = json.loads(sidecar.read_text())
    for forged in ("../secret.csv", other.file_name, "/etc/passwd"):
        sidecar.write_text(json.dumps({**data, "file_name": forged}))

        assert resolve_export(tmp_path, result.token) is None


def test_resolve_answers_none_when_the_file_is_gone(tmp_path: Path) -> None:
    result = export(tmp_path)
    result.path.unlink()

    assert resolve_export(tmp_path, result.token) is None


@pytest.mark.parametrize("format", FORMATS)
def test_a_failing_export_leaves_nothing_behind(tmp_path: Path, format: str) -> None:
    with pytest.raises(ExportFailedError) as caught:
        run_export(
            failing_records(after=3),
            format=format,
            meta=make_meta(8),
            export_dir=tmp_path,
            options=ExportOptions(),
        )

    assert list(tmp_path.iterdir()) == []
    assert isinstance(caught.value.__cause__, OSError)
    assert str(caught.value) == f"The {format} export failed (OSError); no file was kept."


def test_an_exporter_that_raises_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        format = "CSV"
        extension = "csv"
        mime_type = "text/csv"

        def write(self, records: Any, meta: Any, out: Any, **_: Any) -> None:
            out.write(b"half a file")
            raise RuntimeError("layout exploded")

    monkeypatch.setattr(service, "get_exporter", lambda format: Broken())

    with pytest.raises(ExportFailedError, match="RuntimeError"):
        export(tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_is_not_wrapped_but_still_cleaned_up(tmp_path: Path) -> None:
    def interrupt(n: int) -> None:
        if n == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(tmp_path, progress=interrupt)

    assert list(tmp_path.iterdir()) == []


def test_a_selection_that_changed_during_the_export_fails_it(tmp_path: Path) -> None:
    with pytest.raises(ExportFailedError, match="expected 9 records, got 7"):
        export(tmp_path, meta=make_meta(9))

    assert list(tmp_path.iterdir()) == []


def test_an_unknown_format_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(UnknownFormatError):
        export(tmp_path / "exports", format="XLSX")

    assert not (tmp_path / "exports").exists()


@pytest.mark.parametrize("format", FORMATS)
def test_pseudonymised_exports_contain_no_raw_ids_anywhere(tmp_path: Path, format: str) -> None:
    records = [
        hostile_record(large=False),
        record(user_id="user_42", session_id="session_7", prompt="user_42 in session_7"),
    ]
    selection = {
        "filter": {
            "userIds": [HOSTILE_USER, "user_42"],
            "sessionIds": ["session_7"],
            "text": "user_42",
        }
    }

    result = export(
        tmp_path,
        records,
        format=format,
        meta=make_meta(2, selection=selection),
        pseudonymize_key=KEY,
    )

    data = result.path.read_bytes()
    for raw in (HOSTILE_USER, HOSTILE_SESSION, "user_42", "session_7"):
        assert raw.encode() not in data, raw
    assert KEY not in data
    pseudonyms = Pseudonymizer(KEY)
    assert pseudonyms.user("user_42").encode() in data
    assert pseudonyms.session(HOSTILE_SESSION).encode() in data
    if format == "JSON":
        assert json.loads(data)["export"]["pseudonymized"] is True
    if format == "XML":
        schema = etree.XMLSchema(etree.parse(str(xsd_path())))
        schema.assertValid(etree.fromstring(data))


def test_unpseudonymised_exports_keep_ids_and_say_so(tmp_path: Path) -> None:
    result = export(tmp_path, [record(user_id="user_42")], format="JSON")

    document = json.loads(result.path.read_bytes())
    assert document["export"]["pseudonymized"] is False
    assert document["records"][0]["user_id"] == "user_42"


def test_asking_for_pseudonyms_without_a_key_fails_before_writing(tmp_path: Path) -> None:
    with pytest.raises(MissingPseudonymKeyError):
        export(tmp_path / "exports", meta=make_meta(7, pseudonymized=True))

    assert not (tmp_path / "exports").exists()


def test_audit_line_records_the_export_without_personal_data(tmp_path: Path) -> None:
    audit = tmp_path / "audit" / "exports.jsonl"
    records = [record(user_id="user_42", session_id="session_7", prompt="Mein Geheimnis")]
    selection = {
        "filter": {
            "userIds": ["user_42"],
            "sessionIds": ["session_7"],
            "text": "Geheimnis",
            "configNames": ["dada"],
            "since": "2025-11-01T00:00:00",
        },
        "executionIds": [records[0].execution_id],
    }

    first = export(tmp_path / "out", records, audit_log=audit, audit_selection=selection)
    second = export(tmp_path / "out", records, audit_log=audit, pseudonymize_key=KEY)

    lines = audit.read_text("utf-8").splitlines()
    assert len(lines) == 2
    entry = json.loads(lines[0])
    assert entry["event"] == "export"
    assert entry["format"] == "CSV"
    assert entry["file_name"] == first.download_name
    assert entry["record_count"] == 1
    assert entry["sha256"] == first.sha256
    assert entry["size_bytes"] == first.size_bytes
    assert entry["pseudonymized"] is False
    assert entry["selection"] == {
        "filter": {
            "userIds": {"redacted": True, "count": 1},
            "sessionIds": {"redacted": True, "count": 1},
            "text": {"redacted": True},
            "configNames": ["dada"],
            "since": "2025-11-01T00:00:00",
        },
        "executionIds": [records[0].execution_id],
    }
    assert json.loads(lines[1])["pseudonymized"] is True
    text = audit.read_text("utf-8")
    for secret in ("user_42", "session_7", "Geheimnis", first.token, second.token):
        assert secret not in text
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600


def test_an_export_whose_audit_line_cannot_be_written_is_removed(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    audit.mkdir()  # a directory cannot be appended to

    with pytest.raises(ExportFailedError):
        export(tmp_path / "out", audit_log=audit)

    assert list((tmp_path / "out").iterdir()) == []


def test_purge_removes_expired_exports_and_stale_strays_only(tmp_path: Path) -> None:
    expired = export(tmp_path, ttl=timedelta(hours=1))
    fresh = export(tmp_path, ttl=timedelta(days=7))
    stale_temp = temporary_name(tmp_path / ("A" * 22 + ".execgraph-2026-11-24-143000.csv"))
    stale_temp.write_bytes(b"partial")
    older_temp = tmp_path / ".tmp-AAAAAAAAAAAAAAAA.part"  # named as before storage.files
    older_temp.write_bytes(b"partial")
    live_temp = temporary_name(tmp_path / f"{fresh.token}.meta.json")
    live_temp.write_bytes(b"being written")
    orphan = tmp_path / ("C" * 22 + ".execgraph-2026-11-24-143000.csv")
    orphan.write_bytes(b"no sidecar")
    foreign = tmp_path / "README.txt"
    foreign.write_bytes(b"not ours")
    now = datetime.now(UTC) + timedelta(hours=2)
    old = time.time() - 3 * 3600
    for path in (stale_temp, older_temp, orphan, foreign):
        os.utime(path, (old, old))
    os.utime(live_temp, (now.timestamp(), now.timestamp()))

    removed = purge_expired(tmp_path, now=now)

    assert removed == 5  # the expired export's two files, the stale temps, the orphan
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [fresh.file_name, f"{fresh.token}.meta.json", live_temp.name, foreign.name]
    )
    assert not expired.path.exists()
    assert resolve_export(tmp_path, fresh.token) == fresh


def test_purge_of_a_missing_directory_is_a_no_op(tmp_path: Path) -> None:
    assert purge_expired(tmp_path / "nowhere") == 0


def test_export_to_path_writes_the_file_and_its_audit_line(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    out = tmp_path / "out" / "runs.csv"
    records = list(mixed(5))
    selection = {"filter": {"userIds": ["user_1"], "configNames": ["dada"]}, "orderBy": "X"}

    written = service.export_to_path(
        records,
        format="CSV",
        meta=make_meta(5, selection=selection),
        output=out,
        options=ExportOptions(),
        audit_log=audit,
    )

    assert written.path == out
    assert written.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert [p.name for p in out.parent.iterdir()] == ["runs.csv"]
    (line,) = audit.read_text("utf-8").splitlines()
    entry = json.loads(line)
    assert entry["destination"] == "file"
    assert entry["file_name"] == "runs.csv"
    assert entry["record_count"] == 5
    assert entry["sha256"] == written.sha256
    assert entry["selection"] == {
        "filter": {"userIds": {"redacted": True, "count": 1}, "configNames": ["dada"]},
        "orderBy": "X",
    }


def test_export_to_path_that_fails_leaves_no_file_and_no_audit_line(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    out = tmp_path / "runs.json"

    with pytest.raises(ExportFailedError) as raised:
        service.export_to_path(
            failing_records(3),
            format="JSON",
            meta=make_meta(8),
            output=out,
            options=ExportOptions(),
            audit_log=audit,
        )

    assert "/srv/records" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


# -- through the front doors: the mutation, the command line, the server's lifespan ------------


def test_the_mutation_and_the_cli_audit_the_same_real_selection(
    populated_store: tuple[Path, list[Any]],
    make_client: Any,
    index_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from graph.cli.main import main
    from tests.conftest import data

    audit = tmp_path / "audit.jsonl"
    store = populated_store[0]
    client = make_client(store, export_dir=tmp_path / "exports", audit_log=audit)
    job = data(
        client,
        "mutation { exportExecutions(input: {format: CSV, filter: "
        '{configNames: ["dada"], userIds: ["user_1"]}}) { status recordCount } }',
    )["exportExecutions"]
    assert job["status"] == "DONE"
    monkeypatch.setenv("EXECGRAPH_AUDIT_LOG", str(audit))
    args = ["export", "--store", str(store), "--index", str(index_path), "--format", "csv"]
    result = CliRunner().invoke(
        main, [*args, "-o", str(tmp_path / "runs.csv"), "--config", "dada", "--user", "user_1"]
    )
    assert result.exit_code == 0, result.output

    served, cli = (json.loads(line) for line in audit.read_text("utf-8").splitlines())
    assert (served["destination"], cli["destination"]) == ("download", "file")
    assert (
        served["selection"]
        == cli["selection"]
        == {
            "filter": {"configNames": ["dada"], "userIds": {"redacted": True, "count": 1}},
            "orderBy": "TIMESTAMP_DESC",
        }
    )
    assert served["record_count"] == cli["record_count"] == job["recordCount"] > 0


def test_the_server_deletes_expired_exports_at_start_up_and_on_a_timer(
    populated_store: tuple[Path, list[Any]],
    make_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from graph.services import export_jobs
    from tests.conftest import data

    exports = tmp_path / "exports"
    before = export(exports, ttl=timedelta(seconds=0.2))
    time.sleep(0.3)
    monkeypatch.setattr(export_jobs, "PURGE_INTERVAL_S", 0.2)
    client = make_client(populated_store[0], export_dir=exports, export_ttl_hours=0.4 / 3600)
    deadline = time.monotonic() + 5
    while before.path.exists():
        assert time.monotonic() < deadline, "the expired export was not deleted at start-up"
        time.sleep(0.02)
    job = data(
        client,
        'mutation { exportExecutions(input: {format: JSON, filter: {configNames: ["dada"]}})'
        " { id status file { url } } }",
    )["exportExecutions"]
    assert job["status"] == "DONE"
    assert client.get(job["file"]["url"]).status_code == 200
    deadline = time.monotonic() + 5
    while [p for p in exports.iterdir() if not p.name.startswith(".")]:
        assert time.monotonic() < deadline, "the export was not deleted once expired"
        time.sleep(0.05)
    assert client.get(job["file"]["url"]).status_code == 404
