"""Export jobs: selection, background execution, progress, and what clients see of them.

The GraphQL mutation resolves the selection first (unknown ids and bad arguments fail before any
job exists), then starts a job that runs ``exports.service.run_export`` in a worker thread. Small
exports are awaited within the mutation call; large ones return at once and report progress
through ``exportJob`` and the ``exportJobProgress`` subscription. At most ``MAX_RUNNING`` exports
write at the same time in one process; others wait as PENDING.

A job's state lives in the export folder's job store (:mod:`exports.job_store`), not in this
process: any worker of ``serve --workers N``, or another server using the same export folder,
answers ``exportJob``, follows ``exportJobProgress`` (by polling the store) and serves the
download. The process running a job writes its progress there at most every 0.1 s.

Expired exports are deleted for real: :meth:`ExportJobs.purge` runs at start-up and then every
:data:`PURGE_INTERVAL_S` while serving (files, sidecars, strays and job records).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Final

from exports.base import ExportMeta, ExportOptions
from exports.errors import ExportError
from exports.job_store import ExportJob as ExportJob
from exports.job_store import JobStore
from exports.job_store import Status as Status
from exports.service import ExportResult, purge_expired, run_export
from graph import __version__
from graph.errors import BadUserInput, NotFound
from graph.settings import Settings
from storage.catalog import Catalog, RecordUnavailable
from storage.models import ExecutionRecord
from storage.query import ItemCriteria, RunFilter, RunOrder
from storage.reader import FileSignature

log = logging.getLogger(__name__)

MAX_RUNNING: Final = 2
#: Exports up to this many records finish within the mutation call (reports are slower).
INLINE_RECORDS: Final = {"PDF": 25, "DOCX": 25}
INLINE_RECORDS_DEFAULT: Final = 1000
_JOB_KEEP: Final = timedelta(hours=24)
_MAX_IDS_SHOWN: Final = 10
#: How often ``exportJobProgress`` looks at the job store, and the progress writes' spacing (s).
WATCH_INTERVAL_S: Final = 0.1
#: How often expired exports are deleted while serving (seconds).
PURGE_INTERVAL_S: Final = 600.0


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What one export will write, resolved before the job starts."""

    format: str
    targets: list[tuple[str, str, int]]
    item_criteria: ItemCriteria | None
    pseudonymize: bool
    selection: dict[str, Any]


class ExportJobs:
    """The export jobs of one server process, their state in the shared job store."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_RUNNING)

    @cached_property
    def store(self) -> JobStore:
        """The job store of the export folder (its file is made on first use)."""
        return JobStore(self.settings.export_path)

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
        if execution_ids is not None:
            ids = list(dict.fromkeys(execution_ids))
            if not ids:
                raise BadUserInput("'executionIds' must name at least one run")
            if len(ids) > self.settings.max_export_records:
                raise BadUserInput(
                    f"at most {self.settings.max_export_records} runs per export ({len(ids)} given)"
                )
            rows = self.catalog.get_runs(ids)
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
            targets = self.catalog.run_files(flt, order)
            if len(targets) > self.settings.max_export_records:
                raise BadUserInput(
                    f"the filter selects {len(targets)} runs; at most "
                    f"{self.settings.max_export_records} per export: narrow it down"
                )
        return ExportPlan(format, targets, item_criteria, pseudonymize, selection)

    # -- running -------------------------------------------------------------------------------

    async def start(self, plan: ExportPlan) -> ExportJob:
        """Start a job; wait for it when it is small."""
        job = ExportJob(
            id=secrets.token_urlsafe(12),
            format=plan.format,
            record_count=len(plan.targets),
            created_at=datetime.now(UTC),
        )
        await asyncio.to_thread(self.store.create, job)
        task = asyncio.create_task(self._run(job, plan), name=f"export-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if job.record_count <= INLINE_RECORDS.get(plan.format, INLINE_RECORDS_DEFAULT):
            await asyncio.shield(task)
        return self.get(job.id) or job

    def get(self, job_id: str) -> ExportJob | None:
        """The job as last recorded by whichever process runs it; ``None`` when unknown."""
        job = self.store.get(job_id)
        if job is None or job.created_at < datetime.now(UTC) - _JOB_KEEP:
            return None
        return job

    async def watch(self, job_id: str) -> AsyncIterator[ExportJob]:
        """Yield the job now and after each recorded change, until it is finished."""
        job = self.get(job_id)
        if job is None:
            raise NotFound(f"no export job {job_id[:40]!r} (jobs are kept for 24 hours)")
        seen = -1
        while job is not None:
            if job.version != seen:
                seen = job.version
                yield job
                if job.finished:
                    return
            await asyncio.sleep(WATCH_INTERVAL_S)
            job = self.get(job_id)

    async def close(self) -> None:
        """Wait for running exports to end (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if "store" in self.__dict__:
            self.store.close()

    def purge(self) -> int:
        """Delete expired exports and strays, and forget old jobs; return files deleted."""
        removed = purge_expired(self.settings.export_path)
        if self.store.path.exists():
            self.store.purge(datetime.now(UTC) - _JOB_KEEP)
        return removed

    async def purge_forever(self) -> None:
        """Purge now, then every :data:`PURGE_INTERVAL_S` (a task of the server's lifespan)."""
        while True:
            try:
                removed = await asyncio.to_thread(self.purge)
                if removed:
                    log.info("deleted %d expired export file(s)", removed)
            except Exception:
                log.exception("deleting expired exports failed; retrying later")
            await asyncio.sleep(PURGE_INTERVAL_S)

    async def _run(self, job: ExportJob, plan: ExportPlan) -> None:
        store = self.store
        async with self._slots:
            await asyncio.to_thread(store.update, job.id, status="RUNNING")
            try:
                result = await asyncio.to_thread(self._write, job, plan)
                await asyncio.to_thread(
                    store.update, job.id, status="DONE", written=result.record_count, result=result
                )
            except ExportError as exc:
                log.warning("export %s failed: %s", job.id, exc, exc_info=exc.__cause__)
                await asyncio.to_thread(store.update, job.id, status="FAILED", error=str(exc))
            except Exception:
                log.exception("export %s failed", job.id)
                await asyncio.to_thread(
                    store.update,
                    job.id,
                    status="FAILED",
                    error="The export failed; the error was logged.",
                )

    def _write(self, job: ExportJob, plan: ExportPlan) -> ExportResult:
        settings = self.settings
        progress = _throttled(lambda done: self.store.update(job.id, written=done), job)
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
                self.catalog.item_positions([rid for _, _, rid in chunk], plan.item_criteria)
                if plan.item_criteria is not None
                else None
            )
            for eid, file_name, rid in chunk:
                signatures: list[FileSignature | None] = []
                try:
                    record = self.catalog.read_runs([(eid, file_name)], signatures=signatures)[0]
                    if isinstance(record, RecordUnavailable):
                        raise record
                    if positions is not None and plan.item_criteria is not None:
                        # The index's positions only for the file version they belong to.
                        keep = self.catalog.matching_items(
                            record, signatures[0], file_name, positions[rid], plan.item_criteria
                        )
                        record = record.model_copy(
                            update={"items": [record.items[p] for p in keep]}
                        )
                except RecordUnavailable as exc:
                    raise ExportErrorForRun(eid, exc.reason) from None
                yield record


def _throttled(record: Callable[[int], None], job: ExportJob) -> Callable[[int], None]:
    """A progress callback that records at most every :data:`WATCH_INTERVAL_S`, and the end."""
    last = 0.0

    def progress(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= WATCH_INTERVAL_S or done == job.record_count:
            last = now
            record(done)

    return progress


class ExportErrorForRun(ExportError):
    """A selected run could not be read while exporting."""

    def __init__(self, execution_id: str, reason: str) -> None:
        super().__init__(
            f"run {execution_id} could not be read during the export ({reason}); "
            "nothing was kept, please export again"
        )
