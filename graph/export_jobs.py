"""Export jobs: selection, background execution, progress, and what clients see of them.

The GraphQL mutation resolves the selection first (unknown ids and bad arguments fail before any
job exists), then starts a job that runs ``exports.service.run_export`` in a worker thread. Small
exports are awaited within the mutation call; large ones return at once and report progress
through ``exportJob`` and the ``exportJobProgress`` subscription. At most ``MAX_RUNNING`` exports
write at the same time; others wait as PENDING.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from exports.base import ExportMeta, ExportOptions
from exports.errors import ExportError
from exports.service import ExportResult, run_export
from graph import __version__
from graph.errors import BadUserInput, NotFound
from graph.settings import Settings
from storage.index import RecordIndex
from storage.models import ExecutionRecord
from storage.query import ItemCriteria, RunFilter, RunOrder, get_runs, item_positions, run_files
from storage.reader import InvalidRecordError, read_record

log = logging.getLogger(__name__)

Status = Literal["PENDING", "RUNNING", "DONE", "FAILED"]

MAX_RUNNING: Final = 2
#: Exports up to this many records finish within the mutation call (reports are slower).
INLINE_RECORDS: Final = {"PDF": 25, "DOCX": 25}
INLINE_RECORDS_DEFAULT: Final = 1000
_JOB_KEEP: Final = timedelta(hours=24)
_MAX_IDS_SHOWN: Final = 10


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What one export will write, resolved before the job starts."""

    format: str
    targets: list[tuple[str, str, int]]
    item_criteria: ItemCriteria | None
    pseudonymize: bool
    selection: dict[str, Any]


@dataclass(eq=False)
class ExportJob:
    """One export's state, shared by the worker thread and the event loop."""

    id: str
    format: str
    record_count: int
    created_at: datetime
    status: Status = "PENDING"
    written: int = 0
    error: str | None = None
    result: ExportResult | None = None
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def progress(self) -> float:
        if self.status == "DONE":
            return 1.0
        return 0.0 if self.record_count == 0 else min(1.0, self.written / self.record_count)

    @property
    def finished(self) -> bool:
        return self.status in ("DONE", "FAILED")


class ExportJobs:
    """All export jobs of one server."""

    def __init__(self, settings: Settings, index: RecordIndex) -> None:
        self.settings = settings
        self.index = index
        self._jobs: dict[str, ExportJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_RUNNING)
        self._lock = threading.Lock()

    # -- selection ---------------------------------------------------------------------------

    def plan(
        self,
        *,
        format: str,
        execution_ids: list[str] | None,
        flt: RunFilter | None,
        order: RunOrder,
        item_criteria: ItemCriteria | None,
        pseudonymize: bool,
        selection: dict[str, Any],
    ) -> ExportPlan:
        """Resolve what to export; BAD_USER_INPUT for anything the client must change."""
        if (execution_ids is None) == (flt is None):
            raise BadUserInput("give exactly one of 'executionIds' or 'filter'")
        conn = self.index.reader()
        if execution_ids is not None:
            ids = list(dict.fromkeys(execution_ids))
            if not ids:
                raise BadUserInput("'executionIds' must name at least one run")
            if len(ids) > self.settings.max_export_records:
                raise BadUserInput(
                    f"at most {self.settings.max_export_records} runs per export ({len(ids)} given)"
                )
            rows = get_runs(conn, ids)
            missing = [eid for eid in ids if eid not in rows]
            if missing:
                shown = ", ".join(m[:80] for m in missing[:_MAX_IDS_SHOWN])
                more = f" and {len(missing) - _MAX_IDS_SHOWN} more" if len(missing) > 10 else ""
                raise BadUserInput(
                    f"unknown execution ids: {shown}{more}; nothing was exported",
                    unknownIds=missing[:100],
                )
            targets = [(eid, rows[eid].file_name, rows[eid].rid) for eid in ids]
        else:
            targets = run_files(conn, flt, order)
            if len(targets) > self.settings.max_export_records:
                raise BadUserInput(
                    f"the filter selects {len(targets)} runs; at most "
                    f"{self.settings.max_export_records} per export: narrow it down"
                )
        return ExportPlan(format, targets, item_criteria, pseudonymize, selection)

    # -- running -------------------------------------------------------------------------------

    async def start(self, plan: ExportPlan) -> ExportJob:
        """Start a job; wait for it when it is small."""
        self._forget_old()
        job = ExportJob(
            id=secrets.token_urlsafe(12),
            format=plan.format,
            record_count=len(plan.targets),
            created_at=datetime.now(UTC),
        )
        with self._lock:
            self._jobs[job.id] = job
        task = asyncio.create_task(self._run(job, plan), name=f"export-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if job.record_count <= INLINE_RECORDS.get(plan.format, INLINE_RECORDS_DEFAULT):
            await asyncio.shield(task)
        return job

    def get(self, job_id: str) -> ExportJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    async def watch(self, job_id: str) -> AsyncIterator[ExportJob]:
        """Yield the job now and after each change, until it is finished."""
        job = self.get(job_id)
        if job is None:
            raise NotFound(f"no export job {job_id[:40]!r} (jobs are kept for 24 hours)")
        seen = -1
        while True:
            if job.version != seen:
                seen = job.version
                yield job
                if job.finished:
                    return
            job.changed.clear()
            if job.version == seen:
                await job.changed.wait()

    async def close(self) -> None:
        """Wait for running exports to end (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, job: ExportJob, plan: ExportPlan) -> None:
        loop = asyncio.get_running_loop()

        def touch() -> None:
            job.version += 1
            job.changed.set()

        async with self._slots:
            job.status = "RUNNING"
            touch()
            try:
                job.result = await asyncio.to_thread(
                    self._write, job, plan, lambda: loop.call_soon_threadsafe(touch)
                )
                job.status = "DONE"
            except ExportError as exc:
                job.status, job.error = "FAILED", str(exc)
                log.warning("export %s failed: %s", job.id, exc, exc_info=exc.__cause__)
            except Exception:
                job.status, job.error = "FAILED", "The export failed; the error was logged."
                log.exception("export %s failed", job.id)
            touch()

    def _write(self, job: ExportJob, plan: ExportPlan, notify: Any) -> ExportResult:
        settings = self.settings
        last = [0.0]

        def progress(done: int) -> None:
            job.written = done
            now = time.monotonic()
            if now - last[0] >= 0.1 or done == job.record_count:
                last[0] = now
                notify()

        meta = ExportMeta(
            exported_at=datetime.now(UTC),
            execgraph_version=__version__,
            record_count=len(plan.targets),
            pseudonymized=plan.pseudonymize,
            selection=plan.selection,
        )
        return run_export(
            self.records(plan),
            format=plan.format,
            meta=meta,
            export_dir=settings.export_path,
            options=ExportOptions(media_dir=settings.media_dir),
            progress=progress,
            ttl=timedelta(hours=settings.export_ttl_hours),
            audit_log=settings.audit_path,
            pseudonymize_key=settings.pseudonym_key_bytes() if plan.pseudonymize else None,
        )

    def records(self, plan: ExportPlan) -> Iterator[ExecutionRecord]:
        """The planned records, read one by one, items narrowed by the item filter."""
        for start in range(0, len(plan.targets), 200):
            chunk = plan.targets[start : start + 200]
            positions = (
                item_positions(
                    self.index.reader(), [rid for _, _, rid in chunk], plan.item_criteria
                )
                if plan.item_criteria is not None
                else None
            )
            for eid, file_name, rid in chunk:
                try:
                    record = read_record(
                        self.index.store, file_name, max_bytes=self.settings.max_file_bytes
                    )
                except InvalidRecordError as exc:
                    raise ExportErrorForRun(eid, exc.reason) from None
                if record.execution_id != eid:
                    raise ExportErrorForRun(eid, "the file now holds another run")
                if positions is not None:
                    keep = positions.get(rid, [])
                    record = record.model_copy(
                        update={"items": [record.items[p] for p in keep if p < len(record.items)]}
                    )
                yield record

    def _forget_old(self) -> None:
        limit = datetime.now(UTC) - _JOB_KEEP
        with self._lock:
            for job_id in [j.id for j in self._jobs.values() if j.created_at < limit]:
                del self._jobs[job_id]


class ExportErrorForRun(ExportError):
    """A selected run could not be read while exporting."""

    def __init__(self, execution_id: str, reason: str) -> None:
        super().__init__(
            f"run {execution_id} could not be read during the export ({reason}); "
            "nothing was kept, please export again"
        )
