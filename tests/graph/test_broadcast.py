"""The broadcaster: it follows the index's change log, so every subscriber of a kind gets each
change once, whichever process (or index object) synced it; slow subscribers are dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from graph.services.broadcast import QUEUE_SIZE, Broadcaster, SlowConsumerError
from storage.index import Change, RecordIndex, SyncReport
from tests.factory import dump, record_dict, write_record


class FakeFeed:
    """A change log in memory."""

    def __init__(self) -> None:
        self.rows: list[Change] = []

    def append(self, kind: str, *ids: str) -> None:
        for eid in ids:
            self.rows.append((len(self.rows) + 1, kind, eid))

    def last_change(self) -> int:
        return len(self.rows)

    def changes_after(self, seq: int, limit: int = 1000) -> list[Change]:
        return self.rows[seq : seq + limit]


def poked(ids: list[str]) -> SyncReport:
    return SyncReport(added=len(ids), added_ids=ids)


async def drain(events: AsyncIterator[list[str]]) -> None:
    """Consume what was queued; the error that ended the stream propagates."""
    async for _ in events:
        pass


def test_events_reach_subscribers_of_their_kind_only_in_log_order() -> None:
    async def scenario() -> None:
        feed = FakeFeed()
        feed.append("added", "before")  # logged before start-up: nobody hears of it
        hub = Broadcaster(interval_s=3600)  # only the poke delivers here
        hub.bind(asyncio.get_running_loop(), feed)
        added = hub.subscribe("added")
        changed = hub.subscribe("changed")
        first_added = asyncio.ensure_future(anext(added))
        first_changed = asyncio.ensure_future(anext(changed))
        await asyncio.sleep(0)
        feed.append("added", "a", "b")
        feed.append("changed", "c")
        feed.append("added", "d")
        hub.publish(poked(["a"]))
        assert await asyncio.wait_for(first_added, 1) == ["a", "b"]
        assert await asyncio.wait_for(anext(added), 1) == ["d"]
        assert await asyncio.wait_for(first_changed, 1) == ["c"]
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await anext(added)

    asyncio.run(scenario())


def test_changes_logged_elsewhere_arrive_on_the_timer_once_each() -> None:
    async def scenario() -> None:
        feed = FakeFeed()
        hub = Broadcaster(interval_s=0.01)
        hub.bind(asyncio.get_running_loop(), feed)
        events = hub.subscribe("added")
        got: list[str] = []
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        for n in range(30):
            feed.append("added", f"id{n}")  # as another process's sync would, no poke
            if n % 7 == 0:
                hub.publish(poked([f"id{n}"]))  # a poke on top of the timer changes nothing
            await asyncio.sleep(0.003)
        got.extend(await asyncio.wait_for(first, 1))
        while len(got) < 30:
            got.extend(await asyncio.wait_for(anext(events), 1))
        assert got == [f"id{n}" for n in range(30)]
        await asyncio.sleep(0.05)
        assert hub.subscriber_count == 1
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await anext(events)

    asyncio.run(scenario())


def test_a_slow_subscriber_is_dropped_and_others_keep_going() -> None:
    async def scenario() -> None:
        feed = FakeFeed()
        hub = Broadcaster(interval_s=3600)
        hub.bind(asyncio.get_running_loop(), feed)
        slow = hub.subscribe("added")
        fast = hub.subscribe("added")
        slow_first = asyncio.ensure_future(anext(slow))
        fast_first = asyncio.ensure_future(anext(fast))
        await asyncio.sleep(0)
        received = []
        for n in range(QUEUE_SIZE + 10):
            feed.append("added", f"id{n}")
            hub.publish(poked([f"id{n}"]))
            await asyncio.sleep(0)  # let the delivery run
            if n == 0:
                received.append(await fast_first)
            else:
                received.append(await anext(fast))
        assert len(received) == QUEUE_SIZE + 10
        assert await slow_first == ["id0"]
        with pytest.raises(SlowConsumerError):
            await drain(slow)
        assert hub.subscriber_count == 1
        hub.close()

    asyncio.run(scenario())


def test_two_index_objects_on_one_file_each_hear_the_others_syncs(tmp_path: Path) -> None:
    """Two processes on one index file, in miniature: B's broadcaster follows the log that A's
    syncs write; B's own sync of the same files finds nothing and logs nothing."""
    store = tmp_path / "store"
    store.mkdir()
    index_path = tmp_path / "index.sqlite3"

    async def scenario(a: RecordIndex, b: RecordIndex) -> None:
        hub = Broadcaster(interval_s=0.02)
        hub.bind(asyncio.get_running_loop(), b)
        added, changed = hub.subscribe("added"), hub.subscribe("changed")
        first_added = asyncio.ensure_future(anext(added))
        first_changed = asyncio.ensure_future(anext(changed))
        await asyncio.sleep(0)
        path = write_record(store, record_dict("exec_new"))
        assert a.sync().added_ids == ["exec_new"]
        assert not b.sync().changed
        assert await asyncio.wait_for(first_added, 2) == ["exec_new"]
        path.write_bytes(dump(record_dict("exec_new", config_name="bauhaus")) + b"\n")
        assert a.sync_names([path.name]).changed_ids == ["exec_new"]
        assert await asyncio.wait_for(first_changed, 2) == ["exec_new"]
        await asyncio.sleep(0.1)
        assert b.changes_after(0) == [(1, "added", "exec_new"), (2, "changed", "exec_new")]
        hub.close()

    with RecordIndex(store, index_path) as a:
        a.sync()
        with RecordIndex(store, index_path) as b:
            asyncio.run(scenario(a, b))
