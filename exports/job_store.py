"""Export jobs' state, kept where every server process sees it: a small SQLite file.

A job runs in the process that was asked for it, but ``exportJob`` and ``exportJobProgress`` may
be asked of any worker of a ``serve --workers N``, or of another ``serve`` process using the
same export folder. So the job's state (status, progress, the finished file) lives in
``<export folder>/.jobs.sqlite3`` (hidden, like every file there that is not an export): the
process that runs the job writes it (each update one small transaction), the others read it.
Download links need no job state: they resolve through the export's sidecar file
(``exports.service.resolve_export``).

Nothing here knows about GraphQL.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from exports.service import ExportResult

Status = Literal["PENDING", "RUNNING", "DONE", "FAILED"]

FILE_NAME: Final = ".jobs.sqlite3"
#: Longest job id looked up (ids are 16 characters); anything longer is unknown.
_MAX_ID_LENGTH: Final = 64

_DDL: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    format TEXT NOT NULL,
    record_count INTEGER NOT NULL,
    created_at TEXT NOT NULL,     -- ISO 8601, UTC
    status TEXT NOT NULL,
    written INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    result TEXT,                  -- the finished export (JSON), once DONE
    version INTEGER NOT NULL DEFAULT 0,
    owner TEXT NOT NULL           -- host:pid of the process running it
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""

_SELECT: Final = (
    "SELECT id, format, record_count, created_at, status, written, error, result, version "
    "FROM jobs WHERE id = ?"
)


@dataclass(frozen=True, slots=True)
class ExportJob:
    """One export job as last recorded."""

    id: str
    format: str
    record_count: int
    created_at: datetime
    status: Status = "PENDING"
    written: int = 0
    error: str | None = None
    result: ExportResult | None = None
    #: Goes up with every recorded change (followers compare it).
    version: int = 0

    @property
    def progress(self) -> float:
        if self.status == "DONE":
            return 1.0
        return 0.0 if self.record_count == 0 else min(1.0, self.written / self.record_count)

    @property
    def finished(self) -> bool:
        return self.status in ("DONE", "FAILED")


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobStore:
    """The jobs of one export folder. Thread-safe; the file is made on first use."""

    def __init__(self, export_dir: Path) -> None:
        self.path = export_dir / FILE_NAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=10000")
            for attempt in range(50):  # several processes may create the file at once
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    with conn:
                        conn.executescript(_DDL)
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        conn.close()
                        raise
                    time.sleep(0.02)
            os.chmod(self.path, 0o600)
            self._conn = conn
        return self._conn

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            conn = self._connection()
            with conn:
                return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def create(self, job: ExportJob) -> None:
        """Record a new job (PENDING), run by this process."""
        self._execute(
            "INSERT INTO jobs (id, format, record_count, created_at, status, owner) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                job.id,
                job.format,
                job.record_count,
                job.created_at.isoformat(),
                job.status,
                _owner(),
            ),
        )

    def update(
        self,
        job_id: str,
        *,
        status: Status | None = None,
        written: int | None = None,
        error: str | None = None,
        result: ExportResult | None = None,
    ) -> None:
        """Record what changed (``None``: unchanged) and bump the job's version."""
        self._execute(
            "UPDATE jobs SET status = coalesce(?, status), written = coalesce(?, written), "
            "error = coalesce(?, error), result = coalesce(?, result), version = version + 1 "
            "WHERE id = ?",
            (
                status,
                written,
                error,
                None if result is None else json.dumps(result.describe()),
                job_id,
            ),
        )

    def get(self, job_id: str) -> ExportJob | None:
        """The job as last recorded, or ``None``."""
        if len(job_id) > _MAX_ID_LENGTH or not job_id.isascii():  # ids are ASCII tokens
            return None
        rows = self._execute(_SELECT, (job_id,))
        return _job(rows[0], self.path.parent) if rows else None

    def purge(self, created_before: datetime) -> int:
        """Forget jobs created before ``created_before``, and fail the unfinished jobs of
        processes of this host that no longer run (killed mid-export). Returns jobs forgotten."""
        host = socket.gethostname()
        for job_id, owner in self._execute(
            "SELECT id, owner FROM jobs WHERE status IN ('PENDING', 'RUNNING')"
        ):
            owner_host, _, pid = str(owner).rpartition(":")
            if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                self.update(
                    job_id,
                    status="FAILED",
                    error="The server running this export stopped; please export again.",
                )
        rows = self._execute(
            "DELETE FROM jobs WHERE created_at < ? RETURNING id", (created_before.isoformat(),)
        )
        return len(rows)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _job(row: tuple[Any, ...], export_dir: Path) -> ExportJob:
    job_id, fmt, count, created, status, written, error, result, version = row
    created_at = datetime.fromisoformat(created)
    return ExportJob(
        id=job_id,
        format=fmt,
        record_count=int(count),
        created_at=created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC),
        status=status,
        written=int(written),
        error=error,
        result=None if result is None else ExportResult.described(json.loads(result), export_dir),
        version=int(version),
    )
