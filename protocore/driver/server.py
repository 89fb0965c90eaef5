"""The server driver: every connection a fake server holds, and what its handle does.

A test server accepts sockets, gives each a `Peer` (a `ServerConnection` around a
fresh session), and lets the test push to all of them at once (`publish`, or the
PlaceOS engine's ``set_status`` waking the sessions it notified), drop them all
abruptly (`drop`), or say goodbye (`close_all`). None of that is I/O: an adapter
only moves each peer's bytes and calls ``peer.on_output`` when asked to flush.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypedDict

from protocore.connection import ConnectionState, ServerConnection
from protocore.events import BadMessage, ConnectionClosed, Event
from protocore.mews.codec import encode_envelope
from protocore.mews.models import Envelope, MewsEvent
from protocore.mews.session import MewsServer
from protocore.placeos.server import HandlerFailed
from protocore.session import ServerSession

__all__ = ["ConnectionOptions", "Peer", "ServerDriver"]

logger = logging.getLogger("protocore.transports")

_OPEN = ConnectionState.OPEN
_CLOSED = ConnectionState.CLOSED
_GOODBYE = "server shutting down"


class ConnectionOptions(TypedDict):
    """What every `serve_*` passes to each `ServerConnection`."""

    keepalive_interval: float | None
    keepalive_timeout: float
    handshake_timeout: float
    close_timeout: float
    max_message_size: int


def _ignore() -> None:
    pass


class Peer:
    """One accepted client: a `ServerConnection` and its session."""

    __slots__ = ("_server", "conn", "on_abort", "on_output", "on_resume", "session")

    def __init__(
        self, server: ServerDriver, session: ServerSession, conn: ServerConnection
    ) -> None:
        self._server = server
        self.session = session
        self.conn = conn
        #: Set by the adapter: write what the connection has to send (from any call).
        self.on_output: Callable[[], None] = _ignore
        #: Set by the adapter: drop the socket now, without a close frame.
        self.on_abort: Callable[[], None] = _ignore
        self.on_resume: Callable[[], None] | None = None  # never needed: a server always reads
        if hasattr(session, "wakeup"):
            session.wakeup = self._wakeup  # PlaceOS: notifies queued by the engine

    def _wakeup(self) -> None:
        self.on_output()

    @property
    def is_open(self) -> bool:
        return self.conn.state is _OPEN

    @property
    def wants_read(self) -> bool:
        return True

    @property
    def pending_output(self) -> int:
        return self.conn.pending_output

    def receive_data(self, data: bytes | bytearray, now: float) -> None:
        conn = self.conn
        if conn.state is _CLOSED:
            return  # read after the end (a TLS close, a racing abort): nothing to do
        conn.receive_data(data, now)
        events = conn.events()
        if events:
            _log(events)
        if self._server.closing and conn.state is _OPEN:
            # Its handshake finished after `close_all`: the goodbye is owed to it too.
            self.close(1001, _GOODBYE, now)

    def receive_eof(self, now: float) -> None:
        conn = self.conn
        if conn.state is not _CLOSED:
            conn.receive_eof(now)
            _log(conn.events())

    def data_to_send(self) -> bytes:
        return self.conn.data_to_send()

    def next_deadline(self) -> float | None:
        return self.conn.next_deadline()

    def handle_timer(self, now: float) -> None:
        conn = self.conn
        conn.handle_timer(now)
        _log(conn.events())

    def close(self, code: int, reason: str, now: float) -> None:
        conn = self.conn
        if conn.state is _OPEN:
            conn.close(code, reason, now=now)
            _log(conn.events())
            self.on_output()


def _log(events: list[Event]) -> None:
    for event in events:
        if isinstance(event, HandlerFailed):
            logger.warning("request handler failed: %r", event.error)
        elif isinstance(event, BadMessage):
            logger.debug("bad message from a client: %s", event.error)
        elif isinstance(event, ConnectionClosed):
            if event.reason.startswith("opening handshake refused"):
                logger.info("refused a client: %s", event.reason)
            else:
                logger.debug("client connection closed (%d %s)", event.code, event.reason)


class ServerDriver:
    """The peers of one server, in accept order; see the module doc."""

    def __init__(
        self, kind: str, make_session: Callable[[], ServerSession], options: ConnectionOptions
    ) -> None:
        # Bad settings (the session's or the connection's) raise here, not per client.
        ServerConnection(make_session(), **options)
        self.kind = kind
        self.options = options
        self.close_timeout = options["close_timeout"]
        self._make_session = make_session
        self.peers: dict[Peer, None] = {}
        #: Set by `close_all`: a client that gets in after it is told goodbye at once.
        self.closing = False

    def accept(self, now: float) -> Peer:
        """A new client socket: its peer (the adapter pumps it, then calls `forget`)."""
        session = self._make_session()
        conn = ServerConnection(session, **self.options)
        peer = Peer(self, session, conn)
        self.peers[peer] = None
        conn.start(now)
        return peer

    def forget(self, peer: Peer) -> None:
        self.peers.pop(peer, None)

    @property
    def connections(self) -> int:
        """How many connections are open right now (past the handshake)."""
        return sum(1 for peer in self.peers if peer.is_open)

    def drop(self, now: float) -> int:
        """End every connection at once, no close frame, its socket aborted (fault
        tests); how many. `connections` is 0 from here on, on every transport."""
        peers = list(self.peers)
        for peer in peers:
            peer.receive_eof(now)
            peer.on_abort()
        return len(peers)

    def close_all(self, now: float) -> list[Peer]:
        """Say goodbye (1001) to every client; the adapter waits for them to end.

        The adapter stops accepting first; a client already accepted, or still in
        its handshake, gets the same goodbye once it is open.
        """
        self.closing = True
        peers = list(self.peers)
        for peer in peers:
            peer.close(1001, _GOODBYE, now)
        return peers

    def publish(self, events: Envelope | Iterable[MewsEvent]) -> int:
        """Queue one message for every open Mews client; how many it reached.

        Raises `EncodeError` for events that cannot go on the wire, with or without
        clients, and before any client got part of it.
        """
        if isinstance(events, Envelope):
            envelope = events
        elif isinstance(events, Iterable) and not isinstance(events, str | bytes):
            envelope = Envelope(tuple(events))
        else:
            raise TypeError(
                "publish takes an Envelope or an iterable of Mews events, "
                f"not {type(events).__name__}"
            )
        message = encode_envelope(envelope).decode("utf-8")
        reached = 0
        for peer in self.peers:
            session = peer.session
            if peer.is_open and isinstance(session, MewsServer):
                session.push_encoded(message)
                peer.on_output()
                reached += 1
        return reached
