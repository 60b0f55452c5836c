"""The export service: turns selected records into a finished, downloadable, audited file.

Exporters only write bytes; this module owns everything around them, without any web import:

* **Atomic files.** The exporter writes through :func:`storage.files.atomic_writer` (a hidden
  temporary file beside the final name, mode 0600, never matching a final name) while SHA-256
  and size are computed on the way; the file is renamed to its final name only when complete
  and synced. On any failure every file this export created is removed, and the error is
  re-raised as ``ExportFailedError`` with a message safe to show (the original is its
  ``__cause__``); a full disk (ENOSPC, EDQUOT) as its ``DiskFullError``, which names the free
  bytes left and what to do.
* **Unguessable names.** The final name is ``<token>.<download name>``, e.g.
  ``kX3v9Qp2LrT0aZb7Yc1D_w.execgraph-2026-11-24-143000.csv``: ``token`` is
  ``secrets.token_urlsafe(16)`` (128 bits, ``[A-Za-z0-9_-]{22}``, never containing a dot), the
  part after the first dot is what the user should see (its time is ``meta.exported_at`` as
  given). Beside it, ``<token>.meta.json`` (written atomically too) records
  format, media type, size, hash, count and expiry.
* **Downloads.** The route takes only the token from the URL (``/exports/{token}``) and calls
  ``resolve_export(export_dir, token)``: it answers ``None`` (-> 404) unless the token has the
  exact generated shape, its sidecar exists and names a file of the final-name pattern, and the
  export has not expired. Otherwise the route streams ``result.path`` with
  ``result.mime_type`` and ``Content-Disposition: attachment; filename="<result.download_name>"``.
  No text from the request is ever joined into a path before it has matched the token pattern.
* **Expiry.** ``purge_expired`` deletes expired exports and strays left by a killed process.
* **Pseudonymisation** happens here, not in the caller: pass ``pseudonymize_key`` and every record
  and the selection written into the file are pseudonymised; the file's ``pseudonymized`` flag is
  set from what was actually done. A ``meta`` that says ``pseudonymized=True`` without a key
  raises ``MissingPseudonymKeyError`` before anything is written, so the flag cannot lie.
* **Audit.** With ``audit_log`` set, one JSON line per finished export is appended (time, format,
  destination ``download`` or ``file``, file name, for downloads a reference derived from the
  token and the expiry, count, size, hash, pseudonymisation, and the selection with user ids,
  session ids and search text redacted to counts). Both export paths, the server's
  (:func:`run_export`) and the command line's (:func:`export_to_path`), write it. An export
  whose audit line cannot be written is removed and reported as failed. The token itself is not
  logged: it is the download capability.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from exports.base import ExportMeta, ExportOptions
from exports.errors import (
    DiskFullError,
    ExportError,
    ExportFailedError,
    MissingPseudonymKeyError,
)
from exports.pseudonymize import Pseudonymizer
from exports.registry import get_exporter
from storage.files import TEMPORARY_NAME, append_durably, atomic_writer, write_atomic
from storage.models import ExecutionRecord

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

#: How long an export can be downloaded unless the caller says otherwise.
DEFAULT_TTL: Final[timedelta] = timedelta(hours=24)
#: Age after which a temporary or orphaned file is considered left behind by a crash.
STRAY_GRACE: Final[timedelta] = timedelta(hours=1)

TOKEN_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{22}")
FINAL_NAME_PATTERN: Final = re.compile(
    r"(?P<token>[A-Za-z0-9_-]{22})\.(?P<download>execgraph-\d{4}-\d{2}-\d{2}-\d{6}\.[a-z0-9]{1,8})"
)
SIDECAR_SUFFIX: Final[str] = ".meta.json"
_SIDECAR_PATTERN: Final = re.compile(r"(?P<token>[A-Za-z0-9_-]{22})\.meta\.json")
#: Temporary files of versions before storage.files (now: storage.files.TEMPORARY_NAME).
_OLD_TEMP_PATTERN: Final = re.compile(r"\.tmp-[A-Za-z0-9_-]{16}\.part")
_SIDECAR_MAX_BYTES: Final[int] = 64 * 1024
#: What a full disk (or a full quota) raises as ``OSError.errno``.
_DISK_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
#: What a disk-full refusal of the server's export (:func:`run_export`) tells the reader to do.
SERVER_DISK_HINT: Final = "free space or set EXECGRAPH_EXPORT_DIR"
#: ... and of the command line's (:func:`export_to_path`).
FILE_DISK_HINT: Final = "free space or choose another --output"

#: Selection keys (compared lower-case, without ``_``) whose values may go into the audit log.
_AUDITABLE_KEYS: Final[frozenset[str]] = frozenset(
    {
        "filter",
        "confignames",
        "safetylevels",
        "executionmodes",
        "since",
        "until",
        "hasitemtypes",
        "itemtypes",
        "stages",
        "executionids",
        "ids",
        "orderby",
        "first",
        "after",
        "format",
        "includeitems",
        "pseudonymize",
        "pseudonymized",
    }
)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """A finished export on disk."""

    #: Final file name inside the export directory: ``<token>.<download_name>``.
    file_name: str
    path: Path
    format: str
    mime_type: str
    size_bytes: int
    sha256: str
    record_count: int
    created_at: datetime
    expires_at: datetime

    @property
    def token(self) -> str:
        """The secret part of the name; the download URL carries it."""
        return self.file_name.partition(".")[0]

    @property
    def download_name(self) -> str:
        """The readable part, for ``Content-Disposition`` (``execgraph-2026-11-24-143000.csv``)."""
        return self.file_name.partition(".")[2]

    def describe(self) -> dict[str, Any]:
        """What is kept of the export beside it (its sidecar file, the job store): plain JSON.

        The path is not kept: the file lives in the export folder it is read back from.
        """
        return {
            "file_name": self.file_name,
            "format": self.format,
            "mime_type": self.mime_type,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "record_count": self.record_count,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }

    @classmethod
    def described(cls, data: Mapping[str, Any], export_dir: Path) -> ExportResult:
        """The export :meth:`describe` gave ``data`` of, in ``export_dir``.

        Raises KeyError, TypeError or ValueError for data that is not such a description.
        """
        file_name = data["file_name"]
        if not isinstance(file_name, str):
            raise TypeError("file_name is not a string")
        return cls(
            file_name=file_name,
            path=export_dir / file_name,
            format=str(data["format"]),
            mime_type=str(data["mime_type"]),
            size_bytes=int(data["size_bytes"]),
            sha256=str(data["sha256"]),
            record_count=int(data["record_count"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
        )


class _HashingWriter(io.BufferedWriter):
    """A buffered file that hashes everything written through it."""

    def __init__(self, raw: io.FileIO) -> None:
        super().__init__(raw, buffer_size=1 << 16)
        self.digest = hashlib.sha256()

    def write(self, buffer: ReadableBuffer, /) -> int:
        self.digest.update(buffer)
        return super().write(buffer)


def _download_name(meta: ExportMeta, extension: str) -> str:
    at = meta.exported_at
    return (
        f"execgraph-{at.year:04d}-{at.month:02d}-{at.day:02d}-"
        f"{at.hour:02d}{at.minute:02d}{at.second:02d}.{extension}"
    )


def _sidecar(result: ExportResult) -> bytes:
    return json.dumps(result.describe(), indent=2).encode("utf-8")


def _redact(key: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _redact(str(k), v) for k, v in value.items()}
    if key.replace("_", "").lower() in _AUDITABLE_KEYS:
        return value
    if isinstance(value, list | tuple):
        return {"redacted": True, "count": len(value)}
    return {"redacted": True}


def audit_selection_summary(selection: Mapping[str, Any]) -> dict[str, Any]:
    """The selection as it may appear in the audit log.

    Values of known harmless keys (configs, dates, item types, execution ids, ordering) are kept;
    every other value, notably user ids, session ids and search text, becomes
    ``{"redacted": true, "count": n}`` (lists) or ``{"redacted": true}``.
    """
    return {str(key): _redact(str(key), value) for key, value in selection.items()}


def _append_audit(audit_log: Path, line: dict[str, Any]) -> None:
    audit_log.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    append_durably(audit_log, data)


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """An export written to a path the caller chose (the command line's ``--output``)."""

    path: Path
    format: str
    mime_type: str
    size_bytes: int
    sha256: str
    record_count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class _Written:
    """What an exporter wrote: size, hash and count of the records."""

    size: int
    digest: str
    count: int


class _Export:
    """What every export path shares: the exporter, pseudonymisation, writing, the audit line."""

    def __init__(self, format: str, meta: ExportMeta, pseudonymize_key: bytes | None) -> None:
        self.exporter = get_exporter(format)
        if meta.pseudonymized and pseudonymize_key is None:
            raise MissingPseudonymKeyError()
        self.meta = meta
        self.pseudonymizer = (
            Pseudonymizer(pseudonymize_key) if pseudonymize_key is not None else None
        )
        p = self.pseudonymizer
        self.file_meta = replace(
            meta,
            pseudonymized=p is not None,
            selection=p.selection(meta.selection) if p else meta.selection,
        )

    def write(
        self,
        records: Iterable[ExecutionRecord],
        raw: io.FileIO,
        options: ExportOptions,
        progress: Callable[[int], None] | None,
    ) -> _Written:
        """Write into ``raw`` (an :func:`~storage.files.atomic_writer`), hashing on the way."""
        written = 0
        pseudonymizer = self.pseudonymizer

        def stream() -> Iterator[ExecutionRecord]:
            nonlocal written
            for record in records:
                written += 1
                yield pseudonymizer.record(record) if pseudonymizer else record

        with _HashingWriter(raw) as out:
            self.exporter.write(stream(), self.file_meta, out, options=options, progress=progress)
            out.flush()
            size = os.fstat(out.fileno()).st_size
            digest = out.digest.hexdigest()
        if written != self.meta.record_count:
            raise ExportFailedError(
                f"The selection changed during the export: expected {self.meta.record_count} "
                f"records, got {written}. Please export again.",
                format=self.exporter.format,
            )
        return _Written(size, digest, written)

    def audit(
        self,
        audit_log: Path | None,
        written: _Written,
        created_at: datetime,
        audit_selection: Mapping[str, Any] | None,
        **where: Any,
    ) -> None:
        """Append the export's audit line (``where``: destination, file name, reference...)."""
        if audit_log is None:
            return
        selection = self.meta.selection if audit_selection is None else audit_selection
        _append_audit(
            audit_log,
            {
                "time": created_at.isoformat(),
                "event": "export",
                "format": self.exporter.format,
                "record_count": written.count,
                "size_bytes": written.size,
                "sha256": written.digest,
                "pseudonymized": self.file_meta.pseudonymized,
                "selection": audit_selection_summary(selection),
                **where,
            },
        )

    def failed(
        self, exc: BaseException, leftovers: list[Path], folder: Path, disk_hint: str
    ) -> BaseException:
        """Remove what this export created; the error to raise for ``exc`` (itself for export
        errors and interruptions, a ``DiskFullError`` naming the free bytes of ``folder`` for a
        full disk, else an ``ExportFailedError`` safe to show)."""
        for path in leftovers:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        if isinstance(exc, ExportError) or not isinstance(exc, Exception):
            return exc
        if _disk_full(exc):
            return DiskFullError(
                folder, _free_bytes(folder), disk_hint, format=self.exporter.format
            )
        return ExportFailedError(
            f"The {self.exporter.format} export failed ({type(exc).__name__}); no file was kept.",
            format=self.exporter.format,
        )


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, is a full disk or quota."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL:
            return True
        current = current.__cause__ or current.__context__
    return False


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def run_export(
    records: Iterable[ExecutionRecord],
    *,
    format: str,
    meta: ExportMeta,
    export_dir: Path,
    options: ExportOptions,
    progress: Callable[[int], None] | None = None,
    ttl: timedelta = DEFAULT_TTL,
    audit_log: Path | None = None,
    audit_selection: Mapping[str, Any] | None = None,
    pseudonymize_key: bytes | None = None,
) -> ExportResult:
    """Write ``records`` as ``format`` into ``export_dir``; return the finished export.

    ``meta.record_count`` must equal the number of records the iterable yields (it is written
    into the file before the records); a mismatch fails the export rather than ship a file that
    contradicts itself. ``audit_selection`` is what the audit line summarises (default:
    ``meta.selection``). See the module docstring for naming, pseudonymisation and cleanup.

    Raises ``UnknownFormatError``/``FormatUnavailableError`` for the format,
    ``MissingPseudonymKeyError`` when ``meta.pseudonymized`` is set without a key (all before
    touching the disk), ``ValueError`` for a key shorter than 16 bytes, and ``ExportFailedError``
    for anything that goes wrong while writing.
    """
    export = _Export(format, meta, pseudonymize_key)
    exporter = export.exporter
    export_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(16)
    file_name = f"{token}.{_download_name(meta, exporter.extension)}"
    final = export_dir / file_name
    sidecar = export_dir / f"{token}{SIDECAR_SUFFIX}"
    leftovers: list[Path] = []
    try:
        with atomic_writer(final, mode=0o600) as raw:
            written = export.write(records, raw, options, progress)
        leftovers.append(final)
        created_at = datetime.now(UTC)
        result = ExportResult(
            file_name=file_name,
            path=final,
            format=exporter.format,
            mime_type=exporter.mime_type,
            size_bytes=written.size,
            sha256=written.digest,
            record_count=written.count,
            created_at=created_at,
            expires_at=created_at + ttl,
        )
        leftovers.append(sidecar)
        write_atomic(sidecar, _sidecar(result))
        export.audit(
            audit_log,
            written,
            created_at,
            audit_selection,
            destination="download",
            file_name=result.download_name,
            export_ref=hashlib.sha256(token.encode()).hexdigest()[:16],
            expires_at=result.expires_at.isoformat(),
        )
    except BaseException as exc:
        error = export.failed(exc, leftovers, export_dir, SERVER_DISK_HINT)
        if error is exc:
            raise
        raise error from exc
    return result


def export_to_path(
    records: Iterable[ExecutionRecord],
    *,
    format: str,
    meta: ExportMeta,
    output: Path,
    options: ExportOptions,
    progress: Callable[[int], None] | None = None,
    audit_log: Path | None = None,
    audit_selection: Mapping[str, Any] | None = None,
    pseudonymize_key: bytes | None = None,
) -> WrittenFile:
    """Write ``records`` as ``format`` into ``output`` (the command line's export).

    The same export as :func:`run_export` (pseudonymisation, the count check, the audit line
    with ``"destination": "file"``), into a file the caller names instead of a download: written
    under a hidden temporary name beside ``output`` and renamed when complete (mode as the
    umask allows), so a failed export never leaves a partial file under that name. Raises as
    :func:`run_export` does.
    """
    export = _Export(format, meta, pseudonymize_key)
    output.parent.mkdir(parents=True, exist_ok=True)
    leftovers: list[Path] = []
    try:
        with atomic_writer(output, mode=0o666 & ~_umask()) as raw:
            written = export.write(records, raw, options, progress)
        leftovers.append(output)
        created_at = datetime.now(UTC)
        export.audit(
            audit_log,
            written,
            created_at,
            audit_selection,
            destination="file",
            file_name=output.name,
        )
    except BaseException as exc:
        error = export.failed(exc, leftovers, output.parent, FILE_DISK_HINT)
        if error is exc:
            raise
        raise error from exc
    return WrittenFile(
        path=output,
        format=export.exporter.format,
        mime_type=export.exporter.mime_type,
        size_bytes=written.size,
        sha256=written.digest,
        record_count=written.count,
        created_at=created_at,
    )


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _load_sidecar(export_dir: Path, token: str) -> ExportResult | None:
    """The export a sidecar describes, or ``None`` if it is missing or not one of ours."""
    try:
        path = export_dir / f"{token}{SIDECAR_SUFFIX}"
        if path.is_symlink() or not path.is_file():
            return None
        if path.stat().st_size > _SIDECAR_MAX_BYTES:
            return None
        result = ExportResult.described(json.loads(path.read_bytes()), export_dir)
        match = FINAL_NAME_PATTERN.fullmatch(result.file_name)
        if match is None or match["token"] != token:
            return None
        if result.expires_at.tzinfo is None or result.created_at.tzinfo is None:
            return None
        return result
    except (OSError, ValueError, KeyError, TypeError):
        return None


def resolve_export(
    export_dir: Path, token: str, *, now: datetime | None = None
) -> ExportResult | None:
    """The unexpired export behind a download token, or ``None``.

    Only a string of the exact generated shape (22 characters of ``[A-Za-z0-9_-]``) is looked
    up; anything else (``..``, slashes, a whole file name, a longer string) answers ``None``
    without touching the file system.
    """
    if not isinstance(token, str) or TOKEN_PATTERN.fullmatch(token) is None:
        return None
    result = _load_sidecar(export_dir, token)
    if result is None or result.expires_at <= (now or datetime.now(UTC)):
        return None
    if result.path.is_symlink() or not result.path.is_file():
        return None
    return result


def _is_temporary(name: str) -> bool:
    return bool(TEMPORARY_NAME.fullmatch(name) or _OLD_TEMP_PATTERN.fullmatch(name))


def purge_expired(export_dir: Path, now: datetime | None = None) -> int:
    """Delete expired exports and stray files; return how many files were deleted.

    Strays are temporary files, data files without a sidecar and unreadable sidecars older than
    ``STRAY_GRACE`` (left by a process killed mid-export). Files not named like ours are
    never touched.
    """
    now = now or datetime.now(UTC)
    stray_before = (now - STRAY_GRACE).timestamp()
    try:
        entries = list(os.scandir(export_dir))
    except FileNotFoundError:
        return 0
    doomed: set[str] = set()
    for entry in entries:
        name = entry.name
        if (sidecar := _SIDECAR_PATTERN.fullmatch(name)) is not None:
            result = _load_sidecar(export_dir, sidecar["token"])
            if result is None:
                if entry.stat(follow_symlinks=False).st_mtime < stray_before:
                    doomed.add(name)
            elif result.expires_at <= now:
                doomed.update({name, result.file_name})
        elif (final := FINAL_NAME_PATTERN.fullmatch(name)) is not None:
            has_sidecar = os.path.lexists(export_dir / f"{final['token']}{SIDECAR_SUFFIX}")
            if not has_sidecar and entry.stat(follow_symlinks=False).st_mtime < stray_before:
                doomed.add(name)
        elif _is_temporary(name) and entry.stat(follow_symlinks=False).st_mtime < stray_before:
            doomed.add(name)
    removed = 0
    for name in sorted(doomed):
        try:
            (export_dir / name).unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed
