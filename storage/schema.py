"""The SQLite layout of the index that sits beside (never inside) the record store.

The index holds exactly what listing, filtering, sorting, counting and paginating need, so those
never open a record file. Bump :data:`FORMAT_VERSION` whenever the layout or the meaning of a
column changes: an index of another version is discarded and rebuilt from the store.
"""

from __future__ import annotations

from typing import Final

FORMAT_VERSION: Final = "7"

#: Items get FTS rowids ``rid << ITEM_BITS | position``; a record has fewer than 2**20 items.
ITEM_BITS: Final = 20

#: FTS5's ``automerge`` setting of the index (FTS5's default).
FTS_AUTOMERGE: Final = 4

#: The change log keeps at least this many of its newest rows (see ``changes`` below).
CHANGE_LOG_KEEP: Final = 20_000

#: File states kept in ``files.status``.
STATUS_VALID: Final = 0
STATUS_INVALID: Final = 1
STATUS_DUPLICATE: Final = 2

#: Columns of ``runs``, in table order, with their declarations: the one list of them (the
#: DDL, the inserts and the staging tables are made from it). A column named after a field of
#: :class:`storage.models.ExecutionRecord` holds that field's value, copied by name
#: (``storage.extract``); the others are computed there.
RUN_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("rid", "INTEGER PRIMARY KEY AUTOINCREMENT"),
    ("execution_id", "TEXT NOT NULL UNIQUE"),
    ("file_name", "TEXT NOT NULL UNIQUE"),
    ("config_name", "TEXT NOT NULL"),
    ("ts", "TEXT NOT NULL"),  # wall-clock sort key YYYY-MM-DDTHH:MM:SS.ffffff
    ("ts_raw", "TEXT NOT NULL"),  # the timestamp as served (ISO 8601, naive stays naive)
    ("day", "TEXT NOT NULL"),  # YYYY-MM-DD of ts, for per-day counts
    ("user_id", "TEXT NOT NULL"),
    ("session_id", "TEXT NOT NULL"),
    ("execution_mode", "TEXT"),
    ("safety_level", "TEXT"),
    ("used_seed", "TEXT"),  # text: seeds may exceed 64 bits
    ("duration", "REAL NOT NULL"),  # total_execution_time, -1 when absent (sort key)
    ("total_execution_time", "REAL"),
    ("taxonomy_version", "TEXT"),
    ("item_count", "INTEGER NOT NULL"),
    ("size", "INTEGER NOT NULL"),
)

#: Columns of ``items``, in table order, as :data:`RUN_COLUMNS` (same rule for field names).
ITEM_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("rid", "INTEGER NOT NULL"),
    ("pos", "INTEGER NOT NULL"),  # 0-based position of the item in the file
    ("seq", "INTEGER NOT NULL"),  # sequence_number
    ("item_type", "TEXT NOT NULL"),
    ("media_type", "TEXT NOT NULL"),
    ("stage", "INTEGER NOT NULL"),
    ("stage_iteration", "INTEGER"),
    ("loop_iteration", "INTEGER"),
    ("model_used", "TEXT"),
    ("backend_type", "TEXT"),
    ("config_used", "TEXT"),
)

RUN_COLUMN_NAMES: Final = tuple(name for name, _ in RUN_COLUMNS)
ITEM_COLUMN_NAMES: Final = tuple(name for name, _ in ITEM_COLUMNS)
RUN_WIDTH: Final = len(RUN_COLUMNS)
ITEM_WIDTH: Final = len(ITEM_COLUMNS)


def _columns(columns: tuple[tuple[str, str], ...]) -> str:
    return ",\n    ".join(f"{name} {declaration}" for name, declaration in columns)


TABLE_DDL: Final = f"""
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Every *.json entry of the store with the signature it had when last read.
CREATE TABLE files (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT,
    execution_id TEXT
) WITHOUT ROWID;

-- One row per served record. rid is never reused (AUTOINCREMENT), so stale full-text rows of a
-- replaced record can never match a live one.
CREATE TABLE runs (
    {_columns(RUN_COLUMNS)}
);

-- One row per item of a served record; pos is its 0-based position in the file.
CREATE TABLE items (
    {_columns(ITEM_COLUMNS)},
    PRIMARY KEY (rid, pos)
) WITHOUT ROWID;

-- Every run a sync added or changed, in commit order ('added' or 'changed'), written in the
-- transaction that stores the run. Each server process follows it to tell its subscribers, so
-- that every process hears of every change whichever process synced it. seq is never reused
-- (AUTOINCREMENT); each sync first prunes all but the newest CHANGE_LOG_KEEP rows.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    execution_id TEXT NOT NULL
);

-- Words of item content; contentless, rowid = rid << {ITEM_BITS} | pos.
CREATE VIRTUAL TABLE item_text USING fts5 (
    content, content='', columnsize=0, detail=none,
    tokenize='unicode61 remove_diacritics 2'
);
-- Segments merged as they are written, FTS5's default (a cold build turns it off meanwhile).
INSERT INTO item_text (item_text, rank) VALUES ('automerge', {FTS_AUTOMERGE});
"""

#: Secondary indexes: created with the tables, or after the rows when an index is built anew
#: (one sort per index instead of a B-tree update per row). ``IF NOT EXISTS``: creating them
#: again completes a set that an error interrupted.
INDEX_DDL: Final = f"""
CREATE INDEX IF NOT EXISTS files_status ON files (status, name);
CREATE INDEX IF NOT EXISTS files_claim ON files (execution_id) WHERE status = {STATUS_DUPLICATE};
CREATE INDEX IF NOT EXISTS runs_ts ON runs (ts, execution_id);
CREATE INDEX IF NOT EXISTS runs_duration ON runs (duration, execution_id);
CREATE INDEX IF NOT EXISTS runs_config ON runs (config_name, ts, execution_id);
CREATE INDEX IF NOT EXISTS runs_user ON runs (user_id, ts, execution_id);
CREATE INDEX IF NOT EXISTS runs_session ON runs (session_id, ts, execution_id);
CREATE INDEX IF NOT EXISTS runs_safety ON runs (safety_level, ts, execution_id);
CREATE INDEX IF NOT EXISTS runs_day ON runs (day);
CREATE INDEX IF NOT EXISTS items_type ON items (item_type, rid);
CREATE INDEX IF NOT EXISTS items_model ON items (model_used, rid);
"""

DDL: Final = TABLE_DDL + INDEX_DDL


def insert(table: str, columns: tuple[str, ...]) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...)``: rows give their values in that order."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


#: Rows are inserted with their values in column order.
INSERT_RUN: Final = insert("runs", RUN_COLUMN_NAMES)
INSERT_ITEM: Final = insert("items", ITEM_COLUMN_NAMES)

#: A staging file: the rows a worker process extracted from a slice of the store, copied into
#: the index with ``INSERT ... SELECT`` (see storage.extract). Same column order as the index.
STAGING_DDL: Final = f"""
CREATE TABLE runs ({", ".join(f"c{n}" for n in range(RUN_WIDTH))});
CREATE TABLE items ({", ".join(f"c{n}" for n in range(ITEM_WIDTH))});
CREATE TABLE texts (rowid INTEGER PRIMARY KEY, content TEXT NOT NULL);
"""
