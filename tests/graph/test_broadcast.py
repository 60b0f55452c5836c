"""The broadcaster: every subscriber of a kind gets each change once; slow ones are dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from graph.broadcast import QUEUE_SIZE, Broadcaster, SlowConsumerError
from storage.index import SyncReport


def report(added: list[str] = (), changed: list[str] = ()) -> SyncReport:  # type: ignore[assignment]
    return SyncReport(
        added=len(added), updated=len(changed), added_ids=list(added), changed_ids=list(changed)
    )


async def drain(events: AsyncIterator[list[str]]) -> None:
    """Consume what was queued; the error that ended the stream propagates."""
    async for _ in events:
        pass


def test_events_reach_subscribers_of_their_kind_only() -> None:
    async def scenario() -> None:
        hub = Broadcaster()
        hub.bind(asyncio.get_running_loop())
        added = hub.subscribe("added")
        changed = hub.subscribe("changed")
        first_added = asyncio.ensure_future(anext(added))
        first_changed = asyncio.ensure_future(anext(changed))
        await asyncio.sleep(0)
        hub.publish(report(added=["a", "b"], changed=["c"]))
        assert await asyncio.wait_for(first_added, 1) == ["a", "b"]
        assert await asyncio.wait_for(first_changed, 1) == ["c"]
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await anext(added)

    asyncio.run(scenario())


def test_a_slow_subscriber_is_dropped_and_others_keep_going() -> None:
    async def scenario() -> None:
        hub = Broadcaster()
        hub.bind(asyncio.get_running_loop())
        slow = hub.subscribe("added")
        fast = hub.subscribe("added")
        slow_first = asyncio.ensure_future(anext(slow))
        fast_first = asyncio.ensure_future(anext(fast))
        await asyncio.sleep(0)
        received = []
        for n in range(QUEUE_SIZE + 10):
            hub.publish(report(added=[f"id{n}"]))
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
