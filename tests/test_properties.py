"""Properties over generated input, one of each, for every model, session and connection.

The strategies come from `protocore.testing` (the same ones users fuzz with). Round
trips of single models live beside their codec (tests/test_*_codec.py); here:

- every wire message, in each dialect, decodes and re-encodes to the same document;
- every session and every connection, fed any bytes (valid, mutated, garbage, in
  any chunks), yields only documented events, and a connection ends in exactly one
  `ConnectionClosed`;
- a server session keeps serving after any bad request, behind a real connection;
- how bytes are chunked changes nothing, in both directions;
- our `ClientConnection` agrees with websockets' sans-IO `ClientProtocol` on every
  generated server stream (messages delivered, pongs, close codes).
"""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sessions_for_tests import Received, RecordingClientSession
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from protocore import _handshake
from protocore import connection as connection_module
from protocore.connection import (
    ClientConnection,
    ConnectionState,
    KeepaliveTimeout,
    ServerConnection,
)
from protocore.events import BadMessage, Connected, ConnectionClosed, Event, HandshakeRejected
from protocore.mews import (
    EventsReceived,
    MewsClient,
    MewsServer,
    Reconnected,
    ResourceEvent,
    ResourceState,
    decode_envelope,
    encode_envelope,
)
from protocore.placeos import (
    BindingLost,
    DebugLog,
    Dialect,
    Exec,
    HandlerFailed,
    HeartbeatLost,
    MockEngine,
    PlaceOSClient,
    PlaceOSServer,
    RequestAborted,
    RequestFailed,
    RequestReceived,
    RequestSucceeded,
    RequestTimedOut,
    SuccessResponse,
    UnexpectedResponse,
    ValueChanged,
    ValueFormat,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from protocore.testing import mews as mews_st
from protocore.testing import placeos as placeos_st
from protocore.testing import wire

# Sessions and connections run with the default JSON backend; the codec properties run
# under each (the json_backend fixture), with fewer examples each.
hsettings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
per_backend = settings(hsettings, max_examples=50)
many_calls = settings(hsettings, max_examples=50)

API_KEY = "prop-api-key"
CLIENT_TOKEN, ACCESS_TOKEN = "prop-client-token", "prop-access-token"
SYS, MOD = "sys-1", "Display"
PLACEOS_PATH = "/api/engine/v2/systems/control"

CONNECTION_EVENTS = (Connected, HandshakeRejected, ConnectionClosed, KeepaliveTimeout)
DOCUMENTED: dict[str, tuple[type[Event], ...]] = {
    "MewsClient": (*CONNECTION_EVENTS, EventsReceived, BadMessage, Reconnected),
    "PlaceOSClient": (
        *CONNECTION_EVENTS,
        BadMessage,
        RequestSucceeded,
        RequestFailed,
        RequestTimedOut,
        RequestAborted,
        ValueChanged,
        DebugLog,
        BindingLost,
        HeartbeatLost,
        UnexpectedResponse,
    ),
    "MewsServer": (*CONNECTION_EVENTS, BadMessage),
    "PlaceOSServer": (*CONNECTION_EVENTS, BadMessage, RequestReceived, HandlerFailed),
}


def wire_json(data: bytes | str) -> Any:
    return json.loads(data)


# -- wire messages round trip, in every dialect -------------------------------------------


@pytest.mark.usefixtures("json_backend")
@per_backend
@given(st.sampled_from(["current", "legacy", None]), st.data())
def test_every_mews_message_re_encodes_to_the_same_document(
    dialect: mews_st.MewsDialect | None, data: st.DataObject
) -> None:
    message = data.draw(mews_st.mews_messages(dialect))
    envelope = decode_envelope(message)
    assert wire_json(encode_envelope(envelope)) == wire_json(message)


@pytest.mark.usefixtures("json_backend")
@per_backend
@given(placeos_st.request_messages())
def test_every_placeos_request_message_re_encodes_to_the_same_document(message: bytes) -> None:
    assert encode_request(decode_request(message)) == message


# A notify's value format is the one place the dialects differ on the way in: read each
# dialect as its server means it.
VALUE_FORMATS = {Dialect.CURRENT: ValueFormat.RAW, Dialect.SEED: ValueFormat.STRINGIFIED}


@pytest.mark.usefixtures("json_backend")
@per_backend
@given(st.sampled_from(Dialect), st.data())
def test_every_placeos_response_message_re_encodes_to_the_same_document(
    dialect: Dialect, data: st.DataObject
) -> None:
    message = data.draw(placeos_st.response_messages(dialect))
    response = decode_response(message, value_format=VALUE_FORMATS[dialect])
    again = encode_response(response, dialect=dialect)
    if message in (b"pong", b"ping"):
        assert again == message
    else:
        assert wire_json(again) == wire_json(message)


# -- any bytes, to every session ------------------------------------------------------------


def placeos_engine() -> MockEngine:
    engine = MockEngine()
    engine.add_system(SYS)
    engine.add_module(SYS, MOD, status={"power": True}, methods={"echo": lambda *a: list(a)})
    return engine


def new_session(name: str) -> Any:
    if name == "MewsClient":
        return MewsClient(CLIENT_TOKEN, ACCESS_TOKEN)
    if name == "PlaceOSClient":
        return PlaceOSClient(api_key=API_KEY)
    if name == "MewsServer":
        return MewsServer(CLIENT_TOKEN, ACCESS_TOKEN)
    return PlaceOSServer(api_keys=[API_KEY], handler=placeos_engine())


SESSIONS = sorted(DOCUMENTED)


def any_message(name: str) -> st.SearchStrategy[bytes]:
    """Valid messages for the session's side, their mutations, and garbage."""
    if name == "MewsClient":
        valid = mews_st.mews_messages()
        broken = mews_st.near_mews_messages() | mews_st.garbage_mews_messages()
    elif name == "PlaceOSClient":
        valid = placeos_st.response_messages()
        broken = placeos_st.garbage_messages()
    else:
        valid = placeos_st.request_messages()
        broken = placeos_st.garbage_messages() | mews_st.mews_messages()
    return st.one_of(valid, broken, valid.flatmap(wire.mutations), st.binary(max_size=64))


@many_calls
@pytest.mark.parametrize("name", SESSIONS)
@given(data=st.data())
def test_any_message_to_any_session_gives_only_documented_events(
    name: str, data: st.DataObject
) -> None:
    session = new_session(name)
    if name == "PlaceOSClient":
        session.connection_made(0.0)
        session.exec(SYS, MOD, "echo", 1, now=0.0)
        session.bind(SYS, MOD, "power", now=0.0)
    else:
        session.connection_made(0.0)
    for message in data.draw(st.lists(any_message(name), max_size=5)):
        as_text = data.draw(st.booleans())
        payload: str | bytes = message.decode("utf-8", "replace") if as_text else message
        events = session.receive_message(payload, 1.0)
        assert all(isinstance(e, DOCUMENTED[name]) for e in events), events
        for text in session.messages_to_send():
            assert isinstance(text, str)


# -- any bytes, to every connection ---------------------------------------------------------


def request_for(name: str, key: bytes) -> bytes:
    """A client's upgrade request that the server session ``name`` admits."""
    auth = (
        f"X-API-Key: {API_KEY}"
        if name == "PlaceOSServer"
        else f"Cookie: ClientToken={CLIENT_TOKEN}; AccessToken={ACCESS_TOKEN}"
    )
    path = PLACEOS_PATH if name == "PlaceOSServer" else "/ws/connector"
    return (
        f"GET {path} HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\n{auth}\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def accept_for(request: bytes) -> bytes:
    key = request.split(b"sec-websocket-key: ", 1)[1].split(b"\r\n", 1)[0]
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + _handshake.accept_token(key) + b"\r\n\r\n"
    )


Conn = ClientConnection | ServerConnection


def opened_connection(name: str) -> Conn:
    """An OPEN connection around a fresh session ``name``, its opening drained."""
    session = new_session(name)
    conn: Conn
    if name.endswith("Client"):
        conn = ClientConnection(session, "ws://example.com/ws", keepalive_interval=None)
        conn.start(0.0)
        conn.receive_data(accept_for(conn.data_to_send()), 0.0)
    else:
        conn = ServerConnection(session, keepalive_interval=None)
        conn.start(0.0)
        conn.receive_data(request_for(name, b"dGhlIHNhbXBsZSBub25jZQ=="), 0.0)
    assert conn.state is ConnectionState.OPEN
    if name == "PlaceOSClient":
        session.exec(SYS, MOD, "echo", 1, now=0.0)
    conn.data_to_send()
    assert conn.events()[0] == Connected(None)
    return conn


def message_frames(name: str, *, from_client: bool) -> st.SearchStrategy[bytes]:
    """Text frames holding what the peer of ``name`` says (valid, mutated or garbage)."""

    def frame(message: bytes, mask: bytes) -> bytes:
        return wire.encode_frame(wire.TEXT, message, mask=mask if from_client else None)

    text = any_message(name).map(lambda m: m.decode("utf-8", "replace").encode())
    return st.builds(frame, text, st.binary(min_size=4, max_size=4))


def peer_stream(name: str) -> st.SearchStrategy[bytes]:
    """A peer's bytes: frames of every kind and protocol messages, maybe mutated."""
    from_client = name.endswith("Server")
    item = wire.frames(from_client=from_client) | message_frames(name, from_client=from_client)
    stream = st.lists(item, max_size=6).map(b"".join)
    return stream | stream.flatmap(wire.mutations)


@many_calls
@pytest.mark.parametrize("name", SESSIONS)
@given(data=st.data())
def test_any_bytes_to_any_connection_end_in_one_connection_closed(
    name: str, data: st.DataObject
) -> None:
    conn = opened_connection(name)
    stream = data.draw(peer_stream(name))
    events: list[Event] = []
    for chunk in data.draw(wire.chunkings(stream)):
        if conn.state is ConnectionState.CLOSED:
            break
        conn.receive_data(chunk, 1.0)
        conn.data_to_send()
        events += conn.events()
    conn.receive_eof(2.0)
    events += conn.events()
    assert conn.state is ConnectionState.CLOSED
    assert all(isinstance(e, DOCUMENTED[name]) for e in events), events
    assert [isinstance(e, ConnectionClosed) for e in events].count(True) == 1
    assert isinstance(events[-1], ConnectionClosed)


# -- a server keeps serving after any bad request --------------------------------------------


def bad_requests(name: str) -> st.SearchStrategy[bytes]:
    if name == "PlaceOSServer":
        return placeos_st.garbage_messages() | placeos_st.request_messages().flatmap(wire.mutations)
    return st.one_of(placeos_st.garbage_messages(), mews_st.mews_messages(), st.binary())


def server_frames(data: bytes, *, text: bool) -> bytes:
    """A client's frame carrying ``data`` (text frames need valid UTF-8)."""
    if text:
        return wire.encode_frame(wire.TEXT, data.decode("utf-8", "replace").encode(), mask=b"abcd")
    return wire.encode_frame(wire.BINARY, data, mask=b"abcd")


def _no_limit() -> None:
    raise AssertionError("the reader has no size limit")


def read_frames(data: bytes, *, sent_by_client: bool) -> list[Any]:
    """The (opcode, payload) frames in ``data``, as the receiving peer parses them."""
    # wsproto's frame rules with our close-code table: wsproto's lacks 1014, which
    # we accept and echo.
    proto = connection_module._FrameProtocol(not sent_by_client, 1 << 62, _no_limit)
    proto.receive_bytes(data)
    return [(f.opcode, f.payload) for f in proto.received_frames()]


@many_calls
@pytest.mark.parametrize("name", ["MewsServer", "PlaceOSServer"])
@given(data=st.data())
def test_a_server_keeps_serving_after_any_bad_request(name: str, data: st.DataObject) -> None:
    conn = opened_connection(name)
    for bad in data.draw(st.lists(bad_requests(name), min_size=1, max_size=5)):
        conn.receive_data(server_frames(bad, text=data.draw(st.booleans())), 1.0)
        conn.data_to_send()
        assert conn.state is ConnectionState.OPEN
    assert all(isinstance(e, DOCUMENTED[name]) for e in conn.events())
    session = conn.session
    if isinstance(session, PlaceOSServer):
        request = Exec(4242, SYS, MOD, "echo", 1, ("still", "here"))
        conn.receive_data(server_frames(encode_request(request), text=True), 2.0)
        replies = [
            decode_response(payload, value_format=ValueFormat.RAW)
            for _, payload in read_frames(conn.data_to_send(), sent_by_client=False)
        ]
        assert [r for r in replies if isinstance(r, SuccessResponse)][-1].id == 4242
    else:
        assert isinstance(session, MewsServer)
        event = ResourceEvent("r-1", ResourceState.CLEAN)
        session.push([event])
        (sent,) = read_frames(conn.data_to_send(), sent_by_client=False)
        assert decode_envelope(sent[1]).events == (event,)


# -- chunking changes nothing, in both directions ------------------------------------------


def run(name: str, chunks: list[bytes]) -> tuple[list[str], list[Any]]:
    """Events and the frames sent back, feeding ``chunks`` to a fresh open connection."""
    conn = opened_connection(name)
    sent = b""
    for chunk in chunks:
        if conn.state is ConnectionState.CLOSED:
            break
        conn.receive_data(chunk, 1.0)
        sent += conn.data_to_send()
    frames = read_frames(sent, sent_by_client=isinstance(conn, ClientConnection))
    return [repr(event) for event in conn.events()], frames  # errors compare by identity


def valid_stream(name: str) -> st.SearchStrategy[bytes]:
    from_client = name.endswith("Server")
    item = wire.frames(from_client=from_client, kinds=wire.VALID_KINDS) | message_frames(
        name, from_client=from_client
    )
    return st.lists(item, max_size=6).map(b"".join)


@many_calls
@pytest.mark.parametrize("name", SESSIONS)
@given(data=st.data())
def test_chunking_changes_nothing(name: str, data: st.DataObject) -> None:
    stream = data.draw(valid_stream(name) | peer_stream(name))
    whole = run(name, [stream])
    assert run(name, data.draw(wire.chunkings(stream))) == whole


# -- differential: our ClientConnection against websockets' ClientProtocol ------------------

LIMIT = 1024  # both sides' max message size, small enough for real oversize messages


@st.composite
def accept_responses(draw: st.DrawFn, key: bytes) -> bytes:
    """A server's valid 101: header case, token lists and extra headers vary."""
    upgrade = draw(st.sampled_from(["websocket", "WebSocket", "WEBSOCKET"]))
    connection = draw(st.sampled_from(["Upgrade", "upgrade", "keep-alive, Upgrade"]))
    extra = draw(
        st.lists(
            st.sampled_from(["Server: test", "Date: Mon, 30 Nov 2026 09:00:00 GMT", "X-A: b"]),
            unique=True,
            max_size=3,
        )
    )
    name = draw(st.sampled_from(["Sec-WebSocket-Accept", "sec-websocket-accept"]))
    headers = [
        f"Upgrade: {upgrade}",
        f"Connection: {connection}",
        f"{name}: {_handshake.accept_token(key).decode()}",
        *extra,
    ]
    lines = ["HTTP/1.1 101 Switching Protocols", *draw(st.permutations(headers))]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Ours:
    """Our client connection with a recording session, fed item by item."""

    def __init__(self) -> None:
        self.session = RecordingClientSession()
        self.conn = ClientConnection(
            self.session, "ws://example.com/ws", keepalive_interval=None, max_message_size=LIMIT
        )
        self.conn.start(0.0)
        self.request = self.conn.data_to_send()

    def handshake(self, response: bytes) -> bool:
        self.conn.receive_data(response, 0.0)
        self.conn.data_to_send()
        return self.conn.state is ConnectionState.OPEN

    def feed(self, data: bytes) -> tuple[list[str | bytes], list[Any]]:
        """The messages delivered and the frames sent back."""
        self.conn.receive_data(data, 1.0)
        sent = read_frames(self.conn.data_to_send(), sent_by_client=True)
        messages = [e.data for e in self.conn.events() if isinstance(e, Received)]
        return messages, sent

    @property
    def done(self) -> bool:
        return self.conn.state is not ConnectionState.OPEN


class Theirs:
    """websockets' sans-IO client, with the message assembly (and the UTF-8 check) its
    connection layers do on top of it."""

    def __init__(self) -> None:
        self.proto = ClientProtocol(parse_uri("ws://example.com/ws"), max_size=LIMIT)
        request = self.proto.connect()
        self.key = request.headers["Sec-WebSocket-Key"].encode()
        self.proto.send_request(request)
        self.proto.data_to_send()
        self.parts: list[bytes] = []
        self.text: Any = None
        self.opcode: Opcode | None = None

    def handshake(self, response: bytes) -> bool:
        self.proto.receive_data(response)
        self.proto.events_received()
        self.proto.data_to_send()
        return self.proto.state is State.OPEN

    def feed(self, data: bytes) -> tuple[list[str | bytes], list[Any]]:
        self.proto.receive_data(data)
        messages: list[str | bytes] = []
        for frame in self.proto.events_received():
            assert isinstance(frame, Frame)
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                self.opcode, self.parts = frame.opcode, []
                self.text = codecs.getincrementaldecoder("utf-8")()
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT) and not self._collect(
                frame, messages
            ):
                break
        sent = read_frames(b"".join(self.proto.data_to_send()), sent_by_client=True)
        return messages, sent

    def _collect(self, frame: Frame, messages: list[str | bytes]) -> bool:
        self.parts.append(frame.data)
        if self.opcode is Opcode.TEXT:
            try:
                self.text.decode(frame.data, final=frame.fin)
            except UnicodeDecodeError:
                self.proto.fail(1007, "invalid UTF-8")
                return False
        if frame.fin:
            data = b"".join(self.parts)
            messages.append(data.decode() if self.opcode is Opcode.TEXT else data)
        return True

    @property
    def done(self) -> bool:
        return self.proto.state is not State.OPEN


def summary(sent: list[Any]) -> list[Any]:
    """What a peer sees of the frames sent back: pongs with payloads, close codes."""
    out: list[Any] = []
    for opcode, payload in sent:
        if opcode.name == "CLOSE":
            out.append(("close", payload[0]))
        elif opcode.name == "PONG":
            out.append(("pong", bytes(payload)))
        else:
            out.append((opcode.name, payload))
    return out


@settings(hsettings, max_examples=300)
@given(data=st.data())
def test_our_client_agrees_with_websockets_on_any_server_stream(data: st.DataObject) -> None:
    ours, theirs = Ours(), Theirs()
    response = data.draw(accept_responses(theirs.key))
    key = ours.request.split(b"sec-websocket-key: ", 1)[1].split(b"\r\n", 1)[0]
    ours_response = response.replace(
        _handshake.accept_token(theirs.key), _handshake.accept_token(key)
    )
    assert ours.handshake(ours_response)
    assert theirs.handshake(response)
    items = data.draw(wire.frame_streams(from_client=False, max_message_size=LIMIT, max_items=6))
    for item in items:
        our_messages, our_sent = ours.feed(item)
        their_messages, their_sent = theirs.feed(item)
        assert our_messages == their_messages, item
        assert summary(our_sent) == summary(their_sent), item
        assert ours.done == theirs.done, item
        if ours.done:
            break


def test_a_header_claiming_too_much_is_refused_at_once_as_websockets_does() -> None:
    # The limit is checked at the frame header, before any payload is read: the
    # close code then never depends on how the payload was chunked (nor on what it
    # holds), and we agree with websockets even on a header that lies.
    ours, theirs = Ours(), Theirs()
    key = ours.request.split(b"sec-websocket-key: ", 1)[1].split(b"\r\n", 1)[0]
    assert ours.handshake(accept_for(b"sec-websocket-key: " + key + b"\r\n"))
    assert theirs.handshake(accept_for(b"sec-websocket-key: " + theirs.key + b"\r\n"))
    header = wire.encode_frame(wire.BINARY, b"", length=LIMIT + 1)
    assert summary(theirs.feed(header)[1]) == [("close", 1009)]
    assert summary(ours.feed(header)[1]) == [("close", 1009)]


# -- packaging -------------------------------------------------------------------------------


def test_importing_protocore_does_not_import_hypothesis() -> None:
    script = (
        "import sys, protocore, protocore.mews, protocore.placeos, protocore.connection\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'hypothesis'"
        " or m.startswith('protocore.testing')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_protocore_testing_exports_documented_strategies() -> None:
    from protocore import testing

    for name in testing.__all__:
        item: Callable[..., Any] | Any = getattr(testing, name)
        assert item.__doc__, name


# -- regressions found by the properties above ------------------------------------------------


def test_the_invalid_utf8_close_reason_does_not_depend_on_chunking() -> None:
    # wsproto's reason gave the bad byte's position within the chunk being decoded.
    stream = wire.encode_frame(wire.TEXT, b'{\x80"Events": []}')
    whole = run("MewsClient", [stream])
    assert run("MewsClient", [stream[:3], stream[3:]]) == whole
    assert "invalid UTF-8" in whole[0][-1]
