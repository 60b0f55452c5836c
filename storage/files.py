"""Writing files so that a reader sees the old content or the new, never a part, and a crash loses
neither.

Every file execgraph writes outside SQLite goes through here: exports and their sidecars, the
pseudonym key, the tokens file, the audit log, and the demo store's well-behaved writer.

* :func:`atomic_writer` / :func:`write_atomic`: the bytes go into a private temporary file in
  the target's folder (:func:`temporary_name`: a dot, the target's name, ``.tmp-`` and 16
  random characters, so it never ends in ``.json`` and no store reader or watcher takes it for a
  record), which is fsynced, given its final mode, renamed over the target (``os.replace``) and
  whose folder is then fsynced, so the rename itself survives a crash. On any error the
  temporary file is removed and the target is left as it was.
* :func:`append_durably`: one ``write`` in append mode, then fsync (the audit log, the tokens
  file: appends from several processes never overwrite each other, which a rewrite could).
* :func:`sync_file`, :func:`sync_directory`, :func:`replace_durably`: the pieces, for a file
  another library wrote (the index's cold build).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Final

#: What :func:`temporary_name` makes: a leftover of a killed writer matches it.
TEMPORARY_NAME: Final = re.compile(r"\..+\.tmp-[A-Za-z0-9_-]{16}")


def temporary_name(target: Path) -> Path:
    """A fresh hidden name beside ``target`` for writing it (``.<name>.tmp-<16 random>``)."""
    return target.with_name(f".{target.name}.tmp-{secrets.token_urlsafe(12)}")


def sync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk (for a file some other code wrote and closed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_directory(directory: Path) -> None:
    """Make the names created, renamed or removed in ``directory`` durable.

    A no-op where the file system or platform cannot fsync a directory.
    """
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace_durably(source: Path, target: Path) -> None:
    """Rename the complete, synced file ``source`` over ``target``, then sync the folder."""
    os.replace(source, target)
    sync_directory(target.parent)


@contextlib.contextmanager
def atomic_writer(target: Path, *, mode: int = 0o600) -> Iterator[io.FileIO]:
    """A new private file to write ``target``'s bytes into; in place with ``mode`` on success.

    The file is raw (unbuffered); a buffer may wrap it, and closing either is allowed (the file
    descriptor stays open until this function has synced it). ``mode`` is set exactly (the
    umask does not apply); until then the file is readable by its owner only.
    """
    temporary = temporary_name(target)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            with io.FileIO(fd, "wb", closefd=False) as out:
                yield out
            os.fsync(fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        replace_durably(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomic(target: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``target`` by ``data`` as :func:`atomic_writer` does."""
    with atomic_writer(target, mode=mode) as out:
        _write_all(out.fileno(), data)


def create_atomic(target: Path, data: bytes, *, mode: int = 0o600) -> bool:
    """Create ``target`` holding ``data`` unless it exists; whether this call created it.

    Like :func:`write_atomic`, but never replaces a file: when several processes create the
    same file at once, exactly one wins and every one reads the winner's complete bytes.
    """
    temporary = temporary_name(target)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with io.FileIO(fd, "wb") as out:
            _write_all(out.fileno(), data)
            os.fsync(fd)
            os.fchmod(fd, mode)
        try:
            os.link(temporary, target)
        except FileExistsError:
            return False
        sync_directory(target.parent)
        return True
    finally:
        temporary.unlink(missing_ok=True)


def append_durably(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Append ``data`` to ``path`` (created with ``mode`` if missing) in one write, then fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
