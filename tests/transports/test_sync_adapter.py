"""The blocking-socket adapter's own behaviour: Ctrl-C, threads, buffers, timeouts, TLS.

Cross-transport behaviour (every client against every server) is in
test_conformance / test_interop / test_faults; here is what only the blocking API
has: KeyboardInterrupt from `_thread.interrupt_main` during a blocking call, no
thread outliving its context, the drop-oldest buffer, connect timeout, the close
handshake on exit, TLS, secrets, reconnects.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme
from harness import most_waiting

from protocore import ConnectionLost, EncodeError, HandshakeFailed, LocalProtocolError
from protocore.backoff import Backoff
from protocore.mews import Envelope, Reconnected, ResourceEvent
from protocore.placeos import Command, Exec, MockEngine, PlaceOSServer
from protocore.placeos.exceptions import ModuleNotFound, RequestTimeout
from transports.sync import (
    MewsEvents,
    MewsServerHandle,
    PlaceOSConnection,
    connect_mews,
    connect_placeos,
    serve_mews,
    serve_placeos,
)

SYS = "sys-1"
KEY = "k3y-Zq8-very-secret"
FAST = Backoff(base=0.01, cap=0.05)
WAIT = 10.0  # seconds: the bound of every wait on another thread


class Engine(MockEngine):
    """A MockEngine whose ``hang`` method never answers, and says when it was called."""

    def __init__(self) -> None:
        super().__init__()
        self.hung = threading.Event()
        self.add_system(SYS)
        self.add_module(
            SYS,
            "Display",
            status={"power": False},
            methods={"add": lambda a, b: a + b, "echo": lambda x: x},
        )

    def handle_request(self, server: PlaceOSServer, request: Command) -> None:
        if isinstance(request, Exec) and request.name == "hang":
            self.hung.set()
            return
        super().handle_request(server, request)


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Every test ends with exactly the threads it started with."""
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) - before == set()


@pytest.fixture
def engine() -> Engine:
    return Engine()


@pytest.fixture
def server(engine: Engine) -> Iterator[Any]:
    with serve_placeos(engine, api_keys=[KEY]) as handle:
        yield handle


def connect(url: str, **kwargs: Any) -> PlaceOSConnection:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("reconnect", FAST)
    return connect_placeos(url, **kwargs)


def in_thread(fn: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=fn, name="test-helper")
    thread.start()
    return thread


def interrupt_when(event: threading.Event) -> threading.Thread:
    """Ctrl-C in the main thread as soon as ``event`` is set."""

    def trigger() -> None:
        if event.wait(WAIT):
            _thread.interrupt_main()

    return in_thread(trigger)


# -- basics -----------------------------------------------------------------------------


def test_exec_bind_and_errors_over_real_sockets(server: Any) -> None:
    with connect(server.url) as client:
        assert client.connected
        assert server.connections == 1
        assert client.exec(SYS, "Display", "add", 2, 3) == 5
        with pytest.raises(ModuleNotFound) as info:
            client.exec(SYS, "Nope", "x")
        assert info.value.code == 6
        with client.bind(SYS, "Display", "power") as values:
            assert next(values) is False  # the current value comes first
            assert server.set_status(SYS, "Display", "power", True) == 1
            assert next(values) is True
    assert server.connections == 0  # the close handshake finished before the exit returned


def test_request_timeout(server: Any) -> None:
    with connect(server.url) as client:
        with pytest.raises(RequestTimeout):
            client.exec(SYS, "Display", "hang", timeout=0.2)
        assert client.exec(SYS, "Display", "echo", "still fine") == "still fine"


# -- Ctrl-C -----------------------------------------------------------------------------


def test_ctrl_c_during_exec_propagates_and_cleans_up(engine: Engine, server: Any) -> None:
    trigger = interrupt_when(engine.hung)
    client = connect(server.url)
    with pytest.raises(KeyboardInterrupt), client:
        client.exec(SYS, "Display", "hang", timeout=60)
    trigger.join(WAIT)
    assert not client.connected
    assert server.connections == 0  # closed with a handshake despite the interrupt
    with pytest.raises(ConnectionLost):
        client.exec(SYS, "Display", "echo", 1)


def test_ctrl_c_during_iteration_propagates_and_cleans_up(server: Any) -> None:
    waiting = threading.Event()
    trigger = interrupt_when(waiting)
    seen: list[Any] = []

    def consume() -> None:
        with connect(server.url) as client, client.bind(SYS, "Display", "power") as values:
            for value in values:
                seen.append(value)
                waiting.set()  # the next value never comes: this blocks until Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        consume()
    trigger.join(WAIT)
    assert seen == [False]
    assert server.connections == 0


def test_ctrl_c_during_connect(engine: Engine) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        accepted = threading.Event()
        peers: list[socket.socket] = []

        def accept() -> None:
            peers.append(silent.accept()[0])
            accepted.set()

        acceptor = in_thread(accept)
        trigger = interrupt_when(accepted)
        port = silent.getsockname()[1]
        with pytest.raises(KeyboardInterrupt):
            connect(f"ws://127.0.0.1:{port}/", connect_timeout=60)
        trigger.join(WAIT)
        acceptor.join(WAIT)
        for peer in peers:
            peer.close()


# -- buffers ----------------------------------------------------------------------------


def test_slow_consumer_gets_the_latest_values(server: Any) -> None:
    with (
        connect(server.url, buffer_size=3) as client,
        client.bind(SYS, "Display", "power") as values,
    ):
        for n in range(10):
            server.set_status(SYS, "Display", "power", n)
        # An exec answered after the notifies: once it returns, all are buffered.
        assert client.exec(SYS, "Display", "echo", "sync") == "sync"
        assert [next(values) for _ in range(3)] == [7, 8, 9]
        assert values.dropped == 8  # the initial value and 0..6, oldest first


# -- connecting and closing -------------------------------------------------------------


def test_connect_timeout_when_the_upgrade_is_never_answered() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # never accepts, never answers
        port = silent.getsockname()[1]
        with pytest.raises(TimeoutError):
            connect(f"ws://127.0.0.1:{port}/", connect_timeout=0.3)


def test_connection_refused_is_raised_not_retried() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        connect(f"ws://127.0.0.1:{port}/")


def test_refused_upgrade_raises_handshake_failed(server: Any) -> None:
    with pytest.raises(HandshakeFailed) as info:
        connect(server.url, api_key="wrong")
    assert info.value.status_code == 401


def test_exit_sends_a_close_frame_and_waits_for_the_answer() -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.server import ServerConnection, serve

    codes: list[tuple[int | None, str | None]] = []
    done = threading.Event()

    def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            for message in ws:
                if message == "ping":
                    ws.send("pong")
        codes.append((ws.close_code, ws.close_reason))
        done.set()

    with serve(handler, "127.0.0.1", 0) as ws_server:
        runner = in_thread(ws_server.serve_forever)
        try:
            port = ws_server.socket.getsockname()[1]
            with connect(f"ws://127.0.0.1:{port}/api/engine/v2/systems/control"):
                pass
            assert done.wait(WAIT)
        finally:
            ws_server.shutdown()
            runner.join(WAIT)
    assert codes == [(1000, "")]


# -- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(engine: Engine, ca: trustme.CA) -> Iterator[Any]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with serve_placeos(engine, api_keys=[KEY], ssl_context=context) as handle:
        yield handle


def test_tls_with_a_trusted_certificate(tls_server: Any, ca: trustme.CA) -> None:
    assert tls_server.url.startswith("wss://")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with connect(tls_server.url, ssl_context=context) as client:
        big = "x" * 300_000  # several TLS records each way
        assert client.exec(SYS, "Display", "echo", big) == big
        with client.bind(SYS, "Display", "power") as values:
            assert next(values) is False


def test_tls_with_an_untrusted_certificate_is_refused(tls_server: Any, ca: trustme.CA) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(tls_server.url)  # the system store does not trust the test CA
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with connect(tls_server.url, ssl_context=context) as client:  # the server survived it
        assert client.exec(SYS, "Display", "add", 1, 1) == 2


def test_ssl_context_for_a_plain_url_is_refused() -> None:
    with pytest.raises(ValueError, match="wss"):
        connect("ws://127.0.0.1:1/", ssl_context=ssl.create_default_context())


# -- reconnecting -----------------------------------------------------------------------


def test_reconnect_after_a_drop_rebinds_and_fails_pending_calls(
    engine: Engine, server: Any
) -> None:
    with connect(server.url) as client, client.bind(SYS, "Display", "power") as values:
        assert next(values) is False
        dropper = in_thread(lambda: engine.hung.wait(WAIT) and server.drop_connections())
        with pytest.raises(ConnectionLost):
            client.exec(SYS, "Display", "hang", timeout=60)
        dropper.join(WAIT)
        assert next(values) is False  # re-bound on the new connection: value sent again
        assert client.connected
        server.set_status(SYS, "Display", "power", "on")
        assert next(values) == "on"
        assert client.exec(SYS, "Display", "add", 20, 22) == 42


def test_without_reconnect_calls_and_iterators_end_with_connection_lost(server: Any) -> None:
    with connect(server.url, reconnect=False) as client:
        with client.bind(SYS, "Display", "power") as values:
            assert next(values) is False
            server.drop_connections()
            with pytest.raises(ConnectionLost):
                next(values)
        assert not client.connected
        with pytest.raises(ConnectionLost):
            client.exec(SYS, "Display", "echo", 1)


def test_client_survives_a_server_restart_on_the_same_port(engine: Engine) -> None:
    with serve_placeos(engine, api_keys=[KEY]) as first:
        port = first.port
        client = connect(first.url)
    try:
        assert not client.connected  # the server said 1001 and is gone
        with (
            serve_placeos(engine, port=port, api_keys=[KEY]) as second,
            client.bind(SYS, "Display", "power") as values,  # waits for the reconnect
        ):
            assert next(values) is False
            second.set_status(SYS, "Display", "power", 1)
            assert next(values) == 1
    finally:
        client.close()


# -- servers ----------------------------------------------------------------------------


def test_server_methods_work_from_the_server_thread(engine: Engine, server: Any) -> None:
    # A method runs in the server thread, under its lock: the handle must not deadlock.
    engine.add_method(
        SYS, "Display", "turn_on", lambda: server.set_status(SYS, "Display", "power", True)
    )
    with connect(server.url) as client, client.bind(SYS, "Display", "power") as values:
        assert next(values) is False
        assert client.exec(SYS, "Display", "turn_on") == 1
        assert next(values) is True


def test_debug_lines(engine: Engine, server: Any) -> None:
    module_id = engine.module_id(SYS, "Display")
    with connect(server.url) as client, client.debug(SYS, module_id) as lines:
        assert server.log(SYS, "Display", "hello", level="info") == 1
        line = next(lines)
        assert (line.mod, line.message, getattr(line.level, "value", line.level)) == (
            module_id,
            "hello",
            "info",
        )


# -- secrets ----------------------------------------------------------------------------


def test_secrets_never_in_logs_or_reprs(server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HandshakeFailed) as refused:
        connect(server.url, api_key="wrong-" + KEY, auth="query")
    texts = [str(refused.value), repr(refused.value)]
    with connect(server.url, auth="query") as client, client.bind(SYS, "Display", "power") as v:
        assert next(v) is False
        server.drop_connections()
        assert next(v) is False  # reconnected (logged)
        texts += [repr(client), repr(server), repr(v)]
    assert "reconnected" in caplog.text
    for text in [caplog.text, *texts]:
        assert KEY not in text
        assert "api-key=" not in text


# -- Mews -------------------------------------------------------------------------------

CLIENT_TOKEN = "CT-Xy7-very-secret"
ACCESS_TOKEN = "AT-Wv6-very-secret"


@pytest.fixture
def mews_server() -> Iterator[MewsServerHandle]:
    with serve_mews(client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN) as handle:
        yield handle


def connect_to_mews(url: str, **kwargs: Any) -> MewsEvents:
    kwargs.setdefault("reconnect", FAST)
    return connect_mews(url, client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN, **kwargs)


def resource(n: int) -> ResourceEvent:
    return ResourceEvent(f"res-{n}", "Dirty")


def consume_in_thread(events: MewsEvents, count: int, seen: list[Any]) -> threading.Thread:
    """Take ``count`` events in a helper thread, noting how many waited before each."""

    def consume() -> None:
        for _ in range(count):
            seen.append((len(events), next(events)))

    return in_thread(consume)


def test_mews_slow_consumer_loses_nothing_and_the_buffer_stays_bounded(
    mews_server: MewsServerHandle,
) -> None:
    messages = 3000
    buffer_size = 8
    with connect_to_mews(mews_server.url, buffer_size=buffer_size) as events:
        assert events.connected
        for n in range(messages):  # all queued before the consumer takes anything
            assert mews_server.publish([resource(n)]) == 1
        seen: list[Any] = []
        consumer = consume_in_thread(events, messages, seen)
        consumer.join(WAIT)
        if consumer.is_alive():  # a missed resume would hang it: end it, then fail
            events.close()
            consumer.join(WAIT)
            pytest.fail(f"the consumer got {len(seen)} of {messages} events")
        assert [event for _, event in seen] == [resource(n) for n in range(messages)]
        # Reading stops at buffer_size waiting events; one socket read (64 KiB of
        # frames) may come on top, never the whole backlog.
        bound = most_waiting(buffer_size, resource(0))
        assert max(waiting for waiting, _ in seen) <= bound < messages
        assert len(events) == 0


def test_mews_consumer_wakes_a_paused_reader_before_it_waits(
    mews_server: MewsServerHandle,
) -> None:
    # The consumer pops events without the lock, so it can drain the feed between the
    # reader's choice to stop and its on_resume. Before it waits, it must wake the
    # reader (under the lock): else both would wait for each other.
    with connect_to_mews(mews_server.url) as events:
        driver = events._driver  # type: ignore[attr-defined]
        woken = threading.Event()
        with events._lock:  # type: ignore[attr-defined]
            driver.on_resume = woken.set  # as a paused reader leaves it
        with pytest.raises(TimeoutError):
            events.get(timeout=0.01)  # nothing was published: the feed is empty
        assert woken.is_set()
        assert driver.on_resume is None
        assert mews_server.publish([resource(1)]) == 1
        assert events.get(WAIT) == resource(1)


def test_mews_close_while_paused_still_completes_the_close_handshake(
    mews_server: MewsServerHandle,
) -> None:
    events = connect_to_mews(mews_server.url, buffer_size=1, close_timeout=60)
    try:
        for n in range(2000):
            mews_server.publish([resource(n)])
        assert next(events) == resource(0)  # reading is paused behind a full buffer
    finally:
        # The close answer sits behind the backlog: reading must resume to see it,
        # rather than waiting out the 60 s close_timeout.
        closer = in_thread(events.close)
        closer.join(WAIT)
    assert not closer.is_alive()
    assert mews_server.connections == 0
    assert not events.connected


def test_mews_close_from_another_thread_ends_the_iteration(
    mews_server: MewsServerHandle,
) -> None:
    got: list[Any] = []
    first = threading.Event()
    ended: list[str] = []
    with connect_to_mews(mews_server.url) as events:

        def iterate() -> None:
            try:
                for event in events:
                    got.append(event)
                    first.set()
                ended.append("stopped")
            except BaseException as exc:  # anything but a quiet end fails the test
                ended.append(repr(exc))

        reader = in_thread(iterate)
        assert mews_server.publish([resource(1)]) == 1
        assert first.wait(WAIT)
        events.close()
        reader.join(WAIT)
        assert not reader.is_alive()
    assert (got, ended) == ([resource(1)], ["stopped"])
    assert mews_server.connections == 0


def test_mews_reconnect_off_raises_connection_lost_once_then_stops(
    mews_server: MewsServerHandle,
) -> None:
    with connect_to_mews(mews_server.url, reconnect=False) as events:
        assert mews_server.publish([resource(1), resource(2)]) == 1
        assert next(events) == resource(1)
        mews_server.drop_connections()
        assert next(events) == resource(2)  # what arrived before the drop comes first
        with pytest.raises(ConnectionLost):
            next(events)
        with pytest.raises(ConnectionLost):  # and again: the end is final, on every transport
            next(events)
        assert not events.connected


def test_mews_drop_yields_reconnected_and_the_stream_goes_on(
    mews_server: MewsServerHandle,
) -> None:
    with connect_to_mews(mews_server.url) as events:
        mews_server.drop_connections()
        assert next(events) == Reconnected()
        assert events.connected
        assert mews_server.publish(Envelope((resource(3),))) == 1
        assert next(events) == resource(3)


def test_mews_ctrl_c_during_iteration_propagates_and_cleans_up(
    mews_server: MewsServerHandle,
) -> None:
    waiting = threading.Event()
    trigger = interrupt_when(waiting)
    seen: list[Any] = []

    def consume() -> None:
        with connect_to_mews(mews_server.url) as events:
            mews_server.publish([resource(1)])
            for event in events:
                seen.append(event)
                waiting.set()  # nothing else comes: this blocks until Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        consume()
    trigger.join(WAIT)
    assert seen == [resource(1)]
    assert mews_server.connections == 0


def test_mews_refused_tokens_and_bad_settings(mews_server: MewsServerHandle) -> None:
    for auth in ("cookie", "query"):
        with pytest.raises(HandshakeFailed) as info:
            connect_mews(
                mews_server.url, client_token=CLIENT_TOKEN, access_token="AT-wrong", auth=auth
            )
        assert info.value.status_code == 401
    with pytest.raises(ValueError, match="buffer_size"):
        connect_to_mews(mews_server.url, buffer_size=0)
    with pytest.raises(LocalProtocolError, match="client_token"):
        connect_mews(mews_server.url, client_token="has space", access_token=ACCESS_TOKEN)
    with pytest.raises(LocalProtocolError, match="access_token"):
        serve_mews(client_token=CLIENT_TOKEN, access_token="")


def test_mews_publish_checks_its_input_with_or_without_clients(
    mews_server: MewsServerHandle,
) -> None:
    assert mews_server.publish([resource(1)]) == 0  # nobody connected
    with pytest.raises(EncodeError, match="expected a MewsEvent"):
        mews_server.publish(["not an event"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="Envelope or an iterable"):
        mews_server.publish(42)  # type: ignore[arg-type]
    with connect_to_mews(mews_server.url) as events:
        with pytest.raises(EncodeError):
            mews_server.publish([resource(1), 7])  # type: ignore[list-item]
        assert mews_server.publish([resource(2)]) == 1
        assert next(events) == resource(2)  # the refused message was not half-sent


def test_mews_tls(ca: trustme.CA) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with (
        serve_mews(
            client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN, ssl_context=server_context
        ) as server,
        connect_to_mews(server.url, ssl_context=client_context, buffer_size=4) as events,
    ):
        assert server.url.startswith("wss://")
        burst = [resource(n) for n in range(500)]  # many TLS records, reading paused often
        assert server.publish(burst) == 1
        assert [next(events) for _ in burst] == burst


def test_mews_secrets_never_in_logs_or_reprs(
    mews_server: MewsServerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HandshakeFailed) as refused:
        connect_mews(mews_server.url, client_token=CLIENT_TOKEN, access_token="wrong", auth="query")
    texts = [str(refused.value), repr(refused.value)]
    with connect_to_mews(mews_server.url, auth="query") as events:
        mews_server.drop_connections()
        assert next(events) == Reconnected()
        texts += [repr(events), repr(mews_server)]
    assert "reconnected" in caplog.text
    for text in [caplog.text, *texts]:
        assert CLIENT_TOKEN not in text
        assert ACCESS_TOKEN not in text


def test_mews_iteration_ends_with_connection_lost_when_the_backoff_gives_up() -> None:
    with contextlib.ExitStack() as stack:
        with serve_mews(client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN) as server:
            backoff = Backoff(base=0.01, max_attempts=2)
            events = stack.enter_context(connect_to_mews(server.url, reconnect=backoff))
            assert server.publish([resource(1)]) == 1
            assert next(events) == resource(1)
        # The server is gone: its port refuses both reconnects.
        with pytest.raises(ConnectionLost, match="gave up"):
            next(events)
        assert not events.connected
