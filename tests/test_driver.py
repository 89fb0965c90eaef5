"""The drivers in memory: reconnect decisions, wording, calls, feeds and backpressure.

No sockets and no clock: a `ServerDriver` (the fake servers' own logic) and a client
driver exchange bytes through `Wire`, and time is a number the test moves. What the
three transports do between sockets is decided here, so it is pinned here, once.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from protocore import ConnectionLost, EncodeError, HandshakeFailed
from protocore.backoff import Backoff
from protocore.driver import MewsDriver, Phase, PlaceOSDriver, ServerDriver
from protocore.driver.server import ConnectionOptions, Peer
from protocore.mews import (
    Envelope,
    MewsClient,
    MewsServer,
    Reconnected,
    ResourceEvent,
    ResourceState,
)
from protocore.placeos import Binding, MockEngine, ModuleMeta, PlaceOSClient, PlaceOSServer
from protocore.placeos.exceptions import ModuleNotFound, RequestTimeout

KEY = "driver-test-key-0123"
URL = "ws://fake.test/api/engine/v2/systems/control"
MEWS_URL = "ws://fake.test/ws/connector"
OPTIONS = ConnectionOptions(
    keepalive_interval=None,
    keepalive_timeout=20.0,
    handshake_timeout=10.0,
    close_timeout=2.0,
    max_message_size=1 << 20,
)


def fixed_backoff(**kw: Any) -> Backoff:
    return Backoff(base=1.0, factor=2.0, jitter=False, **kw)


def engine() -> MockEngine:
    eng = MockEngine()
    eng.add_system("sys-1")
    eng.add_module("sys-1", "Display", status={"power": False}, methods={"add": lambda a, b: a + b})
    return eng


def placeos_server(eng: MockEngine, keys: tuple[str, ...] = (KEY,)) -> ServerDriver:
    return ServerDriver("PlaceOS", lambda: PlaceOSServer(api_keys=keys, handler=eng), OPTIONS)


class Wire:
    """Carries bytes between a client driver and a fresh server peer per dial."""

    def __init__(self, client: PlaceOSDriver | MewsDriver, server: ServerDriver) -> None:
        self.client = client
        self.server = server
        self.peer: Peer | None = None
        self.now = 0.0

    def dial(self) -> None:
        assert self.client.phase is Phase.DIAL
        self.client.dial(self.now)
        self.client.socket_ready(self.now)
        self.peer = self.server.accept(self.now)
        self.pump()

    def pump(self) -> None:
        for _ in range(100):
            peer = self.peer
            up = self.client.data_to_send()
            down = peer.data_to_send() if peer is not None else b""
            if not up and not down:
                return
            if up and peer is not None:
                peer.receive_data(up, self.now)
            if down:
                self.client.receive_data(down, self.now)
        raise AssertionError("the two sides never went quiet")

    def drop(self) -> None:
        """The socket dies: both ends see EOF."""
        assert self.peer is not None
        self.peer.receive_eof(self.now)
        self.server.forget(self.peer)
        self.peer = None
        self.client.receive_eof(self.now)

    def at(self, when: float) -> None:
        self.now = when
        self.client.handle_timer(when)
        if self.peer is not None:
            self.peer.handle_timer(when)
        self.pump()


def placeos(**options: Any) -> PlaceOSDriver:
    options.setdefault("reconnect", fixed_backoff())
    options.setdefault("keepalive_interval", None)
    session = PlaceOSClient(api_key=options.pop("api_key", KEY), heartbeat_interval=None)
    return PlaceOSDriver(session, URL, credential="API key", **options)


def opened(wire: Wire) -> Wire:
    wire.dial()
    assert wire.client.phase is Phase.OPEN
    assert wire.client.opened.done
    assert wire.client.opened.error is None
    return wire


# -- connecting and reconnecting ----------------------------------------------------------


def test_a_refused_first_connection_is_final_and_names_the_credential() -> None:
    wire = Wire(placeos(api_key="wrong"), placeos_server(engine()))
    wire.dial()
    client = wire.client
    assert client.phase is Phase.CLOSED
    error = client.opened.error
    assert isinstance(error, HandshakeFailed)
    assert error.status_code == 401
    assert str(error) == f"{URL} refused the API key (HTTP 401)"
    assert client.next_deadline() is None  # nothing more to do: no retry is planned


def test_a_drop_reconnects_after_the_backoff_delay_and_rebinds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "protocore.transports")
    eng = engine()
    wire = opened(Wire(placeos(), placeos_server(eng)))
    client = wire.client
    sub = client.subscribe(Binding("sys-1", "Display", 1, "power"), wire.now)
    wire.pump()
    assert sub.reply.done
    assert list(sub.feed.items) == [False]
    wire.drop()
    assert client.phase is Phase.RECONNECTING
    assert (client.attempt, client.next_deadline()) == (1, 1.0)  # base 1 s, no jitter
    wire.at(0.5)
    assert client.phase is Phase.RECONNECTING  # too early: nothing happens
    wire.at(1.0)
    assert client.phase is Phase.DIAL
    wire.dial()
    assert client.phase is Phase.OPEN
    assert client.stats.reconnects == 1
    eng.set_status("sys-1", "Display", "power", True)
    wire.pump()
    # The binding came back by itself: its value again on re-binding, then the change.
    assert list(sub.feed.items) == [False, False, True]
    assert [r.getMessage() for r in caplog.records] == [
        f"connected to {URL}",
        f"connection to {URL} lost (1006 connection lost (EOF without a close frame))",
        f"reconnecting to {URL} in 1.00 s (attempt 1)",
        f"reconnected to {URL}",
    ]


def test_failed_attempts_back_off_longer_and_a_refusal_ends_it() -> None:
    wire = opened(Wire(placeos(), placeos_server(engine())))
    client = wire.client
    wire.drop()
    wire.at(1.0)
    client.dial(wire.now)
    client.dial_failed(ConnectionRefusedError(111, "Connection refused"), wire.now)
    assert client.phase is Phase.RECONNECTING
    assert (client.attempt, client.next_deadline()) == (2, 3.0)  # then 2 s
    wire.server = placeos_server(engine(), keys=("another",))  # the key was revoked
    wire.at(3.0)
    wire.dial()
    assert client.phase is Phase.CLOSED
    assert isinstance(client.error, HandshakeFailed)
    with pytest.raises(ConnectionLost, match=r"refused the API key \(HTTP 401\)"):
        client.check_usable()


def test_the_backoff_gives_up_and_says_after_how_many_attempts() -> None:
    wire = opened(Wire(placeos(reconnect=fixed_backoff(max_attempts=1)), placeos_server(engine())))
    client = wire.client
    wire.drop()
    wire.at(1.0)
    client.dial(wire.now)
    client.dial_failed(ConnectionRefusedError(111, "Connection refused"), wire.now)
    assert client.phase is Phase.CLOSED
    assert str(client.lost_error()) == f"gave up reconnecting to {URL} after 1 attempts"


def test_without_reconnect_a_drop_is_the_end() -> None:
    wire = opened(Wire(placeos(reconnect=False), placeos_server(engine())))
    wire.drop()
    assert wire.client.phase is Phase.CLOSED
    assert str(wire.client.lost_error()) == (
        f"connection to {URL} lost (1006 connection lost (EOF without a close frame))"
    )


@pytest.mark.parametrize(
    ("socket_up", "stage"),
    [(False, "opening the connection"), (True, "waiting for the WebSocket handshake")],
)
def test_the_connect_timeout_says_where_it_stopped(socket_up: bool, stage: str) -> None:
    client = placeos(connect_timeout=3.0)
    client.dial(0.0)
    if socket_up:
        client.socket_ready(0.0)
    assert client.next_deadline() == 3.0
    client.handle_timer(3.0)
    error = client.opened.error
    assert isinstance(error, TimeoutError)
    assert str(error) == f"connecting to {URL} timed out after 3 s ({stage})"


def test_socket_errors_are_reworded_and_keep_their_class() -> None:
    client = placeos()
    client.dial(0.0)
    client.dial_failed(ConnectionRefusedError(111, "Connect call failed ('x', 1)"), 0.0)
    error = client.opened.error
    assert type(error) is ConnectionRefusedError
    assert str(error) == f"[Errno 111] could not connect to {URL}: connection refused"


def test_close_is_polite_and_the_end_is_quiet() -> None:
    wire = opened(Wire(placeos(), placeos_server(engine())))
    client = wire.client
    client.close(wire.now)
    assert client.phase is Phase.CLOSING
    wire.pump()  # the close frame goes up, its answer comes down
    assert client.phase is Phase.CLOSED
    assert client.error is None
    assert client.finished.done
    assert client.last_close is not None
    assert client.last_close.code == 1000
    assert str(client.lost_error()) == "the client was closed"


def test_closing_while_reconnecting_ends_at_once() -> None:
    wire = opened(Wire(placeos(), placeos_server(engine())))
    wire.drop()
    wire.client.close(wire.now)
    assert wire.client.phase is Phase.CLOSED
    assert wire.client.next_deadline() is None


# -- PlaceOS calls and subscriptions --------------------------------------------------------


def test_calls_settle_with_values_errors_and_timeouts() -> None:
    wire = opened(Wire(placeos(), placeos_server(engine())))
    client = wire.client
    call = client.exec("sys-1", "Display", "add", (2, 3), index=1, timeout=None, now=wire.now)
    wire.pump()
    assert call.result() == 5
    missing = client.exec("sys-1", "Projector", "on", (), index=1, timeout=None, now=wire.now)
    wire.pump()
    assert isinstance(missing.error, ModuleNotFound)
    wire.peer = None  # the server goes silent
    late = client.exec("sys-1", "Display", "add", (1, 1), index=1, timeout=4.0, now=wire.now)
    wire.at(4.0)
    assert isinstance(late.error, RequestTimeout)


def test_a_full_feed_drops_the_oldest_and_an_unsubscribe_unbinds() -> None:
    eng = engine()
    wire = opened(Wire(placeos(buffer_size=2), placeos_server(eng)))
    client = wire.client
    target = Binding("sys-1", "Display", 1, "power")
    sub = client.subscribe(target, wire.now)
    wire.pump()
    for value in (1, 2, 3):
        eng.set_status("sys-1", "Display", "power", value)
    wire.pump()
    assert (list(sub.feed.items), sub.feed.dropped) == ([2, 3], 2)
    client.unsubscribe(sub, wire.now)
    wire.pump()
    assert eng.set_status("sys-1", "Display", "power", 4) == 0  # nobody is bound any more
    assert sub.feed.closed
    assert sub.feed.error is None


def test_a_second_subscription_gets_the_cached_value_first() -> None:
    wire = opened(Wire(placeos(), placeos_server(engine())))
    client = wire.client
    target = Binding("sys-1", "Display", 1, "power")
    first = client.subscribe(target, wire.now)
    wire.pump()
    second = client.subscribe(target, wire.now)  # answered from the session: no notify comes
    wire.pump()
    assert list(first.feed.items) == [False]
    assert list(second.feed.items) == [False]


def test_a_refused_bind_is_never_released() -> None:
    wire = opened(Wire(placeos(), placeos_server(engine())))
    client = wire.client
    sub = client.subscribe(ModuleMeta("sys-1", "mod-nope", 1), wire.now)
    wire.pump()
    assert isinstance(sub.reply.error, ModuleNotFound)
    client.unsubscribe(sub, wire.now)
    assert client.data_to_send() == b""  # no ignore for what was never held


def test_the_end_fails_every_waiting_call_and_feed() -> None:
    wire = opened(Wire(placeos(reconnect=False), placeos_server(engine())))
    client = wire.client
    wire.peer = None
    call = client.exec("sys-1", "Display", "add", (1, 1), index=1, timeout=None, now=wire.now)
    sub = client.subscribe(Binding("sys-1", "Display", 1, "power"), wire.now)
    client.receive_eof(wire.now)
    assert isinstance(call.error, ConnectionLost)
    assert isinstance(sub.feed.error, ConnectionLost)
    with pytest.raises(ConnectionLost):
        client.exec("sys-1", "Display", "add", (1, 1), index=1, timeout=None, now=wire.now)


# -- Mews backpressure ------------------------------------------------------------------------


def mews_server() -> ServerDriver:
    return ServerDriver("Mews", lambda: MewsServer("ct", "at", path="/ws/connector"), OPTIONS)


def resource(n: int) -> ResourceEvent:
    return ResourceEvent(id=f"r{n}", state=ResourceState.DIRTY)


def test_mews_stops_reading_at_the_buffer_and_resumes_at_half() -> None:
    driver = MewsDriver(MewsClient("ct", "at"), MEWS_URL, buffer_size=4, keepalive_interval=None)
    server = mews_server()
    wire = opened(Wire(driver, server))
    assert server.publish([resource(n) for n in range(5)]) == 1
    wire.pump()
    assert len(driver.feed) == 5
    assert not driver.wants_read
    resumed: list[str] = []
    driver.on_resume = lambda: resumed.append("read again")
    assert [driver.take(), driver.take()] == [resource(0), resource(1)]
    assert resumed == []  # three wait: more than half of four
    assert driver.take() == resource(2)
    assert resumed == ["read again"]
    assert driver.on_resume is None
    assert driver.wants_read


def test_a_paced_mews_driver_stops_reading_sooner_and_resumes_at_half_of_that() -> None:
    driver = MewsDriver(MewsClient("ct", "at"), MEWS_URL, buffer_size=100, keepalive_interval=None)
    driver.pace(4)
    assert (driver.read_ahead, driver.resume_at) == (4, 2)
    wire = opened(Wire(driver, mews_server()))
    assert wire.server.publish([resource(n) for n in range(4)]) == 1
    wire.pump()
    assert not driver.wants_read  # four wait: the pace, far below the buffer
    resumed: list[str] = []
    driver.on_resume = lambda: resumed.append("read again")
    driver.take()
    assert resumed == []
    driver.take()
    assert resumed == ["read again"]
    assert driver.wants_read


def test_a_pace_never_lets_a_reader_past_the_buffer() -> None:
    driver = MewsDriver(MewsClient("ct", "at"), MEWS_URL, buffer_size=10, keepalive_interval=None)
    driver.pace(256)
    assert (driver.read_ahead, driver.resume_at) == (10, 5)
    with pytest.raises(ValueError, match="at least 1 event"):
        driver.pace(0)
    assert driver.read_ahead == 10


def test_mews_marks_a_reconnect_in_the_stream() -> None:
    driver = MewsDriver(
        MewsClient("ct", "at"), MEWS_URL, reconnect=fixed_backoff(), keepalive_interval=None
    )
    wire = opened(Wire(driver, mews_server()))
    wire.drop()
    wire.at(1.0)
    wire.dial()
    assert list(driver.feed.items) == [Reconnected()]


def test_server_drop_counts_and_ends_every_connection_at_once() -> None:
    server = mews_server()
    driver = MewsDriver(MewsClient("ct", "at"), MEWS_URL, keepalive_interval=None)
    wire = opened(Wire(driver, server))
    aborted: list[Peer] = []
    assert wire.peer is not None
    wire.peer.on_abort = lambda: aborted.append(wire.peer)  # type: ignore[arg-type]
    assert server.connections == 1
    assert server.drop(wire.now) == 1
    assert server.connections == 0  # at once, whatever the runtime does next
    assert aborted == [wire.peer]


def test_a_client_that_gets_in_after_close_all_is_told_goodbye_at_once() -> None:
    # The adapter stops listening before close_all, but a socket accepted just before
    # (or a handshake under way) still opens: it must not stay served.
    server = mews_server()
    driver = MewsDriver(
        MewsClient("ct", "at"), MEWS_URL, reconnect=fixed_backoff(), keepalive_interval=None
    )
    wire = Wire(driver, server)
    assert server.close_all(wire.now) == []
    wire.dial()
    assert server.connections == 0
    assert driver.last_close is not None
    assert (driver.last_close.code, driver.last_close.reason) == (1001, "server shutting down")
    assert driver.phase is Phase.RECONNECTING


def test_publish_checks_its_input_even_with_nobody_connected() -> None:
    server = mews_server()
    assert server.publish(Envelope((resource(1),))) == 0
    with pytest.raises(EncodeError):
        server.publish(["not an event"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="an Envelope or an iterable"):
        server.publish(42)  # type: ignore[arg-type]
