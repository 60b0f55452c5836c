"""``execgraph export``: the export mutation's twin on the command line, writing to a file.

Selection, reading and pseudonymisation are the server's (``graph.export_jobs``); the file is
written under a hidden temporary name beside the target and renamed when complete, so a failed
or interrupted export never leaves a partial file under the requested name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click

from exports.base import ExportMeta, ExportOptions
from exports.errors import ExportError
from exports.pseudonymize import Pseudonymizer
from exports.registry import EXPORTERS, get_exporter
from graph import __version__
from graph.errors import BadUserInput
from graph.export_jobs import ExportJobs
from graph.progress import progress_bar
from graph.settings import Settings
from storage.index import RecordIndex
from storage.query import RunFilter, RunOrder


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
    exporter = get_exporter(format)
    with RecordIndex(settings.store, settings.index_path) as index:
        index.sync()
        jobs = ExportJobs(settings, index)
        selection: dict[str, object] = (
            {"executionIds": execution_ids} if execution_ids is not None else {"filter": "cli"}
        )
        plan = jobs.plan(
            format=format,
            execution_ids=execution_ids,
            flt=flt,
            order=RunOrder.TIMESTAMP_DESC,
            item_criteria=None,
            pseudonymize=pseudonymize,
            selection=selection,
        )
        pseudonymizer = Pseudonymizer(settings.pseudonym_key_bytes()) if pseudonymize else None
        records = (pseudonymizer.record(r) if pseudonymizer else r for r in jobs.records(plan))
        meta = ExportMeta(
            exported_at=datetime.now(UTC),
            execgraph_version=__version__,
            record_count=len(plan.targets),
            pseudonymized=pseudonymize,
            selection=pseudonymizer.selection(selection) if pseudonymizer else selection,
        )
        if on_start is not None:
            on_start(len(plan.targets))
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                exporter.write(
                    records,
                    meta,
                    out,
                    options=ExportOptions(media_dir=settings.media_dir),
                    progress=on_progress,
                )
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, 0o666 & ~_umask())
            os.replace(temp, output)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return len(plan.targets)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


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
