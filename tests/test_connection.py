"""ClientConnection and ServerConnection, driven against each other in memory.

No sockets and no clock: ``now`` is a float the test advances, and `pump` moves
`data_to_send()` between the two ends until both are quiet. Raw frames (built by
`frame`, or read back with `decode`) stand in for a misbehaving peer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sessions_for_tests import (
    EchoServerSession,
    HeartbeatLost,
    Lost,
    Made,
    Received,
    RecordingClientSession,
    TimerFired,
)
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionType
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from protocore import _handshake
from protocore import connection as connection_module
from protocore.connection import (
    DEFAULT_MAX_HANDSHAKE_SIZE,
    ClientConnection,
    ConnectionState,
    KeepaliveTimeout,
    ServerConnection,
    WebSocketURL,
    parse_ws_url,
)
from protocore.errors import LocalProtocolError
from protocore.events import (
    Connected,
    ConnectionClosed,
    Event,
    HandshakeRejected,
    LivenessLost,
)
from protocore.session import Rejection
from protocore.testing import wire

SECRET = "s3cr3t-API-KEY-7f9a"
CLOSED = ConnectionState.CLOSED
OPEN = ConnectionState.OPEN
CLOSING = ConnectionState.CLOSING
CONNECTING = ConnectionState.CONNECTING

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA

Conn = ClientConnection | ServerConnection


# -- helpers ------------------------------------------------------------------------


def pump(a: Conn, b: Conn, now: float) -> None:
    """Move bytes both ways until neither side has anything to say.

    Like a transport, bytes are not delivered to a connection that is CLOSED
    (its socket would be closed).
    """
    for _ in range(1000):
        to_b = a.data_to_send()
        to_a = b.data_to_send()
        if not to_a and not to_b:
            return
        if to_b and b.state is not CLOSED:
            b.receive_data(to_b, now)
        if to_a and a.state is not CLOSED:
            a.receive_data(to_a, now)
    raise AssertionError("the two ends never went quiet")


def open_pair(
    *,
    client_session: RecordingClientSession | None = None,
    server_session: EchoServerSession | None = None,
    url: str = "ws://example.com/api",
    now: float = 0.0,
    client_kw: dict[str, object] | None = None,
    server_kw: dict[str, object] | None = None,
) -> tuple[ClientConnection, ServerConnection, RecordingClientSession, EchoServerSession]:
    cs = client_session or RecordingClientSession(headers=[("X-API-Key", SECRET)])
    ss = server_session or EchoServerSession(api_key=SECRET)
    client = ClientConnection(cs, url, **(client_kw or {}))  # type: ignore[arg-type]
    server = ServerConnection(ss, **(server_kw or {}))  # type: ignore[arg-type]
    client.start(now)
    server.start(now)
    pump(client, server, now)
    return client, server, cs, ss


Pair = tuple[ClientConnection, ServerConnection, RecordingClientSession, EchoServerSession]


def authed(**kwargs: object) -> RecordingClientSession:
    """A client session that the default server session admits."""
    return RecordingClientSession(headers=[("X-API-Key", SECRET)], **kwargs)


def opened(**kwargs: object) -> Pair:
    """An open pair whose opening events have been drained."""
    client, server, cs, ss = open_pair(**kwargs)  # type: ignore[arg-type]
    assert client.events() == [Connected(None), Made()]
    assert server.events() == [Connected(None), Made()]
    assert client.state is OPEN
    assert server.state is OPEN
    return client, server, cs, ss


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, masked: bool = False) -> bytes:
    """One raw frame, as a peer (or a broken peer) would write it."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head.append(mask_bit | n)
    elif n < 1 << 16:
        head.append(mask_bit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(mask_bit | 127)
        head += n.to_bytes(8, "big")
    if masked:
        key = b"\x11\x22\x33\x44"
        head += key
        payload = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return bytes(head) + payload


def sframe(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """A frame from a server (unmasked)."""
    return frame(opcode, payload, fin=fin)


def cframe(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """A frame from a client (masked)."""
    return frame(opcode, payload, fin=fin, masked=True)


def close_payload(code: int, reason: str = "") -> bytes:
    return code.to_bytes(2, "big") + reason.encode()


def decode(data: bytes, *, sent_by_client: bool) -> list[object]:
    """The wsproto events a peer would read from ``data`` (frames only)."""
    reader = WsConnection(ConnectionType.SERVER if sent_by_client else ConnectionType.CLIENT)
    reader.receive_data(data)
    return list(reader.events())


def request_key(request: bytes) -> bytes:
    match = re.search(rb"sec-websocket-key: ([^\r]+)\r\n", request)
    assert match is not None
    return match.group(1)


def response_101(request: bytes, extra: bytes = b"") -> bytes:
    accept = _handshake.accept_token(request_key(request))
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n" + extra + b"\r\n"
    )


def started_client(**kwargs: object) -> tuple[ClientConnection, RecordingClientSession, bytes]:
    cs = RecordingClientSession(headers=[("X-API-Key", SECRET)])
    client = ClientConnection(cs, "ws://example.com/api", **kwargs)  # type: ignore[arg-type]
    client.start(0.0)
    return client, cs, client.data_to_send()


VALID_REQUEST = (
    b"GET /api HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def started_server(**kwargs: object) -> tuple[ServerConnection, EchoServerSession]:
    ss = EchoServerSession()
    server = ServerConnection(ss, **kwargs)  # type: ignore[arg-type]
    server.start(0.0)
    return server, ss


# -- the opening handshake ----------------------------------------------------------


def test_handshake_carries_auth_and_messages_flow_both_ways() -> None:
    cs = RecordingClientSession(headers=[("X-API-Key", SECRET)], on_connect=["hello"])
    ss = EchoServerSession(api_key=SECRET, on_connect=["welcome"])
    client, server, _, _ = open_pair(client_session=cs, server_session=ss)

    assert client.events() == [Connected(None), Made(), Received("welcome"), Received("hello")]
    assert server.events() == [Connected(None), Made(), Received("hello")]
    [(target, headers)] = ss.requests
    assert target == "/api"
    assert ("x-api-key", SECRET) in headers
    assert ("host", "example.com") in headers
    assert cs.made == ss.made == 1
    assert cs.handshakes == 1


def test_query_auth_is_percent_encoded_and_merged_into_the_target() -> None:
    cs = RecordingClientSession(query=[("api-key", SECRET), ("odd", "a b/c&d=é")])
    ss = EchoServerSession(api_key=SECRET)
    client, _server, _, _ = open_pair(
        client_session=cs, server_session=ss, url="ws://[::1]:8080/ws/connector?x=1"
    )
    assert client.state is OPEN
    [(target, headers)] = ss.requests
    assert target == f"/ws/connector?x=1&api-key={SECRET}&odd=a%20b%2Fc%26d%3D%C3%A9"
    assert ("host", "[::1]:8080") in headers


def test_messages_queued_before_the_handshake_wait_for_it() -> None:
    cs = RecordingClientSession(headers=[("X-API-Key", SECRET)])
    cs.send("early")
    client = ClientConnection(cs, "ws://example.com/")
    client.start(0.0)
    request = client.data_to_send()
    assert b"early" not in request
    assert cs.outbox == ["early"]  # still the session's until the connection is open
    server = ServerConnection(EchoServerSession(api_key=SECRET))
    server.start(0.0)
    server.receive_data(request, 0.0)
    pump(client, server, 0.0)
    assert server.events()[-1] == Received("early")


def test_application_calls_to_the_session_are_sent_by_data_to_send() -> None:
    client, server, cs, ss = opened()
    cs.send("direct")
    assert decode(client.data_to_send(), sent_by_client=True) == [TextMessage("direct")]
    ss.send("from the server app")
    server_bytes = server.data_to_send()
    assert server_bytes == sframe(TEXT, b"from the server app")


def test_subprotocol_is_negotiated_in_the_servers_order() -> None:
    client, server, _, _ = open_pair(
        client_kw={"subprotocols": ["v1", "v2"]}, server_kw={"subprotocols": ["v2", "v1"]}
    )
    assert client.events()[0] == Connected("v2")
    assert server.events()[0] == Connected("v2")
    assert client.subprotocol == server.subprotocol == "v2"


def test_no_common_subprotocol_connects_without_one() -> None:
    client, server, _, _ = open_pair(
        client_kw={"subprotocols": ["v1"]}, server_kw={"subprotocols": ["v9"]}
    )
    assert client.events()[0] == Connected(None)
    assert server.events()[0] == Connected(None)


def test_frames_pipelined_behind_the_request_are_not_lost() -> None:
    # A conforming client waits for the 101, but bytes may arrive together; wsproto's
    # own server handshake would drop these.
    server, _ss = started_server()
    server.receive_data(VALID_REQUEST + cframe(TEXT, b"early bird"), 0.0)
    assert server.events() == [Connected(None), Made(), Received("early bird")]


def test_frames_arriving_with_the_101_are_not_lost() -> None:
    client, _cs, request = started_client()
    client.receive_data(response_101(request) + sframe(TEXT, b"right behind"), 0.0)
    assert client.events() == [Connected(None), Made(), Received("right behind")]


# -- refusals -----------------------------------------------------------------------


def test_auth_rejected_with_401() -> None:
    cs = RecordingClientSession(headers=[("X-API-Key", "wrong")])
    ss = EchoServerSession(api_key=SECRET)
    client = ClientConnection(cs, "ws://example.com/api")
    server = ServerConnection(ss)
    client.start(0.0)
    server.start(0.0)
    server.receive_data(client.data_to_send(), 0.0)
    answer = server.data_to_send()
    assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b" 101 " not in answer
    assert b"sec-websocket-accept" not in answer.lower()
    assert server.state is CLOSED
    assert server.events() == [
        Lost(),
        ConnectionClosed(
            1006, "opening handshake refused with HTTP 401: refused by the session", True
        ),
    ]
    client.receive_data(answer, 0.0)
    events = client.events()
    rejected = events[0]
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.status_code == 401
    assert rejected.body == b"bad api key\n"
    assert ("content-type", "text/plain; charset=utf-8") in rejected.headers
    assert ("content-length", "12") in rejected.headers
    assert events[1:] == [Lost(), ConnectionClosed(1006, "opening handshake refused with HTTP 401")]
    assert client.state is CLOSED
    assert cs.made == ss.made == 0
    assert cs.lost == ss.lost == 1


def test_rejection_headers_from_the_session_are_sent() -> None:
    ss = EchoServerSession(api_key=SECRET)
    ss.rejection = Rejection(403, b"{}", (("Content-Type", "application/json"), ("X-Why", "no")))
    cs = RecordingClientSession()
    client, _server, _, _ = open_pair(client_session=cs, server_session=ss)
    rejected = client.events()[0]
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.status_code == 403
    assert rejected.body == b"{}"
    assert ("content-type", "application/json") in rejected.headers
    assert ("x-why", "no") in rejected.headers
    assert [name for name, _ in rejected.headers].count("content-type") == 1


def test_rejection_read_one_byte_at_a_time() -> None:
    client, _, _ = started_client()
    answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!"
    for i in range(len(answer)):
        assert client.state is CONNECTING
        client.receive_data(answer[i : i + 1], 0.0)
    assert client.events()[0] == HandshakeRejected(404, (("content-length", "5"),), b"nope!")
    assert client.state is CLOSED


def test_rejection_body_running_until_eof() -> None:
    client, cs, _ = started_client()
    client.receive_data(b"HTTP/1.1 403 Forbidden\r\n\r\nno entry", 0.0)
    assert client.events() == []
    client.receive_eof(1.0)
    assert client.events() == [
        HandshakeRejected(403, (), b"no entry"),
        Lost(),
        ConnectionClosed(1006, "opening handshake refused with HTTP 403"),
    ]
    assert cs.lost == 1


def test_rejection_body_cut_short_by_eof_is_still_reported() -> None:
    client, _, _ = started_client()
    client.receive_data(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\n\r\nshort", 0.0)
    client.receive_eof(1.0)
    events = client.events()
    assert events[0] == HandshakeRejected(401, (("content-length", "100"),), b"short")
    assert events[-1] == ConnectionClosed(1006, "opening handshake refused with HTTP 401")


def test_rejection_body_is_capped() -> None:
    client, _, _ = started_client(max_handshake_size=1000)
    client.receive_data(b"HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n", 0.0)
    client.receive_data(b"x" * 600, 0.0)
    assert client.state is CONNECTING
    client.receive_data(b"x" * 600, 0.0)
    assert client.state is CLOSED
    rejected = client.events()[0]
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.body == b"x" * 1000


def test_chunked_rejection_body() -> None:
    client, _, _ = started_client()
    client.receive_data(
        b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        0.0,
    )
    rejected = client.events()[0]
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.body == b"abcde"


def test_informational_responses_before_the_101_are_skipped() -> None:
    client, _, request = started_client()
    client.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n" + response_101(request), 0.0)
    assert client.events() == [Connected(None), Made()]


GARBAGE_REQUESTS = {
    "binary": (b"\x00\x01\x02\xff\r\n\r\n", 400),
    "plain http": (b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400),
    "no connection upgrade": (
        VALID_REQUEST.replace(b"Connection: Upgrade\r\n", b"Connection: keep-alive\r\n"),
        400,
    ),
    "post": (VALID_REQUEST.replace(b"GET", b"POST", 1), 405),
    "http 1.0": (VALID_REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0", 1), 505),
    "version 8": (VALID_REQUEST.replace(b"Version: 13", b"Version: 8"), 426),
    "no key": (VALID_REQUEST.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""), 400),
    "short key": (VALID_REQUEST.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"c2hvcnQ="), 400),
    "body": (VALID_REQUEST.replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\nabc"), 400),
    "no host": (VALID_REQUEST.replace(b"Host: example.com\r\n", b""), 400),
    "bad header line": (VALID_REQUEST.replace(b"Host:", b"Host :"), 400),
    "non-ascii target": (VALID_REQUEST.replace(b"/api", b"/\xe9t\xe9"), 400),
}


@pytest.mark.parametrize("name", GARBAGE_REQUESTS)
@pytest.mark.parametrize("one_byte_at_a_time", [False, True])
def test_garbage_to_the_server_gets_a_4xx_and_no_exception(
    name: str, one_byte_at_a_time: bool
) -> None:
    data, status = GARBAGE_REQUESTS[name]
    server, ss = started_server()
    chunks = [data[i : i + 1] for i in range(len(data))] if one_byte_at_a_time else [data]
    for chunk in chunks:
        if server.state is CLOSED:
            break
        server.receive_data(chunk, 0.0)
    answer = server.data_to_send()
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"connection: close" in answer.lower()
    if status == 426:
        assert b"sec-websocket-version: 13" in answer
    assert server.state is CLOSED
    events = server.events()
    assert events[0] == Lost()
    closed = events[1]
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == 1006
    assert closed.local
    assert str(status) in closed.reason
    assert len(events) == 2
    assert ss.made == 0
    assert ss.lost == 1
    assert ss.requests == []  # never asked to authorize


def garbage_responses(request: bytes) -> dict[str, bytes]:
    ok = response_101(request)
    return {
        "binary": b"\x00\x01garbage\r\n\r\n",
        "bad status line": b"HTTP/1.1 abc Nope\r\n\r\n",
        "wrong accept": ok.replace(
            _handshake.accept_token(request_key(request)), b"AAAAAAAAAAAAAAAAAAAAAAAAAAA="
        ),
        "no upgrade header": ok.replace(b"Upgrade: websocket\r\n", b""),
        "no connection header": ok.replace(b"Connection: Upgrade\r\n", b""),
        "unoffered extension": response_101(
            request, b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        ),
        "unoffered subprotocol": response_101(request, b"Sec-WebSocket-Protocol: chat\r\n"),
    }


@pytest.mark.parametrize(
    "name",
    [
        "binary",
        "bad status line",
        "wrong accept",
        "no upgrade header",
        "no connection header",
        "unoffered extension",
        "unoffered subprotocol",
    ],
)
def test_garbage_to_the_client_closes_it_without_exception(name: str) -> None:
    client, cs, request = started_client()
    client.receive_data(garbage_responses(request)[name], 0.0)
    assert client.state is CLOSED
    events = client.events()
    assert events[0] == Lost()
    closed = events[1]
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == 1006
    assert closed.local
    assert "handshake" in closed.reason
    assert cs.made == 0
    assert cs.lost == 1
    assert client.data_to_send() == b""


def test_endless_request_headers_are_cut_off() -> None:
    server, _ = started_server()
    server.receive_data(b"GET / HTTP/1.1\r\nHost: example.com\r\n", 0.0)
    fed = 0
    line = b"X-Padding: " + b"a" * 1000 + b"\r\n"
    while server.state is not CLOSED:
        server.receive_data(line, 0.0)
        fed += len(line)
        assert fed < 10 * DEFAULT_MAX_HANDSHAKE_SIZE
    assert fed <= DEFAULT_MAX_HANDSHAKE_SIZE + len(line)
    assert server.data_to_send().startswith(b"HTTP/1.1 431 ")


def test_endless_response_headers_are_cut_off() -> None:
    client, _, _ = started_client(max_handshake_size=4096)
    client.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n", 0.0)
    fed = 0
    while client.state is not CLOSED:
        client.receive_data(b"X-Padding: " + b"b" * 100 + b"\r\n", 0.0)
        fed += 113
        assert fed < 100_000
    assert fed <= 4096 + 113
    assert client.events()[-1] == ConnectionClosed(
        1006, "invalid HTTP response to the opening handshake", True
    )


# -- timers -------------------------------------------------------------------------


def test_client_handshake_timeout() -> None:
    client, cs, _ = started_client(handshake_timeout=10.0)
    assert client.next_deadline() == 10.0
    client.handle_timer(9.99)
    assert client.state is CONNECTING
    assert client.events() == []
    client.handle_timer(10.0)
    assert client.state is CLOSED
    assert client.events() == [Lost(), ConnectionClosed(1006, "opening handshake timed out", True)]
    assert client.next_deadline() is None
    assert cs.lost == 1


def test_server_handshake_timeout_with_a_half_sent_request() -> None:
    server, ss = started_server(handshake_timeout=5.0)
    server.receive_data(VALID_REQUEST[:30], 1.0)
    assert server.next_deadline() == 5.0
    server.handle_timer(5.0)
    assert server.state is CLOSED
    assert server.events() == [Lost(), ConnectionClosed(1006, "opening handshake timed out", True)]
    assert server.data_to_send() == b""
    assert ss.lost == 1


def test_session_timers_run_during_the_handshake() -> None:
    cs = RecordingClientSession(timer_at=2.0)
    client = ClientConnection(cs, "ws://example.com/", handshake_timeout=10.0)
    client.start(0.0)
    assert client.next_deadline() == 2.0
    client.handle_timer(2.0)
    assert client.events() == [TimerFired()]
    assert client.state is CONNECTING
    assert client.next_deadline() == 10.0


@pytest.mark.parametrize("side", ["client", "server"])
def test_keepalive_ping_is_sent_on_time_and_the_pong_rearms_it(side: str) -> None:
    kw = {"keepalive_interval": 5.0, "keepalive_timeout": 3.0}
    off = {"keepalive_interval": None}
    client, server, _, _ = opened(
        client_kw=kw if side == "client" else off, server_kw=kw if side == "server" else off
    )
    pinger, other = (client, server) if side == "client" else (server, client)
    assert other.next_deadline() is None
    assert pinger.next_deadline() == 5.0
    pinger.handle_timer(4.9)
    assert pinger.data_to_send() == b""
    pinger.handle_timer(5.0)
    ping = pinger.data_to_send()
    [event] = decode(ping, sent_by_client=side == "client")
    assert isinstance(event, Ping)
    assert pinger.next_deadline() == 8.0  # waiting for the pong
    other.receive_data(ping, 5.5)
    pong = other.data_to_send()
    assert decode(pong, sent_by_client=side != "client") == [Pong(event.payload)]
    pinger.receive_data(pong, 5.5)
    assert pinger.next_deadline() == 10.0  # interval counted from the ping
    pinger.handle_timer(10.0)
    [second] = decode(pinger.data_to_send(), sent_by_client=side == "client")
    assert isinstance(second, Ping)
    assert second.payload != event.payload
    assert pinger.events() == []
    assert other.events() == []


def test_keepalive_lost_when_the_peer_stops_answering() -> None:
    client, _server, cs, _ = opened(client_kw={"keepalive_interval": 5.0, "keepalive_timeout": 3.0})
    client.handle_timer(5.0)
    client.data_to_send()  # the ping goes nowhere: the peer is gone
    client.handle_timer(7.99)
    assert client.state is OPEN
    assert client.events() == []
    client.handle_timer(8.0)
    assert client.state is CLOSED
    assert client.events() == [
        KeepaliveTimeout(3.0),
        Lost(),
        ConnectionClosed(1006, "keepalive ping timeout", True),
    ]
    assert isinstance(KeepaliveTimeout(3.0), LivenessLost)
    # A close frame is still offered, but nothing waits for its answer.
    assert decode(client.data_to_send(), sent_by_client=True) == [
        CloseConnection(1011, "keepalive ping timeout")
    ]
    assert client.next_deadline() is None
    assert cs.lost == 1


def test_an_unsolicited_or_wrong_pong_does_not_count() -> None:
    client, _, _, _ = opened(client_kw={"keepalive_interval": 5.0, "keepalive_timeout": 3.0})
    client.handle_timer(5.0)
    client.data_to_send()
    client.receive_data(sframe(PONG, b"not yours"), 6.0)
    assert client.next_deadline() == 8.0
    client.handle_timer(8.0)
    assert client.state is CLOSED


def test_keepalive_disabled() -> None:
    client, server, _, _ = opened(
        client_kw={"keepalive_interval": None}, server_kw={"keepalive_interval": None}
    )
    assert client.next_deadline() is None
    assert server.next_deadline() is None
    client.handle_timer(1000.0)
    assert client.data_to_send() == b""
    assert client.state is OPEN


def test_session_heartbeat_lost_drops_the_connection() -> None:
    cs = authed(heartbeat=15.0, timer_event=HeartbeatLost())
    client, server, _, ss = opened(client_session=cs, client_kw={"keepalive_interval": None})
    assert client.next_deadline() == 15.0
    client.handle_timer(15.0)
    assert client.state is CLOSED
    reason = "liveness lost: HeartbeatLost"
    assert client.events() == [HeartbeatLost(), Lost(), ConnectionClosed(1006, reason, True)]
    goodbye = client.data_to_send()
    server.receive_data(goodbye, 15.0)
    assert server.events() == [Lost(), ConnectionClosed(1011, reason, False)]
    assert cs.lost == ss.lost == 1


def test_session_timer_that_is_not_liveness_keeps_the_connection() -> None:
    cs = authed(heartbeat=3.0)
    client, _, _, _ = opened(client_session=cs, client_kw={"keepalive_interval": 5.0})
    assert client.next_deadline() == 3.0
    client.handle_timer(3.0)
    assert client.events() == [TimerFired()]
    assert client.state is OPEN
    assert client.next_deadline() == 5.0


def test_next_deadline_sees_timers_the_application_started_on_the_session() -> None:
    client, _, cs, _ = opened(client_kw={"keepalive_interval": 20.0})
    assert client.next_deadline() == 20.0
    cs.timer_at = 4.0
    assert client.next_deadline() == 4.0


# -- closing ------------------------------------------------------------------------


@pytest.mark.parametrize("closer", ["client", "server"])
def test_close_handshake(closer: str) -> None:
    client, server, cs, ss = opened()
    first, second = (client, server) if closer == "client" else (server, client)
    first.close(4000, "bye", now=1.0)
    assert first.state is CLOSING
    assert first.next_deadline() == 11.0
    pump(client, server, 1.5)
    assert client.state is CLOSED
    assert server.state is CLOSED
    assert first.events() == [Lost(), ConnectionClosed(4000, "bye", True)]
    assert second.events() == [Lost(), ConnectionClosed(4000, "bye", False)]
    assert cs.lost == ss.lost == 1
    assert client.data_to_send() == server.data_to_send() == b""


def test_close_timeout_when_the_peer_never_answers() -> None:
    client, _, cs, _ = opened(client_kw={"close_timeout": 10.0, "keepalive_interval": 1.0})
    client.close(now=2.0)
    assert decode(client.data_to_send(), sent_by_client=True) == [CloseConnection(1000, "")]
    assert client.next_deadline() == 12.0  # the keepalive stopped
    client.handle_timer(11.9)
    assert client.state is CLOSING
    client.handle_timer(12.0)
    assert client.events() == [Lost(), ConnectionClosed(1006, "closing handshake timed out", True)]
    assert cs.lost == 1


def test_peer_hanging_up_after_our_close_counts_as_an_answer() -> None:
    client, _, _cs, _ = opened()
    client.close(1001, "going away", now=1.0)
    client.receive_eof(1.2)
    assert client.events() == [Lost(), ConnectionClosed(1001, "going away", True)]


def test_peer_close_without_a_status_code() -> None:
    client, _, _, _ = opened()
    client.receive_data(sframe(CLOSE), 1.0)
    assert client.events() == [Lost(), ConnectionClosed(1005, "", False)]
    # The answer is an empty close frame too (1005 is never put on the wire).
    answer = client.data_to_send()
    assert answer[:2] == b"\x88\x80"
    assert decode(answer, sent_by_client=True) == [CloseConnection(1005, "")]


def test_messages_still_arrive_while_closing() -> None:
    client, server, cs, ss = opened()
    ss.send("in flight")
    in_flight = server.data_to_send()
    client.close(now=1.0)
    client.receive_data(in_flight, 1.0)
    assert client.events() == [Received("in flight")]
    cs.send("too late")
    assert decode(client.data_to_send(), sent_by_client=True) == [CloseConnection(1000, "")]
    assert cs.outbox == ["too late"]  # left to the session, not dropped silently


def test_replies_to_a_message_pipelined_with_a_close_go_out_first() -> None:
    _client, server, _, _ = opened()
    server.receive_data(cframe(TEXT, b"ping me") + cframe(CLOSE, close_payload(1000)), 1.0)
    assert decode(server.data_to_send(), sent_by_client=False) == [
        TextMessage("ping me"),
        CloseConnection(1000, ""),
    ]


def test_close_during_the_handshake_ends_at_once() -> None:
    client, _cs, _ = started_client()
    client.close(now=1.0)
    assert client.state is CLOSED
    assert client.events() == [
        Lost(),
        ConnectionClosed(1006, "closed during the opening handshake", True),
    ]


def test_close_twice_is_harmless() -> None:
    client, _, _, _ = opened()
    client.close(now=1.0)
    first = client.data_to_send()
    client.close(now=2.0)
    assert client.data_to_send() == b""
    assert client.next_deadline() == 11.0
    assert decode(first, sent_by_client=True) == [CloseConnection(1000, "")]


# -- EOF ----------------------------------------------------------------------------


def test_eof_mid_message() -> None:
    client, _, cs, _ = opened()
    client.receive_data(sframe(TEXT, b"half a mess", fin=False), 1.0)
    client.receive_eof(2.0)
    assert client.events() == [
        Lost(),
        ConnectionClosed(1006, "connection lost (EOF without a close frame)", False),
    ]
    assert cs.received == []
    assert cs.lost == 1


def test_eof_mid_frame_on_the_server() -> None:
    _client, server, _, ss = opened()
    server.receive_data(cframe(TEXT, b"x" * 50)[:20], 1.0)
    server.receive_eof(1.0)
    assert server.events()[-1] == ConnectionClosed(
        1006, "connection lost (EOF without a close frame)", False
    )
    assert ss.received == []


@pytest.mark.parametrize("side", ["client", "server"])
def test_eof_during_the_handshake(side: str) -> None:
    conn: Conn
    if side == "client":
        conn, session, _ = started_client()
    else:
        conn, session = started_server()
        conn.receive_data(VALID_REQUEST[:10], 0.0)
    conn.receive_eof(1.0)
    assert conn.events() == [
        Lost(),
        ConnectionClosed(1006, "connection closed during the opening handshake", False),
    ]
    assert session.lost == 1


# -- messages: fragments, pings, limits, bad input ----------------------------------


def test_fragmented_message_reassembled_on_the_client() -> None:
    client, _, _cs, _ = opened()
    word = "café!".encode()  # the é is split across two fragments below
    client.receive_data(
        sframe(TEXT, b"Hello, ", fin=False)
        + sframe(PING, b"between")
        + sframe(CONT, word[:4], fin=False)
        + sframe(CONT, word[4:], fin=True),
        1.0,
    )
    assert client.events() == [Received("Hello, café!")]
    assert decode(client.data_to_send(), sent_by_client=True) == [Pong(b"between")]


def test_fragmented_message_reassembled_on_the_server_byte_by_byte() -> None:
    _client, server, _, ss = opened()
    data = cframe(TEXT, b"one ", fin=False) + cframe(CONT, b"two ", fin=False) + cframe(CONT, b"3")
    for i in range(len(data)):
        server.receive_data(data[i : i + 1], 1.0)
    assert server.events() == [Received("one two 3")]
    assert ss.received == ["one two 3"]
    assert decode(server.data_to_send(), sent_by_client=False) == [TextMessage("one two 3")]


def test_binary_messages_reach_the_session_as_bytes() -> None:
    client, _, cs, _ = opened()
    client.receive_data(sframe(BINARY, b"\x00\x01") + sframe(BINARY, b"ab", fin=False), 1.0)
    client.receive_data(sframe(CONT, b"cd"), 1.0)
    assert cs.received == [b"\x00\x01", b"abcd"]


@pytest.mark.parametrize("side", ["client", "server"])
def test_peers_ping_is_answered(side: str) -> None:
    client, server, _, _ = opened()
    if side == "client":
        client.receive_data(sframe(PING, b"are you there"), 1.0)
        assert decode(client.data_to_send(), sent_by_client=True) == [Pong(b"are you there")]
    else:
        server.receive_data(cframe(PING, b"are you there"), 1.0)
        assert server.data_to_send() == sframe(PONG, b"are you there")
    assert client.events() == []
    assert server.events() == []


@pytest.mark.parametrize("size", [100, 5_000, 200_000])
def test_text_frames_cut_into_small_reads_arrive_whole(size: int) -> None:
    """The client's plain-text fast path keeps a cut frame only up to a bound.

    Beyond `_MAX_PENDING` the rest goes to wsproto (linear), so a peer trickling a big
    message costs no re-joining of everything kept at every read.
    """
    client, _, cs, _ = opened()
    first, big, last = "a" * 10, "é" * (size // 2), "z" * 10
    data = sframe(TEXT, first.encode()) + sframe(TEXT, big.encode()) + sframe(TEXT, last.encode())
    for at in range(0, len(data), 997):
        client.receive_data(data[at : at + 997], 1.0)
        assert sum(map(len, client._pending)) <= connection_module._MAX_PENDING
    assert cs.received == [first, big, last]
    assert client.state is OPEN


@pytest.mark.parametrize("control", [PING, PONG])
def test_the_fast_path_takes_over_again_after_the_frame_wsproto_was_reading(
    control: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A control frame (a keepalive's pong, say) sends the rest of its read to
    wsproto, and that read ends inside a text frame. The next read gives wsproto only
    what finishes that frame: the frames after it take the fast path, instead of
    every read going to wsproto until one happened to end on a frame boundary."""
    client, _, cs, _ = opened()
    through_wsproto: list[object] = []
    received_frames = connection_module.FrameProtocol.received_frames

    def spy(proto: connection_module.FrameProtocol) -> object:
        for f in received_frames(proto):
            through_wsproto.append(f.payload)
            yield f

    monkeypatch.setattr(connection_module.FrameProtocol, "received_frames", spy)
    cut = sframe(TEXT, b"cut in two")
    client.receive_data(sframe(TEXT, b"before") + sframe(control, b"k") + cut[:6], 1.0)
    assert cs.received == ["before"]
    assert through_wsproto == [b"k", "cut "]  # the control frame, the text so far
    client.receive_data(cut[6:] + sframe(TEXT, b"after") + sframe(TEXT, b"last"), 1.0)
    assert cs.received == ["before", "cut in two", "after", "last"]
    assert through_wsproto == [b"k", "cut ", "in two"]  # not "after" nor "last"
    assert client.state is OPEN


def test_pending_output_counts_what_waits_for_data_to_send() -> None:
    """What a transport watches to stop reading a peer that floods and never reads."""
    _, server, _, _ = opened()
    assert server.pending_output == 0
    for n in range(1, 4):
        server.receive_data(cframe(PING, b"flood"), 1.0)
        assert server.pending_output == n * len(sframe(PONG, b"flood"))
    assert server.data_to_send() == sframe(PONG, b"flood") * 3
    assert server.pending_output == 0


@pytest.mark.parametrize(
    ("message", "too_big"),
    [("x" * 10, False), ("x" * 11, True), ("é" * 5, False), ("é" * 6, True)],
)
def test_message_over_the_size_limit_closes_1009_on_both_sides(message: str, too_big: bool) -> None:
    client, server, cs, ss = opened(client_kw={"max_message_size": 10})
    ss.send(message)
    pump(client, server, 1.0)
    if not too_big:
        assert client.events() == [Received(message)]
        assert client.state is OPEN
        return
    assert cs.received == []
    assert client.events() == [Lost(), ConnectionClosed(1009, "message too big", True)]
    assert server.events() == [Lost(), ConnectionClosed(1009, "message too big", False)]
    assert cs.lost == ss.lost == 1


def test_server_enforces_its_size_limit_too() -> None:
    client, server, cs, ss = opened(server_kw={"max_message_size": 4})
    cs.send("12345")
    pump(client, server, 1.0)
    assert ss.received == []
    assert server.events() == [Lost(), ConnectionClosed(1009, "message too big", True)]
    assert client.events() == [Lost(), ConnectionClosed(1009, "message too big", False)]


def test_fragments_are_counted_as_they_arrive() -> None:
    client, _, cs, _ = opened(client_kw={"max_message_size": 10})
    client.receive_data(sframe(TEXT, b"aaaaaa", fin=False), 1.0)
    assert client.state is OPEN
    client.receive_data(sframe(CONT, b"bbbbbb", fin=False), 1.0)
    assert client.state is CLOSING  # over the limit before the message ends
    assert decode(client.data_to_send(), sent_by_client=True) == [
        CloseConnection(1009, "message too big")
    ]
    # The rest of the oversized message is thrown away; what follows still arrives.
    client.receive_data(sframe(CONT, b"cc") + sframe(TEXT, b"ok"), 1.0)
    assert cs.received == ["ok"]
    client.receive_data(sframe(CLOSE, close_payload(1009)), 1.5)
    assert client.events() == [
        Received("ok"),
        Lost(),
        ConnectionClosed(1009, "message too big", True),
    ]


def test_one_huge_frame_is_refused_before_it_is_all_there() -> None:
    client, _, cs, _ = opened(client_kw={"max_message_size": 100})
    data = sframe(TEXT, b"z" * 100_000)
    fed = 0
    while client.state is OPEN:
        client.receive_data(data[fed : fed + 64], 1.0)
        fed += 64
    assert fed <= 256
    assert cs.received == []


@pytest.mark.parametrize(
    "bad",
    [
        sframe(TEXT, b"\xff\xfe"),
        sframe(TEXT, b"ok \xc3", fin=False) + sframe(CONT, b"("),
        sframe(CLOSE, close_payload(1000) + b"\xff"),
    ],
    ids=["whole", "across fragments", "close reason"],
)
def test_invalid_utf8_closes_1007(bad: bytes) -> None:
    client, server, cs, _ss = opened()
    client.receive_data(bad, 1.0)
    assert client.state is CLOSED
    events = client.events()
    assert events[0] == Lost()
    closed = events[1]
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == 1007
    assert closed.local
    assert cs.received == []
    pump(client, server, 1.0)
    assert server.events()[-1] == ConnectionClosed(1007, closed.reason, False)


def test_invalid_utf8_to_the_server_closes_1007() -> None:
    _, server, _, ss = opened()
    server.receive_data(cframe(TEXT, b"\xc0\xaf"), 1.0)
    assert server.state is CLOSED
    [close] = decode(server.data_to_send(), sent_by_client=False)
    assert isinstance(close, CloseConnection)
    assert close.code == 1007
    assert ss.lost == 1


@pytest.mark.parametrize(
    "bad",
    [
        sframe(0x3, b""),  # reserved opcode
        frame(TEXT, b"masked", masked=True),  # servers never mask
        bytes([0xC1, 0x00]),  # RSV1 without an extension
        sframe(PING, b"x", fin=False),  # fragmented control frame
        sframe(CLOSE, b"\x03"),  # one-byte close payload
        sframe(CONT, b"orphan"),  # continuation of nothing
        sframe(TEXT, b"a", fin=False) + sframe(TEXT, b"b"),  # new message mid-message
    ],
    ids=["opcode", "masked", "rsv1", "fragmented ping", "close 1 byte", "orphan", "interleaved"],
)
def test_protocol_violations_close_1002_without_exception(bad: bytes) -> None:
    client, _, cs, _ = opened()
    client.receive_data(bad, 1.0)
    assert client.state is CLOSED
    closed = client.events()[-1]
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == 1002
    assert closed.local
    [close] = decode(client.data_to_send(), sent_by_client=True)
    assert isinstance(close, CloseConnection)
    assert close.code == 1002
    assert cs.lost == 1


def test_unmasked_frame_to_the_server_closes_1002() -> None:
    _, server, _, _ = opened()
    server.receive_data(sframe(TEXT, b"naked"), 1.0)
    closed = server.events()[-1]
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == 1002


# -- misuse -------------------------------------------------------------------------


def test_receive_data_before_start() -> None:
    client = ClientConnection(RecordingClientSession(), "ws://example.com/")
    with pytest.raises(LocalProtocolError, match="before start"):
        client.receive_data(b"HTTP/1.1 101 OK\r\n\r\n", 0.0)
    server = ServerConnection(EchoServerSession())
    with pytest.raises(LocalProtocolError, match="before start"):
        server.receive_data(VALID_REQUEST, 0.0)
    with pytest.raises(LocalProtocolError, match="before start"):
        server.receive_eof(0.0)


def test_receive_data_after_closed() -> None:
    client, _, _, _ = opened()
    client.receive_eof(1.0)
    with pytest.raises(LocalProtocolError, match="CLOSED"):
        client.receive_data(sframe(TEXT, b"late"), 2.0)
    # Ending calls stay harmless.
    client.receive_eof(2.0)
    client.handle_timer(100.0)
    client.close(now=3.0)
    assert client.events() == [
        Lost(),
        ConnectionClosed(1006, "connection lost (EOF without a close frame)", False),
    ]


def test_start_twice() -> None:
    client, _, _ = started_client()
    with pytest.raises(LocalProtocolError, match="twice"):
        client.start(1.0)
    server, _ = started_server()
    with pytest.raises(LocalProtocolError, match="twice"):
        server.start(1.0)


def test_start_after_close() -> None:
    client = ClientConnection(RecordingClientSession(), "ws://example.com/")
    client.close(now=0.0)
    with pytest.raises(LocalProtocolError, match="closed"):
        client.start(1.0)


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2000, 5000, True])
def test_close_with_a_code_that_cannot_be_sent(code: int) -> None:
    client, _, _, _ = opened()
    with pytest.raises(LocalProtocolError, match="close code"):
        client.close(code, now=1.0)
    assert client.state is OPEN


def test_close_reason_too_long() -> None:
    client, _, _, _ = opened()
    with pytest.raises(LocalProtocolError, match="123 bytes"):
        client.close(1000, "é" * 62, now=1.0)
    client.close(1000, "é" * 61 + "x", now=1.0)  # 123 bytes exactly
    assert client.state is CLOSING


def test_close_reason_must_be_encodable() -> None:
    client, _, _, _ = opened()
    with pytest.raises(LocalProtocolError, match="lone surrogate") as info:
        client.close(1000, "bad \ud800", now=1.0)
    assert info.value.__context__ is None
    assert client.state is OPEN


def test_a_session_message_that_is_not_text() -> None:
    client, _, cs, _ = opened()
    cs.send(f"{SECRET}\udfff")
    with pytest.raises(LocalProtocolError, match="not valid text") as info:
        client.data_to_send()
    assert info.value.__context__ is None
    assert SECRET not in str(info.value)
    cs.send(42)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="must return str"):
        client.data_to_send()


def test_receive_data_takes_bytes() -> None:
    client, _, _, _ = opened()
    with pytest.raises(LocalProtocolError, match="bytes"):
        client.receive_data("text", 1.0)  # type: ignore[arg-type]
    server, _ = started_server()
    with pytest.raises(LocalProtocolError, match="bytes"):
        server.receive_data("text", 1.0)  # type: ignore[arg-type]


def test_receive_data_takes_any_bytes_like() -> None:
    server, _ = started_server()
    server.receive_data(memoryview(VALID_REQUEST), 0.0)
    server.receive_data(bytearray(cframe(TEXT, b"from a bytearray")), 0.0)
    server.receive_data(memoryview(cframe(TEXT, b"from a memoryview")), 0.0)
    assert server.events()[-2:] == [Received("from a bytearray"), Received("from a memoryview")]


def test_empty_data_is_not_eof() -> None:
    client, _, _, _ = opened()
    client.receive_data(b"", 1.0)
    assert client.state is OPEN
    assert client.events() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_message_size": 0},
        {"max_message_size": 1.5},
        {"keepalive_interval": 0},
        {"keepalive_interval": -1.0},
        {"keepalive_timeout": 0},
        {"close_timeout": float("nan")},
        {"handshake_timeout": "10"},
        {"max_handshake_size": True},
        {"subprotocols": ["has space"]},
        {"extra_headers": [("Host", "evil")]},
        {"extra_headers": [("Sec-WebSocket-Key", "x")]},
        {"extra_headers": [("bad name", "x")]},
        {"extra_headers": [("X-Ok", "bad\r\nvalue")]},
        {"extra_headers": ["not a pair"]},
    ],
)
def test_bad_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        ClientConnection(RecordingClientSession(), "ws://example.com/", **kwargs)  # type: ignore[arg-type]


def test_extra_headers_are_sent() -> None:
    cs = RecordingClientSession()
    ss = EchoServerSession()
    open_pair(
        client_session=cs,
        server_session=ss,
        client_kw={"extra_headers": [("User-Agent", "protocore-test"), ("Origin", "https://x")]},
    )
    [(_, headers)] = ss.requests
    assert ("user-agent", "protocore-test") in headers
    assert ("origin", "https://x") in headers


def test_a_session_handshake_header_that_cannot_be_sent() -> None:
    cs = RecordingClientSession(headers=[("Sec-WebSocket-Version", "8")])
    client = ClientConnection(cs, "ws://example.com/")
    with pytest.raises(LocalProtocolError, match="set by the WebSocket handshake"):
        client.start(0.0)
    assert client.data_to_send() == b""
    assert client.next_deadline() is None  # nothing armed: start() may be retried
    cs.auth = RecordingClientSession(headers=[("X-Ok", "yes")]).auth
    client.start(0.0)
    assert b"x-ok: yes" in client.data_to_send()


def test_a_session_rejection_that_is_not_http() -> None:
    ss = EchoServerSession(api_key=SECRET)
    ss.rejection = Rejection(101, b"")
    server = ServerConnection(ss)
    server.start(0.0)
    with pytest.raises(LocalProtocolError, match="status_code"):
        server.receive_data(VALID_REQUEST, 0.0)


# -- secrets ------------------------------------------------------------------------


def every_text(*things: object) -> str:
    return "\n".join(f"{thing!r} {thing!s}" for thing in things)


def test_secrets_never_appear_in_reprs_events_or_errors() -> None:
    cs = RecordingClientSession(
        headers=[("Cookie", f"ClientToken={SECRET}; AccessToken={SECRET}")],
        query=[("api-key", SECRET)],
    )
    ss = EchoServerSession(api_key="something else")
    client = ClientConnection(cs, f"wss://ws.example.com/ws/connector?AccessToken={SECRET}")
    server = ServerConnection(ss)
    texts = [every_text(client, server, client.url, cs.auth)]
    client.start(0.0)
    server.start(0.0)
    request = client.data_to_send()
    assert SECRET.encode() in request  # it does go on the wire, and only there
    server.receive_data(request, 0.0)
    client.receive_data(server.data_to_send(), 0.0)
    texts.append(every_text(client, server, *client.events(), *server.events()))

    errors: list[BaseException] = []
    bad_sessions = [
        RecordingClientSession(headers=[("Cookie", f"{SECRET}\r\nX-Injected: 1")]),
        RecordingClientSession(headers=[("X-API-Key", f" {SECRET}")]),
        RecordingClientSession(headers=[("X-API-Key", f"{SECRET}\ud800")]),
        RecordingClientSession(query=[("api-key", f"{SECRET}\ud800")]),
    ]
    for session in bad_sessions:
        with pytest.raises(LocalProtocolError) as info:
            ClientConnection(session, "ws://example.com/").start(0.0)
        errors.append(info.value)
    for url in [
        f"http://example.com/?token={SECRET}",
        f"ws://example.com/?token={SECRET}#frag",
        f"ws://user:{SECRET}@example.com/",
        f"ws://example.com:99999/?token={SECRET}",
        f"ws://[::1/?token={SECRET}",
        f"{SECRET}://example.com/",
        f"ws://example.com/ {SECRET}",
    ]:
        with pytest.raises(LocalProtocolError) as info:
            parse_ws_url(url)
        errors.append(info.value)
    with pytest.raises(LocalProtocolError) as info:
        ClientConnection(cs, "ws://example.com/", extra_headers=[("X-Token", f"{SECRET}\n")])
    errors.append(info.value)
    for error in errors:
        texts.append(every_text(error, error.args))
        # Nothing chained either: a traceback printer would show the context.
        assert error.__context__ is None or SECRET not in every_text(error.__context__)
    assert SECRET not in "\n".join(texts)


# -- every ending path: connection_lost once, then one ConnectionClosed -------------


def end_by_peer_close() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    client, server, cs, _ = opened()
    server.close(now=1.0)
    pump(client, server, 1.0)
    return client, cs


def end_by_local_close() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    client, server, cs, _ = opened()
    client.close(now=1.0)
    pump(client, server, 1.0)
    return client, cs


def end_by_close_timeout() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    client, _, cs, _ = opened()
    client.close(now=1.0)
    client.handle_timer(100.0)
    return client, cs


def end_by_eof() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    client, _, cs, _ = opened()
    client.receive_eof(1.0)
    return client, cs


def end_by_eof_while_closing() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    _, server, _, ss = opened()
    server.close(now=1.0)
    server.receive_eof(1.0)
    return server, ss


def end_by_keepalive() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    _, server, _, ss = opened(server_kw={"keepalive_interval": 1.0, "keepalive_timeout": 1.0})
    server.handle_timer(1.0)
    server.handle_timer(2.0)
    return server, ss


def end_by_heartbeat() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    cs = authed(heartbeat=1.0, timer_event=HeartbeatLost())
    client, _, _, _ = opened(client_session=cs)
    client.handle_timer(1.0)
    return client, cs


def end_by_liveness_from_a_message() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    class Fragile(RecordingClientSession):
        def receive_message(self, data: str | bytes, now: float) -> list[Event]:
            return [*super().receive_message(data, now), HeartbeatLost()]

    cs = Fragile(headers=[("X-API-Key", SECRET)])
    client, _, _, _ = open_pair(client_session=cs)
    client.receive_data(sframe(TEXT, b"a") + sframe(TEXT, b"never delivered"), 1.0)
    assert cs.received == ["a"]
    return client, cs


def end_by_too_big() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    client, server, cs, ss = opened(client_kw={"max_message_size": 2})
    ss.send("big")
    pump(client, server, 1.0)
    return client, cs


def end_by_bad_utf8() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    client, _, cs, _ = opened()
    client.receive_data(sframe(TEXT, b"\xff"), 1.0)
    return client, cs


def end_by_protocol_error() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    _, server, _, ss = opened()
    server.receive_data(b"\xff\xff\xff", 1.0)
    return server, ss


def end_by_rejection() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    cs = RecordingClientSession()
    client, _, _, _ = open_pair(client_session=cs)
    return client, cs


def end_by_refusing() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    _, server, _, ss = open_pair(client_session=RecordingClientSession())
    return server, ss


def end_by_handshake_timeout() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    client, cs, _ = started_client()
    client.handle_timer(60.0)
    return client, cs


def end_by_garbage() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    server, ss = started_server()
    server.receive_data(b"\x16\x03\x01\x00\xa5\x01\r\n\r\n", 0.0)
    return server, ss


def end_by_close_in_handshake() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    server, ss = started_server()
    server.close(now=0.5)
    return server, ss


def end_by_eof_in_handshake() -> tuple[Conn, RecordingClientSession | EchoServerSession]:
    client, cs, _ = started_client()
    client.receive_eof(0.5)
    return client, cs


ENDINGS: list[Callable[[], tuple[Conn, RecordingClientSession | EchoServerSession]]] = [
    end_by_peer_close,
    end_by_local_close,
    end_by_close_timeout,
    end_by_eof,
    end_by_eof_while_closing,
    end_by_keepalive,
    end_by_heartbeat,
    end_by_liveness_from_a_message,
    end_by_too_big,
    end_by_bad_utf8,
    end_by_protocol_error,
    end_by_rejection,
    end_by_refusing,
    end_by_handshake_timeout,
    end_by_garbage,
    end_by_close_in_handshake,
    end_by_eof_in_handshake,
]


@pytest.mark.parametrize("end", ENDINGS, ids=lambda f: f.__name__.removeprefix("end_by_"))
def test_connection_lost_exactly_once_then_one_connection_closed(
    end: Callable[[], tuple[Conn, RecordingClientSession | EchoServerSession]],
) -> None:
    conn, session = end()
    assert conn.state is CLOSED
    events = conn.events()
    assert session.lost == 1
    assert events.count(Lost()) == 1
    closed = [event for event in events if isinstance(event, ConnectionClosed)]
    assert len(closed) == 1
    assert events[-2:] == [Lost(), closed[0]]
    assert conn.next_deadline() is None
    # Whatever a transport does next changes nothing.
    conn.receive_eof(1000.0)
    conn.handle_timer(1000.0)
    conn.close(now=1000.0)
    conn.data_to_send()
    assert conn.events() == []
    assert session.lost == 1


def test_state_goes_through_every_step() -> None:
    client = ClientConnection(RecordingClientSession(), "ws://example.com/")
    server = ServerConnection(EchoServerSession())
    seen = [client.state]
    client.start(0.0)
    server.start(0.0)
    pump(client, server, 0.0)
    seen.append(client.state)
    client.close(now=1.0)
    seen.append(client.state)
    pump(client, server, 1.0)
    seen.append(client.state)
    assert seen == [CONNECTING, OPEN, CLOSING, CLOSED]
    assert client.session is not None
    assert server.session is not None


def test_events_drains() -> None:
    client, _, _, _ = opened()
    client.receive_data(sframe(TEXT, b"one"), 1.0)
    first = client.events()
    assert first == [Received("one")]
    assert client.events() == []
    client.receive_data(sframe(TEXT, b"two"), 1.0)
    assert client.events() == [Received("two")]
    assert first == [Received("one")]  # the list handed out earlier is not reused


# -- URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://example.com", WebSocketURL(False, "example.com", 80, "/")),
        ("wss://example.com", WebSocketURL(True, "example.com", 443, "/")),
        ("WSS://Example.COM:8443/a/b?c=d&e", WebSocketURL(True, "example.com", 8443, "/a/b?c=d&e")),
        ("ws://example.com?x=1", WebSocketURL(False, "example.com", 80, "/?x=1")),
        ("ws://[::1]/", WebSocketURL(False, "::1", 80, "/")),
        ("wss://[2001:db8::7]:9000/p", WebSocketURL(True, "2001:db8::7", 9000, "/p")),
        ("ws://127.0.0.1:1/", WebSocketURL(False, "127.0.0.1", 1, "/")),
        ("ws://h/caf%C3%A9?q=%20", WebSocketURL(False, "h", 80, "/caf%C3%A9?q=%20")),
        ("ws://h/café?q=é", WebSocketURL(False, "h", 80, "/caf%C3%A9?q=%C3%A9")),
        ("ws://bücher.example/", WebSocketURL(False, "xn--bcher-kva.example", 80, "/")),
        ("ws://h/?", WebSocketURL(False, "h", 80, "/?")),
    ],
)
def test_parse_ws_url(url: str, expected: WebSocketURL) -> None:
    assert parse_ws_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "https://example.com/",
        "example.com",
        "ws:/example.com",
        "ws://",
        "ws://:80/",
        "ws://example.com:0/",
        "ws://example.com:65536/",
        "ws://example.com:/",
        "ws://example.com:abc/",
        "ws://user@example.com/",
        "ws://example.com/#top",
        "ws://example.com/#",
        "ws://::1/",
        "ws://[example.com]/",
        "ws://[::1/",
        "ws://exa mple.com/",
        "ws://example.com/\n",
    ],
)
def test_parse_ws_url_refuses(url: str) -> None:
    with pytest.raises(LocalProtocolError):
        parse_ws_url(url)


def test_url_helpers() -> None:
    url = parse_ws_url("wss://[::1]:8443/path?token=abc")
    assert url.host_header == "[::1]:8443"
    assert url.path == "/path"
    assert url.scheme == "wss"
    assert "abc" not in repr(url)
    assert parse_ws_url("wss://h:443/").host_header == "h"
    client = ClientConnection(RecordingClientSession(), "wss://h:8443/x?token=abc")
    assert client.url == WebSocketURL(True, "h", 8443, "/x?token=abc")
    assert repr(client) == "<ClientConnection wss://h:8443/x state=CONNECTING>"


# -- chunking invariance ------------------------------------------------------------

FIXED_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def fixed_key_client(**kwargs: object) -> tuple[ClientConnection, RecordingClientSession]:
    cs = RecordingClientSession(headers=[("X-API-Key", SECRET)])
    with mock.patch.object(_handshake, "new_key", return_value=FIXED_KEY):
        client = ClientConnection(cs, "ws://example.com/chunks", **kwargs)  # type: ignore[arg-type]
        client.start(0.0)
    return client, cs


def server_to_client_stream() -> bytes:
    """Everything a server says to a fixed-key client: 101, messages, ping, fragments, close."""
    client, _ = fixed_key_client()
    ss = EchoServerSession(on_connect=["welcome", "ééé"])
    server = ServerConnection(ss, keepalive_interval=1.0)
    server.start(0.0)
    server.receive_data(client.data_to_send(), 0.0)
    out = server.data_to_send()
    ss.send("x" * 300)  # 2-byte length
    ss.send("y" * 70_000)  # 8-byte length
    out += server.data_to_send()
    server.handle_timer(1.0)  # keepalive ping
    out += server.data_to_send()
    word = "ment-é".encode()
    out += sframe(TEXT, b"frag-", fin=False) + sframe(PING, b"in between")
    out += sframe(CONT, word[:-1], fin=False) + sframe(CONT, word[-1:])
    server.close(4001, "done", now=2.0)
    return out + server.data_to_send()


def client_to_server_stream() -> bytes:
    """Everything a fixed-key client says: request, messages, fragments, ping, close."""
    client, cs = fixed_key_client(keepalive_interval=None)
    request = client.data_to_send()
    helper = ServerConnection(EchoServerSession())
    helper.start(0.0)
    helper.receive_data(request, 0.0)
    client.receive_data(helper.data_to_send(), 0.0)
    assert client.state is OPEN
    cs.send("first")
    cs.send("ü" * 200)
    out = request + client.data_to_send()
    out += cframe(TEXT, b"pie", fin=False) + cframe(PING, b"hey") + cframe(CONT, b"ces")
    out += cframe(BINARY, b"\x00\xff")
    client.close(1000, "over", now=1.0)
    return out + client.data_to_send()


S2C = server_to_client_stream()
C2S = client_to_server_stream()


def run_client(chunks: list[bytes]) -> tuple[list[Event], list[object]]:
    client, _ = fixed_key_client(keepalive_interval=None)
    client.data_to_send()  # the request
    sent = b""
    for chunk in chunks:
        client.receive_data(chunk, 0.0)
        sent += client.data_to_send()
    return client.events(), decode(sent, sent_by_client=True)


def run_server(chunks: list[bytes]) -> tuple[list[Event], bytes]:
    server = ServerConnection(EchoServerSession(), keepalive_interval=None)
    server.start(0.0)
    sent = b""
    for chunk in chunks:
        server.receive_data(chunk, 0.0)
        sent += server.data_to_send()
    return server.events(), sent


CLIENT_REFERENCE = run_client([S2C])
SERVER_REFERENCE = run_server([C2S])


def test_chunking_references_are_what_was_sent() -> None:
    events, sent = CLIENT_REFERENCE
    assert events == [
        Connected(None),
        Made(),
        Received("welcome"),
        Received("ééé"),
        Received("x" * 300),
        Received("y" * 70_000),
        Received("frag-ment-é"),
        Lost(),
        ConnectionClosed(4001, "done", False),
    ]
    assert [type(e).__name__ for e in sent] == ["Pong", "Pong", "CloseConnection"]
    server_events, server_sent = SERVER_REFERENCE
    assert server_events == [
        Connected(None),
        Made(),
        Received("first"),
        Received("ü" * 200),
        Received("pieces"),
        Received(b"\x00\xff"),
        Lost(),
        ConnectionClosed(1000, "over", False),
    ]
    assert server_sent.startswith(b"HTTP/1.1 101 ")


def test_chunking_one_byte_at_a_time() -> None:
    assert run_client([S2C[i : i + 1] for i in range(len(S2C))]) == CLIENT_REFERENCE
    assert run_server([C2S[i : i + 1] for i in range(len(C2S))]) == SERVER_REFERENCE


@given(wire.chunkings(S2C, max_cuts=40))
def test_chunking_invariance_client(chunks: list[bytes]) -> None:
    assert run_client(chunks) == CLIENT_REFERENCE


@given(wire.chunkings(C2S, max_cuts=40))
def test_chunking_invariance_server(chunks: list[bytes]) -> None:
    assert run_server(chunks) == SERVER_REFERENCE


# -- whatever the peer sends, nothing escapes ---------------------------------------


def feed_until_closed(conn: Conn, chunks: list[bytes]) -> None:
    for chunk in chunks:
        if conn.state is CLOSED:
            return
        conn.receive_data(chunk, 1.0)
        conn.data_to_send()
    conn.receive_eof(2.0)
    assert conn.state is CLOSED
    events = conn.events()
    assert isinstance(events[-1], ConnectionClosed)
    assert sum(isinstance(event, ConnectionClosed) for event in events) == 1


junk = st.lists(st.binary(max_size=64), max_size=8)
# Frames of every kind, valid or breaking one rule each (protocore.testing.wire).
frames_to_client = wire.frame_streams(from_client=False, max_items=6)
frames_to_server = wire.frame_streams(from_client=True, max_items=6)


@given(junk)
def test_any_bytes_to_a_starting_server(chunks: list[bytes]) -> None:
    server, _ = started_server()
    feed_until_closed(server, chunks)


@given(junk)
def test_any_bytes_to_a_starting_client(chunks: list[bytes]) -> None:
    client, _, _ = started_client()
    feed_until_closed(client, [b"HTTP/1.1 ", *chunks])


@given(st.one_of(junk, frames_to_client))
def test_any_bytes_to_an_open_client(chunks: list[bytes]) -> None:
    client, _, _, _ = opened()
    feed_until_closed(client, chunks)


@given(st.one_of(junk, frames_to_server))
def test_any_bytes_to_an_open_server(chunks: list[bytes]) -> None:
    _, server, _, _ = opened()
    feed_until_closed(server, chunks)
