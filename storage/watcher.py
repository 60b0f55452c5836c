"""Watching the store: file-system notifications (inotify via watchfiles) feed the index.

One watcher per server, in one background thread, shared by everyone: it turns change events
into ``index.sync_names`` calls; the index hands each sync's report to its listeners
(live subscriptions, see ``RecordIndex.add_listener``). A periodic full sync is the safety
net for missed events, and ``mode="poll"`` serves file systems without notifications
(network mounts). Nothing in here stops on an error: a failing sync is logged and retried on
the next event or tick.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Literal

import watchfiles

from storage.index import RecordIndex

log = logging.getLogger(__name__)


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
        self._initial_sync = False

    def start(self, *, initial_sync: bool = False) -> None:
        """Start the background thread (idempotent); optionally sync the whole store first."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._initial_sync = initial_sync
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

    def _sync(self, names: set[str] | None) -> None:
        try:
            if names is None:
                self.index.sync()
            else:
                self.index.sync_names(names)
        except Exception:
            log.exception("index sync failed; retrying on the next change")

    def _run(self) -> None:
        last_full = time.monotonic()
        try:
            for changes in watchfiles.watch(
                self.index.store,
                stop_event=self._stop,
                debounce=400,
                step=30,
                rust_timeout=1000,
                yield_on_timeout=True,
                recursive=False,
                force_polling=self.mode == "poll",
                poll_delay_ms=self.poll_interval_ms,
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                if self._initial_sync:  # after notifications are on: nothing slips through
                    self._initial_sync = False
                    self._sync(None)
                names = {Path(path).name for _, path in changes}
                if names:
                    self._sync(names)
                if time.monotonic() - last_full >= self.rescan_interval_s:
                    last_full = time.monotonic()
                    self._sync(None)
        except Exception:
            if self._stop.is_set():
                return
            log.exception("file notifications failed; falling back to polling the store")
            self._poll_forever()

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.poll_interval_ms / 1000):
            self._sync(None)
