"""Fan-out of index changes to live subscriptions, in every server process.

The index appends every run a sync adds or changes to its change log (``changes``), in the
transaction that stores the run. Each server process follows that log: right after a sync of
its own (the index calls :meth:`Broadcaster.publish`) and on a short timer, for syncs of other
processes (workers of one ``serve``, or other ``serve`` processes on one index file). Each
entry is delivered once, in seq order, to every subscriber of its kind in this process, so which
process synced a change no longer matters. Following the log costs one ``SELECT max(seq)`` per
tick while nothing changes.

Deliveries drop into each subscriber's bounded queue. A subscriber that does not keep up (its
queue is full) is dropped with an error, so a slow client can never make the server's memory
grow; everyone else is unaffected. On shutdown every subscription ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from storage.index import Change, SyncReport

log = logging.getLogger(__name__)

EventKind = Literal["added", "changed"]
QUEUE_SIZE: Final = 1024
#: How often the change log is looked at for other processes' syncs (seconds).
FOLLOW_INTERVAL_S: Final = 0.1
#: Change log entries read at once.
_READ_AT_ONCE: Final = 1000


class ChangeFeed(Protocol):
    """Where changes come from: the index's change log (see ``storage.index``)."""

    def last_change(self) -> int: ...

    def changes_after(self, seq: int, limit: int = ...) -> list[Change]: ...


class SlowConsumerError(Exception):
    """A subscriber fell too far behind and was dropped."""


class BroadcasterClosedError(Exception):
    """The server is shutting down."""


@dataclass(eq=False)
class _Subscriber:
    kind: EventKind
    queue: asyncio.Queue[list[str] | BaseException] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )


class Broadcaster:
    """Delivers the execution ids of each logged change to every subscriber of that kind."""

    def __init__(self, interval_s: float = FOLLOW_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._feed: ChangeFeed | None = None
        self._seen = 0
        self._follower: asyncio.Task[None] | None = None
        self._subscribers: set[_Subscriber] = set()
        self._closed = False

    def bind(self, loop: asyncio.AbstractEventLoop, feed: ChangeFeed) -> None:
        """Follow ``feed`` on ``loop`` from its newest entry on (at start-up, in the loop)."""
        self._loop = loop
        self._feed = feed
        self._closed = False
        self._seen = feed.last_change()
        self._follower = loop.create_task(self._follow(), name="execgraph-change-follower")

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, report: SyncReport) -> None:
        """Called from any thread after a sync of this process; never blocks, never raises."""
        loop = self._loop
        if loop is None or self._closed or not (report.added_ids or report.changed_ids):
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
            loop.call_soon_threadsafe(self._catch_up)

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self._catch_up()

    def _catch_up(self) -> None:
        """Deliver every log entry after the last one delivered (in the loop's thread)."""
        feed = self._feed
        if feed is None or self._closed:
            return
        try:
            if not self._subscribers:
                self._seen = max(self._seen, feed.last_change())  # nobody to tell
                return
            while rows := feed.changes_after(self._seen, _READ_AT_ONCE):
                if rows[0][0] > self._seen + 1:
                    log.warning(
                        "%d change(s) were pruned from the index's change log before this "
                        "process read them",
                        rows[0][0] - self._seen - 1,
                    )
                self._seen = rows[-1][0]
                self._deliver(_events(rows))
                if len(rows) < _READ_AT_ONCE:
                    return
        except Exception:
            log.exception("reading the index's change log failed; retrying")

    def _deliver(self, events: list[tuple[EventKind, list[str]]]) -> None:
        for subscriber in list(self._subscribers):
            for kind, ids in events:
                if subscriber.kind != kind:
                    continue
                try:
                    subscriber.queue.put_nowait(ids)
                except asyncio.QueueFull:
                    log.warning("dropping a subscriber that fell %d events behind", QUEUE_SIZE)
                    self._subscribers.discard(subscriber)
                    self._force(subscriber, SlowConsumerError("subscriber fell too far behind"))
                    break

    @staticmethod
    def _force(subscriber: _Subscriber, error: BaseException) -> None:
        """Make ``error`` the next thing the subscriber sees, even if its queue is full."""
        while True:
            try:
                subscriber.queue.put_nowait(error)
                return
            except asyncio.QueueFull:
                subscriber.queue.get_nowait()

    async def subscribe(self, kind: EventKind) -> AsyncIterator[list[str]]:
        """Yield the execution ids of each change of ``kind`` until the server stops."""
        if self._closed:
            raise BroadcasterClosedError("the server is shutting down")
        subscriber = _Subscriber(kind)
        self._subscribers.add(subscriber)
        try:
            while True:
                item = await subscriber.queue.get()
                if isinstance(item, BroadcasterClosedError):
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._subscribers.discard(subscriber)

    def close(self) -> None:
        """End every subscription and stop following the log (at shutdown)."""
        self._closed = True
        if self._follower is not None:
            self._follower.cancel()
            self._follower = None
        for subscriber in list(self._subscribers):
            self._force(subscriber, BroadcasterClosedError())
        self._subscribers.clear()


def _events(rows: list[Change]) -> list[tuple[EventKind, list[str]]]:
    """Consecutive entries of one kind as one event, in log order."""
    events: list[tuple[EventKind, list[str]]] = []
    for _, kind, execution_id in rows:
        if kind not in ("added", "changed"):
            continue
        if events and events[-1][0] == kind:
            events[-1][1].append(execution_id)
        else:
            events.append(("added" if kind == "added" else "changed", [execution_id]))
    return events
