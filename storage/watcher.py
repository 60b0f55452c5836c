"""Watching the store: file-system notifications (inotify via watchfiles) feed the index.

One watcher per server, in one background thread, shared by everyone: it turns change events
into ``index.sync_names`` calls; the index hands each sync's report to its listeners
(live subscriptions, see ``RecordIndex.add_listener``). A periodic full sync is the safety
net for missed events, and ``mode="poll"`` serves file systems without notifications
(network mounts).

Nothing is lost to a failed sync (a full disk, no descriptors left, a locked or damaged index):
the names of a failed ``sync_names`` stay pending, a failed full sync stays due, and both are
retried with backoff (:data:`RETRY_FIRST_S` doubling up to :data:`RETRY_MAX_S`) until a sync
succeeds. The store itself is followed too: on every tick (at least every :data:`TICK_MS`) the
watcher compares the store's directory (device, inode, resolved path) with the one it watches;
a store that vanished is reported until it returns, and a store that came back or was replaced
(recreated, swapped for a symlink) is watched anew and synced in full. While the store is
missing the index serves what it has. :meth:`StoreWatcher.health` says all this to
``/healthz``; the log gets one line per change of state, never one per retry.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import stat
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal, NamedTuple

import watchfiles

from storage.index import RecordIndex, StoreNotFoundError

log = logging.getLogger(__name__)

#: How long the watcher waits for a change before it looks at the store itself (and retries
#: what is due): the longest a vanished or replaced store goes unnoticed.
TICK_MS: Final = 100
#: The first retry of a failed sync comes after this long; each failure doubles the wait...
RETRY_FIRST_S: Final = 0.1
#: ...up to this.
RETRY_MAX_S: Final = 5.0


class StoreIdentity(NamedTuple):
    """Which directory the store path names now: a new one has another device or inode."""

    device: int
    inode: int
    real_path: str


def store_identity(path: Path) -> StoreIdentity | None:
    """The directory ``path`` names (symlinks followed), or None if there is none."""
    try:
        real = os.path.realpath(path, strict=True)
        st = os.stat(real)
    except (OSError, ValueError):
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return StoreIdentity(st.st_dev, st.st_ino, real)


@dataclass(frozen=True, slots=True)
class WatchHealth:
    """What the watcher knows of its store and its syncs (wall-clock times, epoch seconds)."""

    store_missing_since: float | None = None
    failing_since: float | None = None
    error: str | None = None
    """The last failed sync's error, without paths (``/healthz`` is public)."""

    @property
    def ok(self) -> bool:
        return self.store_missing_since is None and self.failing_since is None


def describe(exc: BaseException) -> str:
    """A short description of a sync's failure, fit for a public probe (no file paths)."""
    if isinstance(exc, StoreNotFoundError):
        return "store directory not found"
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, "OSError")
        return f"{name}: {exc.strerror or os.strerror(exc.errno)}"
    return f"{type(exc).__name__}: {exc}"[:200]


class StoreWatcher:
    """Keeps an index in sync with its store while running."""

    def __init__(
        self,
        index: RecordIndex,
        *,
        mode: Literal["auto", "poll"] = "auto",
        poll_interval_ms: int = 300,
        rescan_interval_s: float = 60.0,
    ) -> None:
        self.index = index
        self.mode = mode
        self.poll_interval_ms = poll_interval_ms
        self.rescan_interval_s = rescan_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Names seen changing and not yet synced (kept across failed syncs).
        self._pending: set[str] = set()
        #: Whether a full sync is due (start, rescan, store back or replaced, or one failed).
        self._full_due = False
        self._last_full = time.monotonic()
        self._retry_at = 0.0
        self._delay = 0.0
        #: Replaced whole (never mutated), so that other threads read a consistent state.
        self._health = WatchHealth()

    def start(self, *, initial_sync: bool = False) -> None:
        """Start the background thread (idempotent); optionally sync the whole store first."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._full_due = self._full_due or initial_sync
        self._thread = threading.Thread(target=self._run, name="execgraph-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> WatchHealth:
        """The store's and the syncs' state now (safe to call from any thread)."""
        return self._health

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        watched: StoreIdentity | None = None
        polling = self.mode == "poll"
        while not self._stop.is_set():
            identity = store_identity(self.index.store)
            if identity is None:
                self._store_missing()
                self._stop.wait(TICK_MS / 1000)
                continue
            if self._health.store_missing_since is not None:
                self._health = replace(self._health, store_missing_since=None)
                log.info("store directory %s is back: watching it again", self.index.store)
                self._full_due = True
            elif watched is not None and identity != watched:
                log.warning(
                    "store directory %s was replaced (now %s): watching the new one",
                    self.index.store,
                    identity.real_path,
                )
                self._full_due = True
            watched = identity
            try:
                self._watch(identity, polling=polling)
            except Exception as exc:
                if self._stop.is_set():
                    return
                self._full_due = True  # whatever changed meanwhile went unseen
                if store_identity(self.index.store) != identity:
                    continue  # the store went away under the watch: noticed above
                if not polling:
                    log.warning("file notifications failed (%s): polling the store instead", exc)
                    polling = True
                else:
                    log.exception("watching the store failed; trying again")
                    self._stop.wait(RETRY_MAX_S)
                continue
            # A stint of polling after notifications failed ends now and then: try them again.
            polling = self.mode == "poll"

    def _watch(self, identity: StoreIdentity, *, polling: bool) -> None:
        """Follow the directory ``identity`` until the store path names another one (or none),
        or the watcher stops. Syncs what changes, and what is due, on every yield."""
        fallback_until = (
            time.monotonic() + self.rescan_interval_s if polling and self.mode != "poll" else None
        )
        for changes in watchfiles.watch(
            identity.real_path,
            stop_event=self._stop,
            debounce=400,
            step=30,
            rust_timeout=TICK_MS,
            yield_on_timeout=True,
            recursive=False,
            force_polling=polling,
            poll_delay_ms=self.poll_interval_ms,
            raise_interrupt=False,
            ignore_permission_denied=True,
        ):
            # The first yield comes once notifications are on: a full sync due since the
            # start runs after that, so nothing slips through between the two.
            self._pending.update(Path(path).name for _, path in changes)
            if store_identity(self.index.store) != identity:
                return
            self._catch_up()
            if fallback_until is not None and time.monotonic() >= fallback_until:
                self._full_due = True  # the restart may miss an event
                return

    def _catch_up(self) -> None:
        """Run the full sync that is due, then sync the pending names; on failure keep both
        for a retry after the backoff."""
        now = time.monotonic()
        if now - self._last_full >= self.rescan_interval_s:
            self._full_due = True
        if now < self._retry_at or not (self._full_due or self._pending):
            return
        try:
            if self._full_due:
                self.index.sync()
                # It saw every name that changed before it listed the store.
                self._full_due = False
                self._last_full = time.monotonic()
                self._pending.clear()
            if self._pending:
                names, self._pending = self._pending, set()
                try:
                    self.index.sync_names(names)
                except BaseException:
                    self._pending |= names
                    raise
        except Exception as exc:
            self._failed(exc)
        else:
            self._succeeded()

    # -- state changes: one log line each --------------------------------------------------

    def _failed(self, exc: Exception) -> None:
        self._delay = RETRY_FIRST_S if not self._delay else min(self._delay * 2, RETRY_MAX_S)
        self._retry_at = time.monotonic() + self._delay
        if isinstance(exc, StoreNotFoundError):
            return  # the store vanished mid-sync: the next tick reports it missing
        error = describe(exc)
        health = self._health
        if health.failing_since is not None and health.error == error:
            return
        self._health = replace(
            health, failing_since=health.failing_since or time.time(), error=error
        )
        expected = isinstance(exc, OSError | sqlite3.Error)
        log.error(
            "index sync failing (%s): retrying until it succeeds (%d changed file(s) waiting)",
            exc,
            len(self._pending),
            exc_info=not expected,
        )

    def _succeeded(self) -> None:
        self._delay = 0.0
        self._retry_at = 0.0
        since = self._health.failing_since
        if since is not None:
            self._health = replace(self._health, failing_since=None, error=None)
            log.info("index sync recovered after %.1f s of failures", time.time() - since)

    def _store_missing(self) -> None:
        if self._health.store_missing_since is None:
            self._health = replace(self._health, store_missing_since=time.time())
            log.warning(
                "store directory %s is missing: serving the index as it is until it returns",
                self.index.store,
            )
