"""`PlaceOSServer`: the server side of the PlaceOS real-time WebSocket, one per connection.

A sans-IO session (see `protocore.session.ServerSession`): `ServerConnection` feeds it
whole text messages and ``now``, and sends what `messages_to_send` returns. It never
reads a clock and never does I/O.

What the session does by itself, whatever the application:

- `authorize`: the request path, then the credentials in the reference server's lookup
  order (header ``X-API-Key``, query ``api-key``, cookie ``api-key``, header
  ``Authorization: Bearer``, query ``bearer_token``, cookie ``bearer_token``). The first
  credential present decides, as in the reference server: a wrong ``X-API-Key`` is not
  rescued by a good bearer token further down. Comparison is constant-time
  (`hmac.compare_digest` against every configured secret, no early exit). A server
  with neither ``api_keys`` nor ``bearer_tokens`` refuses everyone, unless it was made
  with ``allow_anonymous=True``: an open fake server is a choice, never an accident.
  Bearer tokens are compared as opaque strings; no JWT is verified.
- The heartbeat: the raw text ``ping`` is answered ``pong``; with ``pong_interval`` an
  unsolicited ``pong`` goes out every so many seconds, as the reference server does.
- Bad requests: malformed JSON is answered with error 0 (``PARSE_ERROR``), an unknown
  ``cmd`` with 4 (``UNKNOWN_COMMAND``), a missing or ill-typed field with 1
  (``BAD_REQUEST``, the message names the field); the reply carries the request's id
  when it could be read, else ``null``. With ``bad_requests="drop"`` nothing is
  answered (the reference server's behaviour). Either way the application gets a
  `BadMessage` event, and the session goes on serving.
- Bindings: the session keeps its bindings (`bindings`: binding -> id of its first
  bind). A bind of something already bound is answered with success at once and binds
  nothing new; notifies carry the first bind's id. ``unbind`` is always answered
  ``{"id", "type": "success"}``, bound or not.
- Debug streams (`debug_streams`, by module id): ``ignore`` ends the streams whose
  module id, or requested module, it names, and is always answered with success.

What the application decides: whether a new bind, an exec or a debug succeeds. Either

- no ``handler``: `receive_message` returns `RequestReceived(request)` and the
  application answers with `reply_success` / `reply_error` (now or later), or
- a ``handler`` (anything with ``handle_request(server, request)`` and
  ``session_closed(server)``, such as `protocore.placeos.MockEngine`): the session
  calls ``handler.handle_request(self, request)`` and the handler answers through the
  same methods. A handler that raises is reported as `HandlerFailed`, and the request
  is answered with error 7 (``UNEXPECTED_FAILURE``, no details).

Sending from outside a session call. Notifies and debug lines usually come from
application code (a status changed), not from an incoming message, so a transport
waiting on its socket would not know there is something to send. Set ``wakeup`` (a
zero-argument callable) and the session calls it when a message is queued outside
`connection_made` / `receive_message` / `handle_timer` / `connection_lost`. It is
called at most once between two `messages_to_send` calls (the transport drains
everything when woken), must return quickly and must not call back into the session
or its connection: set an event, or schedule the flush. The session is not
thread-safe: call it, and whatever feeds it, from one thread or event loop.

Encoding follows ``dialect`` (`Dialect.CURRENT`, the reference server's form, by
default). Secrets never appear in a repr, an exception message or a rejection body.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Literal, Protocol
from urllib.parse import parse_qsl, urlsplit

import attrs

from protocore.errors import DecodeError, LocalProtocolError
from protocore.events import BadMessage, Event
from protocore.session import Rejection

from .codec import RequestError, decode_request, encode_response
from .models import (
    Bind,
    Binding,
    Command,
    Debug,
    DebugMessage,
    Dialect,
    ErrorCode,
    ErrorResponse,
    Exec,
    Ignore,
    LogLevel,
    Meta,
    ModuleMeta,
    Notification,
    Ping,
    RequestId,
    SuccessResponse,
    Unbind,
)

__all__ = [
    "PlaceOSServer",
    "RequestHandler",
    "RequestReceived",
    "HandlerFailed",
    "DebugStream",
    "NO_VALUE",
    "DEFAULT_PATH",
]

DEFAULT_PATH: Final = "/api/engine/v2/systems/control"
"""Where the reference server serves the real-time WebSocket."""


class _NoValue(enum.Enum):
    NO_VALUE = "NO_VALUE"

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue.NO_VALUE
"""``value`` not given (a bind's status variable does not exist): no notify follows."""


# -- events ---------------------------------------------------------------------------


@attrs.frozen(slots=True)
class RequestReceived(Event):
    """A request the application must answer (`PlaceOSServer.reply_success` or
    `PlaceOSServer.reply_error`): a new `Bind`, an `Exec` or a `Debug`.

    Only emitted when the session has no handler. Duplicate binds, ``unbind``,
    ``ignore`` and ``ping`` are answered by the session itself.
    """

    request: Command


@attrs.frozen(slots=True)
class HandlerFailed(Event):
    """The handler raised: ``request`` (None in ``session_closed``) got error 7."""

    request: Command | None
    error: Exception = attrs.field(eq=False)


@attrs.frozen(slots=True)
class DebugStream:
    """A module this session debugs: log lines for ``module_id`` are forwarded.

    ``request_id`` is that of the ``debug`` request; ``sys``/``mod``/``index``/``name``
    are as the client sent them (``mod`` is often the module id itself).
    """

    module_id: str
    request_id: RequestId
    sys: str
    mod: str
    index: int = 1
    name: str = "debug"


class RequestHandler(Protocol):
    """What a session's ``handler`` implements (`MockEngine` is one)."""

    def handle_request(self, server: PlaceOSServer, request: Command) -> None:
        """Answer ``request`` (a new bind, an exec or a debug) through ``server``'s
        ``reply_success``/``reply_error``, now or later."""

    def session_closed(self, server: PlaceOSServer) -> None:
        """``server``'s connection is gone: forget it."""


# -- auth helpers ---------------------------------------------------------------------


def _cookies(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Every ``name=value`` of every Cookie header; the first of a name wins.

    Tolerant of what browsers and proxies send: any spacing, empty parts, parts
    without ``=`` (skipped), double-quoted values (unquoted), several headers.
    """
    found: dict[str, str] = {}
    for header, value in headers:
        if header.lower() != "cookie":
            continue
        for part in value.split(";"):
            name, sep, raw = part.partition("=")
            if not sep:
                continue
            name = name.strip()
            raw = raw.strip()
            if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
                raw = raw[1:-1]
            if name and name not in found:
                found[name] = raw
    return found


def _split_target(target: str) -> tuple[str, str]:
    """The path and the query of a request target (origin-form, or absolute-form)."""
    target = target.partition("#")[0]
    if not target.startswith("/"):
        try:
            parts = urlsplit(target)
        except ValueError:
            return "", ""
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path, query


def _bearer(value: str) -> str | None:
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _secrets(values: Iterable[str], what: str) -> tuple[bytes, ...]:
    if isinstance(values, str | bytes):
        raise LocalProtocolError(f"{what} must be a collection of strings, not one string")
    result = []
    for value in values:
        if not isinstance(value, str) or not value:
            raise LocalProtocolError(f"{what} must hold non-empty strings")
        result.append(value.encode("utf-8", "surrogatepass"))
    return tuple(result)


def _matches(candidate: str, secrets: tuple[bytes, ...]) -> bool:
    """Whether ``candidate`` is one of ``secrets``: every secret is compared, in constant
    time, whatever matched (a timing difference must not say which key is in use)."""
    given = candidate.encode("utf-8", "surrogatepass")
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(given, secret)
    return found


_NOT_FOUND = Rejection(404, b"not found\n")
_UNAUTHORIZED = Rejection(401, b"unauthorized\n", (("www-authenticate", "Bearer"),))


# -- the session ----------------------------------------------------------------------


class _State(enum.Enum):
    IDLE = "idle"  # created, no connection yet
    OPEN = "open"
    CLOSED = "closed"


_PONG = "pong"


class PlaceOSServer:
    """One PlaceOS real-time WebSocket connection, server side (see the module doc).

    ``api_keys`` / ``bearer_tokens``: the accepted secrets.
    ``allow_anonymous``: with no secrets configured, admit everyone (default: no one).
    ``handler``: who answers requests (None: the application, through events).
    ``bad_requests``: ``"reply"`` (error 0, 1 or 4) or ``"drop"`` (silence).
    ``dialect``: the wire form written (`Dialect.CURRENT` or `Dialect.SEED`).
    ``path``: the only request path accepted (others get 404); None accepts any.
    ``pong_interval``: seconds between unsolicited ``pong`` messages, or None.
    ``wakeup``: see the module doc.
    """

    __slots__ = (
        "_anonymous",
        "_api_keys",
        "_bearer_tokens",
        "_bindings",
        "_debug",
        "_dialect",
        "_drop",
        "_handler",
        "_in_call",
        "_out",
        "_path",
        "_pong_due",
        "_pong_interval",
        "_state",
        "_woken",
        "wakeup",
    )

    wakeup: Callable[[], None] | None
    """Called when a message is queued outside a session call (see the module doc)."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (),
        bearer_tokens: Iterable[str] = (),
        allow_anonymous: bool = False,
        handler: RequestHandler | None = None,
        bad_requests: Literal["reply", "drop"] = "reply",
        dialect: Dialect = Dialect.CURRENT,
        path: str | None = DEFAULT_PATH,
        pong_interval: float | None = 80.0,
        wakeup: Callable[[], None] | None = None,
    ) -> None:
        self._api_keys = _secrets(api_keys, "api_keys")
        self._bearer_tokens = _secrets(bearer_tokens, "bearer_tokens")
        self._anonymous = bool(allow_anonymous) and not (self._api_keys or self._bearer_tokens)
        if bad_requests not in ("reply", "drop"):
            raise LocalProtocolError('bad_requests must be "reply" or "drop"')
        if not isinstance(dialect, Dialect):
            raise LocalProtocolError("dialect must be a Dialect")
        if path is not None and not (isinstance(path, str) and path.startswith("/")):
            raise LocalProtocolError("path must be None or a str starting with '/'")
        if pong_interval is not None and (
            isinstance(pong_interval, bool)
            or not isinstance(pong_interval, int | float)
            or not pong_interval > 0
        ):
            raise LocalProtocolError("pong_interval must be None or a positive number")
        self._handler = handler
        self._drop = bad_requests == "drop"
        self._dialect = dialect
        self._path = path
        self._pong_interval = None if pong_interval is None else float(pong_interval)
        self._pong_due: float | None = None
        self._state = _State.IDLE
        self._out: list[str] = []
        self._in_call = False
        self._woken = False
        self._bindings: dict[Binding, RequestId] = {}
        self._debug: dict[str, DebugStream] = {}
        self.wakeup = wakeup

    # -- read-only views ---------------------------------------------------------------

    @property
    def bindings(self) -> Mapping[Binding, RequestId]:
        """The live bindings, each with the id of its first bind (notifies carry it)."""
        return MappingProxyType(self._bindings)

    @property
    def debug_streams(self) -> Mapping[str, DebugStream]:
        """The modules being debugged, by module id."""
        return MappingProxyType(self._debug)

    @property
    def handler(self) -> RequestHandler | None:
        return self._handler

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def closed(self) -> bool:
        """Whether `connection_lost` has been called: sending does nothing any more."""
        return self._state is _State.CLOSED

    def __repr__(self) -> str:
        auth = (
            f"api_keys={len(self._api_keys)} bearer_tokens={len(self._bearer_tokens)}"
            if self._api_keys or self._bearer_tokens
            else ("anonymous" if self._anonymous else "closed")
        )
        return (
            f"<PlaceOSServer {self._state.value} path={self._path!r} auth={auth} "
            f"bindings={len(self._bindings)} debugging={len(self._debug)}>"
        )

    # -- ServerSession -----------------------------------------------------------------

    def authorize(self, target: str, headers: Sequence[tuple[str, str]]) -> Rejection | None:
        """None to accept the upgrade; a 404 for another path; a 401 for a missing or
        wrong credential (the body says ``unauthorized``, never what was sent)."""
        path, query = _split_target(target)
        wanted = self._path
        if wanted is not None and path.rstrip("/") != wanted.rstrip("/"):
            return _NOT_FOUND
        if not self._api_keys and not self._bearer_tokens:
            return None if self._anonymous else _UNAUTHORIZED
        credential = self._find_credential(query, headers)
        if credential is None:
            return _UNAUTHORIZED
        is_api_key, value = credential
        secrets = self._api_keys if is_api_key else self._bearer_tokens
        return None if _matches(value, secrets) else _UNAUTHORIZED

    @staticmethod
    def _find_credential(query: str, headers: Sequence[tuple[str, str]]) -> tuple[bool, str] | None:
        """The first credential present, in the reference server's order, as
        (is an API key, value). Empty values count as absent."""
        header_map: dict[str, str] = {}
        for name, value in headers:
            header_map.setdefault(name.lower(), value)
        params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(name, value)
        cookies = _cookies(headers)
        authorization = header_map.get("authorization")
        candidates: tuple[tuple[bool, str | None], ...] = (
            (True, header_map.get("x-api-key", "").strip()),
            (True, params.get("api-key")),
            (True, cookies.get("api-key")),
            (False, None if authorization is None else _bearer(authorization)),
            (False, params.get("bearer_token")),
            (False, cookies.get("bearer_token")),
        )
        for is_api_key, found in candidates:
            if found:
                return is_api_key, found
        return None

    def connection_made(self, now: float) -> list[Event]:
        if self._state is _State.IDLE:
            self._state = _State.OPEN
            if self._pong_interval is not None:
                self._pong_due = now + self._pong_interval
        return []

    def receive_message(self, data: str | bytes, now: float) -> list[Event]:
        """Take one message from the client; answer it or hand it over. Never raises
        because of what ``data`` holds."""
        if self._state is _State.CLOSED:
            return []
        self._in_call = True
        try:
            return self._receive(data)
        finally:
            self._in_call = False

    def messages_to_send(self) -> list[str]:
        out = self._out
        self._woken = False
        if not out:
            return []
        self._out = []
        return out

    def next_deadline(self) -> float | None:
        return self._pong_due if self._state is _State.OPEN else None

    def handle_timer(self, now: float) -> list[Event]:
        due = self._pong_due
        if self._state is _State.OPEN and due is not None and now >= due:
            assert self._pong_interval is not None
            self._out.append(_PONG)
            self._pong_due = now + self._pong_interval
        return []

    def connection_lost(self, now: float) -> list[Event]:
        """Forget bindings, debug streams and unsent messages; tell the handler."""
        if self._state is _State.CLOSED:
            return []
        self._state = _State.CLOSED
        self._pong_due = None
        self._bindings.clear()
        self._debug.clear()
        self._out = []
        handler = self._handler
        if handler is None:
            return []
        self._in_call = True
        try:
            handler.session_closed(self)
        except Exception as exc:
            return [HandlerFailed(None, exc)]
        finally:
            self._in_call = False
        return []

    # -- incoming ----------------------------------------------------------------------

    def _receive(self, data: str | bytes) -> list[Event]:
        try:
            request = decode_request(data)
        except RequestError as exc:
            return self._bad(data, exc, exc)
        except Exception:  # defensive: garbage must never escape as an exception
            error = DecodeError("message could not be decoded")
            reply = RequestError(error.reason, code=ErrorCode.PARSE_ERROR)
            return self._bad(data, error, reply)
        if request.__class__ is Ping:
            self._out.append(_PONG)
            return []
        assert isinstance(request, Command)
        cls = request.__class__
        if cls is Unbind:
            self._bindings.pop(request.binding, None)
            self._success(SuccessResponse(request.id))
            return []
        if cls is Ignore:
            self._ignore(request)
            self._success(SuccessResponse(request.id))
            return []
        if cls is Bind and request.binding in self._bindings:
            self._success(SuccessResponse(request.id, meta=request.binding))
            return []
        handler = self._handler
        if handler is None:
            return [RequestReceived(request)]
        try:
            handler.handle_request(self, request)
        except Exception as exc:
            self.reply_error(request, ErrorCode.UNEXPECTED_FAILURE, "unexpected failure")
            return [HandlerFailed(request, exc)]
        return []

    def _bad(self, data: str | bytes, error: DecodeError, reply: RequestError) -> list[Event]:
        if not self._drop:
            self._queue(encode_response(reply.to_response(), dialect=self._dialect))
        return [BadMessage(data, error)]

    def _ignore(self, request: Command) -> None:
        key = (request.sys, request.mod, request.index)
        for module_id, stream in list(self._debug.items()):
            if module_id == request.mod or (stream.sys, stream.mod, stream.index) == key:
                del self._debug[module_id]

    # -- answering requests ------------------------------------------------------------

    def reply_success(
        self, request: Command, *, value: Any = NO_VALUE, module_id: str | None = None
    ) -> None:
        """Answer ``request`` with success, with the effect its command has.

        - `Bind`: the binding is made (unless it exists: its first id stays) and the
          success goes out with its ``meta``; a ``value`` (the status variable's
          current value, None included) follows as a notify. Leave ``value`` out when
          the variable does not exist yet.
        - `Exec`: ``value`` is the method's result (the HTTP-like ``code`` is 200).
        - `Debug`: ``module_id`` (required) names the module whose log lines this
          session now receives (`send_debug`); the success carries it as ``mod_id``.
        - `Unbind`, `Ignore`: a bare success.

        Raises `EncodeError` (nothing is sent, nothing changes) when ``value`` cannot
        be put in JSON. A no-op once the connection is closed.
        """
        if not isinstance(request, Command):
            raise LocalProtocolError(f"reply_success() takes a request, not {request!r}")
        if self._state is _State.CLOSED:
            return
        cls = request.__class__
        given = value is not NO_VALUE
        dialect = self._dialect
        if cls is Bind:
            binding = request.binding
            first_id = self._bindings.get(binding, request.id)
            success = encode_response(SuccessResponse(request.id, meta=binding), dialect=dialect)
            notify = (
                encode_response(Notification(first_id, binding, value), dialect=dialect)
                if given
                else None
            )
            self._bindings.setdefault(binding, first_id)
            self._queue(success)
            if notify is not None:
                self._queue(notify)
        elif cls is Exec:
            response = SuccessResponse(
                request.id,
                value=value if given else None,
                meta=request.binding,
                http_status=200,
            )
            self._queue(encode_response(response, dialect=dialect))
        elif cls is Debug:
            if not isinstance(module_id, str) or not module_id:
                raise LocalProtocolError("reply_success() to a debug request needs module_id")
            meta = ModuleMeta(request.sys, request.mod, request.index)
            response = SuccessResponse(request.id, meta=meta, mod_id=module_id)
            data = encode_response(response, dialect=dialect)
            self._debug[module_id] = DebugStream(
                module_id, request.id, request.sys, request.mod, request.index, request.name
            )
            self._queue(data)
        else:
            self._success(SuccessResponse(request.id))

    def reply_error(
        self,
        request: Command,
        code: ErrorCode | int,
        message: str = "",
        *,
        http_status: int = 500,
    ) -> None:
        """Answer ``request`` with an error (nothing is bound or debugged)."""
        if not isinstance(request, Command):
            raise LocalProtocolError(f"reply_error() takes a request, not {request!r}")
        self.send_error(request.id, code, message, http_status=http_status)

    # -- raw sending (no effect on the session's state) --------------------------------

    def send_success(
        self,
        request_id: RequestId,
        *,
        value: Any = None,
        meta: Meta | None = None,
        mod_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        """Queue a ``success`` as given: no binding or debug stream is made (use
        `reply_success` for that). A no-op once closed; `EncodeError` for bad values."""
        self._success(SuccessResponse(request_id, value, meta, mod_id, http_status))

    def send_error(
        self,
        request_id: RequestId | None,
        code: ErrorCode | int,
        message: str = "",
        *,
        http_status: int = 500,
    ) -> None:
        """Queue an ``error`` reply (``request_id`` None: the id was unreadable)."""
        if self._state is _State.CLOSED:
            return
        response = ErrorResponse(request_id, code, message, http_status)
        self._queue(encode_response(response, dialect=self._dialect))

    def send_notify(self, binding: Binding, value: Any) -> bool:
        """Queue a notify of ``value`` for ``binding``, with its first bind's id.

        Returns False (and sends nothing) when this session has no such binding, for
        instance because it was unbound or the connection closed. `EncodeError` when
        ``value`` is not JSON-encodable.
        """
        first_id = self._bindings.get(binding)
        if first_id is None or self._state is _State.CLOSED:
            return False
        notification = Notification(first_id, binding, value)
        self._queue(encode_response(notification, dialect=self._dialect))
        return True

    def send_debug(
        self,
        module_id: str,
        message: str,
        *,
        level: LogLevel | str = LogLevel.DEBUG,
        klass: str | None = None,
    ) -> bool:
        """Queue a log line of ``module_id`` when this session debugs it (else False).

        The current dialect adds the debug request's ``id`` and ``meta``, as the
        reference server does; the seed's form has ``mod``, ``klass``, ``level``,
        ``msg`` only.
        """
        stream = self._debug.get(module_id)
        if stream is None or self._state is _State.CLOSED:
            return False
        if self._dialect is Dialect.CURRENT:
            meta: Meta | None = Binding(stream.sys, stream.mod, stream.index, stream.name)
            request_id: RequestId | None = stream.request_id
        else:
            meta = request_id = None
        debug = DebugMessage(module_id, klass, level, message, meta, request_id)
        self._queue(encode_response(debug, dialect=self._dialect))
        return True

    # -- internals ---------------------------------------------------------------------

    def _success(self, response: SuccessResponse) -> None:
        if self._state is _State.CLOSED:
            return
        self._queue(encode_response(response, dialect=self._dialect))

    def _queue(self, data: bytes) -> None:
        self._out.append(data.decode("utf-8"))
        if self._in_call or self._woken:
            return
        wakeup = self.wakeup
        if wakeup is not None:
            self._woken = True
            wakeup()
