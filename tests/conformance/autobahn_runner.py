"""Play one Autobahn-style case against our `ClientConnection` or `ServerConnection`.

The peer (the test suite's side) writes the case's frames (masked when it plays the
client), in the case's chops, and pauses where the case waits. What the endpoint
does is recorded as a trace, in order: each message the session receives whole,
each pong it sends, and each labelled wait it is still open at. The trace and the
close (who sent the first close frame, with which code) are then judged as the
Autobahn testsuite judges them: OK when they match the case's strict expectation,
NON-STRICT when they match the lenient one, FAILED otherwise.

Autobahn checks a message by its echo; these endpoints speak for a session, which
receives the message instead, so the trace records delivery to the session.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Literal

import attrs

from benchmarks.large_messages import Sink
from protocore import _handshake
from protocore.connection import ClientConnection, ConnectionState, ServerConnection
from protocore.events import ConnectionClosed, Event

Side = Literal["client", "server"]
SIDES: tuple[Side, ...] = ("client", "server")

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

Chops = Literal["one", "frame", "octet"] | int
"""How the peer writes: everything between two waits at once, one write per frame,
one byte per write, or writes of that many bytes."""

Item = tuple[str, object]
"""One trace entry: ("message", str | bytes), ("pong", bytes) or ("wait", label)."""

_MASK = b"\x37\xfa\x21\x3d"


class Outcome(enum.Enum):
    OK = "OK"
    NON_STRICT = "NON-STRICT"
    INFORMATIONAL = "INFORMATIONAL"
    FAILED = "FAILED"


@attrs.frozen
class Frame:
    """A frame the peer writes, exactly as told. ``waits_at`` are payload offsets
    where the peer pauses in the middle of this frame (labelled A, B, ...)."""

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0
    waits_at: tuple[int, ...] = ()


@attrs.frozen
class Wait:
    """The peer pauses: a labelled wait goes in the trace if the endpoint is still open
    (Autobahn's ``timeout``)."""

    label: str | None = None


@attrs.frozen
class Close:
    """How the case must end. ``by_peer``: the peer sends the first close frame (at
    the end, unless the case's frames hold one) and the endpoint answers it;
    otherwise the endpoint must fail the connection itself. ``codes``: the codes its
    close frame may carry (an empty close frame is accepted too, as Autobahn does)."""

    by_peer: bool
    codes: tuple[int, ...]


NORMAL = Close(by_peer=True, codes=(1000,))
PROTOCOL_ERROR = Close(by_peer=False, codes=(1002,))
INVALID_PAYLOAD = Close(by_peer=False, codes=(1007,))


@attrs.frozen
class Result:
    outcome: Outcome
    trace: tuple[Item, ...]
    closed_by_peer: bool | None  # None: the endpoint sent no close frame at all
    code: int | None  # of the endpoint's first close frame (None: empty or none)
    why: str


@attrs.frozen
class _Session(Sink):
    """Admits everyone, sends nothing, records every message whole.

    At each message it first drains what the connection framed so far, so a pong
    framed before the message stays before it in the trace."""

    sink: list[Item] = attrs.field(factory=list)
    drain: list[Callable[[], None]] = attrs.field(factory=list)  # set once connected

    def receive_message(self, data: str | bytes, now: float) -> list[Event]:
        for drain in self.drain:
            drain()
        self.sink.append(("message", data))
        return []


def _mask(payload: bytes) -> bytes:
    if not payload:
        return b""
    key = (_MASK * (len(payload) // 4 + 1))[: len(payload)]
    size = len(payload)
    return (int.from_bytes(payload) ^ int.from_bytes(key)).to_bytes(size)


def _header(frame: Frame, masked: bool) -> bytes:
    size = len(frame.payload)
    head = bytearray([(0x80 if frame.fin else 0) | (frame.rsv & 7) << 4 | frame.opcode])
    bit = 0x80 if masked else 0
    if size < 126:
        head.append(bit | size)
    elif size < 1 << 16:
        head += bytes([bit | 126]) + size.to_bytes(2)
    else:
        head += bytes([bit | 127]) + size.to_bytes(8)
    return bytes(head) + (_MASK if masked else b"")


def encode(frame: Frame, *, masked: bool) -> list[bytes | Wait]:
    """The frame's bytes, cut where it waits (a `Wait` between the pieces)."""
    head = _header(frame, masked)
    body = _mask(frame.payload) if masked else frame.payload
    pieces: list[bytes | Wait] = []
    start = 0
    for label, at in zip("ABCDEFGH", frame.waits_at, strict=False):
        pieces += [(head if not start else b"") + body[start:at], Wait(label)]
        start = at
    pieces.append((head if not start else b"") + body[start:])
    return pieces


def writes(steps: Sequence[Frame | Wait], chops: Chops, *, masked: bool) -> list[bytes | Wait]:
    """What the peer writes, write by write, with the waits in between."""
    groups: list[list[bytes]] = [[]]
    marks: list[Wait] = []
    for step in steps:
        if isinstance(step, Wait):
            groups.append([])
            marks.append(step)
            continue
        for piece in encode(step, masked=masked):
            if isinstance(piece, Wait):
                groups.append([])
                marks.append(piece)
            else:
                groups[-1].append(piece)
    out: list[bytes | Wait] = []
    for index, group in enumerate(groups):
        if index:
            out.append(marks[index - 1])
        data = b"".join(group)
        if chops == "one":
            out += [data] if data else []
        elif chops == "frame":
            out += [piece for piece in group if piece]
        else:
            size = 1 if chops == "octet" else chops
            out += [data[i : i + size] for i in range(0, len(data), size)]
    return out


def _read_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each frame the endpoint wrote (unmasked here)."""
    frames = []
    view = memoryview(data)
    at = 0
    while at < len(view):
        first, second = view[at], view[at + 1]
        size, at = second & 0x7F, at + 2
        if size == 126:
            size, at = int.from_bytes(view[at : at + 2]), at + 2
        elif size == 127:
            size, at = int.from_bytes(view[at : at + 8]), at + 8
        key = bytes(view[at : at + 4]) if second & 0x80 else None
        at += 4 if key else 0
        payload = bytes(view[at : at + size])
        if key:
            full = (key * (size // 4 + 1))[:size]
            payload = (int.from_bytes(payload) ^ int.from_bytes(full)).to_bytes(size)
        frames.append((first & 0x0F, payload))
        at += size
    return frames


def open_endpoint(side: Side, limit: int) -> tuple[ClientConnection | ServerConnection, list[Item]]:
    """An OPEN connection of ``side`` (no keepalive) whose session records into the trace."""
    trace: list[Item] = []
    session = _Session(sink=trace)
    conn: ClientConnection | ServerConnection
    if side == "client":
        conn = ClientConnection(
            session, "ws://127.0.0.1/", max_message_size=limit, keepalive_interval=None
        )
        conn.start(0.0)
        request = conn.data_to_send()
        key = request.split(b"sec-websocket-key: ", 1)[1].split(b"\r\n", 1)[0]
        conn.receive_data(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + _handshake.accept_token(key)
            + b"\r\n\r\n",
            0.0,
        )
    else:
        conn = ServerConnection(session, max_message_size=limit, keepalive_interval=None)
        conn.start(0.0)
        conn.receive_data(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            0.0,
        )
        conn.data_to_send()
    assert conn.state is ConnectionState.OPEN
    conn.events()
    return conn, trace


def _peer_close_end(
    plan: Sequence[bytes | Wait], steps: Sequence[Frame | Wait], masked: bool
) -> int:
    """Byte offset in the peer's stream where its first close frame ends (a close frame
    with RSV bits set is a broken frame, not a close). Past the end when there is none."""
    offset = 0
    for step in steps:
        if isinstance(step, Wait):
            continue
        size = len(_header(step, masked)) + len(step.payload)
        if step.opcode == CLOSE and not step.rsv:
            return offset + size
        offset += size
    return sum(len(w) for w in plan if not isinstance(w, Wait)) + 1


def play(
    side: Side,
    steps: Sequence[Frame | Wait],
    chops: Chops,
    close: Close,
    *,
    limit: int,
) -> tuple[tuple[Item, ...], bool | None, int | None, list[Event]]:
    """Play the peer's part: the trace, whether the peer's close frame came before ours
    (None: we sent none), our close code (None: empty close frame or none), our events."""
    conn, trace = open_endpoint(side, limit)
    masked = side == "server"
    if close.by_peer and not any(isinstance(s, Frame) and s.opcode == CLOSE for s in steps):
        steps = [*steps, Frame(CLOSE, (1000).to_bytes(2))]
    plan = writes(steps, chops, masked=masked)
    close_end = _peer_close_end(plan, steps, masked)
    ours: list[tuple[bool, int | None]] = []
    fed = 0
    events: list[Event] = []

    def drain() -> None:
        for opcode, payload in _read_frames(conn.data_to_send()):
            if opcode == PONG:
                trace.append(("pong", payload))
            elif opcode == CLOSE:
                ours.append((fed >= close_end, int.from_bytes(payload[:2]) if payload else None))

    session = conn.session
    assert isinstance(session, _Session)
    session.drain.append(drain)
    for write in plan:
        if isinstance(write, Wait):
            drain()
            if write.label is not None and conn.state is ConnectionState.OPEN:
                trace.append(("wait", write.label))
            continue
        if conn.state is ConnectionState.CLOSED:
            break  # the socket is closed: nothing more is read
        fed += len(write)
        conn.receive_data(write, 1.0)
        drain()
        events += conn.events()
    if conn.state is not ConnectionState.CLOSED:
        conn.receive_eof(2.0)  # the peer hangs up
        drain()
        events += conn.events()
    if not ours:
        return tuple(trace), None, None, events
    return tuple(trace), ours[0][0], ours[0][1], events


def judge(
    trace: tuple[Item, ...],
    closed_by_peer: bool | None,
    code: int | None,
    *,
    ok: Sequence[Item],
    non_strict: Sequence[Item] | None,
    close: Close,
) -> tuple[Outcome, str]:
    """Autobahn's verdict on what happened."""
    if closed_by_peer is None:
        return Outcome.FAILED, "no close frame was sent"
    if closed_by_peer is not close.by_peer:
        who = "the endpoint" if close.by_peer else "the peer"
        return Outcome.FAILED, f"the connection was closed first by the wrong endpoint ({who})"
    if code is not None and code not in close.codes:
        return Outcome.FAILED, f"close code {code}, expected {close.codes}"
    if list(trace) == list(ok):
        return Outcome.OK, ""
    if non_strict is not None and list(trace) == list(non_strict):
        return Outcome.NON_STRICT, ""
    return Outcome.FAILED, f"unexpected events: {_short(trace)}"


def _short(trace: Sequence[Item]) -> str:
    out = []
    for kind, value in trace:
        text = repr(value)
        out.append(f"{kind} {text[:40]}{'...' if len(text) > 40 else ''}")
    return ", ".join(out) or "none"


def closed_event(events: list[Event]) -> ConnectionClosed:
    [closed] = [e for e in events if isinstance(e, ConnectionClosed)]
    return closed
