"""Fan-out of index changes to live subscriptions.

The one store watcher syncs the index in its thread; the index hands every sync's report to
:meth:`Broadcaster.publish`, which hops onto the server's event loop and drops the report into
each subscriber's bounded queue. A subscriber that does not keep up (its queue is full) is
dropped with an error, so a slow client can never make the server's memory grow; everyone else
is unaffected. On shutdown every subscription ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final, Literal

from storage.index import SyncReport

log = logging.getLogger(__name__)

EventKind = Literal["added", "changed"]
QUEUE_SIZE: Final = 1024


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
    """Delivers the execution ids of each change to every subscriber of that kind."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[_Subscriber] = set()
        self._closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the server's event loop (at start-up)."""
        self._loop = loop
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, report: SyncReport) -> None:
        """Called from any thread after a sync; never blocks, never raises."""
        loop = self._loop
        if loop is None or self._closed or not self._subscribers:
            return
        events: list[tuple[EventKind, list[str]]] = []
        if report.added_ids:
            events.append(("added", list(report.added_ids)))
        if report.changed_ids:
            events.append(("changed", list(report.changed_ids)))
        if events:
            try:
                loop.call_soon_threadsafe(self._deliver, events)
            except RuntimeError:  # the loop is closed: the server is stopping
                return

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
        """End every subscription (at shutdown)."""
        self._closed = True
        for subscriber in list(self._subscribers):
            self._force(subscriber, BroadcasterClosedError())
        self._subscribers.clear()
