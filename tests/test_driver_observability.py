"""State changes, ping and latency, and stats of a client driver, in memory with a fake clock."""

from __future__ import annotations

import pytest
from test_driver import Wire, engine, opened, placeos, placeos_server

from protocore import ConnectionLost
from protocore.driver import ClientState


def test_states_through_a_drop_and_a_reconnect() -> None:
    client = placeos()
    seen: list[ClientState] = []
    client.on_state_change = seen.append
    wire = opened(Wire(client, placeos_server(engine())))
    wire.drop()
    wire.at(1.0)
    wire.dial()
    client.close(wire.now)
    wire.pump()
    assert seen == [
        ClientState("open"),
        ClientState("reconnecting", attempt=1, delay=1.0, retry_at=1.0),
        ClientState("connecting", attempt=1),
        ClientState("open"),
        ClientState("closing"),
        ClientState("closed"),
    ]
    assert client.state == ClientState("closed")


def test_a_raising_watcher_is_logged_and_the_client_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = placeos()

    def broken(state: ClientState) -> None:
        raise RuntimeError("the application's bug")

    client.on_state_change = broken
    wire = opened(Wire(client, placeos_server(engine())))
    assert client.state.phase == "open"
    assert "on_state_change raised" in caplog.text
    assert wire.client.connected


def test_ping_settles_with_the_round_trip_and_sets_latency() -> None:
    wire = opened(Wire(placeos(), placeos_server(engine())))
    client, peer = wire.client, wire.peer
    assert peer is not None
    assert client.latency is None
    call = client.ping(5.0)
    again = client.ping(5.0)  # one ping out at a time: both hear its pong
    peer.receive_data(client.data_to_send(), 5.0)  # the ping leaves at 5.0
    pong = peer.data_to_send()
    assert not call.done
    client.receive_data(pong, 5.25)  # and its pong is back at 5.25
    assert (call.value, again.value, client.latency) == (0.25, 0.25, 0.25)


def test_a_ping_in_flight_fails_when_the_connection_drops() -> None:
    wire = opened(Wire(placeos(), placeos_server(engine())))
    client = wire.client
    call = client.ping(wire.now)
    wire.drop()
    assert call.done
    assert isinstance(call.error, ConnectionLost)
    with pytest.raises(ConnectionLost, match="reconnecting"):
        client.ping(wire.now)


def test_stats_keep_the_counts_of_earlier_connections() -> None:
    wire = opened(Wire(placeos(), placeos_server(engine())))
    client = wire.client
    call = client.exec("sys-1", "Display", "add", (2, 3), index=1, timeout=None, now=wire.now)
    wire.pump()
    assert call.value == 5
    first = client.stats
    assert (first.messages_out, first.messages_in) == (1, 1)
    wire.drop()
    wire.at(1.0)
    wire.dial()
    call = client.exec("sys-1", "Display", "add", (1, 1), index=1, timeout=None, now=wire.now)
    wire.pump()
    stats = client.stats
    assert (stats.messages_out, stats.messages_in, stats.reconnects) == (2, 2, 1)
    assert stats.bytes_in > first.bytes_in
    assert first.messages_out == 1  # a snapshot does not change afterwards
