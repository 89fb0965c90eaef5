"""The real PlaceOS sessions on both ends of the real connection classes, in memory.

No sockets: bytes are pumped between a `ClientConnection(PlaceOSClient)` and a
`ServerConnection` serving a `MockEngine`, with a fake clock. This is the whole
core working together: handshake auth, requests, notifies, locally decided
results, timers, and the reconnect story with a fresh connection pair.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocore import Connected, ConnectionClosed, Event
from protocore.connection import ClientConnection, ConnectionState, ServerConnection
from protocore.placeos import Binding, ErrorCode, MockEngine, PlaceOSClient
from protocore.placeos.events import (
    AbortReason,
    DebugLog,
    HeartbeatLost,
    RequestAborted,
    RequestFailed,
    RequestSucceeded,
    ValueChanged,
)

KEY = "e2e-secret-key-0123456789"
URL = "ws://placeos.test/api/engine/v2/systems/control"
POWER = Binding("sys-room-1", "Display", 1, "power")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "systems.json"


def engine() -> MockEngine:
    return MockEngine.from_config(json.loads(EXAMPLE.read_text(encoding="utf-8")))


class Link:
    """One client connection and one server connection, pumped in memory."""

    def __init__(self, client: PlaceOSClient, eng: MockEngine, now: float) -> None:
        self.client = ClientConnection(client, URL, keepalive_interval=None)
        self.server = ServerConnection(eng.new_session(api_keys=[KEY]), keepalive_interval=None)
        self.client.start(now)
        self.server.start(now)
        self.seen: list[Event] = []
        self.pump(now)

    def pump(self, now: float) -> list[Event]:
        for _ in range(1000):
            up = self.client.data_to_send()
            down = self.server.data_to_send()
            if not up and not down:
                break
            if up and self.server.state is not ConnectionState.CLOSED:
                self.server.receive_data(up, now)
            if down and self.client.state is not ConnectionState.CLOSED:
                self.client.receive_data(down, now)
        self.server.events()
        events = self.client.events()
        self.seen += events
        return events


def of(events: list[Event], cls: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def test_bind_exec_notify_and_errors_travel_through_real_frames() -> None:
    eng = engine()
    session = PlaceOSClient(api_key=KEY)
    link = Link(session, eng, 0.0)
    assert of(link.seen, Connected)
    bind_id = session.bind("sys-room-1", "Display", "power", now=0.0)
    events = link.pump(0.0)
    assert [e.request_id for e in of(events, RequestSucceeded)] == [bind_id]
    assert [e.value for e in of(events, ValueChanged)] == [False]

    exec_id = session.exec("sys-room-1", "Display", "power", True, now=1.0)
    events = link.pump(1.0)
    assert [(e.request_id, e.value) for e in of(events, RequestSucceeded)] == [(exec_id, True)]
    assert [(e.binding, e.value) for e in of(events, ValueChanged)] == [(POWER, True)]
    assert session.value(POWER) is True

    missing = session.exec("sys-room-1", "Projector", "power", True, now=2.0)
    events = link.pump(2.0)
    (failed,) = of(events, RequestFailed)
    assert (failed.request_id, failed.code) == (missing, ErrorCode.MODULE_NOT_FOUND)


def test_a_second_bind_is_answered_locally_through_the_connections_events() -> None:
    eng = engine()
    session = PlaceOSClient(api_key=KEY)
    link = Link(session, eng, 0.0)
    session.bind("sys-room-1", "Display", "power", now=0.0)
    link.pump(0.0)
    second = session.bind("sys-room-1", "Display", "power", now=1.0)
    # Nothing goes on the wire: the connection's events() hands over the local answer.
    assert link.client.data_to_send() == b""
    assert [e.request_id for e in of(link.client.events(), RequestSucceeded)] == [second]
    (server_session,) = list(eng.iter_sessions())
    assert list(server_session.bindings) == [POWER]


def test_debug_lines_stream_until_ignore() -> None:
    eng = engine()
    session = PlaceOSClient(api_key=KEY)
    link = Link(session, eng, 0.0)
    session.debug("sys-room-1", "mod-room1-display", now=0.0)
    link.pump(0.0)
    eng.log("sys-room-1", "Display", "input changed to hdmi2", level="info")
    events = link.pump(0.5)
    assert [e.message.message for e in of(events, DebugLog)] == ["input changed to hdmi2"]
    session.ignore("sys-room-1", "mod-room1-display", now=1.0)
    link.pump(1.0)
    eng.log("sys-room-1", "Display", "not for us any more")
    assert of(link.pump(1.5), DebugLog) == []


def test_silent_server_is_detected_by_the_text_heartbeat() -> None:
    eng = engine()
    session = PlaceOSClient(api_key=KEY, heartbeat_interval=15.0, heartbeat_timeout=60.0)
    link = Link(session, eng, 0.0)
    # The server stops answering: advance the clock without pumping the server.
    now = 0.0
    lost: list[Event] = []
    while link.client.state is not ConnectionState.CLOSED and now < 200.0:
        deadline = link.client.next_deadline()
        assert deadline is not None
        now = deadline
        link.client.handle_timer(now)
        link.client.data_to_send()  # written into the void
        lost += link.client.events()
    assert of(lost, HeartbeatLost)
    assert 60.0 <= now <= 75.0
    (closed,) = of(lost, ConnectionClosed)
    # A close frame (1011) is written, but the dead peer never completes the close
    # handshake, so the connection ends as 1006 naming the cause.
    assert closed.code == 1006
    assert "HeartbeatLost" in closed.reason


def test_reconnect_rebinds_and_fails_pending_requests_fast() -> None:
    eng = engine()
    session = PlaceOSClient(api_key=KEY)
    link = Link(session, eng, 0.0)
    session.bind("sys-room-1", "Display", "power", now=0.0)
    session.debug("sys-room-1", "mod-room1-display", now=0.0)
    link.pump(0.0)
    pending = session.exec("sys-room-1", "Display", "power", True, now=1.0)
    # The link dies before the exec is even delivered.
    link.client.data_to_send()
    link.client.receive_eof(1.0)
    events = link.client.events()
    assert [(e.request_id, e.reason) for e in of(events, RequestAborted)] == [
        (pending, AbortReason.CONNECTION_LOST)
    ]
    link.server.receive_eof(1.0)
    assert eng.sessions == 0

    # A new connection with the same session: bindings and debug stream come back.
    again = Link(session, eng, 5.0)
    assert eng.sessions == 1
    assert session.bindings == (POWER,)
    eng.set_status("sys-room-1", "Display", "power", True)
    eng.log("sys-room-1", "Display", "back again")
    events = again.pump(6.0)
    assert [e.value for e in of(events, ValueChanged)][-1] is True
    assert [e.message.message for e in of(events, DebugLog)] == ["back again"]
    # Exactly one binding on the server side: re-binding doubled nothing.
    (server_session,) = list(eng.iter_sessions())
    assert list(server_session.bindings) == [POWER]


@pytest.mark.parametrize("key", ["wrong-key", ""])
def test_wrong_or_empty_key_is_refused_before_the_upgrade(key: str) -> None:
    eng = engine()
    if not key:
        with pytest.raises(Exception, match=r"api_key|credential|empty"):
            PlaceOSClient(api_key=key)
        return
    link = Link(PlaceOSClient(api_key=key), eng, 0.0)
    assert link.client.state is ConnectionState.CLOSED
    assert not of(link.seen, Connected)
    assert key not in repr(link.seen)
