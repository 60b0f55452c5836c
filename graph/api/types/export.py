"""Export types: the input of the export mutation, the job, and the file to download."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from exports.job_store import ExportJob as JobState
from exports.service import ExportResult
from graph.api.context import Info
from graph.api.types.enums import ExecutionOrder
from graph.api.types.inputs import ExecutionFilter, ItemFilter, check_text


@strawberry.enum(description="File formats of an export.")
class ExportFormat(Enum):
    JSON = strawberry.enum_value("JSON", description="One document: metadata and the records.")
    JSONL = strawberry.enum_value("JSONL", description="One record per line (pandas, R, jq).")
    CSV = strawberry.enum_value(
        "CSV", description="One row per item, run columns repeated (long format)."
    )
    XML = strawberry.enum_value(
        "XML", description="One document valid against the published XSD (/exports/schema.xsd)."
    )
    PDF = strawberry.enum_value("PDF", description="A readable report of each run.")
    DOCX = strawberry.enum_value(
        "DOCX", description="The report as a Word document with real headings (for QDA tools)."
    )


@strawberry.enum(description="Where an export job is.")
class ExportStatus(Enum):
    PENDING = strawberry.enum_value("PENDING", description="Waiting for a free export slot.")
    RUNNING = strawberry.enum_value("RUNNING", description="Writing the file.")
    DONE = strawberry.enum_value("DONE", description="The file is ready to download.")
    FAILED = strawberry.enum_value("FAILED", description="Failed; see error. No file was kept.")


@strawberry.input(
    description="What to export, and how. Give exactly one of executionIds or filter."
)
class ExportInput:
    format: ExportFormat = strawberry.field(description="The file format.")
    execution_ids: list[str] | None = strawberry.field(
        default=None, description="These runs, in this order (unknown ids: an error)."
    )
    filter: ExecutionFilter | None = strawberry.field(
        default=None, description="The runs matching this filter, as executions lists them."
    )
    item_filter: ItemFilter | None = strawberry.field(
        default=None, description="Only the items matching this filter are written."
    )
    order_by: ExecutionOrder | None = strawberry.field(
        default=ExecutionOrder.TIMESTAMP_DESC, description="Order of the runs selected by filter."
    )
    pseudonymize: bool | None = strawberry.field(
        default=False,
        description="Replace userId and sessionId everywhere in the file by a keyed hash "
        "(stable across exports under the server's key).",
    )

    def checked_execution_ids(self) -> list[str] | None:
        """``execution_ids``, each valid text (else BAD_USER_INPUT, before it is echoed in an
        error or an audit line)."""
        for execution_id in self.execution_ids or ():
            check_text("executionIds", execution_id)
        return self.execution_ids


@strawberry.type(description="A finished export file.")
class ExportFile:
    file_name: str = strawberry.field(description="Name to save it under.")
    format: ExportFormat = strawberry.field(description="Its format.")
    mime_type: str = strawberry.field(description="Its media type.")
    size_bytes: int = strawberry.field(description="Its size in bytes.")
    sha256: str = strawberry.field(description="SHA-256 of its bytes, hex.")
    url: str = strawberry.field(description="Where to download it (GET, same access rules).")
    created_at: datetime = strawberry.field(description="When it was written (UTC).")
    expires_at: datetime = strawberry.field(description="When it stops being downloadable.")


@strawberry.type(description="An export: its status, progress and, once done, its file.")
class ExportJob:
    id: strawberry.ID = strawberry.field(description="Id to ask exportJob(id) about it.")
    format: ExportFormat = strawberry.field(description="The file format.")
    status: ExportStatus = strawberry.field(description="Where the job is.")
    progress: float = strawberry.field(description="Share of records written, 0 to 1.")
    record_count: int = strawberry.field(description="Number of runs the export contains.")
    error: str | None = strawberry.field(description="Why it failed (status FAILED).")
    created_at: datetime = strawberry.field(description="When the job was created (UTC).")
    result: strawberry.Private[ExportResult | None]

    @classmethod
    def from_state(cls, job: JobState) -> ExportJob:
        return cls(
            id=strawberry.ID(job.id),
            format=ExportFormat(job.format),
            status=ExportStatus(job.status),
            progress=job.progress,
            record_count=job.record_count,
            error=job.error,
            created_at=job.created_at,
            result=job.result if job.status == "DONE" else None,
        )

    @strawberry.field(description="The file, once status is DONE.")
    def file(self, info: Info) -> ExportFile | None:
        result = self.result
        if result is None:
            return None
        request = info.context.request
        base = str(request.base_url).rstrip("/") if request is not None else ""
        return ExportFile(
            file_name=result.download_name,
            format=ExportFormat(result.format),
            mime_type=result.mime_type,
            size_bytes=result.size_bytes,
            sha256=result.sha256,
            url=f"{base}/exports/{result.token}",
            created_at=result.created_at,
            expires_at=result.expires_at,
        )
