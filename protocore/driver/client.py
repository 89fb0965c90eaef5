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

from protocore.backoff import Backoff
from protocore.connection import ClientConnection, ConnectionState, parse_ws_url
from protocore.errors import ConnectionLost, HandshakeFailed, LocalProtocolError
from protocore.events import Connected, ConnectionClosed, Event, HandshakeRejected, LivenessLost
from protocore.session import ClientSession

from .stats import Stats
from .waiters import Call
from .wording import connect_failure, handshake_failure, timeout_failure

__all__ = ["ClientDriver", "DriverOptions", "Phase", "reconnect_policy"]

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
        "_options",
        "_policy",
        "_raw_url",
        "_socket_up",
        "_this_open",
        "attempt",
        "close_timeout",
        "connect_timeout",
        "connection",
        "error",
        "finished",
        "last_close",
        "on_resume",
        "opened",
        "phase",
        "retry_at",
        "session",
        "stats",
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
        self._new_connection()  # bad options raise here, at construction, not at a dial
        self.phase = Phase.DIAL
        #: Set by an adapter that stopped reading (`wants_read` False); see `MewsDriver`.
        self.on_resume: Callable[[], None] | None = None
        self.connection: ClientConnection | None = None
        self.error: BaseException | None = None
        #: How the last connection ended (its close code and reason), once one has.
        self.last_close: ConnectionClosed | None = None
        self.opened = Call()
        self.finished = Call()
        self.stats = Stats()
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
        conn = self._new_connection()
        conn.start(now)
        self.connection = conn
        self.phase = Phase.CONNECTING
        self._this_open = self._socket_up = False
        self._deadline = now + self.connect_timeout
        return conn

    def socket_ready(self, now: float) -> None:
        """The socket (and TLS) is up: what fails from now on is the upgrade."""
        self._socket_up = True

    def dial_failed(self, error: BaseException, now: float) -> None:
        """The socket or TLS could not be opened (``error``: the adapter's own)."""
        conn = self.connection
        if conn is None:
            return
        failure = connect_failure(error, self.where)
        conn.receive_eof(now)
        self._after(conn, now, failure)

    def receive_data(self, data: bytes | bytearray, now: float) -> None:
        conn = self.connection
        if conn is not None and conn.state is not _CLOSED:
            self.stats.bytes_in += len(data)
            conn.receive_data(data, now)
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
        self.stats.bytes_out += len(data)
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
                self.phase = Phase.DIAL
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
            self.phase = Phase.CLOSING
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

    @staticmethod
    def _log_liveness(events: list[Event]) -> None:
        for event in events:
            if isinstance(event, LivenessLost):
                logger.info("the server stopped answering (%s)", type(event).__name__)

    # -- internals -----------------------------------------------------------------------

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
            # The connection stays until the next dial: its last bytes (our close
            # frame) are still to be written.
            self._attempt_over(closed, rejected, failure, now)

    def _opened(self) -> None:
        again = self._ever_open
        self.phase = Phase.OPEN
        self._this_open = self._ever_open = True
        self.attempt = 0
        if self._policy is not None:
            self._policy.reset()
        if again:
            self.stats.reconnects += 1
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
        elif isinstance(failure, HandshakeFailed) and failure.status_code is not None:
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
        self.phase = Phase.RECONNECTING
        self.retry_at = now + delay
        logger.info("reconnecting to %s in %.2f s (attempt %d)", self.where, delay, self.attempt)

    def _finish(self, error: BaseException | None) -> None:
        if self.phase is Phase.CLOSED:
            return
        self.phase = Phase.CLOSED
        self.retry_at = None
        self.error = error
        self.opened.settle(None, error if error is not None else self.lost_error())
        self._ended()
        self.finished.settle(None)
