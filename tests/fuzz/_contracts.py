"""The documented contract of every fuzz target, as plain functions of the input bytes.

Each ``check_*`` function feeds one input to one decoder or connection and asserts
what the documentation promises: only the documented result types and errors come
out, a decoded message re-encodes to an equal one, a connection always ends in
exactly one `ConnectionClosed` and only ever writes valid frames. Any other
exception or a failed assertion is a bug (atheris reports it as a crash).

The atheris harnesses (``fuzz_*.py``) call these under instrumentation; the unit
tests call them on the whole seed corpus without atheris.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from wsproto.frame_protocol import ParseFailed

from protocore import _handshake, _json
from protocore import connection as connection_module
from protocore.connection import (
    ClientConnection,
    ConnectionState,
    KeepaliveTimeout,
    ServerConnection,
)
from protocore.errors import DecodeError
from protocore.events import (
    BadMessage,
    Connected,
    ConnectionClosed,
    Event,
    HandshakeRejected,
)
from protocore.mews import (
    Envelope,
    EventsReceived,
    MewsClient,
    MewsServer,
    Reconnected,
    decode_envelope,
    encode_envelope,
)
from protocore.mews.codec import DECODER_BUG
from protocore.placeos import (
    BindingLost,
    DebugLog,
    HandlerFailed,
    HeartbeatLost,
    MockEngine,
    PlaceOSClient,
    PlaceOSServer,
    Request,
    RequestAborted,
    RequestError,
    RequestFailed,
    RequestReceived,
    RequestSucceeded,
    RequestTimedOut,
    Response,
    UnexpectedResponse,
    ValueChanged,
    ValueFormat,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from protocore.placeos.models import ErrorCode

# -- decoders -----------------------------------------------------------------------------

# orjson reads integers beyond 64 bits as floats where the stdlib keeps them exact: the
# one documented difference between the backends (protocore._json), so inputs with a
# long digit run are not compared across backends.
_LONG_NUMBER = re.compile(rb"\d{19}")


@contextmanager
def json_backend(name: str) -> Iterator[None]:
    before = _json.BACKEND
    _json.set_backend(name)
    try:
        yield
    finally:
        _json.set_backend(before)


def _outcome(decode: Callable[[], Any]) -> Any:
    """The decoded value, or the `DecodeError` (any other exception propagates)."""
    try:
        return decode()
    except DecodeError as error:
        return error


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, DecodeError) or isinstance(b, DecodeError):
        return type(a) is type(b)
    return bool(a == b)


def _across_backends(data: bytes, decode: Callable[[bytes], Any]) -> Any:
    """Decode with every JSON backend; they must agree. Returns the default's outcome."""
    outcomes = []
    for name in _json.available_backends():
        with json_backend(name):
            outcomes.append(_outcome(lambda: decode(data)))
    if len(outcomes) > 1 and not _LONG_NUMBER.search(data):
        assert _same(outcomes[0], outcomes[1]), (outcomes[0], outcomes[1])
    return outcomes[0]


def check_mews_decode(data: bytes) -> None:
    """`decode_envelope`: an `Envelope` or a `DecodeError`, never an internal error;
    what decodes re-encodes to an equal envelope; bytes and text decode alike."""
    text = _utf8(data)
    for lenient in (False, True):
        outcome = _across_backends(data, partial(decode_envelope, lenient=lenient))
        if isinstance(outcome, DecodeError):
            assert not outcome.reason.startswith(DECODER_BUG), outcome
            assert isinstance(outcome.path, str)
        else:
            assert isinstance(outcome, Envelope)
            assert decode_envelope(encode_envelope(outcome), lenient=lenient) == outcome
        if text is not None:
            assert _same(_outcome(partial(decode_envelope, text, lenient=lenient)), outcome)


def check_placeos_decode_request(data: bytes) -> None:
    """`decode_request`: a `Request` or a `RequestError` carrying an `ErrorCode` and an
    id of the request's type; a decoded request round-trips."""
    outcome = _across_backends(data, decode_request)
    if isinstance(outcome, DecodeError):
        assert isinstance(outcome, RequestError), outcome
        assert isinstance(outcome.code, ErrorCode)
        assert outcome.id is None or type(outcome.id) in (int, str)
        assert outcome.to_response() is not None
    else:
        assert isinstance(outcome, Request)
        assert decode_request(encode_request(outcome)) == outcome
    text = _utf8(data)
    if text is not None:
        assert _same(_outcome(lambda: decode_request(text)), outcome)


def check_placeos_decode_response(data: bytes) -> None:
    """`decode_response`, in each `ValueFormat`: a `Response` or a `DecodeError`; a
    decoded response re-encodes (its own dialect) and reads back equal as RAW."""
    for fmt in ValueFormat:
        outcome = _across_backends(data, partial(decode_response, value_format=fmt))
        if isinstance(outcome, DecodeError):
            assert isinstance(outcome.path, str)
            continue
        assert isinstance(outcome, Response)
        assert decode_response(encode_response(outcome), value_format=ValueFormat.RAW) == outcome


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# -- connections ----------------------------------------------------------------------------

#: A fixed Sec-WebSocket-Key (RFC 6455's example), so a seed can hold a valid 101.
FIXED_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = _handshake.accept_token(FIXED_KEY)
RESPONSE_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: " + ACCEPT + b"\r\n\r\n"
)
API_KEY = "fuzz-api-key"
CLIENT_TOKEN = "fuzz-client-token"
ACCESS_TOKEN = "fuzz-access-token"
SYS, MOD = "sys-1", "Display"
PLACEOS_REQUEST = (
    b"GET /api/engine/v2/systems/control HTTP/1.1\r\nHost: example.com\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\nX-API-Key: " + API_KEY.encode() + b"\r\n"
    b"Sec-WebSocket-Key: " + FIXED_KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
MEWS_REQUEST = (
    b"GET /ws/connector HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nCookie: ClientToken="
    + CLIENT_TOKEN.encode()
    + b"; AccessToken="
    + ACCESS_TOKEN.encode()
    + b"\r\n"
    b"Sec-WebSocket-Key: " + FIXED_KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
)

_CONNECTION_EVENTS: tuple[type[Event], ...] = (
    Connected,
    HandshakeRejected,
    ConnectionClosed,
    KeepaliveTimeout,
)
CLIENT_EVENTS: tuple[type[Event], ...] = (
    *_CONNECTION_EVENTS,
    BadMessage,
    EventsReceived,
    Reconnected,
    RequestSucceeded,
    RequestFailed,
    RequestTimedOut,
    RequestAborted,
    ValueChanged,
    DebugLog,
    BindingLost,
    HeartbeatLost,
    UnexpectedResponse,
)
SERVER_EVENTS: tuple[type[Event], ...] = (
    *_CONNECTION_EVENTS,
    BadMessage,
    RequestReceived,
    HandlerFailed,
)

#: Chunk sizes the config byte picks from (0: everything in one call).
CHUNK_SIZES = (0, 1, 2, 3, 7, 16, 61, 512)

# Config byte (the input's first byte):
PREOPEN = 0x01  # the harness does the opening handshake; the rest is frames only
OTHER_PROTOCOL = 0x02  # Mews instead of PlaceOS
TIMERS = 0x04  # advance the clock and fire timers between chunks
CHUNKS_SHIFT = 5  # bits 5-7: index into CHUNK_SIZES


def _fixed_key() -> bytes:
    return FIXED_KEY


def placeos_engine() -> MockEngine:
    engine = MockEngine()
    engine.add_system(SYS)
    engine.add_module(SYS, MOD, status={"power": True}, methods={"echo": lambda *a: list(a)})
    return engine


def _chunks(data: bytes, size: int) -> list[bytes]:
    if size == 0:
        return [data] if data else []
    return [data[i : i + size] for i in range(0, len(data), size)]


class _PeerReader:
    """Reads what our endpoint writes, as its peer would: it must always be valid."""

    def __init__(self, *, we_are_client: bool, handshake_done: bool) -> None:
        # wsproto's frame rules, with the close codes RFC 6455 and the registry allow
        # (wsproto's own table lacks 1014, which we may echo).
        self._proto = connection_module._FrameProtocol(not we_are_client, 1 << 62, _never)
        self._head: bytes | None = b"" if not handshake_done else None
        self._we_are_client = we_are_client
        self._refused = False

    def feed(self, data: bytes) -> None:
        if not data or self._refused:
            return
        if self._head is not None:
            # Until the head ends, this is HTTP (ours or a refusal); skip over it.
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, rest = self._head[: end + 4], self._head[end + 4 :]
            self._head = None
            if b" 101 " not in head.split(b"\r\n", 1)[0] and not self._we_are_client:
                self._refused = True  # a refusal: its body follows and no frame ever does
                return
            data = rest
            if not data:
                return
        self._proto.receive_bytes(data)
        try:
            for _ in self._proto.received_frames():
                pass
        except ParseFailed as failure:
            raise AssertionError(f"we wrote an invalid frame: {failure}") from None


def _never() -> None:
    raise AssertionError("no size limit on what the peer reads")


def _drive(
    conn: ClientConnection | ServerConnection,
    chunks: list[bytes],
    allowed: tuple[type[Event], ...],
    *,
    timers: bool,
    on_open: Callable[[float], None] | None,
    reader: _PeerReader | None,
) -> list[Event]:
    events: list[Event] = []
    now = 0.0
    opened = conn.state is ConnectionState.OPEN
    if opened and on_open is not None:
        on_open(now)

    def drain() -> None:
        out = conn.data_to_send()
        assert isinstance(out, bytes)
        if reader is not None:
            reader.feed(out)
        events.extend(conn.events())

    drain()
    for chunk in chunks:
        if conn.state is ConnectionState.CLOSED:
            break
        conn.receive_data(chunk, now)
        if not opened and conn.state is ConnectionState.OPEN:
            opened = True
            if on_open is not None:
                on_open(now)
        drain()
        if timers:
            now += 7.5
            deadline = conn.next_deadline()
            if deadline is not None and deadline <= now:
                conn.handle_timer(now)
                drain()
    conn.receive_eof(now)
    drain()
    assert conn.state is ConnectionState.CLOSED
    assert conn.next_deadline() is None
    for event in events:
        assert isinstance(event, allowed), event
    closed = [i for i, event in enumerate(events) if isinstance(event, ConnectionClosed)]
    assert closed == [len(events) - 1], events
    return events


def check_client_connection(data: bytes) -> None:
    """A `ClientConnection` (PlaceOS or Mews session) fed any server bytes, in any
    chunks: `receive_data` never raises, only documented events come out, it ends in
    exactly one `ConnectionClosed`, and every frame it writes is valid."""
    if not data:
        return
    config, stream = data[0], data[1:]
    preopen = bool(config & PREOPEN)
    client: ClientConnection
    on_open: Callable[[float], None] | None = None
    if config & OTHER_PROTOCOL:
        session: MewsClient | PlaceOSClient = MewsClient(CLIENT_TOKEN, ACCESS_TOKEN)
    else:
        placeos = session = PlaceOSClient(api_key=API_KEY, heartbeat_interval=10.0)

        def on_open(now: float) -> None:
            placeos.exec(SYS, MOD, "echo", 1, "two", now=now)
            placeos.bind(SYS, MOD, "power", now=now)
            placeos.debug(SYS, "mod-1", now=now)

    client = ClientConnection(session, "ws://example.com/ws", keepalive_interval=15.0)
    new_key = _handshake.new_key
    _handshake.new_key = _fixed_key
    try:
        client.start(0.0)
    finally:
        _handshake.new_key = new_key
    reader = _PeerReader(we_are_client=True, handshake_done=False)
    reader.feed(client.data_to_send())
    if preopen:
        client.receive_data(RESPONSE_101, 0.0)
    _drive(
        client,
        _chunks(stream, CHUNK_SIZES[config >> CHUNKS_SHIFT]),
        CLIENT_EVENTS,
        timers=bool(config & TIMERS),
        on_open=on_open,
        reader=reader,
    )


def check_server_connection(data: bytes) -> None:
    """A `ServerConnection` (PlaceOS server with a mock engine, or Mews server) fed any
    client bytes, in any chunks: the same contract as the client's."""
    if not data:
        return
    config, stream = data[0], data[1:]
    preopen = bool(config & PREOPEN)
    session: MewsServer | PlaceOSServer
    if config & OTHER_PROTOCOL:
        session = MewsServer(CLIENT_TOKEN, ACCESS_TOKEN)
        request = MEWS_REQUEST
    else:
        session = PlaceOSServer(api_keys=[API_KEY], handler=placeos_engine(), pong_interval=20.0)
        request = PLACEOS_REQUEST
    server = ServerConnection(session, keepalive_interval=15.0)
    server.start(0.0)
    reader = _PeerReader(we_are_client=False, handshake_done=False)
    if preopen:
        server.receive_data(request, 0.0)
        assert server.state is ConnectionState.OPEN
    _drive(
        server,
        _chunks(stream, CHUNK_SIZES[config >> CHUNKS_SHIFT]),
        SERVER_EVENTS,
        timers=bool(config & TIMERS),
        on_open=None,
        reader=reader,
    )


# -- PlaceOS sessions, message by message ----------------------------------------------------

#: The client's terminal events: every request id ends in exactly one of them.
_ENDINGS = (RequestSucceeded, RequestFailed, RequestTimedOut, RequestAborted)


def _messages(data: bytes) -> list[bytes]:
    """The input as messages, separated by NUL (which no JSON text holds unescaped)."""
    return data.split(b"\x00")


def check_placeos_client_session(data: bytes) -> None:
    """`PlaceOSClient` fed any messages, with the application binding, unbinding,
    calling and debugging in between and the clock moving: only documented events,
    and every request id it handed out ends exactly once (after `connection_lost`)."""
    client = PlaceOSClient(api_key=API_KEY, heartbeat_interval=10.0, heartbeat_timeout=40.0)
    assert client.connection_made(0.0) == []
    issued: list[int] = []
    events: list[Event] = []
    bound = streams = 0
    now = 0.0
    for i, message in enumerate(_messages(data)):
        action = (len(message) + i) % 7
        if action == 0:
            issued.append(client.exec(SYS, MOD, "echo", i, now=now))
        elif action == 1:
            issued.append(client.bind(SYS, MOD, "power", now=now))
            bound += 1
        elif action == 2 and bound:
            issued.append(client.unbind(SYS, MOD, "power", now=now))
            bound -= 1
        elif action == 3:
            issued.append(client.debug(SYS, "mod-1", now=now))
            streams += 1
        elif action == 4 and streams:
            issued.append(client.ignore(SYS, "mod-1", now=now))
            streams -= 1
        elif action == 5:
            now += 6.0
            events += client.handle_timer(now)
        for text in client.messages_to_send():
            assert isinstance(decode_request(text), Request)
        text = _utf8(message)
        events += client.receive_message(text if text is not None and i % 2 else message, now)
        events += client.take_events()
    events += client.connection_lost(now)
    events += client.take_events()
    for event in events:
        assert isinstance(event, CLIENT_EVENTS), event
    ended = [e.request_id for e in events if isinstance(e, _ENDINGS)]
    assert sorted(ended) == sorted(issued), (issued, ended)


def check_placeos_server_session(data: bytes) -> None:
    """`PlaceOSServer` (a mock engine behind it, replying or dropping bad requests)
    fed any messages: only documented events, every message it sends is a valid
    response, and it still answers a good request at the end."""
    drop = bool(data[:1]) and data[0] & 1 == 1
    server = PlaceOSServer(
        api_keys=[API_KEY],
        handler=placeos_engine(),
        bad_requests="drop" if drop else "reply",
        pong_interval=20.0,
    )
    assert server.connection_made(0.0) == []
    now = 0.0
    for i, message in enumerate(_messages(data[1:])):
        text = _utf8(message)
        events = server.receive_message(text if text is not None and i % 2 else message, now)
        now += 7.0
        events += server.handle_timer(now)
        for event in events:
            assert isinstance(event, SERVER_EVENTS), event
        for reply in server.messages_to_send():
            assert isinstance(decode_response(reply, value_format=ValueFormat.RAW), Response)
    request = b'{"id":424242,"cmd":"exec","sys":"sys-1","mod":"Display","name":"echo","args":[7]}'
    assert server.receive_message(request, now) == []
    replies = [decode_response(r, value_format=ValueFormat.RAW) for r in server.messages_to_send()]
    assert any(
        getattr(r, "id", None) == 424242 and getattr(r, "value", None) == [7] for r in replies
    )
    server.connection_lost(now)


#: Every fuzz target: its name (``fuzz_<name>.py``, ``corpus/<name>/``) and its check.
TARGETS: dict[str, Callable[[bytes], None]] = {
    "mews_decode": check_mews_decode,
    "placeos_decode_request": check_placeos_decode_request,
    "placeos_decode_response": check_placeos_decode_response,
    "client_connection": check_client_connection,
    "server_connection": check_server_connection,
    "placeos_client_session": check_placeos_client_session,
    "placeos_server_session": check_placeos_server_session,
}
