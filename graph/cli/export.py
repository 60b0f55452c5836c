"""``execgraph export``: the export mutation's twin on the command line, writing to a file.

It goes the mutation's way: the selection is planned by ``graph.services.export_jobs`` (the same
checks, the same order), the records are read by it, and the file is written, pseudonymised and
audited by ``exports.service.export_to_path`` with the selection recorded as the mutation records
its own (``{"filter": {...}, "orderBy": ...}``). The file is written under a hidden temporary
name beside the target and renamed when complete, so a failed or interrupted export never leaves
a partial file under the requested name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from exports.base import ExportMeta, ExportOptions
from exports.errors import ExportError
from exports.registry import EXPORTERS
from exports.service import export_to_path
from graph import __version__
from graph.api.mutation import camel_keys, plain
from graph.errors import BadUserInput
from graph.services.export_jobs import ExportJobs
from graph.services.progress import progress_bar
from graph.settings import Settings
from storage.catalog import Catalog
from storage.index import RecordIndex
from storage.query import RunFilter, RunOrder

_ORDER = RunOrder.TIMESTAMP_DESC


def selection_of(execution_ids: list[str] | None, flt: RunFilter | None) -> dict[str, Any]:
    """The selection as the mutation records it, in the schema's names."""
    chosen: dict[str, Any] = {"orderBy": _ORDER.name}
    if execution_ids is not None:
        chosen["executionIds"] = execution_ids
    if flt is not None:
        given = {k: v for k, v in plain(flt).items() if v not in ((), None)}
        chosen["filter"] = camel_keys(
            {k: list(v) if isinstance(v, tuple) else v for k, v in given.items()}
        )
    return chosen


def export_to_file(
    settings: Settings,
    *,
    format: str,
    output: Path,
    execution_ids: list[str] | None,
    flt: RunFilter | None,
    pseudonymize: bool,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Export into ``output``; return the number of runs written."""
    format = format.upper()
    with RecordIndex(settings.store, settings.index_path) as index:
        index.sync()
        jobs = ExportJobs(settings, Catalog(index, max_file_bytes=settings.max_file_bytes))
        selection = selection_of(execution_ids, flt)
        plan = jobs.plan(
            format=format,
            execution_ids=execution_ids,
            flt=flt,
            order=_ORDER,
            item_criteria=None,
            pseudonymize=pseudonymize,
            selection=selection,
        )
        meta = ExportMeta(
            exported_at=datetime.now(UTC),
            execgraph_version=__version__,
            record_count=len(plan.targets),
            pseudonymized=pseudonymize,
            selection=selection,
        )
        if on_start is not None:
            on_start(len(plan.targets))
        written = export_to_path(
            jobs.records(plan),
            format=format,
            meta=meta,
            output=output,
            options=ExportOptions(media_dir=settings.media_dir),
            progress=on_progress,
            audit_log=settings.audit_path,
            pseudonymize_key=settings.pseudonym_key_bytes() if pseudonymize else None,
        )
        return written.record_count


@click.command("export")
@click.option("--store", type=click.Path(path_type=Path, file_okay=False), envvar="EXECGRAPH_STORE")
@click.option("--index", "index_path", type=click.Path(path_type=Path), envvar="EXECGRAPH_INDEX")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(sorted(EXPORTERS), case_sensitive=False),
    help="File format.",
)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--id", "ids", multiple=True, help="Export this run (repeatable).")
@click.option("--config", "configs", multiple=True, help="Filter: config name (repeatable).")
@click.option("--user", "users", multiple=True, help="Filter: user id (repeatable).")
@click.option("--session", "sessions", multiple=True, help="Filter: session id (repeatable).")
@click.option("--safety-level", "levels", multiple=True, help="Filter: safety level.")
@click.option("--since", type=click.DateTime(), help="Filter: started at or after.")
@click.option("--until", type=click.DateTime(), help="Filter: started before.")
@click.option("--text", help="Filter: words in an item's content.")
@click.option("--pseudonymize", is_flag=True, help="Replace user and session ids by keyed hashes.")
def export_command(
    store: Path | None,
    index_path: Path | None,
    fmt: str,
    output: Path,
    ids: tuple[str, ...],
    configs: tuple[str, ...],
    users: tuple[str, ...],
    sessions: tuple[str, ...],
    levels: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    text: str | None,
    pseudonymize: bool,
) -> None:
    """Export runs to a file (JSON, JSONL, CSV, XML, PDF, DOCX), with a progress bar."""
    if store is None:
        raise click.ClickException("pass --store DIR")
    settings = Settings(store=store, index=index_path)
    flt = RunFilter(
        config_names=configs,
        user_ids=users,
        session_ids=sessions,
        safety_levels=levels,
        since=since,
        until=until,
        text=text,
    )
    try:
        with progress_bar() as bar:
            task = bar.add_task(f"Exporting {fmt.upper()}", total=None)
            count = export_to_file(
                settings,
                format=fmt,
                output=output,
                execution_ids=list(ids) if ids else None,
                flt=None if ids else flt,
                pseudonymize=pseudonymize,
                on_start=lambda total: bar.update(task, total=total),
                on_progress=lambda done: bar.update(task, completed=done),
            )
    except (BadUserInput, ExportError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote {count} runs to {output}", err=True)
