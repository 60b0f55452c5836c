"""The exceptions the export package raises on purpose, as one small tree.

Callers (the GraphQL mutation, the CLI) catch ``ExportError`` and switch on the subclass: the
first three describe a request that cannot be served and carry a message a person can act on;
``ExportFailedError`` means writing went wrong, nothing was left on disk, and the original
exception is chained as ``__cause__`` for the server log. No message ever quotes record content,
ids or keys, so every one of them is safe to show to a client.

    ExportError
    ├── UnknownFormatError          no exporter is registered under that name
    ├── FormatUnavailableError      registered, but its module cannot be imported here
    ├── MissingPseudonymKeyError    pseudonymisation was asked for without a key
    └── ExportFailedError           writing the file failed; nothing was kept
        └── DiskFullError           ... because the folder's disk is full (ENOSPC, EDQUOT)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class ExportError(Exception):
    """Base class of every error the export package raises deliberately."""


class UnknownFormatError(ExportError):
    """No exporter is registered under the requested format name."""

    def __init__(self, format: str, known: Iterable[str]) -> None:
        self.format = format
        self.known = tuple(sorted(known))
        shown = format if len(format) <= 40 else f"{format[:40]}..."
        super().__init__(f"Unknown export format {shown!r}; choose one of {', '.join(self.known)}.")


class FormatUnavailableError(ExportError):
    """The format is registered but its exporter cannot be loaded (a missing dependency)."""

    def __init__(self, format: str) -> None:
        self.format = format
        super().__init__(f"The {format} export is not available on this server.")


class MissingPseudonymKeyError(ExportError):
    """A pseudonymised export was requested but no pseudonymisation key is configured."""

    def __init__(self) -> None:
        super().__init__(
            "A pseudonymised export was requested, but no pseudonymisation key is configured."
        )


class ExportFailedError(ExportError):
    """Writing the export failed; the partial file was removed. See ``__cause__`` for why."""

    def __init__(self, message: str, *, format: str | None = None) -> None:
        self.format = format
        super().__init__(message)


class DiskFullError(ExportFailedError):
    """The export folder's disk (or quota) is full; the partial file was removed.

    ``free_bytes`` is what the folder's file system had free after the cleanup (None when it
    could not be read); ``hint`` says what the reader can do (free space, or another folder).
    """

    def __init__(
        self, folder: Path, free_bytes: int | None, hint: str, *, format: str | None = None
    ) -> None:
        self.folder = folder
        self.free_bytes = free_bytes
        free = "free space unknown" if free_bytes is None else f"{free_bytes} bytes free"
        super().__init__(
            f"The {format or 'export'} export failed: the export folder's disk is full "
            f"({free}); {hint}. No file was kept.",
            format=format,
        )
