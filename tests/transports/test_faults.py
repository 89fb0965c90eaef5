"""Faults, for every client adapter: drops, silent servers, TLS trust.

Drops use `server.drop_connections()` (sockets closed, no close frame). A silent
server is a raw TCP listener that accepts the WebSocket upgrade and then never says
a word (no pong, no heartbeat). TLS uses throwaway `trustme` certificates.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager

import pytest
import trustme
from harness import (
    ACCESS_TOKEN,
    API_KEY,
    CLIENT_TOKEN,
    DISPLAY,
    MEWS_MESSAGES,
    SYS,
    WAIT,
    Client,
    Served,
    TestEngine,
    make_engine,
    mews_options,
    placeos_options,
    require,
    running_server,
)

from protocore import ConnectionLost
from protocore.backoff import Backoff
from protocore.mews import Reconnected, decode_envelope

pytestmark = pytest.mark.timeout(60)


def fast_backoff() -> Backoff:
    """Reconnect within milliseconds, so tests do not wait on jitter."""
    return Backoff(base=0.02, cap=0.1)


# -- dropped connections ------------------------------------------------------------------


def test_drop_rebinds_and_values_keep_flowing(client: Client, placeos_server: Served) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_placeos(
            placeos_server.url, api_key=API_KEY, reconnect=fast_backoff()
        ) as placeos:
            async with (
                placeos.bind(SYS, DISPLAY, "power") as power,
                placeos.debug(SYS, "mod-display") as lines,
            ):
                assert await power.next() is False
                for round_ in range(2):
                    placeos_server.drop_connections()
                    # Nobody is bound until the client is back: the value set now
                    # arrives through the re-bind's first notify.
                    placeos_server.set_status(SYS, DISPLAY, "power", f"after drop {round_}")
                    await power.until(f"after drop {round_}")
                # One binding on the server, not two: a new value arrives once.
                assert placeos_server.set_status(SYS, DISPLAY, "power", "once") == 1
                assert await power.next() == "once"
                # The debug stream was restored with the binding.
                assert placeos_server.log(SYS, DISPLAY, "still here") == 1
                assert (await lines.next()).message == "still here"
            assert await placeos.exec(SYS, DISPLAY, "add", 2, 2) == 4
            assert placeos.connected

    client.run(scenario)


def test_pending_exec_fails_at_once_when_the_connection_drops(
    client: Client, placeos_server: Served
) -> None:
    engine = placeos_server.engine
    assert engine is not None

    def drop_when_hung() -> None:
        if engine.hung.wait(WAIT):
            placeos_server.drop_connections()

    dropper = threading.Thread(target=drop_when_hung)

    async def scenario(c: Client) -> None:
        async with c.connect_placeos(
            placeos_server.url, api_key=API_KEY, reconnect=fast_backoff()
        ) as placeos:
            async with placeos.bind(SYS, DISPLAY, "power") as power:
                assert await power.next() is False
                dropper.start()
                # The exec's own deadline is far away: only the drop can end it.
                with pytest.raises(ConnectionLost):
                    await placeos.exec(SYS, DISPLAY, "hang", timeout=WAIT * 3)
                placeos_server.set_status(SYS, DISPLAY, "power", "back")
                await power.until("back")  # reconnected and re-bound
            # The next call goes to the new connection.
            assert await placeos.exec(SYS, DISPLAY, "add", 1, 2) == 3

    client.run(scenario)
    dropper.join(WAIT)


def test_mews_drop_yields_reconnected(client: Client) -> None:
    require(client.kind, "mews")
    first, second = (decode_envelope(MEWS_MESSAGES[name]) for name in ("000", "001"))

    async def scenario(c: Client) -> None:
        async with c.connect_mews(
            served.url,
            client_token=CLIENT_TOKEN,
            access_token=ACCESS_TOKEN,
            reconnect=fast_backoff(),
        ) as events:
            assert served.publish(first) == 1
            assert tuple([await events.next() for _ in first.events]) == first.events
            served.drop_connections()
            assert isinstance(await events.next(), Reconnected)
            assert served.publish(second) == 1
            assert tuple([await events.next() for _ in second.events]) == second.events

    with running_server("trio", "mews", **mews_options()) as handle:
        served = Served(handle)
        client.run(scenario)


def test_reconnect_off_ends_everything_with_connection_lost(client: Client) -> None:
    async def placeos_scenario(c: Client) -> None:
        async with c.connect_placeos(served.url, api_key=API_KEY, reconnect=False) as placeos:
            async with placeos.bind(SYS, DISPLAY, "power") as power:
                assert await power.next() is False
                served.drop_connections()
                with pytest.raises(ConnectionLost):
                    await power.next()
            with pytest.raises(ConnectionLost):
                await placeos.exec(SYS, DISPLAY, "add", 1, 2)
            assert not placeos.connected

    with running_server("trio", "placeos", make_engine(), **placeos_options()) as handle:
        served = Served(handle)
        client.run(placeos_scenario)


def test_mews_reconnect_off_ends_the_iterator_with_connection_lost(client: Client) -> None:
    require(client.kind, "mews")

    async def mews_scenario(c: Client) -> None:
        async with c.connect_mews(
            served.url, client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN, reconnect=False
        ) as events:
            served.drop_connections()
            with pytest.raises(ConnectionLost):
                await events.next()

    with running_server("trio", "mews", **mews_options()) as handle:
        served = Served(handle)
        client.run(mews_scenario)


MANY = 10_000


@pytest.mark.slow  # ~10-40 s per client kind on a loaded 2-core machine; still in the default run
@pytest.mark.timeout(300)
def test_ten_thousand_bindings_come_back_after_a_reconnect(client: Client) -> None:
    engine = TestEngine()
    engine.add_system(SYS)
    engine.add_module(SYS, "Sensors", status={f"v{i}": i for i in range(MANY)})

    async def scenario(c: Client) -> None:
        async with (
            c.connect_placeos(
                served.url, api_key=API_KEY, reconnect=fast_backoff(), bind_timeout=WAIT * 3
            ) as placeos,
            AsyncExitStack() as stack,
        ):
            values = [
                await stack.enter_async_context(placeos.bind(SYS, "Sensors", f"v{i}"))
                for i in range(MANY)
            ]
            assert [await v.next() for v in values] == list(range(MANY))
            served.drop_connections()
            # Set while the client is away (or re-binding): each value must arrive,
            # through the re-bind's first notify or a later one.
            for i in range(MANY):
                served.set_status(SYS, "Sensors", f"v{i}", -i)
            for i, v in enumerate(values):
                await v.until(-i)
            assert sum(v.dropped for v in values) == 0
            assert placeos.connected
            # Every binding is held once on the server again: one notify each.
            assert [served.set_status(SYS, "Sensors", f"v{i}", "x") for i in range(MANY)] == [
                1
            ] * MANY
            assert [await v.next() for v in values] == ["x"] * MANY

    with running_server("trio", "placeos", engine, **placeos_options()) as handle:
        served = Served(handle, engine)
        client.run(scenario)


# -- a server that stops answering ------------------------------------------------------


@contextmanager
def silent_server() -> Iterator[tuple[int, list[threading.Event]]]:
    """Accepts WebSocket upgrades (any path, any credentials), then says nothing.

    Yields the port and one flag per expected connection (set as each one arrives).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    arrived = [threading.Event() for _ in range(3)]
    sockets: list[socket.socket] = []
    stop = threading.Event()

    def upgrade(sock: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return
            head += chunk
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )

    def serve() -> None:
        count = 0
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            sockets.append(sock)
            with contextlib.suppress(OSError):  # a client may hang up first
                upgrade(sock)  # then silence: what the client sends is never read
            if count < len(arrived):
                arrived[count].set()
            count += 1

    thread = threading.Thread(target=serve, name="silent-server")
    thread.start()
    try:
        yield listener.getsockname()[1], arrived
    finally:
        # Closing a socket does not wake a thread blocked on it (Linux): shut the
        # accepted ones down, and wake accept() with one last connection of our own.
        stop.set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            socket.create_connection(listener.getsockname(), timeout=WAIT).close()
        thread.join(WAIT)
        listener.close()
        for sock in sockets:
            sock.close()


def test_keepalive_detects_a_silent_server_and_reconnects(client: Client) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_placeos(
            f"ws://127.0.0.1:{port}/api/engine/v2/systems/control",
            api_key=API_KEY,
            reconnect=fast_backoff(),
            keepalive_interval=0.1,
            keepalive_timeout=0.2,
            close_timeout=0.5,  # leaving waits this long for a close answer that never comes
            heartbeat_interval=None,
            heartbeat_timeout=None,
        ):
            await c.wait_for(arrived[1])  # the keepalive ping went unanswered

    with silent_server() as (port, arrived):
        client.run(scenario)


def test_heartbeat_detects_a_silent_placeos_server(client: Client) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_placeos(
            f"ws://127.0.0.1:{port}/api/engine/v2/systems/control",
            api_key=API_KEY,
            reconnect=fast_backoff(),
            keepalive_interval=None,
            heartbeat_interval=0.1,
            heartbeat_timeout=0.3,
            close_timeout=0.5,  # leaving waits this long for a close answer that never comes
        ):
            await c.wait_for(arrived[1])  # no pong to the text "ping"

    with silent_server() as (port, arrived):
        client.run(scenario)


def test_mews_keepalive_detects_a_silent_server(client: Client) -> None:
    require(client.kind, "mews")

    async def scenario(c: Client) -> None:
        async with c.connect_mews(
            f"ws://127.0.0.1:{port}/ws/connector",
            client_token=CLIENT_TOKEN,
            access_token=ACCESS_TOKEN,
            reconnect=fast_backoff(),
            keepalive_interval=0.1,
            keepalive_timeout=0.2,
            close_timeout=0.5,  # leaving waits this long for a close answer that never comes
        ) as events:
            assert isinstance(await events.next(), Reconnected)

    with silent_server() as (port, _):
        client.run(scenario)


# -- TLS ------------------------------------------------------------------------------


def test_tls_with_a_trusted_certificate(
    client: Client, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    async def scenario(c: Client) -> None:
        assert served.url.startswith("wss://")
        async with c.connect_placeos(
            served.url, api_key=API_KEY, ssl_context=client_ssl
        ) as placeos:
            assert await placeos.exec(SYS, DISPLAY, "add", 20, 22) == 42
            async with placeos.bind(SYS, DISPLAY, "input") as source:
                assert await source.next() == "hdmi1"

    with running_server(
        "trio", "placeos", make_engine(), ssl_context=server_ssl, **placeos_options()
    ) as handle:
        served = Served(handle)
        client.run(scenario)


def test_tls_refuses_an_untrusted_or_wrong_certificate(
    client: Client, ca: trustme.CA, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    other_name = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("example.org").configure_cert(other_name)

    async def scenario(c: Client) -> None:
        # The system CA store does not know our throwaway CA.
        with pytest.raises(ssl.SSLCertVerificationError) as untrusted:
            async with c.connect_placeos(served.url, api_key=API_KEY, reconnect=False):
                pytest.fail("an untrusted certificate was accepted")
        assert untrusted.value.verify_code != 0

    async def wrong_name(c: Client) -> None:
        # A trusted CA, but the certificate names example.org, not 127.0.0.1.
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            async with c.connect_placeos(
                served.url, api_key=API_KEY, ssl_context=client_ssl, reconnect=False
            ):
                pytest.fail("a certificate for another name was accepted")

    with running_server(
        "trio", "placeos", make_engine(), ssl_context=server_ssl, **placeos_options()
    ) as handle:
        served = Served(handle)
        client.run(scenario)
    with running_server(
        "trio", "placeos", make_engine(), ssl_context=other_name, **placeos_options()
    ) as handle:
        served = Served(handle)
        client.run(wrong_name)
