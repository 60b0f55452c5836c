"""Queries over the index: filters, keyset pages in both directions, counts and statistics.

Pages are keyset pages (``WHERE (sort, id) < (?, ?) ORDER BY sort, id LIMIT n``), never OFFSET, so
a deep page costs what the first one does, and a walk stays stable while records are added: a
new record lands before or after the cursor, never shifting what comes next.

Filter semantics (shared with the GraphQL layer): within one list any value matches (OR); across
fields all must match (AND); an empty list or a null field does not constrain. ``since`` is
inclusive, ``until`` exclusive; both compare with the records' wall-clock time as written.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any, Final, Generic, TypeVar

from storage.models import KNOWN_ITEM_TYPES, KNOWN_MEDIA_TYPES
from storage.schema import ITEM_BITS, STATUS_VALID

T = TypeVar("T")

_WORD: Final = re.compile(r"\w+", re.UNICODE)


class QueryError(ValueError):
    """A query argument the index cannot answer; the message is meant for the client."""


def is_text(value: str) -> bool:
    """Whether ``value`` is valid Unicode, as everything the index holds is (SQLite stores
    UTF-8, which a lone surrogate such as JSON's ``"\\ud800"`` has no spelling in)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class RunOrder(Enum):
    """Orders of runs. Ties are broken by execution id in the same direction."""

    TIMESTAMP_DESC = ("r.ts", True)
    TIMESTAMP_ASC = ("r.ts", False)
    DURATION_DESC = ("r.duration", True)
    DURATION_ASC = ("r.duration", False)

    @property
    def column(self) -> str:
        return self.value[0]

    @property
    def descending(self) -> bool:
        return self.value[1]


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs to select. Item types are disk values; ``None`` in them means unknown types."""

    config_names: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    session_ids: tuple[str, ...] = ()
    safety_levels: tuple[str, ...] = ()
    execution_modes: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    has_item_types: tuple[str | None, ...] = ()
    text: str | None = None


@dataclass(frozen=True, slots=True)
class ItemCriteria:
    """Which items to select. Types are disk values; ``None`` in them means unknown values."""

    item_types: tuple[str | None, ...] = ()
    media_types: tuple[str | None, ...] = ()
    stages: tuple[int, ...] = ()
    stage_iteration: int | None = None
    loop_iteration: int | None = None
    models_used: tuple[str, ...] = ()
    backend_types: tuple[str, ...] = ()
    configs_used: tuple[str, ...] = ()
    text: str | None = None

    @property
    def is_empty(self) -> bool:
        return self == ItemCriteria()


@dataclass(slots=True)
class RunRow:
    """A run's summary as the index holds it: everything but the items. Read-only by convention.

    Not a frozen dataclass: one is built for every row of every page, and a frozen dataclass
    is many times slower to build (each field is set through ``object.__setattr__``).
    """

    rid: int
    execution_id: str
    file_name: str
    config_name: str
    ts_key: str
    timestamp: datetime
    user_id: str
    session_id: str
    execution_mode: str | None
    safety_level: str | None
    used_seed: int | None
    duration_key: float
    total_execution_time: float | None
    taxonomy_version: str | None
    item_count: int
    size: int

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> RunRow:
        """The summary from a row selected with :data:`RUN_SELECT` (columns in field order)."""
        run = cls(*row)
        run.timestamp = datetime.fromisoformat(row[_TIMESTAMP])
        if run.used_seed is not None:
            run.used_seed = int(run.used_seed)  # stored as text (see storage.schema)
        return run

    def sort_key(self, order: RunOrder) -> tuple[str | float, str]:
        """The keyset position of this run in ``order``."""
        value: str | float = self.ts_key if order.column == "r.ts" else self.duration_key
        return (value, self.execution_id)


#: The column of ``runs`` each field of :class:`RunRow` is read from, where it is not the
#: field's name.
_RUN_SOURCES: Final = {"ts_key": "ts", "timestamp": "ts_raw", "duration_key": "duration"}
#: Columns of ``runs`` the summary does not hold: ``day`` serves only per-day counts.
UNREAD_RUN_COLUMNS: Final = frozenset({"day"})
#: What a query selects to build :class:`RunRow` objects: one column per field, in field order.
RUN_SELECT: Final = ", ".join(f"r.{_RUN_SOURCES.get(f.name, f.name)}" for f in fields(RunRow))
_TIMESTAMP: Final = [f.name for f in fields(RunRow)].index("timestamp")


@dataclass(frozen=True, slots=True)
class ItemRef:
    """One item located in the index: its run and its position in the run's file."""

    run: RunRow
    pos: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.run.ts_key, self.run.execution_id, self.pos)


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of rows, with lazily computed knowledge of what lies beyond each end."""

    rows: list[T]
    has_next: bool | Callable[[], bool]
    has_previous: bool | Callable[[], bool]

    def next_exists(self) -> bool:
        if callable(self.has_next):
            self.has_next = self.has_next()
        return self.has_next

    def previous_exists(self) -> bool:
        if callable(self.has_previous):
            self.has_previous = self.has_previous()
        return self.has_previous


@dataclass(frozen=True, slots=True)
class PageRequest(Generic[T]):
    """Relay arguments, already decoded: ``after``/``before`` are keyset positions."""

    first: int | None = None
    after: T | None = None
    last: int | None = None
    before: T | None = None


# -- filter compilation -------------------------------------------------------------------


def fts_query(text: str) -> str:
    """Turn free text into an FTS5 query matching items that contain every word."""
    words = _WORD.findall(text)
    if not words:
        raise QueryError("text must contain at least one letter or digit")
    if len(words) > 32:
        raise QueryError("text may contain at most 32 words")
    return " ".join(f'"{word}"' for word in words)


def _in(column: str, values: Sequence[Any], where: list[str], params: list[Any]) -> None:
    if values:
        where.append(f"{column} IN ({','.join('?' * len(values))})")
        params.extend(values)


def _typed_in(
    column: str,
    values: Sequence[str | None],
    known: frozenset[str],
    where: list[str],
    params: list[Any],
) -> None:
    """``column IN values``, where ``None`` stands for every value not in ``known``."""
    if not values:
        return
    named = [v for v in values if v is not None]
    parts = []
    if named:
        parts.append(f"{column} IN ({','.join('?' * len(named))})")
        params.extend(named)
    if None in values:
        parts.append(f"{column} NOT IN ({','.join('?' * len(known))})")
        params.extend(sorted(known))
    where.append("(" + " OR ".join(parts) + ")")


def _wallclock(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(timespec="microseconds")


def run_conditions(flt: RunFilter | None) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``runs r`` for a filter."""
    where: list[str] = []
    params: list[Any] = []
    if flt is None:
        return where, params
    _in("r.config_name", flt.config_names, where, params)
    _in("r.user_id", flt.user_ids, where, params)
    _in("r.session_id", flt.session_ids, where, params)
    _in("r.safety_level", flt.safety_levels, where, params)
    _in("r.execution_mode", flt.execution_modes, where, params)
    if flt.since is not None:
        where.append("r.ts >= ?")
        params.append(_wallclock(flt.since))
    if flt.until is not None:
        where.append("r.ts < ?")
        params.append(_wallclock(flt.until))
    if flt.has_item_types:
        sub: list[str] = []
        _typed_in("i.item_type", flt.has_item_types, KNOWN_ITEM_TYPES, sub, params)
        where.append(f"EXISTS (SELECT 1 FROM items i WHERE i.rid = r.rid AND {sub[0]})")
    if flt.text is not None:
        where.append(
            f"r.rid IN (SELECT rowid >> {ITEM_BITS} FROM item_text WHERE item_text MATCH ?)"
        )
        params.append(fts_query(flt.text))
    return where, params


def item_conditions(crit: ItemCriteria | None) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``items i`` for item criteria."""
    where: list[str] = []
    params: list[Any] = []
    if crit is None:
        return where, params
    _typed_in("i.item_type", crit.item_types, KNOWN_ITEM_TYPES, where, params)
    _typed_in("i.media_type", crit.media_types, KNOWN_MEDIA_TYPES, where, params)
    _in("i.stage", crit.stages, where, params)
    if crit.stage_iteration is not None:
        where.append("i.stage_iteration = ?")
        params.append(crit.stage_iteration)
    if crit.loop_iteration is not None:
        where.append("i.loop_iteration = ?")
        params.append(crit.loop_iteration)
    _in("i.model_used", crit.models_used, where, params)
    _in("i.backend_type", crit.backend_types, where, params)
    _in("i.config_used", crit.configs_used, where, params)
    if crit.text is not None:
        where.append(
            f"((i.rid << {ITEM_BITS}) | i.pos) IN "
            "(SELECT rowid FROM item_text WHERE item_text MATCH ?)"
        )
        params.append(fts_query(crit.text))
    return where, params


def _where(parts: list[str]) -> str:
    return ("WHERE " + " AND ".join(parts)) if parts else ""


# -- runs -----------------------------------------------------------------------------------


def list_runs(
    conn: sqlite3.Connection,
    flt: RunFilter | None,
    order: RunOrder,
    page: PageRequest[tuple[str | float, str]],
) -> Page[RunRow]:
    """One keyset page of runs."""
    where, params = run_conditions(flt)
    backwards = page.last is not None and page.first is None
    limit = page.last if backwards else page.first
    assert limit is not None
    # Scanning direction: descending when the order is descending and we walk forwards.
    desc = order.descending != backwards
    bound_where = list(where)
    bound_params = list(params)
    for key, before in ((page.after, False), (page.before, True)):
        if key is None:
            continue
        # "after" means further along the order; "before" means earlier in it.
        less = order.descending != before
        bound_where.append(f"({order.column}, r.execution_id) {'<' if less else '>'} (?, ?)")
        bound_params.extend(key)
    direction = "DESC" if desc else "ASC"
    sql = (
        f"SELECT {RUN_SELECT} FROM runs r {_where(bound_where)} "
        f"ORDER BY {order.column} {direction}, r.execution_id {direction} LIMIT ?"
    )
    rows = [RunRow.from_row(row) for row in conn.execute(sql, [*bound_params, limit + 1])]
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()

    def beyond(key: tuple[str | float, str] | None, towards_start: bool) -> Callable[[], bool]:
        """Whether a row exists at or beyond a cursor, towards the start or the end."""

        def check() -> bool:
            if key is None:
                return False
            # Towards the start of a descending order means greater keys, and so on.
            op = ">=" if order.descending == towards_start else "<="
            bound = f"({order.column}, r.execution_id) {op} (?, ?)"
            sql = f"SELECT 1 FROM runs r {_where([*where, bound])} LIMIT 1"
            return conn.execute(sql, [*params, *key]).fetchone() is not None

        return check

    if backwards:
        return Page(rows, has_previous=more, has_next=beyond(page.before, towards_start=False))
    return Page(rows, has_next=more, has_previous=beyond(page.after, towards_start=True))


def count_runs(conn: sqlite3.Connection, flt: RunFilter | None) -> int:
    """How many runs match ``flt``."""
    where, params = run_conditions(flt)
    sql = f"SELECT count(*) FROM runs r {_where(where)}"
    return int(conn.execute(sql, params).fetchone()[0])


def get_runs(conn: sqlite3.Connection, execution_ids: Sequence[str]) -> dict[str, RunRow]:
    """Summaries of the given runs (absent ids are left out)."""
    execution_ids = [eid for eid in execution_ids if is_text(eid)]  # others are absent
    found: dict[str, RunRow] = {}
    for start in range(0, len(execution_ids), 500):
        chunk = list(execution_ids[start : start + 500])
        sql = (
            f"SELECT {RUN_SELECT} FROM runs r "
            f"WHERE r.execution_id IN ({','.join('?' * len(chunk))})"
        )
        for row in conn.execute(sql, chunk):
            run = RunRow.from_row(row)
            found[run.execution_id] = run
    return found


def matching_runs(
    conn: sqlite3.Connection, execution_ids: Sequence[str], flt: RunFilter | None
) -> list[RunRow]:
    """The runs among ``execution_ids`` that match ``flt``, in the order of the ids."""
    execution_ids = [eid for eid in execution_ids if is_text(eid)]  # others are absent
    where, params = run_conditions(flt)
    found: dict[str, RunRow] = {}
    for start in range(0, len(execution_ids), 500):
        chunk = list(execution_ids[start : start + 500])
        cond = [f"r.execution_id IN ({','.join('?' * len(chunk))})", *where]
        sql = f"SELECT {RUN_SELECT} FROM runs r {_where(cond)}"
        for row in conn.execute(sql, [*chunk, *params]):
            run = RunRow.from_row(row)
            found[run.execution_id] = run
    return [found[eid] for eid in execution_ids if eid in found]


def run_files(
    conn: sqlite3.Connection, flt: RunFilter | None, order: RunOrder
) -> list[tuple[str, str, int]]:
    """(execution id, file name, rid) of every matching run, in order (for exports)."""
    where, params = run_conditions(flt)
    direction = "DESC" if order.descending else "ASC"
    sql = (
        f"SELECT r.execution_id, r.file_name, r.rid FROM runs r {_where(where)} "
        f"ORDER BY {order.column} {direction}, r.execution_id {direction}"
    )
    return [(str(e), str(f), int(r)) for e, f, r in conn.execute(sql, params)]


def run_ids(
    conn: sqlite3.Connection, flt: RunFilter | None, order: RunOrder, *, limit: int | None = None
) -> list[str]:
    """Execution ids of every matching run, in order (for exports)."""
    where, params = run_conditions(flt)
    direction = "DESC" if order.descending else "ASC"
    sql = (
        f"SELECT r.execution_id FROM runs r {_where(where)} "
        f"ORDER BY {order.column} {direction}, r.execution_id {direction}"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [row[0] for row in conn.execute(sql, params)]


# -- items across runs ----------------------------------------------------------------------


def list_items(
    conn: sqlite3.Connection,
    crit: ItemCriteria | None,
    flt: RunFilter | None,
    page: PageRequest[tuple[str, str, int]],
) -> Page[ItemRef]:
    """One keyset page of items across runs: newest run first, then position in the run."""
    iw, ip = item_conditions(crit)
    rw, rp = run_conditions(flt)
    where = [*iw, *rw]
    params = [*ip, *rp]
    backwards = page.last is not None and page.first is None
    limit = page.last if backwards else page.first
    assert limit is not None
    bound_where = list(where)
    bound_params = list(params)
    for key, later in ((page.after, True), (page.before, False)):
        if key is None:
            continue
        cond, cparams = _item_bound(key, later=later, inclusive=False)
        bound_where.append(cond)
        bound_params.extend(cparams)
    # Forward order: ts DESC, execution_id DESC, pos ASC.
    if backwards:
        order_sql = "r.ts ASC, r.execution_id ASC, i.pos DESC"
    else:
        order_sql = "r.ts DESC, r.execution_id DESC, i.pos ASC"
    # CROSS JOIN makes SQLite walk runs in time order (their index) and look up each run's
    # items by key, instead of sorting every matching item (a cost that grows with the store).
    sql = (
        f"SELECT {RUN_SELECT}, i.pos FROM runs r CROSS JOIN items i "
        f"{_where(['i.rid = r.rid', *bound_where])} ORDER BY {order_sql} LIMIT ?"
    )
    refs = [
        ItemRef(RunRow.from_row(row[:-1]), row[-1])
        for row in conn.execute(sql, [*bound_params, limit + 1])
    ]
    more = len(refs) > limit
    refs = refs[:limit]
    if backwards:
        refs.reverse()

    def beyond(key: tuple[str, str, int] | None, later: bool) -> Callable[[], bool]:
        def check() -> bool:
            if key is None:
                return False
            cond, cparams = _item_bound(key, later=later, inclusive=True)
            sql = (
                "SELECT 1 FROM items i JOIN runs r ON r.rid = i.rid "
                f"{_where([*where, cond])} LIMIT 1"
            )
            return conn.execute(sql, [*params, *cparams]).fetchone() is not None

        return check

    if backwards:
        return Page(refs, has_previous=more, has_next=beyond(page.before, later=True))
    return Page(refs, has_next=more, has_previous=beyond(page.after, later=False))


def _item_bound(
    key: tuple[str, str, int], *, later: bool, inclusive: bool
) -> tuple[str, list[Any]]:
    """Items strictly (or inclusively) later/earlier than ``key`` in the forward order."""
    ts, eid, pos = key
    if later:
        cond = (
            "(r.ts < ? OR (r.ts = ? AND r.execution_id < ?) OR "
            f"(r.ts = ? AND r.execution_id = ? AND i.pos {'>=' if inclusive else '>'} ?))"
        )
    else:
        cond = (
            "(r.ts > ? OR (r.ts = ? AND r.execution_id > ?) OR "
            f"(r.ts = ? AND r.execution_id = ? AND i.pos {'<=' if inclusive else '<'} ?))"
        )
    return cond, [ts, ts, eid, ts, eid, pos]


def count_items(conn: sqlite3.Connection, crit: ItemCriteria | None, flt: RunFilter | None) -> int:
    """How many items match."""
    iw, ip = item_conditions(crit)
    rw, rp = run_conditions(flt)
    join = "JOIN runs r ON r.rid = i.rid" if rw else ""
    sql = f"SELECT count(*) FROM items i {join} {_where([*iw, *rw])}"
    return int(conn.execute(sql, [*ip, *rp]).fetchone()[0])


@dataclass(frozen=True, slots=True)
class ItemPositions:
    """The positions of a run's items matching some criteria, and which version of the file
    they are positions in: the ``files`` row's (size, mtime_ns, inode) for the run, None when
    the index no longer serves that run (its file was re-read: rids are never reused)."""

    positions: list[int]
    signature: tuple[int, int, int] | None


def item_positions(
    conn: sqlite3.Connection, rids: Sequence[int], crit: ItemCriteria
) -> dict[int, ItemPositions]:
    """For each run, the positions of its items matching ``crit`` (in file order), with the
    signature of the file version they were computed from.

    Two statements, each its own snapshot: that is safe because a run whose file is re-read
    gets a new rid. Whichever statement sees the old run, the other sees it too or sees nothing
    (no positions, or no signature), and a caller comparing the signature with the one of the
    file it read then finds a mismatch.
    """
    where, params = item_conditions(crit)
    found: dict[int, list[int]] = {rid: [] for rid in rids}
    signatures: dict[int, tuple[int, int, int]] = {}
    for start in range(0, len(rids), 500):
        chunk = list(rids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        sql = (
            "SELECT r.rid, f.size, f.mtime_ns, f.inode FROM runs r "
            f"JOIN files f ON f.name = r.file_name WHERE r.rid IN ({marks})"
        )
        for rid, size, mtime_ns, inode in conn.execute(sql, chunk):
            signatures[rid] = (size, mtime_ns, inode)
        cond = [f"i.rid IN ({marks})", *where]
        sql = f"SELECT i.rid, i.pos FROM items i {_where(cond)} ORDER BY i.rid, i.pos"
        for rid, pos in conn.execute(sql, [*chunk, *params]):
            found[rid].append(pos)
    return {rid: ItemPositions(found[rid], signatures.get(rid)) for rid in rids}


def item_matches(crit: ItemCriteria, item: Any) -> bool:
    """Whether one item (an :class:`~storage.models.ExecutionItem`) matches ``crit`` exactly as
    :func:`item_conditions` would select its row; ``crit.text`` cannot be decided here (FTS5's
    tokenizer) and must be None."""
    if crit.text is not None:
        raise ValueError("full-text criteria are decided by the index only")
    return (
        _typed_match(item.item_type, crit.item_types, KNOWN_ITEM_TYPES)
        and _typed_match(item.media_type, crit.media_types, KNOWN_MEDIA_TYPES)
        and (not crit.stages or item.stage in crit.stages)
        and (crit.stage_iteration is None or item.stage_iteration == crit.stage_iteration)
        and (crit.loop_iteration is None or item.loop_iteration == crit.loop_iteration)
        and (not crit.models_used or item.model_used in crit.models_used)
        and (not crit.backend_types or item.backend_type in crit.backend_types)
        and (not crit.configs_used or item.config_used in crit.configs_used)
    )


def _typed_match(value: str, values: Sequence[str | None], known: frozenset[str]) -> bool:
    """:func:`_typed_in` for one value: ``None`` in ``values`` stands for every unknown value."""
    if not values:
        return True
    return value in values or (None in values and value not in known)


# -- statistics -----------------------------------------------------------------------------

_RUN_GROUPS: Final = frozenset(
    {"config_name", "safety_level", "execution_mode", "user_id", "session_id"}
)
_ITEM_GROUPS: Final = frozenset({"item_type", "model_used", "backend_type", "media_type"})


class StatsSource:
    """Figures over the runs matching a filter (all runs when None), each computed on demand.

    ``reader`` gives the connection to query at the time of each call (the calling thread's).
    """

    def __init__(
        self, reader: Callable[[], sqlite3.Connection], flt: RunFilter | None = None
    ) -> None:
        self._reader = reader
        self._where, self._params = run_conditions(flt)

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self._reader().execute(sql, self._params).fetchall()

    def totals(self) -> tuple[int, int]:
        """(number of runs, bytes of their files)."""
        row = self._rows(
            f"SELECT count(*), coalesce(sum(r.size), 0) FROM runs r {_where(self._where)}"
        )
        return int(row[0][0]), int(row[0][1])

    def oldest(self) -> datetime | None:
        """Start time of the oldest run."""
        return self._edge("ASC")

    def newest(self) -> datetime | None:
        """Start time of the newest run."""
        return self._edge("DESC")

    def _edge(self, direction: str) -> datetime | None:
        rows = self._rows(
            f"SELECT r.ts_raw FROM runs r {_where(self._where)} ORDER BY r.ts {direction} LIMIT 1"
        )
        return datetime.fromisoformat(rows[0][0]) if rows else None

    def invalid(self) -> list[tuple[str, str]]:
        """(file name, reason) of every file that is not served, by name."""
        rows = (
            self._reader()
            .execute(f"SELECT name, reason FROM files WHERE status != {STATUS_VALID} ORDER BY name")
            .fetchall()
        )
        return [(str(name), str(reason)) for name, reason in rows]

    def runs_by(self, column: str) -> list[tuple[str, int]]:
        """Runs per value of a run column, most frequent first."""
        if column not in _RUN_GROUPS:
            raise ValueError(f"cannot group runs by {column}")
        cond = _where([*self._where, f"r.{column} IS NOT NULL"])
        return self._grouped(
            f"SELECT r.{column}, count(*) AS n FROM runs r {cond} "
            f"GROUP BY r.{column} ORDER BY n DESC, r.{column}"
        )

    def runs_by_day(self) -> list[tuple[str, int]]:
        """Runs per day of their local start time, newest day first."""
        return self._grouped(
            f"SELECT r.day, count(*) FROM runs r {_where(self._where)} "
            "GROUP BY r.day ORDER BY r.day DESC"
        )

    def items_by(self, column: str) -> list[tuple[str, int]]:
        """Items (of the matching runs) per value of an item column, most frequent first."""
        if column not in _ITEM_GROUPS:
            raise ValueError(f"cannot group items by {column}")
        join = "JOIN runs r ON r.rid = i.rid" if self._where else ""
        cond = _where([*self._where, f"i.{column} IS NOT NULL"])
        return self._grouped(
            f"SELECT i.{column}, count(*) AS n FROM items i {join} {cond} "
            f"GROUP BY i.{column} ORDER BY n DESC, i.{column}"
        )

    def _grouped(self, sql: str) -> list[tuple[str, int]]:
        return [(str(value), int(count)) for value, count in self._rows(sql)]
