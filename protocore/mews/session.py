"""Mews sessions: the client that receives pushed events, and a server that pushes them.

Mews is push-only: after the upgrade the server sends ``{"Events": [...]}`` messages
and the client sends nothing. Authentication happens in the upgrade request, with the
``ClientToken`` and ``AccessToken`` as cookies (current API) or query parameters
(seed 000, deprecated but never switched off). Liveness is the WebSocket connection's
own pings, so neither session runs a timer.

Tokens are secrets: they never appear in a repr, an exception or an event. The server
compares them with `hmac.compare_digest`, so a wrong guess takes as long as a near one.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Iterable, Sequence
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

import attrs

from protocore.errors import DecodeError, LocalProtocolError
from protocore.events import BadMessage, Event
from protocore.session import ClientHandshake, Rejection

from .codec import decode_envelope, encode_envelope
from .models import Envelope, InvalidEvent, MewsEvent

__all__ = [
    "DEMO_URL",
    "PRODUCTION_URL",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "legacy_url",
    "SessionState",
    "EventsReceived",
    "Reconnected",
    "MewsClient",
    "MewsServer",
]

#: The current endpoint on the demo environment (seeds 001, 002).
DEMO_URL = "wss://ws.mews-demo.com/ws/connector"
#: The current endpoint in production.
PRODUCTION_URL = "wss://ws.mews.com/ws/connector"
#: A Mews message holds a burst of small events; 4 MiB leaves room for thousands.
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024


def legacy_url(platform_address: str) -> str:
    """Seed 000's endpoint for a platform address: ``https://x`` -> ``wss://x/ws/connector``.

    Use it with ``MewsClient(..., auth="query")``; the tokens go in the query, which
    the connection adds from `MewsClient.handshake`.
    """
    scheme, sep, rest = platform_address.partition("://")
    schemes = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}
    if not sep or scheme.lower() not in schemes:
        raise LocalProtocolError("expected an http://, https://, ws:// or wss:// platform address")
    return f"{schemes[scheme.lower()]}://{rest.rstrip('/')}/ws/connector"


# ------------------------------------------------------------------------------ events


@attrs.frozen(slots=True)
class EventsReceived(Event):
    """One message from Mews, decoded leniently.

    ``envelope.events`` holds the events in order; an event that failed its schema is
    an `InvalidEvent` in its place (see `invalid`), so the good ones are never lost.
    """

    envelope: Envelope

    @property
    def events(self) -> tuple[MewsEvent, ...]:
        """The events of the message, in order."""
        return self.envelope.events

    @property
    def invalid(self) -> tuple[InvalidEvent, ...]:
        """The events that could not be decoded, with their errors."""
        return tuple(e for e in self.envelope.events if isinstance(e, InvalidEvent))


@attrs.frozen(slots=True)
class Reconnected(Event):
    """A connection opened after an earlier one was lost.

    Mews does not replay what happened while the client was away: on this event the
    application must resynchronise the state it tracks through the REST API.
    """


class SessionState(enum.Enum):
    """Where a session is in its connections' lives."""

    IDLE = "idle"  # no connection yet
    OPEN = "open"  # connection_made, not yet connection_lost
    CLOSED = "closed"  # the connection was lost (a client may connect again)


# ------------------------------------------------------------------------------ tokens

# RFC 6265 cookie-octets (printable ASCII but space, '"', ',', ';' and '\'), and no
# '=': a token must not be able to end its cookie or start another one.
_TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('",;\\=')


def _checked_token(name: str, token: object) -> str:
    """The token, or a LocalProtocolError that describes the problem, not the value."""
    if not isinstance(token, str):
        raise LocalProtocolError(f"{name} must be a str, got {type(token).__name__}")
    if not token:
        raise LocalProtocolError(f"{name} is empty")
    for position, char in enumerate(token):
        if char not in _TOKEN_CHARS:
            raise LocalProtocolError(
                f"{name} cannot be sent safely: its character at index {position} is not "
                "printable ASCII, or is a space, double quote, comma, semicolon, backslash "
                "or equals sign"
            )
    return token


# ------------------------------------------------------------------------------ client


class MewsClient:
    """The client side of a Mews Connector WebSocket; implements `ClientSession`.

    ``auth="cookie"`` (the default) sends ``Cookie: ClientToken=..; AccessToken=..``;
    ``auth="query"`` sends them as query parameters, for the legacy endpoint. Every
    message becomes one `EventsReceived` (decoded leniently) or, when it cannot be
    decoded at all, a `BadMessage` carrying the raw data. A connection opened after a
    lost one also yields `Reconnected`.
    """

    __slots__ = (
        "_access_token",
        "_auth",
        "_client_token",
        "_ever_open",
        "_state",
        "max_message_size",
    )

    def __init__(
        self,
        client_token: str,
        access_token: str,
        *,
        auth: Literal["cookie", "query"] = "cookie",
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if auth not in ("cookie", "query"):
            raise LocalProtocolError(f"auth must be 'cookie' or 'query', got {auth!r}")
        self._client_token = _checked_token("client_token", client_token)
        self._access_token = _checked_token("access_token", access_token)
        self._auth = auth
        #: Messages longer than this (in characters or bytes) are refused unparsed.
        self.max_message_size = max_message_size
        self._state = SessionState.IDLE
        self._ever_open = False

    def __repr__(self) -> str:
        return f"MewsClient(auth={self._auth!r}, state={self._state.name})"

    @property
    def state(self) -> SessionState:
        """IDLE before the first connection, OPEN while connected, CLOSED after a loss."""
        return self._state

    @property
    def auth(self) -> Literal["cookie", "query"]:
        """How the tokens are sent: ``"cookie"`` (current) or ``"query"`` (legacy)."""
        return self._auth

    def handshake(self) -> ClientHandshake:
        """The ``Cookie`` header (no spaces around ``=``) or the legacy query parameters."""
        if self._auth == "query":
            return ClientHandshake(
                query=(("ClientToken", self._client_token), ("AccessToken", self._access_token))
            )
        cookie = f"ClientToken={self._client_token}; AccessToken={self._access_token}"
        return ClientHandshake(headers=(("Cookie", cookie),))

    def connection_made(self, now: float) -> list[Event]:
        """Start a connection; after a lost one, say so with `Reconnected`."""
        if self._state is SessionState.OPEN:
            raise LocalProtocolError("connection_made while a connection is already open")
        reconnected = self._ever_open
        self._state = SessionState.OPEN
        self._ever_open = True
        return [Reconnected()] if reconnected else []

    def receive_message(self, data: str | bytes, now: float) -> list[Event]:
        """One `EventsReceived`, or a `BadMessage` when the message is undecodable."""
        try:
            envelope = decode_envelope(data, max_size=self.max_message_size, lenient=True)
        except DecodeError as error:
            return [BadMessage(data, error)]
        return [EventsReceived(envelope)]

    def messages_to_send(self) -> list[str]:
        """Always empty: a Mews client never sends a message."""
        return []

    def next_deadline(self) -> float | None:
        """None: liveness is the connection's WebSocket pings, not a session timer."""
        return None

    def handle_timer(self, now: float) -> list[Event]:
        """Nothing to do: the session has no timers."""
        return []

    def connection_lost(self, now: float) -> list[Event]:
        """Note the loss, so the next `connection_made` reports `Reconnected`."""
        if self._state is SessionState.OPEN:
            self._state = SessionState.CLOSED
        return []


# ------------------------------------------------------------------------------ server

_REJECTION = Rejection(
    401,
    b"401 Unauthorized: missing or invalid ClientToken/AccessToken\n",
    (("content-type", "text/plain; charset=utf-8"),),
)
_NOT_FOUND = Rejection(404, b"404 Not Found\n", (("content-type", "text/plain; charset=utf-8"),))


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _unique_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, str | None]:
    """Names to values; a name given twice maps to None (ambiguous, so never accepted)."""
    found: dict[str, str | None] = {}
    for name, value in pairs:
        found[name] = None if name in found else value
    return found


def _cookie_pairs(headers: Iterable[str]) -> Iterable[tuple[str, str]]:
    """Cookie pairs from every Cookie header, split as browsers send them (``; ``).

    Whitespace around a pair is dropped; whitespace around ``=`` is kept, so
    ``ClientToken = x`` names a different cookie, as on the real server, which refuses
    such requests.
    """
    for header in headers:
        for part in header.split(";"):
            name, sep, value = part.strip(" \t").partition("=")
            if sep:
                yield name, value


def _secret_bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


class MewsServer:
    """A Mews-like server session (for tests and demos); implements `ServerSession`.

    `authorize` accepts the cookie form or, when ``allow_query_auth`` (the default),
    the legacy query form, and refuses everything else with a 401 that names no
    credential. `push` queues an envelope (or events) for the client. Messages from the
    client are not part of the protocol: each is reported as a `BadMessage` and
    otherwise ignored. ``path``, when set, also refuses other request paths with 404.
    """

    __slots__ = (
        "_access_token",
        "_allow_query_auth",
        "_client_token",
        "_outbox",
        "_path",
        "_state",
    )

    def __init__(
        self,
        client_token: str,
        access_token: str,
        *,
        allow_query_auth: bool = True,
        path: str | None = None,
    ) -> None:
        self._client_token = _secret_bytes(_checked_token("client_token", client_token))
        self._access_token = _secret_bytes(_checked_token("access_token", access_token))
        self._allow_query_auth = allow_query_auth
        self._path = path
        self._outbox: list[str] = []
        self._state = SessionState.IDLE

    def __repr__(self) -> str:
        return (
            f"MewsServer(state={self._state.name}, queued={len(self._outbox)}, "
            f"allow_query_auth={self._allow_query_auth})"
        )

    @property
    def state(self) -> SessionState:
        """IDLE before the upgrade, OPEN while connected, CLOSED after the loss."""
        return self._state

    def authorize(self, target: str, headers: Sequence[tuple[str, str]]) -> Rejection | None:
        """None for the right tokens (cookie or query form), a 401 `Rejection` otherwise."""
        split = urlsplit(_text(target))
        if self._path is not None and split.path != self._path:
            return _NOT_FOUND
        cookie_headers = [
            _text(value) for name, value in headers if _text(name).lower() == "cookie"
        ]
        cookies = _unique_pairs(_cookie_pairs(cookie_headers))
        if self._matches(cookies.get("ClientToken"), cookies.get("AccessToken")):
            return None
        if self._allow_query_auth:
            query = _unique_pairs(parse_qsl(split.query, keep_blank_values=True))
            if self._matches(query.get("ClientToken"), query.get("AccessToken")):
                return None
        return _REJECTION

    def _matches(self, client_token: str | None, access_token: str | None) -> bool:
        if client_token is None or access_token is None:
            return False
        # Compare both, always: which of the two was wrong must not show in the timing.
        client_ok = hmac.compare_digest(_secret_bytes(client_token), self._client_token)
        access_ok = hmac.compare_digest(_secret_bytes(access_token), self._access_token)
        return client_ok & access_ok

    def connection_made(self, now: float) -> list[Event]:
        """The upgrade is done; queued pushes go out from now on."""
        if self._state is not SessionState.IDLE:
            raise LocalProtocolError("a MewsServer session serves one connection")
        self._state = SessionState.OPEN
        return []

    def push(self, events: Envelope | Iterable[MewsEvent]) -> None:
        """Queue one message: an `Envelope`, or events to wrap in one.

        Raises `EncodeError` for values that cannot go on the wire, and
        `LocalProtocolError` once the connection is lost.
        """
        if self._state is SessionState.CLOSED:
            raise LocalProtocolError("push after connection_lost: the client is gone")
        envelope = events if isinstance(events, Envelope) else Envelope(tuple(events))
        self.push_encoded(encode_envelope(envelope).decode("utf-8"))

    def push_encoded(self, message: str) -> None:
        """Queue a message already encoded (`encode_envelope`): one encoding serves
        every client of a server that publishes to all of them."""
        if self._state is SessionState.CLOSED:
            raise LocalProtocolError("push after connection_lost: the client is gone")
        self._outbox.append(message)

    def receive_message(self, data: str | bytes, now: float) -> list[Event]:
        """Mews clients send nothing; report what came and carry on."""
        return [BadMessage(data, DecodeError("a Mews client sends no messages; ignored"))]

    def messages_to_send(self) -> list[str]:
        """Drain the pushed messages, oldest first."""
        out, self._outbox = self._outbox, []
        return out

    def next_deadline(self) -> float | None:
        """None: the server session has no timers."""
        return None

    def handle_timer(self, now: float) -> list[Event]:
        """Nothing to do: the server session has no timers."""
        return []

    def connection_lost(self, now: float) -> list[Event]:
        """Drop what was not sent; later pushes are refused."""
        self._state = SessionState.CLOSED
        self._outbox.clear()
        return []
