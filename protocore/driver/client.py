"""The client driver: one logical connection over many sockets, as a state machine.

A `ClientConnection` lives for one socket. An application wants more: a first
connection whose failure it hears about, reconnects with backoff when a working
connection drops, refusals that are final, a polite close. That is decision-making,
not I/O, so it lives here once and every adapter polls it, the way aioquic's
asyncio layer polls ``QuicConnection``::

    while driver.phase is not Phase.CLOSED:
        if driver.phase is Phase.DIAL:
            conn = driver.dial(now())               # then open a socket to conn.url
            ... on failure: driver.dial_failed(error, now()); continue
            driver.socket_ready(now())
            pump bytes: driver.receive_data / receive_eof / data_to_send,
                        handle_timer at next_deadline, until conn.state is CLOSED
        else:
            sleep until driver.next_deadline() (or a wake); driver.handle_timer(now())

Everything a connection says goes through `_route` of the protocol's driver
(`PlaceOSDriver`, `MewsDriver`), which settles `Call`s and fills `Feed`s; the adapter
only wakes whoever waits on them. Log lines are written here, so every transport
logs the same words under the logger ``protocore.transports``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TypedDict

import attrs

from protocore.backoff import Backoff
from protocore.connection import ClientConnection, ConnectionState, parse_ws_url
from protocore.errors import ConnectionLost, HandshakeFailed, LocalProtocolError, ProxyError
from protocore.events import Connected, ConnectionClosed, Event, HandshakeRejected, LivenessLost
from protocore.proxy import Proxy
from protocore.session import ClientSession
from protocore.tunnel import Tunnel

from .stats import Stats
from .waiters import Call
from .wording import connect_failure, handshake_failure, timeout_failure

__all__ = ["ClientDriver", "ClientState", "DriverOptions", "Phase", "reconnect_policy"]

logger = logging.getLogger("protocore.transports")

_CLOSED = ConnectionState.CLOSED


class Phase(enum.Enum):
    """Where a client is between its sockets."""

    DIAL = "dial"  # wants a socket now: the adapter calls `dial`
    CONNECTING = "connecting"  # a socket is opening, or its upgrade is under way
    OPEN = "open"
    RECONNECTING = "reconnecting"  # waiting out the backoff delay (`next_deadline`)
    CLOSING = "closing"  # our close frame is out; waiting for the answer
    CLOSED = "closed"  # for good: `error` says why (None: closed by the application)


class DriverOptions(TypedDict, total=False):
    """What every client driver takes besides its session and URL (see `ClientDriver`)."""

    credential: str
    reconnect: bool | Backoff
    connect_timeout: float
    close_timeout: float
    keepalive_interval: float | None
    keepalive_timeout: float
    max_message_size: int
    proxy: Proxy | None


_PUBLIC_PHASE = {
    "dial": "connecting",
    "connecting": "connecting",
    "open": "open",
    "reconnecting": "reconnecting",
    "closing": "closing",
    "closed": "closed",
}


@attrs.frozen
class ClientState:
    """Where a client is, for an application to show ("reconnecting in 3.2 s").

    ``phase``: ``connecting``, ``open``, ``reconnecting``, ``closing`` or ``closed``;
    ``attempt``: reconnection attempts since the last open connection;
    ``retry_at``: when the next attempt starts (the runtime's clock) while
    reconnecting; ``delay``: how long that wait was when it began.
    """

    phase: str
    attempt: int = 0
    delay: float | None = None
    retry_at: float | None = None


def _final(failure: BaseException) -> bool:
    """A refusal the same credentials would meet again: not worth a retry."""
    if isinstance(failure, HandshakeFailed):
        return failure.status_code is not None
    return isinstance(failure, ProxyError) and failure.status_code == 407


def reconnect_policy(reconnect: bool | Backoff) -> Backoff | None:
    """``True``: the default backoff; ``False``: never reconnect; or the caller's own."""
    if reconnect is True:
        return Backoff()
    if reconnect is False:
        return None
    if isinstance(reconnect, Backoff):
        return reconnect
    raise TypeError("reconnect must be True, False or a protocore.backoff.Backoff")


class ClientDriver:
    """Connects, reconnects and closes one client; see the module doc.

    ``credential`` names what the server may refuse ("API key"), for error messages.
    `opened` settles when the first connection opens (or fails: its error);
    `finished` when the driver is CLOSED. Both are `Call`s an adapter can wait on.
    """

    __slots__ = (
        "_closing",
        "_credential",
        "_deadline",
        "_ever_open",
        "_folded",
        "_latency",
        "_options",
        "_pings",
        "_policy",
        "_raw_url",
        "_socket_up",
        "_stats",
        "_this_open",
        "address",
        "attempt",
        "close_timeout",
        "connect_timeout",
        "connection",
        "error",
        "finished",
        "last_close",
        "on_resume",
        "on_state_change",
        "opened",
        "phase",
        "proxy",
        "retry_at",
        "session",
        "state",
        "tunnel",
        "url",
        "where",
    )

    _OPEN = Phase.OPEN

    def __init__(
        self,
        session: ClientSession,
        url: str,
        *,
        credential: str = "credentials",
        reconnect: bool | Backoff = True,
        connect_timeout: float = 10.0,
        close_timeout: float = 10.0,
        keepalive_interval: float | None = 20.0,
        keepalive_timeout: float = 20.0,
        max_message_size: int = 1 << 20,
        proxy: Proxy | None = None,
    ) -> None:
        self.session = session
        self.url = parse_ws_url(url)
        self._raw_url = url
        u = self.url
        #: The URL for messages: scheme, host and path, never the query (secrets).
        self.where = f"{u.scheme}://{u.host_header}{u.path}"
        self._credential = credential
        self._policy = reconnect_policy(reconnect)
        if not connect_timeout > 0:
            raise LocalProtocolError("connect_timeout must be a positive number of seconds")
        self.connect_timeout = float(connect_timeout)
        # What each attempt's connection gets (a tuple: a dict per idle client costs).
        self._options = (max_message_size, keepalive_interval, keepalive_timeout, close_timeout)
        self.close_timeout = float(close_timeout)
        #: The proxy every attempt tunnels through (None: straight to the server).
        self.proxy = proxy
        #: Where the adapter opens its TCP socket: the proxy's address, or the server's.
        self.address = (u.host, u.port) if proxy is None else (proxy.host, proxy.port)
        #: This attempt's proxy handshake, to run on the socket before TLS (or None).
        self.tunnel: Tunnel | None = None
        self._new_connection()  # bad options raise here, at construction, not at a dial
        self.phase = Phase.DIAL
        #: Set by an adapter that stopped reading (`wants_read` False); see `MewsDriver`.
        self.on_resume: Callable[[], None] | None = None
        #: Called with the new `ClientState` whenever it changes (in the I/O context).
        self.on_state_change: Callable[[ClientState], None] | None = None
        self.state = ClientState("connecting")
        self.connection: ClientConnection | None = None
        self.error: BaseException | None = None
        #: How the last connection ended (its close code and reason), once one has.
        self.last_close: ConnectionClosed | None = None
        self.opened = Call()
        self.finished = Call()
        self._stats = Stats()
        self._folded = False
        self._latency: float | None = None
        self._pings: list[Call] = []
        self.attempt = 0  # reconnection attempts since the last open connection
        self.retry_at: float | None = None
        self._ever_open = False
        self._this_open = False
        self._socket_up = False
        self._deadline = 0.0
        self._closing = False

    # -- the adapter's calls -------------------------------------------------------------

    def dial(self, now: float) -> ClientConnection:
        """Start a connection attempt: open a socket to the result's ``url``."""
        if self.phase is not Phase.DIAL:
            raise LocalProtocolError(f"dial() in phase {self.phase.name}")
        self._fold(self.connection)
        conn = self._new_connection()
        conn.start(now)
        self.connection = conn
        self._folded = False
        proxy, u = self.proxy, self.url
        if proxy is not None:
            self.tunnel = proxy.tunnel(u.host, u.port, tls_next=u.secure)
        self._enter(Phase.CONNECTING)
        self._this_open = self._socket_up = False
        self._deadline = now + self.connect_timeout
        return conn

    def socket_ready(self, now: float) -> None:
        """The socket (and tunnel and TLS) is up: what fails from now on is the upgrade."""
        self._socket_up = True
        tunnel = self.tunnel
        if tunnel is not None and tunnel.leftover:  # the server spoke first (ws:// only)
            self.receive_data(tunnel.leftover, now)

    def dial_failed(self, error: BaseException, now: float) -> None:
        """The socket or TLS could not be opened (``error``: the adapter's own)."""
        conn = self.connection
        if conn is None:
            return
        tunnel, where = self.tunnel, self.where
        if tunnel is not None and not tunnel.established and self.proxy is not None:
            where = f"proxy {self.proxy.name}"
        failure = connect_failure(error, where)
        conn.receive_eof(now)
        self._after(conn, now, failure)

    def receive_data(self, data: bytes | bytearray, now: float) -> None:
        conn = self.connection
        if conn is not None and conn.state is not _CLOSED:
            self._stats.bytes_in += len(data)
            conn.receive_data(data, now)
            if self._pings and conn.latency is not None:
                self._ponged(conn.latency)
            self._after(conn, now)

    def receive_eof(self, now: float) -> None:
        conn = self.connection
        if conn is not None and conn.state is not _CLOSED:
            conn.receive_eof(now)
            self._after(conn, now)

    def data_to_send(self) -> bytes:
        conn = self.connection
        if conn is None:
            return b""
        data = conn.data_to_send()
        self._stats.bytes_out += len(data)
        return data

    @property
    def pending_output(self) -> int:
        conn = self.connection
        return 0 if conn is None else conn.pending_output

    @property
    def wants_read(self) -> bool:
        """False while the consumer is behind (Mews backpressure): stop reading."""
        return True

    def next_deadline(self) -> float | None:
        if self.phase is Phase.RECONNECTING:
            return self.retry_at
        conn = self.connection
        return None if conn is None else conn.next_deadline()

    def handle_timer(self, now: float) -> None:
        if self.phase is Phase.RECONNECTING:
            if self.retry_at is not None and now >= self.retry_at:
                self.retry_at = None
                self._enter(Phase.DIAL)
            return
        conn = self.connection
        if conn is not None:
            conn.handle_timer(now)
            self._after(conn, now)

    def close(self, now: float) -> None:
        """The application is done: close politely (a close frame, 1000)."""
        if self.phase is Phase.CLOSED or self._closing:
            return
        self._closing = True
        conn = self.connection
        if self.phase is Phase.OPEN and conn is not None:
            self._enter(Phase.CLOSING)
            conn.close(1000, now=now)
            self._after(conn, now)
        elif conn is not None and conn.state is not _CLOSED:
            conn.receive_eof(now)
            self._after(conn, now)
        else:
            self._finish(None)

    def abort(self, now: float) -> None:
        """End at once, with no close frame (the adapter drops the socket)."""
        self._closing = True
        conn = self.connection
        if conn is not None and conn.state is not _CLOSED:
            conn.receive_eof(now)
            self._after(conn, now)
        self._finish(None)

    # -- for the application -------------------------------------------------------------

    @property
    def stats(self) -> Stats:
        """A snapshot of the counters (a copy: reading it costs the hot path nothing)."""
        snapshot = self._stats.copy()
        conn = self.connection
        if conn is not None and not self._folded:
            snapshot.messages_in += conn.messages_in
            snapshot.messages_out += conn.messages_out
        self._live_stats(snapshot)
        return snapshot

    @property
    def latency(self) -> float | None:
        """The last keepalive round trip in seconds (None before the first pong)."""
        conn = self.connection
        latency = None if conn is None else conn.latency
        return self._latency if latency is None else latency

    def ping(self, now: float) -> Call:
        """Send a ping now: the call settles with its round trip in seconds."""
        self.check_usable()
        conn = self.connection
        if self.phase is not Phase.OPEN or conn is None:
            raise ConnectionLost(f"not connected to {self.where} (reconnecting)")
        self._fold_latency(conn)
        conn.ping(now)
        call = Call()
        self._pings.append(call)
        return call

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now (False while reconnecting)."""
        return self.phase is Phase.OPEN

    def check_usable(self) -> None:
        """Raise `ConnectionLost` once no connection will ever come back."""
        if self.phase is Phase.CLOSED or self._closing:
            raise self.lost_error()

    def lost_error(self) -> ConnectionLost:
        """What calls and iterators raise once the driver is done."""
        error = self.error
        if error is None:
            return ConnectionLost("the client was closed")
        if isinstance(error, ConnectionLost):
            return ConnectionLost(str(error))
        lost = ConnectionLost(str(error) or type(error).__name__)
        lost.__cause__ = error
        return lost

    # -- for the protocol drivers --------------------------------------------------------

    def _route(self, events: list[Event]) -> None:
        """Deliver a connection's events (settle calls, fill feeds)."""

    def _ended(self) -> None:
        """No connection will come back: end every call and feed."""

    def _live_stats(self, snapshot: Stats) -> None:
        """Add what live parts of a protocol driver count (dropped items) to ``snapshot``."""

    @staticmethod
    def _log_liveness(events: list[Event]) -> None:
        for event in events:
            if isinstance(event, LivenessLost):
                logger.info("the server stopped answering (%s)", type(event).__name__)

    # -- internals -----------------------------------------------------------------------

    def _enter(self, phase: Phase, delay: float | None = None) -> None:
        self.phase = phase
        state = ClientState(_PUBLIC_PHASE[phase.value], self.attempt, delay, self.retry_at)
        if state == self.state:
            return
        self.state = state
        watcher = self.on_state_change
        if watcher is not None:
            try:
                watcher(state)
            except Exception:  # the application's bug must not stop the connection
                logger.exception("on_state_change raised")

    def _fold(self, conn: ClientConnection | None) -> None:
        """A connection is done: keep its counts (the next one starts from zero)."""
        if conn is None or self._folded:
            return
        self._stats.messages_in += conn.messages_in
        self._stats.messages_out += conn.messages_out
        self._fold_latency(conn)
        self._folded = True

    def _fold_latency(self, conn: ClientConnection) -> None:
        if conn.latency is not None:
            self._latency = conn.latency
            conn.latency = None  # the next pong is a new measurement

    def _ponged(self, latency: float) -> None:
        pings, self._pings = self._pings, []
        for call in pings:
            call.settle(latency)

    def _fail_pings(self) -> None:
        pings, self._pings = self._pings, []
        for call in pings:
            call.settle(None, ConnectionLost(f"connection to {self.where} lost before the pong"))

    def _new_connection(self) -> ClientConnection:
        size, interval, timeout, close = self._options
        return ClientConnection(
            self.session,
            self._raw_url,
            max_message_size=size,
            keepalive_interval=interval,
            keepalive_timeout=timeout,
            close_timeout=close,
            handshake_timeout=self.connect_timeout,
        )

    def _after(
        self, conn: ClientConnection, now: float, failure: BaseException | None = None
    ) -> None:
        events = conn.events()
        if not events:
            return
        if self.phase is not self._OPEN or events[-1].__class__ is ConnectionClosed:
            self._milestones(conn, events, now, failure)
        else:
            self._route(events)

    def _milestones(
        self, conn: ClientConnection, events: list[Event], now: float, failure: BaseException | None
    ) -> None:
        closed: ConnectionClosed | None = None
        rejected: HandshakeRejected | None = None
        for event in events:
            cls = event.__class__
            if cls is Connected:
                self._opened()
            elif cls is HandshakeRejected:
                assert isinstance(event, HandshakeRejected)
                rejected = event
            elif cls is ConnectionClosed:
                assert isinstance(event, ConnectionClosed)
                closed = event
        self._route(events)
        if closed is not None and conn is self.connection:
            self.last_close = closed
            self._fail_pings()
            # The connection stays until the next dial: its last bytes (our close
            # frame) are still to be written.
            self._attempt_over(closed, rejected, failure, now)

    def _opened(self) -> None:
        again = self._ever_open
        self._this_open = self._ever_open = True
        self.attempt = 0
        self._enter(Phase.OPEN)
        if self._policy is not None:
            self._policy.reset()
        if again:
            self._stats.reconnects += 1
        logger.info("%s %s", "reconnected to" if again else "connected to", self.where)
        self.opened.settle(None)

    def _attempt_over(
        self,
        closed: ConnectionClosed,
        rejected: HandshakeRejected | None,
        failure: BaseException | None,
        now: float,
    ) -> None:
        if self._closing:
            self._finish(None)
            return
        if self._this_open:
            why = f"{closed.code} {closed.reason}".strip()
            if self._policy is None:
                logger.info("connection to %s lost (%s); reconnect is off", self.where, why)
                self._finish(ConnectionLost(f"connection to {self.where} lost ({why})"))
                return
            logger.info("connection to %s lost (%s)", self.where, why)
            self._back_off(now)
            return
        if failure is None:
            if rejected is None and (now >= self._deadline):
                failure = timeout_failure(self.where, self.connect_timeout, self._socket_up)
            else:
                failure = handshake_failure(self.where, self._credential, rejected, closed)
        if not self._ever_open:
            self._finish(failure)  # the first attempt: the application hears it
        elif _final(failure):
            logger.warning("%s refused to reconnect: %s", self.where, failure)
            self._finish(failure)  # the same credentials will not work next time either
        else:
            logger.info("reconnecting to %s failed: %s", self.where, failure)
            self._back_off(now)

    def _back_off(self, now: float) -> None:
        policy = self._policy
        delay = None if policy is None else policy.next_delay()
        if delay is None:
            attempts = 0 if policy is None else policy.attempts
            logger.warning("gave up reconnecting to %s after %d attempts", self.where, attempts)
            self._finish(
                ConnectionLost(f"gave up reconnecting to {self.where} after {attempts} attempts")
            )
            return
        self.attempt += 1
        self.retry_at = now + delay
        self._enter(Phase.RECONNECTING, delay)
        logger.info("reconnecting to %s in %.2f s (attempt %d)", self.where, delay, self.attempt)

    def _finish(self, error: BaseException | None) -> None:
        if self.phase is Phase.CLOSED:
            return
        self.retry_at = None
        self.error = error
        self._enter(Phase.CLOSED)
        self._fold(self.connection)
        self._fail_pings()
        self.opened.settle(None, error if error is not None else self.lost_error())
        self._ended()
        self.finished.settle(None)
