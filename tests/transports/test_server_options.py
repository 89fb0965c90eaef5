"""Every server adapter honours the same connection options, for each protocol.

A raw client on a plain socket plays the peer that goes quiet: one that upgrades
and then never reads or answers (the server's keepalive must notice: a ping, no
pong, a 1011 close), and one that sends half an upgrade request (the handshake
timer must close the socket). Frames are parsed with wsproto's codec, as the core
does. No sleeps and no timing assertions: each wait is a socket read bounded by
`harness.WAIT`, so a slow machine can only make a test slower, never fail it.

A signature check keeps the six ``serve_*`` functions' options from drifting apart.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from harness import (
    ACCESS_TOKEN,
    API_KEY,
    CLIENT_TOKEN,
    KINDS,
    WAIT,
    Protocol,
    adapter,
    make_engine,
    mews_options,
    placeos_options,
    running_server,
)
from wsproto.frame_protocol import FrameProtocol, Opcode

from protocore import LocalProtocolError
from protocore.connection import ClientConnection
from protocore.mews import MewsClient
from protocore.placeos import PlaceOSClient

pytestmark = pytest.mark.timeout(60)

PROTOCOLS: tuple[Protocol, ...] = ("placeos", "mews")
PATHS = {"placeos": "/api/engine/v2/systems/control", "mews": "/ws/connector"}

OPTIONS = {
    "keepalive_interval": 20.0,
    "keepalive_timeout": 20.0,
    "handshake_timeout": 10.0,
    "close_timeout": 10.0,
    "max_message_size": 1 << 20,
}
"""The connection options every ``serve_*`` takes, with their defaults."""


@contextmanager
def server(kind: str, protocol: Protocol, **options: Any) -> Iterator[Any]:
    """A ``protocol`` server of adapter ``kind`` with the harness credentials."""
    if protocol == "placeos":
        with running_server(kind, protocol, make_engine(), **placeos_options(**options)) as h:
            yield h
    else:
        with running_server(kind, protocol, **mews_options(**options)) as h:
            yield h


def upgrade_request(protocol: Protocol, port: int) -> bytes:
    """An upgrade request with good credentials, exactly as the core's client writes it."""
    session: Any = (
        PlaceOSClient(api_key=API_KEY)
        if protocol == "placeos"
        else MewsClient(client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN)
    )
    conn = ClientConnection(session, f"ws://127.0.0.1:{port}{PATHS[protocol]}")
    conn.start(0.0)
    return conn.data_to_send()


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the socket (each recv bounded)."""
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


@contextmanager
def upgraded(protocol: Protocol, port: int) -> Iterator[tuple[socket.socket, bytes]]:
    """A raw socket past the 101, and whatever bytes came after the response head."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(upgrade_request(protocol, port))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, "the server hung up during the handshake"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        yield sock, rest


def server_frames(data: bytes) -> list[tuple[Opcode, Any]]:
    """The server's frames in ``data``: (opcode, payload); a close's payload is its code."""
    codec = FrameProtocol(client=True, extensions=[])
    codec.receive_bytes(data)
    frames: list[tuple[Opcode, Any]] = []
    for frame in codec.received_frames():
        payload: Any = frame.payload
        if frame.opcode is Opcode.CLOSE:
            assert isinstance(payload, tuple)
            payload = int(payload[0])
        frames.append((frame.opcode, payload))
    return frames


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_server_drops_a_client_that_never_answers_its_ping(
    server_kind: str, protocol: Protocol
) -> None:
    with server(server_kind, protocol, keepalive_interval=0.1, keepalive_timeout=0.2) as handle:
        with upgraded(protocol, handle.port) as (sock, early):
            assert handle.connections == 1
            # Never read (until now) nor answer: the server pings, gets no pong, gives up.
            frames = server_frames(early + read_to_eof(sock))
        assert [opcode for opcode, _ in frames] == [Opcode.PING, Opcode.CLOSE]
        assert frames[-1][1] == 1011  # the core's close for a keepalive timeout
        assert handle.connections == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_server_closes_a_half_sent_upgrade_and_serves_on(
    server_kind: str, protocol: Protocol
) -> None:
    with server(server_kind, protocol, handshake_timeout=0.2) as handle:
        with socket.create_connection(("127.0.0.1", handle.port), timeout=WAIT) as slow:
            slow.sendall(upgrade_request(protocol, handle.port)[:30])
            # The core ends a timed-out handshake without a word: just EOF.
            assert read_to_eof(slow) == b""
        assert handle.connections == 0
        # The next client upgrades and closes cleanly.
        with upgraded(protocol, handle.port) as (sock, early):
            assert early == b""
            assert handle.connections == 1
            codec = FrameProtocol(client=True, extensions=[])
            sock.sendall(codec.close(1000))
            frames = server_frames(read_to_eof(sock))
        assert frames == [(Opcode.CLOSE, 1000)]


@pytest.mark.parametrize("bad", ["keepalive_timeout", "handshake_timeout", "close_timeout"])
def test_a_bad_timeout_fails_when_the_server_starts(server_kind: str, bad: str) -> None:
    with (
        pytest.raises(LocalProtocolError, match=f"{bad} must be a positive number"),
        server(server_kind, "mews", **{bad: 0}),
    ):
        pytest.fail("a server started with a zero timeout")


def test_every_serve_function_takes_the_same_connection_options() -> None:
    """Keyword-only, same defaults, same annotations, each documented in the docstring."""
    annotations: dict[str, set[str]] = {name: set() for name in OPTIONS}
    checked = 0
    for kind in KINDS:
        module = adapter(kind)
        assert module is not None, f"transports.{kind} is missing"
        for protocol in PROTOCOLS:
            serve = getattr(module, f"serve_{protocol}")
            parameters = inspect.signature(serve).parameters
            doc = inspect.getdoc(serve) or ""
            for name, default in OPTIONS.items():
                where = f"{kind}.serve_{protocol}({name})"
                assert name in parameters, f"{where} is missing"
                parameter = parameters[name]
                assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, where
                assert parameter.default == default, where
                assert f"``{name}``" in doc, f"{where} is not documented"
                annotations[name].add(str(parameter.annotation))
            checked += 1
    assert checked == 6
    assert all(len(found) == 1 for found in annotations.values()), annotations
