"""State, latency, ping and stats: the same on every client."""

from __future__ import annotations

import threading

import pytest
from harness import (
    ACCESS_TOKEN,
    API_KEY,
    CLIENT_TOKEN,
    DISPLAY,
    MEWS_MESSAGES,
    SYS,
    Client,
    Served,
)

from protocore.backoff import Backoff
from protocore.driver import ClientState
from protocore.mews import decode_envelope

pytestmark = pytest.mark.timeout(60)


def test_state_latency_ping_and_stats(client: Client, placeos_server: Served) -> None:
    states: list[ClientState] = []

    async def scenario(c: Client) -> None:
        async with c.connect_placeos(
            placeos_server.url, api_key=API_KEY, on_state_change=states.append
        ) as placeos:
            raw = placeos.raw
            assert raw.state == ClientState("open")
            assert raw.latency is None  # no pong yet
            before = raw.stats
            assert await placeos.exec(SYS, DISPLAY, "add", 2, 3) == 5
            assert await placeos.exec(SYS, DISPLAY, "add", 1, 1) == 2
            rtt = await c.call(raw.ping)
            assert isinstance(rtt, float)
            assert rtt >= 0
            assert raw.latency == rtt
            stats = raw.stats
            assert stats.messages_out - before.messages_out == 2
            # Two answers, and the answer to the text heartbeat sent on opening when
            # it had not come before ``before`` was read.
            assert stats.messages_in - before.messages_in in (2, 3)
            assert stats.messages_in == stats.messages_out
            assert stats.bytes_in > 0
            assert stats.bytes_out > 0
            assert stats.reconnects == stats.dropped == stats.bad_messages == 0
            assert raw.stats is not stats  # a snapshot
        assert raw.state == ClientState("closed")

    client.run(scenario)
    assert [s.phase for s in states] == ["open", "closing", "closed"]


def test_reconnecting_state_and_counters_survive_the_drop(
    client: Client, placeos_server: Served
) -> None:
    states: list[ClientState] = []
    back = threading.Event()

    def watch(state: ClientState) -> None:
        states.append(state)
        if state.phase == "open" and len(states) > 1:
            back.set()

    async def scenario(c: Client) -> None:
        async with c.connect_placeos(
            placeos_server.url,
            api_key=API_KEY,
            reconnect=Backoff(base=0.02, cap=0.1),
            on_state_change=watch,
            buffer_size=1,
        ) as placeos:
            raw = placeos.raw
            assert await placeos.exec(SYS, DISPLAY, "add", 2, 3) == 5
            first = raw.stats.messages_out
            placeos_server.drop_connections()
            await c.wait_for(back)
            assert await placeos.exec(SYS, DISPLAY, "add", 1, 1) == 2
            stats = raw.stats
            assert stats.reconnects == 1
            assert stats.messages_out > first  # the first connection's count is kept
            async with placeos.bind(SYS, DISPLAY, "power") as power:
                assert await power.next() is False
                for n in range(3):  # a buffer of one: two of these are dropped
                    placeos_server.set_status(SYS, DISPLAY, "power", n)
                assert await placeos.exec(SYS, DISPLAY, "add", 0, 0) == 0
                assert await power.next() == 2
                assert power.dropped == 2
                assert raw.stats.dropped == 2
            assert raw.stats.dropped == 2  # still counted once the binding is gone

    client.run(scenario)
    phases = [s.phase for s in states]
    assert phases[:4] == ["open", "reconnecting", "connecting", "open"]
    waiting = states[1]
    assert waiting.attempt == 1
    assert waiting.delay is not None
    assert waiting.retry_at is not None


def test_mews_stats(client: Client, mews_server: Served) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_mews(
            mews_server.url,
            client_token=CLIENT_TOKEN,
            access_token=ACCESS_TOKEN,
            keepalive_interval=None,  # no keepalive: ping() works all the same
        ) as events:
            envelope = decode_envelope(MEWS_MESSAGES["001"])
            assert mews_server.publish(envelope) == 1
            assert await events.next() == envelope.events[0]
            stats = events.source.stats
            assert stats.messages_in == 1
            assert stats.messages_out == 0
            assert events.source.state.phase == "open"
            assert isinstance(await c.call(events.source.ping), float)
            assert isinstance(await c.call(events.source.ping), float)  # and again
            assert events.source.latency is not None

    client.run(scenario)
