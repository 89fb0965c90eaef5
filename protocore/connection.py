"""The WebSocket connection: wsproto around a session, so a transport only moves bytes.

`ClientConnection` and `ServerConnection` own everything between the socket and a
session (`protocore.session`): the opening handshake (with the session's auth on
the client, the session's `authorize` on the server), framing, reassembly of
fragmented messages, ping/pong, keepalive, the close handshake, size limits and
every timer. A session speaks whole text messages; a transport moves bytes and
calls `handle_timer` at `next_deadline`. Nothing here does I/O or reads a clock:
every call that can start or check a timer takes ``now`` (monotonic seconds).

How a transport drives a connection::

    conn.start(now())
    while True:
        send_all(conn.data_to_send())
        handle(conn.events())
        if conn.state is ConnectionState.CLOSED:
            break                                   # then close the socket
        data = recv_until(conn.next_deadline())     # None: no deadline
        if data is TIMEOUT:
            conn.handle_timer(now())
        elif data:
            conn.receive_data(data, now())
        else:
            conn.receive_eof(now())

The application may call the session's own methods (a request, a bind) between
two calls: `data_to_send` takes the messages the session queued since, and
`next_deadline` asks the session again every time, so new timers are seen.

Ending. Every path out (the peer's close, our `close`, a timeout, a lost
keepalive, EOF, a refused or broken handshake) ends in state CLOSED with
`session.connection_lost(now)` called exactly once, its events delivered, then
exactly one `ConnectionClosed`. Its ``code`` is the close frame's code: the
peer's when the peer closed first, ours when we did (1002, 1007 and 1009 when the
peer broke a rule or a limit). Once our close frame is out it stays ours: if the
peer then breaks the protocol, the connection ends at once with the code we sent
(a code never on the wire is never reported) and ``reason`` names the violation.
It is 1006 when no close frame settled it: close timeout, EOF before any close
frame, a dead peer (keepalive or the session's heartbeat), a refused or failed
opening handshake. ``reason`` says what happened. While CLOSING, pings are still
answered (RFC 6455 5.5.2) and data still reaches the session.

Limits and codes. The message size limit is checked at each data frame's header,
before its payload is read, so an oversized message gets 1009 however the bytes
were chunked, even if its payload would also break a rule. A peer's close code is
accepted when an endpoint may send it (1000-1003, 1007-1014, 3000-4999) and
refused with 1002 otherwise.

Layers. The opening handshake is HTTP/1.1 on h11 (`protocore._handshake`), and
frames go through wsproto's frame codec (``wsproto.frame_protocol.FrameProtocol``:
parsing, masking, UTF-8 validation, control-frame rules). wsproto's own
``WSConnection``/``Connection`` wrappers are not used: their server handshake drops
bytes that arrive with the request, and turning frames into event objects only for
this module to unpack them again costs about a fifth of the per-message time. Two of
the codec's methods are ours (`_FrameDecoder`, `_FrameProtocol`: the size limit at the
header, the close codes wsproto's table lacks). The state around the codec (open,
closing, closed; who closed; timers) lives here.

Secrets. The handshake carries the session's credentials in headers and query.
They are written into the outgoing bytes and kept nowhere else: no repr, event,
exception text or log of this module contains them (this module does not log).
"""

from __future__ import annotations

import enum
from codecs import utf_8_decode as _utf8_decode
from collections.abc import Callable, Iterable, Sequence
from typing import cast

import attrs
import h11
from wsproto.frame_protocol import (
    CloseReason,
    Frame,
    FrameDecoder,
    FrameProtocol,
    Opcode,
    ParseFailed,
    RsvBits,
)

from . import _handshake
from ._url import WebSocketURL, parse_ws_url
from .errors import LocalProtocolError
from .events import (
    Connected,
    ConnectionClosed,
    Event,
    HandshakeRejected,
    LivenessLost,
)
from .session import ClientSession, ServerSession, Session

__all__ = [
    "ClientConnection",
    "ServerConnection",
    "ConnectionState",
    "KeepaliveTimeout",
    "WebSocketURL",
    "parse_ws_url",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_HANDSHAKE_SIZE",
]

DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
"""Largest incoming message (UTF-8 bytes for text), 1 MiB."""

DEFAULT_MAX_HANDSHAKE_SIZE = 16 * 1024
"""Largest HTTP head (request or status line plus headers) of the opening handshake;
a refusal's body is kept up to the same size."""


class ConnectionState(enum.Enum):
    """Where a connection is. The transport closes its socket at CLOSED, once
    `data_to_send` has returned everything (it may hold a last close frame)."""

    CONNECTING = "CONNECTING"
    """Opening handshake in progress (or `start` not called yet)."""
    OPEN = "OPEN"
    """Messages flow both ways."""
    CLOSING = "CLOSING"
    """We sent a close frame and wait for the peer's, up to ``close_timeout``
    (pings are answered meanwhile)."""
    CLOSED = "CLOSED"
    """Over: `ConnectionClosed` has been emitted."""


_CONNECTING = ConnectionState.CONNECTING
_OPEN = ConnectionState.OPEN
_CLOSING = ConnectionState.CLOSING
_CLOSED = ConnectionState.CLOSED


@attrs.frozen(slots=True)
class KeepaliveTimeout(LivenessLost):
    """No pong came back within ``timeout`` seconds of a keepalive ping: the peer is gone.

    The connection is dropped right after (a close frame is sent, the handshake is
    not waited for): `ConnectionClosed` with code 1006 follows.
    """

    timeout: float


# Close codes an endpoint may put in a close frame, so the only ones a peer's close
# frame may carry (RFC 6455 7.4 and the IANA registry, 1014 included): 1004 is
# reserved, 1005, 1006 and 1015 are never sent, 1016-2999 are unassigned.
def _valid_close_code(code: int) -> bool:
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


_INVALID_UTF8 = "invalid UTF-8 in a text message or close reason"
_MAX_PENDING = 64 * 1024
"""Bytes of a cut plain text frame kept for the fast path. Each read re-joins and
re-checks them, so a bigger frame trickling in goes to wsproto, which reads it in
linear time: a peer sending a large message in tiny pieces costs no quadratic work."""
_MAX_CLOSE_REASON = 123  # bytes of UTF-8: a control frame payload is 125 with the code


def _encoded_size(text: str) -> int | None:
    """UTF-8 size of ``text``, or None when it cannot be encoded (lone surrogates).

    The UnicodeEncodeError is dropped here, not chained: it carries the whole text.
    """
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _frames_idle(proto: FrameProtocol) -> bool:
    """Whether wsproto's frame codec holds no bytes and no message in progress.

    Reads wsproto internals (the version is pinned); if they change, this says no and
    every byte simply goes through wsproto.
    """
    try:
        decoder = proto._frame_decoder
        return (
            decoder.header is None
            and not decoder.buffer.buffer
            and proto._message_decoder.opcode is None
        )
    except AttributeError:
        return False


def _frame_rest(proto: FrameProtocol) -> int | None:
    """How many bytes finish the data frame wsproto is inside, when it holds none of
    them yet (its header read, its payload partly); None in any other state."""
    try:
        decoder = proto._frame_decoder
        header = decoder.header
        if header is None or decoder.buffer.buffer or header.opcode.iscontrol():
            return None
        return header.payload_len - decoder.payload_consumed
    except AttributeError:
        return None


class _FrameDecoder(FrameDecoder):
    """wsproto's frame parser, with the size limit checked at each data frame's header.

    A frame's header says how much payload follows, so the message's size is known
    before any of its bytes are read: ``too_big`` is called once per message, when a
    header takes it past ``limit``, and before wsproto checks (or fails on) the
    payload. The close code sent then does not depend on how the bytes were chunked.
    Frames that break the sequence (a continuation with no message, a new message
    inside one) are left for wsproto to refuse.
    """

    def __init__(self, client: bool, limit: int, too_big: Callable[[], None]) -> None:
        super().__init__(client, [])
        self._limit = limit
        self._too_big = too_big
        self._size = 0  # payload bytes of the current message, this frame's included
        self._in_message = False

    def extension_processing(self, opcode: Opcode, rsv: RsvBits, payload_len: int) -> None:
        # No extension is ever negotiated, so any RSV bit is an error: what wsproto's
        # loop over an empty extension list concludes, without the loop (this runs
        # at every frame).
        if rsv[0] or rsv[1] or rsv[2]:
            raise ParseFailed("Reserved bit set unexpectedly")

    def parse_header(self) -> bool:
        if not super().parse_header():
            return False
        header = self.header
        assert header is not None
        opcode = header.opcode
        if opcode is Opcode.CONTINUATION:
            if not self._in_message:
                return True
            before = self._size
        elif opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if self._in_message:
                return True
            before = 0
        else:
            return True  # control frames are not part of the message
        size = self._size = before + header.payload_len
        self._in_message = not header.fin
        if size > self._limit >= before:
            self._too_big()
        return True


class _FrameProtocol(FrameProtocol):
    """wsproto's frame codec with our `_FrameDecoder` and our close frame rules:
    wsproto refuses 1014, which the registry assigns and a peer may send."""

    def __init__(self, client: bool, limit: int, too_big: Callable[[], None]) -> None:
        super().__init__(client, [])
        self._frame_decoder = _FrameDecoder(client, limit, too_big)

    def _process_close(self, frame: Frame) -> Frame:
        data = frame.payload
        assert isinstance(data, bytes | bytearray)
        payload: tuple[int, str]
        if not data:
            payload = (1005, "")  # RFC 6455 7.1.5: no status code in the frame
        elif len(data) == 1:
            raise ParseFailed("close frame with a 1-byte payload")
        else:
            code = data[0] << 8 | data[1]
            if not _valid_close_code(code):
                raise ParseFailed(f"close frame with the invalid code {code}")
            try:
                payload = (code, bytes(data[2:]).decode("utf-8"))
            except UnicodeDecodeError:
                # Unchained: the decode error quotes the reason's bytes.
                raise ParseFailed(_INVALID_UTF8, CloseReason.INVALID_FRAME_PAYLOAD_DATA) from None
        return Frame(frame.opcode, payload, frame.frame_finished, frame.message_finished)


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise LocalProtocolError(f"{name} must be a positive number")
    return float(value)


class _Connection:
    """What both sides share: frames, keepalive, close handshake, limits, timers."""

    __slots__ = (
        "_close_code",
        "_close_due",
        "_close_reason",
        "_close_timeout",
        "_discarding",
        "_events",
        "_handshake_due",
        "_handshake_timeout",
        "_keepalive_interval",
        "_keepalive_timeout",
        "_max_handshake_size",
        "_max_message_size",
        "_now",
        "_out",
        "_own_deadline",
        "_partial",
        "_parts",
        "_pending",
        "_ping_at",
        "_ping_payload",
        "_ping_sent",
        "_pings",
        "_pong_due",
        "_proto",
        "_session",
        "_started",
        "_state",
        "_subprotocol",
        "_subprotocols",
        "_take_events",
        "latency",
        "messages_in",
        "messages_out",
    )

    _client: bool

    def __init__(
        self,
        session: Session,
        *,
        max_message_size: int,
        keepalive_interval: float | None,
        keepalive_timeout: float,
        close_timeout: float,
        handshake_timeout: float,
        max_handshake_size: int,
        subprotocols: Sequence[str],
    ) -> None:
        for name, size in (
            ("max_message_size", max_message_size),
            ("max_handshake_size", max_handshake_size),
        ):
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise LocalProtocolError(f"{name} must be a positive int")
        self._session = session
        # Optional session hook: results decided during the application's own calls
        # (a bind answered from the cache), drained with the connection's events.
        self._take_events: Callable[[], list[Event]] | None = getattr(session, "take_events", None)
        self._max_message_size = max_message_size
        self._max_handshake_size = max_handshake_size
        self._keepalive_interval = (
            None
            if keepalive_interval is None
            else _check_positive("keepalive_interval", keepalive_interval)
        )
        self._keepalive_timeout = _check_positive("keepalive_timeout", keepalive_timeout)
        self._close_timeout = _check_positive("close_timeout", close_timeout)
        self._handshake_timeout = _check_positive("handshake_timeout", handshake_timeout)
        self._subprotocols = _handshake.encode_subprotocols(subprotocols)
        self._subprotocol: str | None = None

        self._state = _CONNECTING
        self._started = False
        self._proto: FrameProtocol | None = None  # wsproto's frame codec, once OPEN
        self._events: list[Event] = []
        self._out = bytearray()

        # Reassembly: ``_partial`` is true while a fragmented message is being
        # collected in ``_parts`` or, past the size limit, thrown away.
        self._partial = False
        self._discarding = False
        self._parts: list[str | bytes | bytearray] = []
        self._now = 0.0  # of the receive_data call wsproto is reading for
        # The reads holding the start of a plain text frame (see _read_plain_texts).
        self._pending: tuple[bytes, ...] = ()

        # Timers. ``_own_deadline`` is the earliest of ours, kept up to date when
        # a timer changes, so `next_deadline` never recomputes it.
        self._handshake_due: float | None = None
        self._ping_at: float | None = None
        self._pong_due: float | None = None
        self._ping_sent = 0.0
        self._ping_payload = b""
        self._pings = 0
        self._close_due: float | None = None
        self._own_deadline: float | None = None
        self._close_code = 1006
        self._close_reason = ""
        #: The last keepalive ping's round trip in seconds (None before the first pong).
        self.latency: float | None = None
        #: Whole messages handed to the session, and framed from it.
        self.messages_in = 0
        self.messages_out = 0

    # -- public API ------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def session(self) -> Session:
        return self._session

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the handshake agreed on, if any."""
        return self._subprotocol

    @property
    def pending_output(self) -> int:
        """Bytes framed and waiting for `data_to_send` (pongs, answers, close frames).

        A transport whose writes are backed up stops reading once this passes its
        high-water mark: a peer that floods pings and never reads cannot make it grow.
        """
        return len(self._out)

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Feed bytes read from the socket (any split: one byte, a frame, a megabyte).

        ``data`` may be any bytes-like object; it is copied, not kept.

        Never raises because of what the peer sent: garbage, protocol violations,
        oversized messages and bad UTF-8 become a close and events. Raises
        `LocalProtocolError` if called before `start` or after CLOSED.
        An empty ``data`` does nothing (EOF is `receive_eof`).
        """
        proto = self._proto
        if proto is None or self._state is _CLOSED:
            self._receive_outside_frames(data, now)
            return
        pending = self._pending
        idle = False  # whether the fast path may read this data (see _read_plain_texts)
        if (type(data) is bytes or type(data) is bytearray) and self._client:
            idle = self._state is _OPEN and _frames_idle(proto)
            if not idle and self._state is _OPEN:
                # A read ended inside a frame wsproto was reading (after a ping, say):
                # it finishes that frame alone, and the rest goes the fast way again.
                # Otherwise wsproto would keep every read until one ended on a boundary.
                rest = _frame_rest(proto)
                if rest is not None and rest < len(data):
                    proto.receive_bytes(data[:rest])  # type: ignore[arg-type]  # see below
                    self._read_frames(proto, now)
                    data = data[rest:]
                    idle = self._state is _OPEN and _frames_idle(proto)
        if idle and not self._partial:
            data = cast("bytes | bytearray", data)  # idle is only set for these
            joined = b"".join((*pending, data)) if pending else data
            done = self._read_plain_texts(proto, joined, now)
            if done == len(joined) or self._state is not _OPEN:
                self._pending = ()
                return
            if done < 0:  # the start of a plain text frame: keep it for the next call
                start = ~done
                if len(joined) - start <= _MAX_PENDING:
                    self._pending = (
                        (*pending, bytes(data))
                        if pending and not start
                        else (bytes(joined[start:]),)
                    )
                    return
                done = start  # too big to re-join at every read: wsproto reads it on
            if done or not pending:
                self._pending = ()
                data = joined[done:]
                pending = ()
        if pending:
            # wsproto takes over inside the frame we kept: it gets the kept reads one
            # by one, as it would have, so its partial frames and errors are the same.
            self._pending = ()
            for piece in pending:
                proto.receive_bytes(piece)
                self._read_frames(proto, now)
        try:
            proto.receive_bytes(data)  # type: ignore[arg-type]  # it appends to a bytearray
        except TypeError:
            raise LocalProtocolError("receive_data() takes bytes") from None
        # The session's answers were framed message by message (see _read_frames);
        # what the application queues between calls is taken by data_to_send.
        self._read_frames(proto, now)

    def receive_eof(self, now: float) -> None:
        """The peer closed its side of the socket. Idempotent; a no-op once CLOSED."""
        state = self._state
        if state is _CLOSED:
            return
        if not self._started:
            raise LocalProtocolError("receive_eof() called before start()")
        if state is _CONNECTING:
            self._eof_in_handshake(now)
        elif state is _CLOSING:
            # The peer hung up instead of answering our close frame: it heard it.
            self._finish(self._close_code, self._close_reason, True, now)
        else:
            self._finish(1006, "connection lost (EOF without a close frame)", False, now)

    def events(self) -> list[Event]:
        """Drain the events produced since the last call, oldest first.

        They include the session's `take_events()`, when it has one: what it decided
        during the application's own calls, with no message or timer behind it.
        """
        events = self._events
        take = self._take_events
        if take is not None:
            local = take()
            if local:
                events.extend(local)
        if not events:
            return []
        self._events = []
        return events

    def data_to_send(self) -> bytes:
        """Drain the bytes to write to the socket.

        While OPEN this first frames whatever the session queued since the last
        call (`session.messages_to_send()`), so messages the application caused by
        calling the session directly go out here. Messages a session queues while
        the connection is not OPEN stay in the session.
        """
        if self._state is _OPEN:
            self._flush_session()
        out = self._out
        if not out:
            return b""
        data = bytes(out)
        out.clear()
        return data

    def next_deadline(self) -> float | None:
        """When to call `handle_timer`: the earliest of the session's timers and ours.

        Asks the session every time (the application may have started a request
        since). None when no timer runs, and always None once CLOSED.
        """
        if self._state is _CLOSED:
            return None
        theirs = self._session.next_deadline()
        ours = self._own_deadline
        if theirs is None:
            return ours
        if ours is None or theirs < ours:
            return theirs
        return ours

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``: the session's, then ours. Early calls are
        harmless; a no-op once CLOSED."""
        if self._state is _CLOSED:
            return
        result = self._session.handle_timer(now)
        if result:
            self._take(result, now)
        due = self._own_deadline
        if due is not None and now >= due and self._state is not _CLOSED:
            self._fire(now)
        if self._state is _OPEN:
            self._flush_session()

    def ping(self, now: float) -> None:
        """Send a keepalive ping now, unless one is out: its pong sets `latency`."""
        if self._state is _OPEN and self._pong_due is None:
            self._ping_at = now
            self._fire(now)

    def close(self, code: int = 1000, reason: str = "", *, now: float) -> None:
        """Start the close handshake: send a close frame, wait for the peer's up to
        ``close_timeout`` (then `ConnectionClosed(1006)`).

        During the opening handshake there is nothing to close politely: the
        connection ends at once (1006). A no-op when already CLOSING or CLOSED.
        ``code`` must be one an endpoint may send (1000-1003, 1007-1014,
        3000-4999) and ``reason`` at most 123 bytes of UTF-8.
        """
        if isinstance(code, bool) or not isinstance(code, int) or not _valid_close_code(code):
            raise LocalProtocolError(
                "close code must be 1000-1003, 1007-1014 or 3000-4999 (1005, 1006 and "
                "1015 are never sent)"
            )
        if not isinstance(reason, str):
            raise LocalProtocolError("close reason must be a str")
        size = _encoded_size(reason)
        if size is None:
            raise LocalProtocolError("close reason must be valid text (it has a lone surrogate)")
        if size > _MAX_CLOSE_REASON:
            raise LocalProtocolError(f"close reason must be at most {_MAX_CLOSE_REASON} bytes")
        state = self._state
        if state is _OPEN:
            self._start_close(code, reason, now)
        elif state is _CONNECTING:
            self._finish(1006, "closed during the opening handshake", True, now)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._describe()} state={self._state.name}>"

    def _describe(self) -> str:
        raise NotImplementedError

    # -- opening handshake hooks (per side) ------------------------------------------

    def _receive_handshake(self, data: bytes, now: float) -> None:
        raise NotImplementedError

    def _eof_in_handshake(self, now: float) -> None:
        raise NotImplementedError

    def _receive_outside_frames(self, data: bytes | bytearray | memoryview, now: float) -> None:
        if self._state is _CLOSED:
            raise LocalProtocolError("receive_data() called after the connection was CLOSED")
        if not self._started:
            raise LocalProtocolError("receive_data() called before start()")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise LocalProtocolError("receive_data() takes bytes")
        if data:
            self._receive_handshake(bytes(data), now)

    def _check_startable(self) -> None:
        if self._started:
            raise LocalProtocolError("start() called twice")
        if self._state is not _CONNECTING:
            raise LocalProtocolError("start() called after the connection was closed")

    def _arm_handshake_timer(self, now: float) -> None:
        self._check_startable()
        self._started = True
        self._handshake_due = self._own_deadline = now + self._handshake_timeout

    def _open(self, subprotocol: str | None, trailing: bytes, now: float) -> None:
        """The handshake succeeded: frames from now on (``trailing`` came with it)."""
        self._proto = _FrameProtocol(self._client, self._max_message_size, self._limit_exceeded)
        self._state = _OPEN
        self._subprotocol = subprotocol
        self._handshake_due = None
        interval = self._keepalive_interval
        self._ping_at = self._own_deadline = None if interval is None else now + interval
        self._events.append(Connected(subprotocol))
        result = self._session.connection_made(now)
        if result:
            self._take(result, now)
        if self._state is _OPEN:
            self._flush_session()  # what a fresh connection sends goes first
        if trailing and self._state is not _CLOSED:
            # As any later read: a server that streams from the first byte on would
            # otherwise leave wsproto holding a cut frame, and the plain text path
            # would wait for a read that happens to end on a frame boundary.
            self.receive_data(trailing, now)

    # -- frames ----------------------------------------------------------------------

    def _read_frames(self, proto: FrameProtocol, now: float) -> None:
        # The hot path: a whole text message in one frame goes straight to the
        # session, with no copy, join or timer work. wsproto's frame codec yields
        # continuation frames under their message's opcode, already UTF-8 decoded
        # for text, and raises ParseFailed (with the close code) on a violation.
        receive = self._session.receive_message
        to_send = self._session.messages_to_send
        opened = _OPEN
        text_opcode = Opcode.TEXT
        self._now = now
        try:
            for frame in proto.received_frames():
                opcode = frame.opcode
                if opcode is text_opcode:
                    if frame.message_finished and not self._partial:
                        # Within the limit: _FrameDecoder checked its header.
                        text: str = frame.payload  # type: ignore[assignment]
                        result = receive(text, now)
                        self.messages_in += 1
                        if result:
                            self._events += result  # _take, inlined for the hot path
                            for item in result:
                                if isinstance(item, LivenessLost):
                                    self._drop(f"liveness lost: {type(item).__name__}", now)
                                    return
                        # Frame the session's answers now, not at the end of the call:
                        # the output then does not depend on how the input was chunked,
                        # and an answer is not lost to a close frame that came with it.
                        if self._state is opened:
                            queued = to_send()
                            if queued:
                                self._send_texts(proto, queued)
                    else:
                        self._fragment(frame.payload, frame.message_finished, now)  # type: ignore[arg-type]
                        if self._state is _CLOSED:
                            return
                elif opcode is Opcode.PING:
                    # Answered while CLOSING too: RFC 6455 5.5.2 excuses only an endpoint
                    # that has received a close frame, and then we read no further.
                    self._out += proto.pong(frame.payload)  # type: ignore[arg-type]
                elif opcode is Opcode.PONG:
                    if self._pong_due is not None and frame.payload == self._ping_payload:
                        self._pong_due = None
                        self.latency = now - self._ping_sent
                        interval = self._keepalive_interval
                        self._ping_at = self._own_deadline = (
                            None if interval is None else self._ping_sent + interval
                        )
                elif opcode is Opcode.BINARY:
                    # Both protocols speak text, but a session takes bytes too: binary
                    # messages get the same reassembly and limit.
                    self._fragment(frame.payload, frame.message_finished, now)  # type: ignore[arg-type]
                    if self._state is _CLOSED:
                        return
                elif opcode is Opcode.CLOSE:
                    code, reason = cast("tuple[int, str]", frame.payload)
                    self._close_frame(proto, int(code), reason, now)
                    return
        except ParseFailed as failure:
            # A protocol violation (1002) or invalid UTF-8 (1007): the codec cannot
            # go on, so no answer to our close frame could be read. Fail at once.
            # The size limit is not among them: see _limit_exceeded.
            # wsproto's UTF-8 text gives a position within whatever bytes it was
            # decoding, which depends on how the input was chunked: say no position.
            code = int(failure.code)
            self._fail(proto, code, _INVALID_UTF8 if code == 1007 else str(failure), now)

    def _read_plain_texts(self, proto: FrameProtocol, data: bytes | bytearray, now: float) -> int:
        """The common case without wsproto: whole, unmasked text frames read in place.

        A server sends Mews and PlaceOS messages as one text frame each, and wsproto's
        parser costs more per frame than decoding the message does. While wsproto holds
        nothing (no buffered bytes, no message in progress), each frame that is final,
        text, unmasked, without RSV bits, with a minimally encoded length under the
        limit and valid UTF-8 goes straight to the session, exactly as `_read_frames`
        would hand it over. The first frame that is anything else stops it; the
        caller gives wsproto the rest, so every rule and error is still wsproto's.
        Returns how many bytes were consumed, or ``~consumed`` when what is left is
        the start of such a frame (TCP reads end mid-frame): the caller keeps it in
        ``_pending`` for the next call, or hands it to wsproto first if wsproto reads
        next.
        """
        receive = self._session.receive_message
        to_send = self._session.messages_to_send
        limit = self._max_message_size
        end = len(data)
        pos = 0
        while True:
            if end - pos < 2:
                return ~pos if end > pos and data[pos] == 0x81 else pos
            size = data[pos + 1]  # the mask bit must be clear: a server's frame
            if data[pos] != 0x81:  # FIN, no RSV bits, TEXT
                break
            if size < 126:
                start = pos + 2
            elif size == 126:
                if end - pos < 4:
                    return ~pos
                size = data[pos + 2] << 8 | data[pos + 3]
                if size < 126:
                    break  # not minimally encoded: wsproto refuses it
                start = pos + 4
            else:
                break  # a 64-bit length or a masked frame
            if size > limit:
                break
            stop = start + size
            if stop > end:
                if start < end:
                    # Kept for later only if wsproto, reading it now, would not fail.
                    try:
                        _utf8_decode(data[start:end], "strict", False)
                    except UnicodeDecodeError:
                        break
                return ~pos
            try:
                text = data[start:stop].decode("utf-8")
            except UnicodeDecodeError:
                break  # wsproto fails the connection with its own reason
            pos = stop
            result = receive(text, now)
            self.messages_in += 1
            if result:
                self._events += result
                for item in result:
                    if isinstance(item, LivenessLost):
                        self._drop(f"liveness lost: {type(item).__name__}", now)
                        return pos
            if self._state is _OPEN:
                queued = to_send()
                if queued:
                    self._send_texts(proto, queued)
        return pos

    def _fragment(self, data: str | bytes, finished: bool, now: float) -> None:
        """A piece of a message: collect it, hand over the whole at the end (its size
        was checked at each frame's header, see `_FrameDecoder`)."""
        if self._discarding:
            if finished:
                self._partial = self._discarding = False
            return
        parts = self._parts
        parts.append(data)
        if not finished:
            self._partial = True
            return
        self._partial = False
        self._parts = []
        message: str | bytes
        if isinstance(data, str):
            message = data if len(parts) == 1 else "".join(parts)  # type: ignore[arg-type]
        else:
            message = b"".join(parts)  # type: ignore[arg-type]  # bytes, even for one part
        result = self._session.receive_message(message, now)
        self.messages_in += 1
        if result:
            self._take(result, now)
        if self._state is _OPEN:
            self._flush_session()

    def _limit_exceeded(self) -> None:
        """A frame's header takes its message past the limit (`_FrameDecoder` calls
        this before reading its payload): close 1009 unless closing already, and throw
        the message away up to its last frame, still reading for the peer's close."""
        self._parts = []
        self._partial = self._discarding = True
        if self._state is _OPEN:
            self._start_close(1009, "message too big", self._now)

    def _close_frame(self, proto: FrameProtocol, code: int, reason: str, now: float) -> None:
        """The peer's close frame: the answer to ours, or its own close to answer."""
        if self._state is _OPEN:
            # The peer closes first: answer with the same code (an empty close
            # frame when it sent none: 1005 never goes on the wire), and we are done.
            self._out += proto.close(code, reason) if code != 1005 else proto.close()
            self._finish(code, reason, False, now)
        else:
            self._finish(self._close_code, self._close_reason, True, now)

    def _fail(self, proto: FrameProtocol, code: int, reason: str, now: float) -> None:
        """The peer broke the protocol: say why in a close frame, and end now.

        When our close frame is out already (CLOSING) no second one is sent, and
        `ConnectionClosed` carries the code that went on the wire: ours.
        """
        if self._state is _OPEN:
            self._flush_session()
            self._out += proto.close(code, reason)
        else:
            code = self._close_code
        self._finish(code, reason, True, now)

    def _start_close(self, code: int, reason: str, now: float) -> None:
        proto = self._proto
        assert proto is not None
        self._flush_session()  # what the session queued before the close goes first
        self._out += proto.close(code, reason)
        self._state = _CLOSING
        self._close_code = code
        self._close_reason = reason
        self._ping_at = self._pong_due = None
        self._close_due = self._own_deadline = now + self._close_timeout

    def _flush_session(self) -> None:
        messages = self._session.messages_to_send()
        if messages:
            proto = self._proto
            assert proto is not None
            self._send_texts(proto, messages)

    def _send_texts(self, proto: FrameProtocol, messages: list[str]) -> None:
        out = self._out
        self.messages_out += len(messages)
        for text in messages:
            if not isinstance(text, str):
                raise LocalProtocolError("session.messages_to_send() must return str messages")
            try:
                out += proto.send_data(text)
            except UnicodeEncodeError:
                pass  # raised below, unchained: the error would carry the whole message
            else:
                continue
            raise LocalProtocolError("a session message is not valid text (lone surrogate)")

    # -- events, timers, ending ------------------------------------------------------

    def _take(self, result: list[Event], now: float) -> None:
        """Deliver a session's events; a `LivenessLost` among them drops the connection."""
        self._events += result
        for event in result:
            if isinstance(event, LivenessLost):
                self._drop(f"liveness lost: {type(event).__name__}", now)
                return

    def _fire(self, now: float) -> None:
        state = self._state
        if state is _OPEN:
            pong_due = self._pong_due
            if pong_due is not None:
                if now >= pong_due:
                    self._events.append(KeepaliveTimeout(self._keepalive_timeout))
                    self._drop("keepalive ping timeout", now)
                return
            ping_at = self._ping_at
            if ping_at is not None and now >= ping_at:
                proto = self._proto
                assert proto is not None
                self._pings = (self._pings + 1) & 0xFFFFFFFF
                self._ping_payload = self._pings.to_bytes(4, "big")
                self._out += proto.ping(self._ping_payload)
                self._ping_sent = now
                self._ping_at = None
                self._pong_due = self._own_deadline = now + self._keepalive_timeout
        elif state is _CLOSING:
            assert self._close_due is not None
            if now >= self._close_due:
                self._finish(1006, "closing handshake timed out", True, now)
        elif state is _CONNECTING:
            assert self._handshake_due is not None
            if now >= self._handshake_due:
                self._finish(1006, "opening handshake timed out", True, now)

    def _drop(self, reason: str, now: float) -> None:
        """The peer is unresponsive: say so in a close frame, but do not wait for it."""
        proto = self._proto
        if proto is not None and self._state is _OPEN:
            self._out += proto.close(1011, reason)
        self._finish(1006, reason, True, now)

    def _finish(self, code: int, reason: str, local: bool, now: float) -> None:
        """Every ending goes through here, once."""
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        self._handshake_due = self._ping_at = self._pong_due = self._close_due = None
        self._own_deadline = None
        self._parts = []
        self._partial = self._discarding = False
        result = self._session.connection_lost(now)
        if result:
            self._events += result
        self._events.append(ConnectionClosed(code=int(code), reason=reason, local=local))


class ClientConnection(_Connection):
    """The client side: opens the handshake to ``url`` with the session's auth.

    ``url`` is ``ws://`` or ``wss://`` (see `parse_ws_url`; the transport opens the
    socket to `url`'s host and port, with TLS when ``url.secure``). At `start`
    the session's `handshake()` supplies the auth: its headers are added to the
    request and its query parameters appended to the target, percent-encoded.
    ``extra_headers`` are added too (the handshake's own headers cannot be set).

    A refusal (401, 403, 404...) gives `HandshakeRejected` (status, headers, body
    up to ``max_handshake_size`` bytes) then `ConnectionClosed`; an accepted one
    `Connected`, then whatever `session.connection_made` returns.
    """

    __slots__ = ("_extra_headers", "_h11", "_key", "_rejected", "_rejection_body", "_url")

    _client = True

    def __init__(
        self,
        session: ClientSession,
        url: str,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        keepalive_interval: float | None = 20.0,
        keepalive_timeout: float = 20.0,
        close_timeout: float = 10.0,
        handshake_timeout: float = 10.0,
        max_handshake_size: int = DEFAULT_MAX_HANDSHAKE_SIZE,
        extra_headers: Iterable[tuple[str, str]] = (),
        subprotocols: Sequence[str] = (),
    ) -> None:
        super().__init__(
            session,
            max_message_size=max_message_size,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            close_timeout=close_timeout,
            handshake_timeout=handshake_timeout,
            max_handshake_size=max_handshake_size,
            subprotocols=subprotocols,
        )
        self._url = parse_ws_url(url)
        self._extra_headers = _handshake.encode_headers(extra_headers, "extra_headers")
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_handshake_size)
        self._key = b""
        self._rejected: tuple[int, tuple[tuple[str, str], ...]] | None = None
        self._rejection_body = bytearray()

    @property
    def session(self) -> ClientSession:
        return cast("ClientSession", self._session)

    @property
    def url(self) -> WebSocketURL:
        """Where to connect: ``url.host``, ``url.port``, ``url.secure``."""
        return self._url

    def start(self, now: float) -> None:
        """Queue the upgrade request (see `data_to_send`) and arm the handshake timer.

        Calls `session.handshake()` for the auth. Raises `LocalProtocolError` if
        the auth cannot go in an HTTP request (the message names the header,
        never its value).
        """
        self._check_startable()
        auth = self.session.handshake()
        key = _handshake.new_key()
        request = _handshake.client_request(
            self._url, key, self._subprotocols, self._extra_headers, auth
        )
        h = self._h11
        try:
            data = (h.send(request) or b"") + (h.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            data = None  # raised below, unchained: h11's text may quote the target
        if data is None:
            raise LocalProtocolError("the upgrade request could not be written")
        self._arm_handshake_timer(now)
        self._key = key
        self._out += data

    def _describe(self) -> str:
        url = self._url
        return f"{url.scheme}://{url.host_header}{url.path}"

    def _receive_handshake(self, data: bytes, now: float) -> None:
        h = self._h11
        h.receive_data(data)
        while self._state is _CONNECTING:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError:
                self._handshake_broken("invalid HTTP response to the opening handshake", now)
                return
            cls = event.__class__
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if cls is h11.InformationalResponse:
                assert isinstance(event, h11.InformationalResponse)
                if event.status_code == 101:
                    self._accepted(event, now)
                    return
                # Other 1xx (100 Continue...) carry nothing for us: keep reading.
            elif cls is h11.Response:
                assert isinstance(event, h11.Response)
                self._rejected = (event.status_code, _handshake.decode_headers(event.headers))
            elif cls is h11.Data:
                assert isinstance(event, h11.Data)
                body = self._rejection_body
                room = self._max_handshake_size - len(body)
                body += event.data[:room]
                if len(event.data) > room:
                    self._report_rejection(now)  # keep no more than the cap
                    return
            elif cls is h11.EndOfMessage:
                self._report_rejection(now)
                return
            else:  # h11.ConnectionClosed
                self._handshake_broken("connection closed during the opening handshake", now)
                return

    def _accepted(self, response: h11.InformationalResponse, now: float) -> None:
        try:
            subprotocol = _handshake.check_accept(response, self._key, self._subprotocols)
        except _handshake.HandshakeFailure as failure:
            reason = failure.reason
        else:
            trailing, _ = self._h11.trailing_data
            del self._h11  # done with HTTP: about 0.8 KiB less per idle connection
            self._open(subprotocol, bytes(trailing), now)
            return
        self._handshake_broken(f"invalid opening handshake response: {reason}", now)

    def _report_rejection(self, now: float) -> None:
        assert self._rejected is not None
        status, headers = self._rejected
        self._events.append(HandshakeRejected(status, headers, bytes(self._rejection_body)))
        self._finish(1006, f"opening handshake refused with HTTP {status}", False, now)

    def _handshake_broken(self, reason: str, now: float) -> None:
        if self._rejected is not None:
            self._report_rejection(now)  # a refusal cut short is still a refusal
        else:
            self._finish(1006, reason, True, now)

    def _eof_in_handshake(self, now: float) -> None:
        if self._rejected is not None:
            # A refusal whose body runs until the connection closes ends here.
            self._receive_handshake(b"", now)
            if self._state is _CLOSED:
                return
        self._finish(1006, "connection closed during the opening handshake", False, now)


class ServerConnection(_Connection):
    """The server side: checks the upgrade request, asks the session to authorize it.

    `session.authorize(target, headers)` sees the request target (path and query)
    and every request header (names lower-case, values as latin-1 str). A
    `Rejection` is answered as a plain HTTP response (status, body, content-type
    and content-length) and the connection ends without upgrading. A request that
    is not a valid WebSocket upgrade (or is not HTTP at all) gets a 4xx
    (400 mostly; 426 for an unsupported version, 431 for oversized headers) and
    ends the same way. ``subprotocols`` is the server's preference order.
    """

    __slots__ = ("_h11", "_request")

    _client = False

    def __init__(
        self,
        session: ServerSession,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        keepalive_interval: float | None = 20.0,
        keepalive_timeout: float = 20.0,
        close_timeout: float = 10.0,
        handshake_timeout: float = 10.0,
        max_handshake_size: int = DEFAULT_MAX_HANDSHAKE_SIZE,
        subprotocols: Sequence[str] = (),
    ) -> None:
        super().__init__(
            session,
            max_message_size=max_message_size,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            close_timeout=close_timeout,
            handshake_timeout=handshake_timeout,
            max_handshake_size=max_handshake_size,
            subprotocols=subprotocols,
        )
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_handshake_size)
        self._request: h11.Request | None = None

    @property
    def session(self) -> ServerSession:
        return cast("ServerSession", self._session)

    def start(self, now: float) -> None:
        """Arm the handshake timer: the client has ``handshake_timeout`` to upgrade."""
        self._arm_handshake_timer(now)

    def _describe(self) -> str:
        return "server"

    def _receive_handshake(self, data: bytes, now: float) -> None:
        h = self._h11
        h.receive_data(data)
        while self._state is _CONNECTING:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                self._refuse(status, "invalid HTTP request", b"bad request\n", [], now)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            cls = event.__class__
            if cls is h11.Request:
                assert isinstance(event, h11.Request)
                self._request = event
            elif cls is h11.Data:
                assert isinstance(event, h11.Data)
                if event.data:
                    self._refuse(400, "upgrade request with a body", b"bad request\n", [], now)
                    return
            elif cls is h11.EndOfMessage:
                self._answer_request(now)
                return
            else:  # h11.ConnectionClosed: only after receive_eof, which does not get here
                return

    def _answer_request(self, now: float) -> None:
        request = self._request
        assert request is not None
        self._request = None
        try:
            key, offered = _handshake.check_upgrade_request(request)
            target = request.target.decode("ascii")
        except _handshake.HandshakeFailure as failure:
            body = failure.reason.encode("ascii") + b"\n"
            self._refuse(failure.status, failure.reason, body, failure.headers, now)
            return
        except UnicodeDecodeError:
            self._refuse(400, "non-ASCII request target", b"bad request\n", [], now)
            return
        headers = _handshake.decode_headers(request.headers)
        rejection = self.session.authorize(target, headers)
        if rejection is not None:
            status, body, extra = _handshake.encode_rejection(rejection)
            self._refuse(status, "refused by the session", body, extra, now)
            return
        subprotocol = next((s for s in self._subprotocols if s in offered), None)
        h = self._h11
        self._out += h.send(_handshake.accept_response(key, subprotocol)) or b""
        trailing, _ = h.trailing_data
        del self._h11  # done with HTTP: about 0.8 KiB less per idle connection
        self._open(subprotocol, bytes(trailing), now)

    def _refuse(
        self,
        status: int,
        why: str,
        body: bytes,
        headers: _handshake.Headers,
        now: float,
    ) -> None:
        h = self._h11
        response = _handshake.refusal_response(status, body, headers)
        try:
            data = h.send(response) or b""
            if body:
                data += h.send(h11.Data(data=body)) or b""
            data += h.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            data = b""  # h11 cannot answer in this state: just hang up
        self._out += data
        self._finish(1006, f"opening handshake refused with HTTP {status}: {why}", True, now)

    def _eof_in_handshake(self, now: float) -> None:
        self._finish(1006, "connection closed during the opening handshake", False, now)
