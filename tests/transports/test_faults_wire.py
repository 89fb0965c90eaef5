"""Wire faults over real loopback sockets, for every client and every server adapter.

Client side: a `FaultProxy` sits between a client and a real (trio) server and
breaks the link on demand: half a frame then a closed socket, a reset (RST), a
half-open link (nothing forwarded either way), a message over the client's size
limit (1009), invalid UTF-8 (1007), a ping flood, upgrades left unanswered. After
each fault every binding comes back, the pending call fails with `ConnectionLost`,
nothing was dropped, no task or thread is left running.

Server side: a raw WebSocket client (masked frames built here) sends the same
faults to each server adapter, which must answer per RFC 6455 and stay usable.

Both sides: a peer that floods pings and never reads the pongs must not make the
other side buffer them: the flood stalls (the kernel buffers fill) short of its end.

No timing assertions: the half-open test counts the keepalive pings the client sent
into the dead link before it gave up (at most one, then a 1011 close: detection
within one interval plus one timeout). The flood tests take a send that makes no
progress for `STUCK` seconds as "the peer stopped reading"; a slow peer can only
make them pass wrongly, never fail wrongly.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import hashlib
import os
import queue
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any

import pytest
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
    make_engine,
    mews_options,
    placeos_options,
    require,
    running_server,
)

from protocore import ConnectionLost
from protocore.backoff import Backoff
from protocore.connection import ClientConnection
from protocore.mews import Reconnected, decode_envelope
from protocore.placeos import PlaceOSClient

pytestmark = pytest.mark.timeout(60)

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
PLACEOS_PATH = "/api/engine/v2/systems/control"
MEWS_PATH = "/ws/connector"
FLOOD = 5000


def fast_backoff() -> Backoff:
    return Backoff(base=0.02, cap=0.1)


# -- frames ---------------------------------------------------------------------------


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = False) -> bytes:
    """One WebSocket frame, valid or not (the payload is not checked)."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    bit = 0x80 if masked else 0
    size = len(payload)
    if size < 126:
        head.append(bit | size)
    elif size < 1 << 16:
        head.append(bit | 126)
        head += size.to_bytes(2, "big")
    else:
        head.append(bit | 127)
        head += size.to_bytes(8, "big")
    if masked:
        key = os.urandom(4)
        head += key
        payload = _unmask(payload, key)
    return bytes(head) + payload


def _unmask(payload: bytes, key: bytes) -> bytes:
    whole = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(whole, "big")).to_bytes(
        len(payload), "big"
    )


def split_frame(buf: bytes | bytearray) -> tuple[int, bytes, int] | None:
    """(opcode, payload, length on the wire) of the first whole frame in ``buf``.

    Payloads of data frames are returned still masked (nobody here reads them).
    """
    if len(buf) < 2:
        return None
    opcode, masked, size, pos = buf[0] & 0x0F, buf[1] & 0x80, buf[1] & 0x7F, 2
    if size == 126:
        size, pos = int.from_bytes(buf[2:4], "big"), 4
    elif size == 127:
        size, pos = int.from_bytes(buf[2:10], "big"), 10
    key = bytes(buf[pos : pos + 4]) if masked else b""
    pos += len(key)
    end = pos + size
    if len(buf) < end:
        return None
    payload = bytes(buf[pos:end])
    if key and opcode >= CLOSE:
        payload = _unmask(payload, key)
    return opcode, payload, end


def close_code(payload: bytes) -> int:
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005


# -- a proxy that breaks links --------------------------------------------------------


class ProxyLink:
    """One proxied connection, run by one thread; faults run in that thread (`do`)."""

    def __init__(self, client: socket.socket, upstream: tuple[str, int], mute: bool) -> None:
        self.client = client
        self.server = socket.create_connection(upstream, timeout=WAIT)
        self.server.settimeout(None)
        self._wake_r, self._wake_w = socket.socketpair()
        self._commands: queue.Queue[tuple[Callable[[], bool], concurrent.futures.Future[None]]]
        self._commands = queue.Queue()
        self.frozen = False
        self.mute = mute  # a slow handshake: the request is read, never forwarded
        self.request = b""
        self.pings_at_freeze = 0
        self.from_client: list[tuple[int, bytes]] = []  # frames after the upgrade, in order
        self.pongs: list[bytes] = []  # answers to our own injected pings (not forwarded)
        self.flood_answered = threading.Event()
        self.flood_last = b""
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fault-proxy-link")

    # faults (any thread) ----------------------------------------------------------------

    def do(self, fault: Callable[[], bool]) -> None:
        """Run ``fault`` in the link's thread (True: it ended the link); wait for it."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._commands.put((fault, done))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"!")
        done.result(WAIT)

    def inject(self, data: bytes) -> None:
        def fault() -> bool:
            self.client.sendall(data)
            return False

        self.do(fault)

    def freeze(self) -> None:
        """Half-open: from now on nothing is forwarded in either direction."""

        def fault() -> bool:
            self.frozen = True
            self.pings_at_freeze = len(self.sent(PING))
            return False

        self.do(fault)

    def kill_mid_frame(self) -> None:
        """Half of a 1000-byte text frame, then both sockets closed (FIN)."""

        def fault() -> bool:
            self.client.sendall(frame(TEXT, b"x" * 1000)[:500])
            return True

        self.do(fault)

    def reset(self) -> None:
        """Close the client's socket with SO_LINGER 0: it gets an RST, not a FIN."""

        def fault() -> bool:
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return True

        self.do(fault)

    def ping_flood(self, count: int) -> None:
        self.flood_last = b"flood %d" % (count - 1)
        self.inject(b"".join(frame(PING, b"flood %d" % i) for i in range(count)))

    def sent(self, opcode: int) -> list[bytes]:
        """Payloads of the frames the client sent with ``opcode``."""
        return [payload for op, payload in self.from_client if op == opcode]

    # the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        up, down = bytearray(), bytearray()
        upgraded = [False, False]  # request passed, response passed
        try:
            while True:
                ready, _, _ = select.select([self.client, self.server, self._wake_r], [], [])
                if self._wake_r in ready and self._run_commands():
                    return
                for sock, buf, side in ((self.client, up, 0), (self.server, down, 1)):
                    if sock not in ready:
                        continue
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    buf.extend(data)
                    self._pass(buf, side, upgraded)
        except OSError:
            return
        finally:
            self._end()

    def _run_commands(self) -> bool:
        self._wake_r.recv(4096)
        while not self._commands.empty():
            fault, done = self._commands.get()
            try:
                ended = fault()
            except BaseException as exc:
                done.set_exception(exc)
                raise
            done.set_result(None)
            if ended:
                return True
        return False

    def _pass(self, buf: bytearray, side: int, upgraded: list[bool]) -> None:
        to = self.server if side == 0 else self.client
        if self.mute:
            if side == 0:
                self.request += bytes(buf)
            buf.clear()
            return
        if not upgraded[side]:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            to.sendall(buf[: end + 4])
            del buf[: end + 4]
            upgraded[side] = True
        while (found := split_frame(buf)) is not None:
            opcode, payload, size = found
            raw = bytes(buf[:size])
            del buf[:size]
            if side == 0:
                self.from_client.append((opcode, payload))
                if opcode == PONG and payload.startswith(b"flood "):
                    self.pongs.append(payload)
                    if payload == self.flood_last:
                        self.flood_answered.set()
                    continue
            if not self.frozen:
                to.sendall(raw)

    def _end(self) -> None:
        for sock in (self.client, self.server, self._wake_r, self._wake_w):
            sock.close()
        while not self._commands.empty():
            _, done = self._commands.get()
            done.set_exception(AssertionError("the proxied link had already ended"))
        self.ended.set()


class FaultProxy:
    """Listens on 127.0.0.1 and proxies each connection to ``upstream`` (see `ProxyLink`)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.links: list[ProxyLink] = []
        self.mute_next = 0  # how many of the next connections get no handshake answer
        self.arrived = [threading.Event() for _ in range(8)]  # set as links 0..7 arrive
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fault-proxy")

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            if self._stop.is_set():
                sock.close()
                return
            link = ProxyLink(sock, self.upstream, mute=self.mute_next > 0)
            self.mute_next -= link.mute
            self.links.append(link)
            link.thread.start()
            if len(self.links) <= len(self.arrived):
                self.arrived[len(self.links) - 1].set()

    @contextmanager
    def running(self) -> Iterator[FaultProxy]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            with contextlib.suppress(OSError):  # wake accept()
                socket.create_connection(("127.0.0.1", self.port), timeout=WAIT).close()
            self._thread.join(WAIT)
            self.listener.close()
            for link in self.links:
                if not link.ended.is_set():
                    with contextlib.suppress(AssertionError):
                        link.do(lambda: True)
                link.thread.join(WAIT)


@contextmanager
def proxied(served: Any) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", served.port)).running() as proxy:
        yield proxy


def _apply(fault: str, link: ProxyLink) -> None:
    if fault == "mid_frame":
        link.kill_mid_frame()
    elif fault == "reset":
        link.reset()
    elif fault == "half_open":
        link.freeze()
    elif fault == "too_big":
        link.inject(frame(TEXT, b'"' + b"x" * 8000 + b'"'))
    elif fault == "bad_utf8":
        link.inject(frame(TEXT, b'{"id": 1, "meta": "\xff\xfe"}'))
    else:
        raise AssertionError(fault)


# Which close code the client must have sent into the faulty link (None: it cannot
# send one, the socket is gone).
EXPECTED_CLOSE = {
    "mid_frame": None,
    "reset": None,
    "half_open": 1011,
    "too_big": 1009,
    "bad_utf8": 1007,
}
FAULTS = list(EXPECTED_CLOSE)

# Small limits so the faults trip quickly; the keepalive only matters for half_open.
CLIENT_LIMITS: dict[str, Any] = {
    "reconnect": fast_backoff(),
    "max_message_size": 4096,
    "keepalive_interval": 0.2,
    "keepalive_timeout": 0.2,
}


def _check_faulty_link(fault: str, link: ProxyLink) -> None:
    closes = [close_code(payload) for payload in link.sent(CLOSE)]
    expected = EXPECTED_CLOSE[fault]
    if expected is not None:
        assert closes == [expected], closes
    if fault == "half_open":
        # After the freeze the client sent at most one ping, then gave up: detection
        # within one keepalive interval plus one keepalive timeout.
        assert len(link.sent(PING)) - link.pings_at_freeze <= 1


@pytest.mark.parametrize("fault", FAULTS)
def test_placeos_fault_fails_the_pending_call_and_rebinds(client: Client, fault: str) -> None:
    engine = make_engine()
    names = ("power", "input")

    def fault_when_hung() -> None:
        if engine.hung.wait(WAIT):
            _apply(fault, proxy.links[0])

    faulter = threading.Thread(target=fault_when_hung)

    async def scenario(c: Client) -> None:
        async with (
            c.connect_placeos(
                proxy.url(PLACEOS_PATH), api_key=API_KEY, heartbeat_interval=None, **CLIENT_LIMITS
            ) as placeos,
            AsyncExitStack() as stack,
        ):
            values = [await stack.enter_async_context(placeos.bind(SYS, DISPLAY, n)) for n in names]
            assert [await v.next() for v in values] == [False, "hdmi1"]
            faulter.start()
            with pytest.raises(ConnectionLost, match="connection lost before request"):
                await placeos.exec(SYS, DISPLAY, "hang", timeout=WAIT * 3)
            await c.wait_for(proxy.links[0].ended)
            for name, v in zip(names, values, strict=True):
                served.set_status(SYS, DISPLAY, name, f"{name} after {fault}")
                await v.until(f"{name} after {fault}")
            assert [v.dropped for v in values] == [0, 0]
            assert await placeos.exec(SYS, DISPLAY, "add", 1, 2) == 3
            assert placeos.connected
            # Every binding is held once on the server: one notify each.
            assert [served.set_status(SYS, DISPLAY, n, "last") for n in names] == [1, 1]
        assert await c.leftovers() == []  # nothing of the client left running

    with (
        running_server("trio", "placeos", engine, **placeos_options()) as handle,
        proxied(handle) as proxy,
    ):
        served = Served(handle, engine)
        client.run(scenario)
        faulter.join(WAIT)
        assert len(proxy.links) >= 2
        _check_faulty_link(fault, proxy.links[0])


def test_reconnect_rides_out_slow_handshakes(client: Client) -> None:
    """After a reset, two reconnects time out in the handshake; the third restores all."""

    async def scenario(c: Client) -> None:
        async with (
            c.connect_placeos(
                proxy.url(PLACEOS_PATH),
                api_key=API_KEY,
                connect_timeout=0.3,
                reconnect=fast_backoff(),
            ) as placeos,
            placeos.bind(SYS, DISPLAY, "power") as power,
        ):
            assert await power.next() is False
            proxy.mute_next = 2
            proxy.links[0].reset()
            await c.wait_for(proxy.arrived[3])
            served.set_status(SYS, DISPLAY, "power", "back")
            await power.until("back")
            assert await placeos.exec(SYS, DISPLAY, "add", 1, 1) == 2
            assert power.dropped == 0
            for slow in proxy.links[1:3]:
                await c.wait_for(slow.ended)  # the client gave up on it and hung up
        assert await c.leftovers() == []

    with (
        running_server("trio", "placeos", make_engine(), **placeos_options()) as handle,
        proxied(handle) as proxy,
    ):
        served = Served(handle)
        client.run(scenario)
        assert [link.mute for link in proxy.links] == [False, True, True, False]
        assert all(link.request.startswith(b"GET ") for link in proxy.links[1:3])


@pytest.mark.parametrize("fault", FAULTS)
def test_mews_fault_reconnects_and_loses_no_event(client: Client, fault: str) -> None:
    require(client.kind, "mews")
    first, second = (decode_envelope(MEWS_MESSAGES[name]) for name in ("000", "001"))

    async def scenario(c: Client) -> None:
        async with c.connect_mews(
            proxy.url(MEWS_PATH),
            client_token=CLIENT_TOKEN,
            access_token=ACCESS_TOKEN,
            **CLIENT_LIMITS,
        ) as events:
            assert served.publish(first) == 1
            assert tuple([await events.next() for _ in first.events]) == first.events
            _apply(fault, proxy.links[0])
            assert isinstance(await events.next(), Reconnected)
            await c.wait_for(proxy.links[0].ended)
            assert served.publish(second) == 1
            assert tuple([await events.next() for _ in second.events]) == second.events
            assert len(events.source) == 0  # nothing else was queued: no stray event
        assert await c.leftovers() == []

    with (
        running_server("trio", "mews", **mews_options()) as handle,
        proxied(handle) as proxy,
    ):
        served = Served(handle)
        client.run(scenario)
        assert len(proxy.links) == 2
        _check_faulty_link(fault, proxy.links[0])


def test_ping_flood_is_answered_and_the_client_stays_usable(client: Client) -> None:
    async def scenario(c: Client) -> None:
        async with (
            c.connect_placeos(proxy.url(PLACEOS_PATH), api_key=API_KEY) as placeos,
            placeos.bind(SYS, DISPLAY, "power") as power,
        ):
            assert await power.next() is False
            link = proxy.links[0]
            link.ping_flood(FLOOD)
            await c.wait_for(link.flood_answered)
            # One pong per ping at most (RFC 6455 lets a client skip all but the
            # latest), each answering its own ping, in order: no amplification.
            numbers = [int(pong.split()[1]) for pong in link.pongs]
            assert 1 <= len(numbers) <= FLOOD
            assert numbers == sorted(set(numbers))
            assert numbers[-1] == FLOOD - 1
            assert served.set_status(SYS, DISPLAY, "power", "after the flood") == 1
            assert await power.next() == "after the flood"
            assert await placeos.exec(SYS, DISPLAY, "add", 2, 3) == 5
            assert power.dropped == 0
        assert len(proxy.links) == 1  # never dropped
        assert await c.leftovers() == []

    with (
        running_server("trio", "placeos", make_engine(), **placeos_options()) as handle,
        proxied(handle) as proxy,
    ):
        served = Served(handle)
        client.run(scenario)


def test_mews_ping_flood_is_answered_and_events_still_flow(client: Client) -> None:
    require(client.kind, "mews")
    envelope = decode_envelope(MEWS_MESSAGES["002"])

    async def scenario(c: Client) -> None:
        async with c.connect_mews(
            proxy.url(MEWS_PATH), client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN
        ) as events:
            link = proxy.links[0]
            link.ping_flood(FLOOD)
            await c.wait_for(link.flood_answered)
            assert 1 <= len(link.pongs) <= FLOOD
            assert served.publish(envelope) == 1
            assert tuple([await events.next() for _ in envelope.events]) == envelope.events
        assert len(proxy.links) == 1
        assert await c.leftovers() == []

    with (
        running_server("trio", "mews", **mews_options()) as handle,
        proxied(handle) as proxy,
    ):
        served = Served(handle)
        client.run(scenario)


# -- a flood from a peer that never reads -------------------------------------------


def _upgrade(sock: socket.socket) -> None:
    """Answer a client's upgrade request with a 101 (any credentials)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the client hung up during the handshake"
        head += chunk
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    sock.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


FLOOD_BYTES = 64 << 20  # more than any loopback buffers hold (tcp_rmem max is 32 MiB)
STUCK = 2.0  # a send that makes no progress this long: the client stopped reading


def test_a_peer_that_floods_pings_and_never_reads_cannot_grow_the_client(client: Client) -> None:
    """Pongs the peer never reads must stay in the kernel's buffers, not pile up in
    ours: the client stops reading while its writes are backed up (asyncio's
    transport high-water mark; the trio and blocking adapters do the same). The
    flood then stalls well short of its end, where a client that kept reading
    (and buffering a pong per ping) would have taken all of it."""
    chunk = b"".join(frame(PING, b"p" * 100) for _ in range(1000))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    flooded = threading.Event()
    release = threading.Event()
    pushed = [0]

    def serve() -> None:
        sock, _ = listener.accept()
        with sock:
            _upgrade(sock)  # then never read again
            sock.settimeout(STUCK)
            with contextlib.suppress(OSError):  # socket.timeout: the client is not reading
                while pushed[0] < FLOOD_BYTES:
                    sock.sendall(chunk)
                    pushed[0] += len(chunk)
            flooded.set()
            release.wait(WAIT)

    async def scenario(c: Client) -> None:
        async with c.connect_placeos(
            f"ws://127.0.0.1:{port}{PLACEOS_PATH}",
            api_key=API_KEY,
            reconnect=False,
            keepalive_interval=None,
            heartbeat_interval=None,
            close_timeout=0.2,
        ):
            try:
                await c.wait_for(flooded, WAIT * 3)
            finally:
                release.set()
        assert pushed[0] < FLOOD_BYTES, "the client read the whole flood"

    thread = threading.Thread(target=serve, name="ping-flooder")
    thread.start()
    try:
        with contextlib.suppress(ConnectionLost, OSError):  # the flooder hangs up
            client.run(scenario)
    finally:
        release.set()
        thread.join(WAIT)
        listener.close()
    assert flooded.is_set()


# -- a server that never finishes the handshake ---------------------------------------


@contextmanager
def mute_server() -> Iterator[tuple[int, list[bytes], threading.Event]]:
    """Accepts one connection, reads its upgrade request, never answers.

    Yields the port, the requests read, and a flag set when the client hung up.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    requests: list[bytes] = []
    hung_up = threading.Event()
    stop = threading.Event()

    def serve() -> None:
        sock, _ = listener.accept()
        with sock:
            if stop.is_set():
                return
            sock.settimeout(WAIT * 2)
            head = b""
            with contextlib.suppress(OSError):
                while chunk := sock.recv(4096):
                    head += chunk
                    if b"\r\n\r\n" in head:
                        requests.append(head)
                        head = b""
                hung_up.set()  # EOF: the client gave up and closed its socket

    thread = threading.Thread(target=serve, name="mute-server")
    thread.start()
    try:
        yield port, requests, hung_up
    finally:
        stop.set()
        if not hung_up.is_set():
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
        thread.join(WAIT * 3)
        listener.close()


@pytest.mark.parametrize("protocol", ["placeos", "mews"])
def test_slow_handshake_times_out_and_closes_the_socket(client: Client, protocol: str) -> None:
    require(client.kind, protocol)  # type: ignore[arg-type]

    async def scenario(c: Client) -> None:
        opening: Any
        if protocol == "placeos":
            opening = c.connect_placeos(
                f"ws://127.0.0.1:{port}{PLACEOS_PATH}",
                api_key=API_KEY,
                connect_timeout=0.3,
                reconnect=False,
            )
        else:
            opening = c.connect_mews(
                f"ws://127.0.0.1:{port}{MEWS_PATH}",
                client_token=CLIENT_TOKEN,
                access_token=ACCESS_TOKEN,
                connect_timeout=0.3,
                reconnect=False,
            )
        with pytest.raises(TimeoutError, match="timed out"):
            async with opening:
                pytest.fail("a server that never answered gave a connection")
        await c.wait_for(hung_up)
        assert await c.leftovers() == []

    with mute_server() as (port, requests, hung_up):
        client.run(scenario)
    assert len(requests) == 1  # asked once, never retried
    assert requests[0].startswith(b"GET ")


# -- faults a raw client sends to every server adapter --------------------------------


def _request(protocol: str, port: int) -> bytes:
    """An upgrade request with good credentials, as the core's client writes it."""
    if protocol == "placeos":
        session: Any = PlaceOSClient(api_key=API_KEY)
        url = f"ws://127.0.0.1:{port}{PLACEOS_PATH}"
    else:
        from protocore.mews import MewsClient

        session = MewsClient(client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN)
        url = f"ws://127.0.0.1:{port}{MEWS_PATH}"
    conn = ClientConnection(session, url)
    conn.start(0.0)
    return conn.data_to_send()


@contextmanager
def raw_client(protocol: str, port: int) -> Iterator[tuple[socket.socket, bytearray]]:
    """An upgraded socket (any frames that came with the 101 are in the buffer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    with sock:
        sock.sendall(_request(protocol, port))
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, "the server hung up during the handshake"
            buf += chunk
        end = buf.index(b"\r\n\r\n") + 4
        assert buf.startswith(b"HTTP/1.1 101 "), bytes(buf[:end])
        del buf[:end]
        yield sock, buf


def frames_until_close(sock: socket.socket, buf: bytearray) -> list[tuple[int, bytes]]:
    """Every frame the server sends up to and including its close frame (or EOF)."""
    frames: list[tuple[int, bytes]] = []
    while True:
        while (found := split_frame(buf)) is not None:
            opcode, payload, size = found
            del buf[:size]
            frames.append((opcode, payload))
            if opcode == CLOSE:
                return frames
        chunk = sock.recv(65536)
        if not chunk:
            return frames
        buf += chunk


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (frame(TEXT, b"[" + b"1," * 3000 + b"1]", masked=True), 1009),
        (frame(TEXT, b'{"id": 1, "cmd": "\xc3\x28"}', masked=True), 1007),
        (frame(TEXT, b'"x', fin=False, masked=True) + frame(TEXT, b"y", masked=True), 1002),
        (frame(PING, b"p" * 126, masked=True), 1002),
    ],
    ids=["too_big", "bad_utf8", "unfinished_message", "oversized_ping"],
)
@pytest.mark.parametrize("protocol", ["placeos", "mews"])
def test_server_closes_with_the_rfc_code(
    server_kind: str, protocol: str, bad: bytes, code: int
) -> None:
    args: tuple[Any, ...] = (make_engine(),) if protocol == "placeos" else ()
    options = placeos_options() if protocol == "placeos" else mews_options()
    with running_server(
        server_kind,
        protocol,  # type: ignore[arg-type]
        *args,
        max_message_size=4096,
        **options,
    ) as served:
        with raw_client(protocol, served.port) as (sock, buf):
            sock.sendall(bad)
            frames = frames_until_close(sock, buf)
        assert frames, "no close frame"
        opcode, payload = frames[-1]
        assert (opcode, close_code(payload)) == (CLOSE, code)


@pytest.mark.parametrize("protocol", ["placeos", "mews"])
def test_server_answers_a_ping_flood_and_closes_cleanly(server_kind: str, protocol: str) -> None:
    args: tuple[Any, ...] = (make_engine(),) if protocol == "placeos" else ()
    options = placeos_options() if protocol == "placeos" else mews_options()
    flood = b"".join(frame(PING, b"%d" % i, masked=True) for i in range(FLOOD))
    with (
        running_server(server_kind, protocol, *args, **options) as served,  # type: ignore[arg-type]
        raw_client(protocol, served.port) as (sock, buf),
    ):
        sock.sendall(flood + frame(CLOSE, (1000).to_bytes(2, "big"), masked=True))
        frames = frames_until_close(sock, buf)
    pongs = [int(payload) for opcode, payload in frames if opcode == PONG]
    assert 1 <= len(pongs) <= FLOOD
    assert pongs == sorted(set(pongs))
    assert pongs[-1] == FLOOD - 1
    assert frames[-1][0] == CLOSE
    assert close_code(frames[-1][1]) == 1000


@pytest.mark.parametrize("fault", ["mid_frame", "reset", "slow_handshake"])
def test_server_survives_a_broken_client(server_kind: str, fault: str) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_placeos(served.url, api_key=API_KEY) as placeos:
            assert await placeos.exec(SYS, DISPLAY, "add", 20, 22) == 42

    with running_server(server_kind, "placeos", make_engine(), **placeos_options()) as handle:
        served = Served(handle)
        if fault == "slow_handshake":
            # Half a request line, then nothing: other clients are served meanwhile.
            with socket.create_connection(("127.0.0.1", served.port), timeout=WAIT) as slow:
                slow.sendall(b"GET /api/engine/v2/systems/control HT")
                Client("trio").run(scenario)
        else:
            with raw_client("placeos", served.port) as (sock, _):
                sock.sendall(
                    frame(TEXT, b'{"id": 1, "cmd": "exec"' + b" " * 500, masked=True)[:200]
                )
                if fault == "reset":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            Client("trio").run(scenario)


def test_a_client_that_floods_pings_and_never_reads_cannot_grow_the_server(
    server_kind: str,
) -> None:
    """The server side of the same flood: it stops reading that client, the flood
    stalls, and the server still serves others and stops cleanly."""
    chunk = b"".join(frame(PING, b"p" * 100, masked=True) for _ in range(1000))
    pushed = 0

    async def scenario(c: Client) -> None:
        async with c.connect_placeos(served.url, api_key=API_KEY) as placeos:
            assert await placeos.exec(SYS, DISPLAY, "add", 1, 2) == 3

    with (
        running_server(server_kind, "placeos", make_engine(), **placeos_options()) as handle,
        raw_client("placeos", handle.port) as (sock, _),
    ):
        served = Served(handle)
        sock.settimeout(STUCK)
        with contextlib.suppress(OSError):  # socket.timeout: the server stopped reading
            while pushed < FLOOD_BYTES:
                sock.sendall(chunk)
                pushed += len(chunk)
        Client("trio").run(scenario)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert pushed < FLOOD_BYTES, "the server read the whole flood"
