"""trio-specific behaviour of `transports.trio` iterators: checkpoints on buffered items,
and a reader paced to its consumer.

Items already waiting are handed out after a cancellation point, with a full
schedule point every `_SCHEDULE_EVERY` items (a scheduler trip per item cost more
than decoding it). These tests pin both halves of that contract.
"""

from __future__ import annotations

import pytest
import trio
from harness import ACCESS_TOKEN, CLIENT_TOKEN, most_waiting

from protocore.mews import ResourceEvent, ResourceState
from transports.trio import _READ_AHEAD, _SCHEDULE_EVERY, connect_mews, serve_mews

pytestmark = pytest.mark.timeout(30)

TOKENS = {"client_token": CLIENT_TOKEN, "access_token": ACCESS_TOKEN}
BURST = 4 * _SCHEDULE_EVERY


def burst() -> list[ResourceEvent]:
    return [ResourceEvent(id=f"room-{n}", state=ResourceState.DIRTY) for n in range(BURST)]


def test_cancellation_is_honoured_between_buffered_items() -> None:
    async def main() -> None:
        async with serve_mews(**TOKENS) as server, connect_mews(server.url, **TOKENS) as events:
            server.publish(burst())  # one message: its events arrive together
            taken = 1
            await anext(events)
            assert len(events) == BURST - 1
            with trio.CancelScope() as scope:
                async for _ in events:
                    taken += 1
                    if taken == 3:
                        scope.cancel()
            assert scope.cancelled_caught
            assert taken == 3  # the 4th item was not handed out: Cancelled came first
            assert len(events) == BURST - 3  # nothing lost: the rest still waits

    trio.run(main)


def test_other_tasks_run_while_a_consumer_drains_a_buffer() -> None:
    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await trio.sleep(0)

        async with serve_mews(**TOKENS) as server, connect_mews(server.url, **TOKENS) as events:
            server.publish(burst())  # one message: its events arrive together
            got = [await anext(events)]
            assert len(events) == BURST - 1
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                before = ticks
                got += [await anext(events) for _ in range(BURST - 1)]
                nursery.cancel_scope.cancel()
            assert [e.id for e in got] == [e.id for e in burst()]
            # At least one full checkpoint per _SCHEDULE_EVERY items let the ticker run.
            assert ticks - before >= BURST // _SCHEDULE_EVERY - 1

    trio.run(main)


def test_the_reader_stays_a_read_ahead_of_a_consumer_that_takes_turns_with_it() -> None:
    """However large the buffer, the reader waits once `_READ_AHEAD` events wait for the
    consumer (decoded events cost the garbage collector; TCP holds the rest), and
    nothing is lost or reordered on the way."""
    messages = 3000

    async def main() -> None:
        async with (
            serve_mews(**TOKENS) as server,
            connect_mews(server.url, buffer_size=10_000, **TOKENS) as events,
        ):
            sent = [
                ResourceEvent(id=f"room-{n}", state=ResourceState.CLEAN) for n in range(messages)
            ]
            for event in sent:  # all queued before the consumer takes anything
                assert server.publish([event]) == 1
            got: list[ResourceEvent] = []
            most = 0
            while len(got) < messages:
                most = max(most, len(events))
                got.append(await anext(events))  # type: ignore[arg-type]
            assert got == sent
            assert most <= most_waiting(_READ_AHEAD, sent[0]) < messages

    trio.run(main)
