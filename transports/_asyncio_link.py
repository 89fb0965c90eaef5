"""The asyncio I/O loop around one `protocore.connection` connection, as a `Protocol`.

A `_Link` is the whole "read bytes, feed the core, write what it says, sleep until
the next deadline" loop of `protocore.connection`, written as asyncio protocol
callbacks instead of a task: `data_received` feeds the connection, the bytes it
answers go out in one `write`, its events go to the owner's callback, and one
`loop.call_at` timer tracks `next_deadline`. No task runs per connection and
nothing is created per message, which keeps the receive path short.

The timer is lazy: it is re-armed only when the deadline moves *earlier* than the
armed one. A timer that fires early (the deadline moved later since) is harmless,
since `handle_timer` ignores early calls; the timer is then armed at the new
deadline. So a deadline that moves forward with every message (the PlaceOS
heartbeat) costs no timer work per message.

Flow control: the owner may pause reading (a consumer that is behind), and so does
the transport when its write buffer is over its high-water mark (a peer that does
not read what we send stops being read too, so we stop producing answers for it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from protocore.connection import ClientConnection, ConnectionState, ServerConnection
from protocore.errors import ConnectionLost, HandshakeFailed
from protocore.events import Connected, ConnectionClosed, Event, HandshakeRejected

__all__ = ["Link"]

_CLOSED = ConnectionState.CLOSED

EventsCallback = Callable[[list[Event]], None]
ClosedCallback = Callable[["Link"], None]


class Link(asyncio.Protocol):
    """One socket driving one connection (client or server side).

    ``on_events`` receives every batch of events the connection produces, in order.
    ``on_closed`` is called once, when the connection reaches CLOSED after having
    opened (a failed opening handshake fails `opened` instead).

    Futures for the owner: `opened` (the handshake succeeded; fails with
    `HandshakeFailed` or `ConnectionLost` otherwise), `closed` (the connection is
    CLOSED; its result is the `ConnectionClosed` event) and `lost` (the socket is
    gone: asyncio called `connection_lost`).
    """

    __slots__ = (
        "_flush_handle",
        "_loop",
        "_on_closed",
        "_on_events",
        "_reading",
        "_rejection",
        "_timer",
        "_timer_at",
        "_want_read",
        "_write_ok",
        "close_event",
        "closed",
        "conn",
        "is_open",
        "lost",
        "opened",
        "transport",
    )

    def __init__(
        self,
        conn: ClientConnection | ServerConnection,
        loop: asyncio.AbstractEventLoop,
        on_events: EventsCallback,
        on_closed: ClosedCallback | None = None,
    ) -> None:
        self.conn = conn
        self._loop = loop
        self._on_events = on_events
        self._on_closed = on_closed
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[ConnectionClosed | None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.is_open = False
        self.close_event: ConnectionClosed | None = None
        self._rejection: HandshakeRejected | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._want_read = True  # the owner's wish (consumer backpressure)
        self._write_ok = True  # the transport's (write buffer below its high mark)
        self._reading = True

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conn.start(self._loop.time())
        self._pump()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn.state is _CLOSED:
            return  # a TLS transport still hands over what it reads while it shuts down
        conn.receive_data(data, self._loop.time())
        # _pump, inlined: this is the hot path.
        out = conn.data_to_send()
        if out:
            transport = self.transport
            assert transport is not None
            if not transport.is_closing():
                transport.write(out)
        events = conn.events()
        if events:
            if not self.is_open or conn.state is _CLOSED:
                self._inspect(events)
            self._on_events(events)
        if conn.state is _CLOSED:
            self._finish()
            return
        deadline = conn.next_deadline()
        if deadline is not None:
            armed = self._timer_at
            if armed is None or deadline < armed:
                self._arm(deadline)

    def eof_received(self) -> bool:
        self.conn.receive_eof(self._loop.time())
        self._pump()
        return False  # let the transport close itself (it is CLOSED now anyway)

    def connection_lost(self, exc: Exception | None) -> None:
        conn = self.conn
        if conn.state is not _CLOSED:
            conn.receive_eof(self._loop.time())  # a reset or abort: the same as EOF here
            self._pump()
        self._finish()
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self._write_ok = False
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_ok = True
        self._update_reading()

    # -- for the owner -------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the connection is CLOSED (the socket may still be closing)."""
        return self.closed.done()

    def flush_soon(self) -> None:
        """Send what the session queued outside a callback (an application call).

        Deferred to the next loop iteration, so many calls in a row go out in one
        write; also the PlaceOS server session's ``wakeup``.
        """
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def flush_now(self) -> None:
        """Send what the session queued, at once."""
        self._flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake (a no-op once closing)."""
        if self.transport is None or self.conn.state is _CLOSED:
            return
        self.conn.close(code, reason, now=self._loop.time())
        self._pump()

    def abort(self) -> None:
        """Drop the socket now, without a close frame."""
        transport = self.transport
        if transport is not None:
            transport.abort()
        else:
            self._finish()
            if not self.lost.done():
                self.lost.set_result(None)

    def pause_reading(self, paused: bool) -> None:
        """The owner's consumer is behind (True) or caught up (False)."""
        self._want_read = not paused
        self._update_reading()

    # -- internals -----------------------------------------------------------------------

    def _update_reading(self) -> None:
        reading = self._want_read and self._write_ok
        transport = self.transport
        if reading is self._reading or transport is None or transport.is_closing():
            return
        self._reading = reading
        if reading:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def _flush(self) -> None:
        self._flush_handle = None
        if self.transport is not None and self.conn.state is not _CLOSED:
            self._pump()

    def _pump(self) -> None:
        """Write what the connection says, deliver its events, then re-arm the timer."""
        conn = self.conn
        out = conn.data_to_send()
        transport = self.transport
        if out and transport is not None and not transport.is_closing():
            transport.write(out)
        events = conn.events()
        if events:
            if not self.is_open or conn.state is _CLOSED:
                self._inspect(events)
            self._on_events(events)
        if conn.state is _CLOSED:
            self._finish()
            return
        deadline = conn.next_deadline()
        if deadline is not None:
            armed = self._timer_at
            if armed is None or deadline < armed:
                self._arm(deadline)

    def _inspect(self, events: list[Event]) -> None:
        """Watch for the connection's own milestones (only off the hot path)."""
        for event in events:
            cls = event.__class__
            if cls is Connected:
                self.is_open = True
                if not self.opened.done():
                    self.opened.set_result(None)
            elif cls is HandshakeRejected:
                assert isinstance(event, HandshakeRejected)
                self._rejection = event
            elif cls is ConnectionClosed:
                assert isinstance(event, ConnectionClosed)
                self.close_event = event

    def _arm(self, deadline: float) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        due = self._timer_at
        self._timer = self._timer_at = None
        conn = self.conn
        if conn.state is _CLOSED:
            return
        now = self._loop.time()
        # asyncio may run a timer a clock tick early: it is due all the same.
        if due is not None and now < due:
            now = due
        conn.handle_timer(now)
        self._pump()

    def _finish(self) -> None:
        """The connection is CLOSED: close the socket, settle the futures, tell the owner."""
        if self.closed.done():
            return
        timer = self._timer
        if timer is not None:
            timer.cancel()
        self._timer = self._timer_at = None
        handle = self._flush_handle
        if handle is not None:
            handle.cancel()
            self._flush_handle = None
        # Settled before the transport closes: closing a TLS transport reads what is
        # pending, synchronously, which calls back into this protocol.
        self.closed.set_result(self.close_event)
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()  # flushes the last bytes (a close frame) first
        if not self.opened.done():
            self.opened.set_exception(self._failure())
            # Whoever opens the link reads this; mark it read so an abandoned
            # attempt (a timed-out connect) does not log "never retrieved".
            self.opened.exception()
        elif self.is_open and self._on_closed is not None:
            self._on_closed(self)

    def _failure(self) -> Exception:
        """Why the opening handshake did not succeed."""
        event = self.close_event
        reason = event.reason if event is not None else "connection closed"
        rejection = self._rejection
        if rejection is not None:
            return HandshakeFailed(reason, rejection.status_code, rejection.body)
        if self.transport is None:
            return ConnectionLost(reason)
        return HandshakeFailed(reason)
