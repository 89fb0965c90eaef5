"""Three RFC 6455 points, each pinned on both sides of a connection.

- The close code does not depend on how the input was chunked, and
  `ConnectionClosed.code` is the code of the close frame we sent.
- After our own close frame, pings are still answered (5.5.2), and a protocol
  error the peer makes then reports the code that went on the wire.
- Every close code an endpoint may send is accepted (1014 included), every other
  one is refused with 1002.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sessions_for_tests import EchoServerSession
from test_connection import (
    VALID_REQUEST,
    cframe,
    decode,
    frame,
    opened,
    response_101,
    sframe,
)
from wsproto.events import CloseConnection, Pong

from protocore.connection import ClientConnection, ConnectionState, ServerConnection
from protocore.events import ConnectionClosed, Event
from protocore.mews import MewsClient
from protocore.testing import wire

CLOSED = ConnectionState.CLOSED
CLOSING = ConnectionState.CLOSING
TEXT, CLOSE, PING = 0x1, 0x8, 0x9

Conn = ClientConnection | ServerConnection

# One text frame of eleven "a" and an invalid UTF-8 byte, to an endpoint whose
# limit is 10: over the limit, and invalid past it.
OVERSIZED_AND_INVALID = b"a" * 11 + b"\xff"


def mews_client(limit: int) -> ClientConnection:
    conn = ClientConnection(
        MewsClient("client-token", "access-token"),
        "ws://127.0.0.1/ws/connector",
        max_message_size=limit,
    )
    conn.start(0.0)
    conn.receive_data(response_101(conn.data_to_send()), 0.0)
    conn.events()
    return conn


def echo_server(limit: int) -> ServerConnection:
    conn = ServerConnection(EchoServerSession(), max_message_size=limit)
    conn.start(0.0)
    conn.receive_data(VALID_REQUEST, 0.0)
    conn.data_to_send()
    conn.events()
    return conn


def feed(conn: Conn, pieces: list[bytes]) -> tuple[list[object], list[Event]]:
    """Every frame ``conn`` sends (decoded: a client's masks are random) and every
    event it reports while reading ``pieces`` one by one."""
    out = b""
    events: list[Event] = []
    for piece in pieces:
        if conn.state is CLOSED:
            break
        conn.receive_data(piece, 1.0)
        out += conn.data_to_send()
        events += conn.events()
    return decode(out, sent_by_client=isinstance(conn, ClientConnection)), events


def read_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, unmasked payload) of each whole frame in ``data``: a reader that,
    unlike wsproto's, takes close code 1014."""
    frames = []
    while data:
        size, at = data[1] & 0x7F, 2
        if size == 126:
            size, at = int.from_bytes(data[2:4]), 4
        elif size == 127:
            size, at = int.from_bytes(data[2:10]), 10
        key = data[at : at + 4] if data[1] & 0x80 else b"\0\0\0\0"
        at += 4 if data[1] & 0x80 else 0
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(data[at : at + size]))
        frames.append((data[0] & 0x0F, payload))
        data = data[at + size :]
    return frames


def sent_closes(out: bytes) -> list[tuple[int, str]]:
    return [(int.from_bytes(p[:2]), p[2:].decode()) for op, p in read_frames(out) if op == CLOSE]


def sent_close_codes(out: bytes) -> list[int]:
    return [code for code, _ in sent_closes(out)]


SIDES = {
    "client": (lambda: mews_client(10), sframe(TEXT, OVERSIZED_AND_INVALID)),
    "server": (lambda: echo_server(10), cframe(TEXT, OVERSIZED_AND_INVALID)),
}


# -- 1. the close code does not depend on chunking -----------------------------------


@pytest.mark.parametrize("side", SIDES)
def test_oversized_then_invalid_closes_1009_whole_or_byte_by_byte(side: str) -> None:
    make, data = SIDES[side]
    whole = feed(make(), [data])
    bytewise = feed(make(), [data[i : i + 1] for i in range(len(data))])
    assert whole == bytewise
    sent, events = whole
    assert sent == [CloseConnection(1009, "message too big")]
    closed = events[-1]
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == 1009  # the code on the wire, not the later 1007
    assert closed.local


@pytest.mark.parametrize("side", SIDES)
@given(data=st.data())
def test_output_and_events_do_not_depend_on_chunking(side: str, data: st.DataObject) -> None:
    make, stream = SIDES[side]
    stream += (sframe if side == "client" else cframe)(PING, b"after")
    pieces = data.draw(wire.chunkings(stream))
    assert feed(make(), pieces) == feed(make(), [stream])


# -- 2. after our close frame --------------------------------------------------------


@pytest.mark.parametrize("side", ["client", "server"])
def test_pings_are_answered_after_our_close_until_the_peers_close(side: str) -> None:
    client, server, _, _ = opened()
    ours, peer_frame = (client, sframe) if side == "client" else (server, cframe)
    ours.close(1000, now=1.0)
    ours.data_to_send()
    assert ours.state is CLOSING
    ours.receive_data(peer_frame(PING, b"one") + peer_frame(PING, b"two"), 1.5)
    assert decode(ours.data_to_send(), sent_by_client=side == "client") == [
        Pong(b"one"),
        Pong(b"two"),
    ]
    ours.receive_data(peer_frame(CLOSE, wire.close_payload(1000)), 2.0)
    assert ours.state is CLOSED
    assert ours.events()[-1] == ConnectionClosed(1000, "", True)


def test_pings_are_answered_after_our_1009() -> None:
    client = mews_client(10)
    client.receive_data(sframe(TEXT, b"a" * 11), 1.0)
    assert sent_close_codes(client.data_to_send()) == [1009]
    assert client.state is CLOSING
    client.receive_data(sframe(PING, b"still there?"), 1.5)
    assert decode(client.data_to_send(), sent_by_client=True) == [Pong(b"still there?")]


@pytest.mark.parametrize(
    ("violation", "what"),
    [
        (bytes([0x83, 0x00]), "reserved opcode"),
        (sframe(TEXT, b"\xff"), "invalid UTF-8"),
        (sframe(CLOSE, wire.close_payload(1004)), "bad close code"),
    ],
    ids=["1002", "1007", "bad close"],
)
@pytest.mark.parametrize("side", ["client", "server"])
def test_a_violation_after_our_close_reports_the_code_we_sent(
    side: str, violation: bytes, what: str
) -> None:
    client, server, _, _ = opened()
    ours = client if side == "client" else server
    if side == "server":  # the same violation, as a client would send it (masked)
        violation = frame(violation[0] & 0x0F, _payload(violation), masked=True)
    ours.close(1000, now=1.0)
    assert sent_close_codes(ours.data_to_send()) == [1000]
    ours.receive_data(violation, 1.5)
    assert ours.state is CLOSED, what
    assert ours.data_to_send() == b""  # no second close frame
    closed = ours.events()[-1]
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == 1000
    assert closed.local


def _payload(unmasked_frame: bytes) -> bytes:
    assert unmasked_frame[1] < 126
    return unmasked_frame[2:]


# -- 3. close codes ------------------------------------------------------------------

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
VALID_CODES += [3000, 3999, 4000, 4999]
INVALID_CODES = {
    "below 1000": [0, 1, 999],
    "reserved 1004": [1004],
    "never sent": [1005, 1006, 1015],
    "unassigned": [1016, 1100, 2000, 2999],
    "above 4999": [5000, 65535],
}


@pytest.mark.parametrize("code", VALID_CODES)
@pytest.mark.parametrize("side", ["client", "server"])
def test_every_valid_close_code_is_accepted_and_echoed(side: str, code: int) -> None:
    client, server, _, _ = opened()
    ours, peer_frame = (client, sframe) if side == "client" else (server, cframe)
    ours.receive_data(peer_frame(CLOSE, wire.close_payload(code, "bye")), 1.0)
    assert sent_closes(ours.data_to_send()) == [(code, "bye")]
    assert ours.events()[-1] == ConnectionClosed(code, "bye", False)


@pytest.mark.parametrize("code", [c for codes in INVALID_CODES.values() for c in codes], ids=str)
@pytest.mark.parametrize("side", ["client", "server"])
def test_every_other_close_code_is_refused_with_1002(side: str, code: int) -> None:
    client, server, _, _ = opened()
    ours, peer_frame = (client, sframe) if side == "client" else (server, cframe)
    ours.receive_data(peer_frame(CLOSE, wire.close_payload(code)), 1.0)
    assert sent_close_codes(ours.data_to_send()) == [1002]
    closed = ours.events()[-1]
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == 1002
    assert str(code) in closed.reason


def test_we_may_send_1014_too() -> None:
    client, server, _, _ = opened()
    client.close(1014, "upstream down", now=1.0)
    server.receive_data(client.data_to_send(), 1.0)
    assert server.events()[-1] == ConnectionClosed(1014, "upstream down", False)
