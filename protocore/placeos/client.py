"""`PlaceOSClient`: the client session of the PlaceOS real-time WebSocket.

A sans-IO state machine in the h11 mould: the application calls `bind`, `exec`...
(each returns a request id and queues a text message), the connection feeds it
whole messages (`receive_message`) and the time (`handle_timer`), and events come
back. It never reads a clock: every call that starts or checks a timer takes
``now``. `protocore.connection.ClientConnection` drives it over a WebSocket.

Requests. Every request id ends in exactly one `RequestSucceeded`, `RequestFailed`,
`RequestTimedOut` or `RequestAborted`. Every request has a deadline (the reference
server silently drops frames it cannot read, so nothing may wait forever); an
answer arriving after it is an `UnexpectedResponse`. Results the client decides on
its own, during the application's call, are not returned by that call (it returns
the id): `take_events` drains them.

Bindings are reference-counted by (sys, mod, index, name), debug streams by
(sys, mod, index). The first `bind` sends a ``bind``; a second one joins it and
succeeds with it (or at once, if the binding is already confirmed). `unbind`
sends an ``unbind`` only when the count drops to zero; earlier ones succeed at
once. `debug` / `ignore` likewise. A bind that times out or is aborted releases
its reference; when that leaves nobody waiting for a bind the server may yet
apply, the client sends an ``unbind`` of its own (its answer concerns nobody).
Notifies are matched by their ``meta``, never by their ``id``, so one that
arrives before the bind's success is still delivered and cached; one for a
binding nobody holds (a race with an unbind) is delivered but not cached.

Reconnecting. `connection_lost` aborts every request in flight
(`AbortReason.CONNECTION_LOST`) but keeps the bindings and debug streams the
application holds; `connection_made` sends one ``bind`` per binding and one
``debug`` per debug stream again (the server forgets everything on a new
connection). Their successes are silent; a refusal or a timeout is `BindingLost`.

While disconnected (before the first `connection_made` too): `bind` and `debug`
are recorded and go out with the next `connection_made`, their ids resolve then,
and their deadlines start then. `exec` is aborted at once
(`AbortReason.NOT_CONNECTED`). `unbind` and `ignore` succeed at once: the server
keeps nothing across connections, so releasing the reference locally is the
whole job (the binding is simply not sent again). A queued bind undone that way
is aborted (`AbortReason.CANCELLED`).

Heartbeat: the raw text ``ping`` on connect and every ``heartbeat_interval``
seconds; `HeartbeatLost` (a `LivenessLost`: the connection drops the link) once
when nothing at all arrived for ``heartbeat_timeout`` seconds.
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Literal, TypeAlias, cast

from protocore.errors import DecodeError, LocalProtocolError
from protocore.events import BadMessage, Event
from protocore.session import ClientHandshake

from .codec import decode_response, encode_request
from .events import (
    AbortReason,
    BindingLost,
    DebugLog,
    HeartbeatLost,
    RequestAborted,
    RequestFailed,
    RequestSucceeded,
    RequestTimedOut,
    UnexpectedResponse,
    ValueChanged,
    _new,
    _set_binding,
    _set_notification,
    _set_value,
)
from .models import (
    Bind,
    Binding,
    Debug,
    DebugMessage,
    ErrorResponse,
    Exec,
    Ignore,
    ModuleMeta,
    Notification,
    Request,
    SuccessResponse,
    Unbind,
    ValueFormat,
)

__all__ = ["PlaceOSClient", "AuthPlacement"]

AuthPlacement: TypeAlias = Literal["header", "query", "cookie"]
"""Where the credential goes: a header (``X-API-Key`` / ``Authorization``), the
query (``api-key`` / ``bearer_token``) or a cookie of the same name."""

_PLACEMENTS = ("header", "query", "cookie")

# Printable ASCII minus space, DQUOTE, comma, semicolon and backslash: RFC 6265's
# cookie-octet, what a cookie value may hold unquoted.
_COOKIE_OCTETS = frozenset(chr(c) for c in range(0x21, 0x7F) if chr(c) not in {'"', ",", ";", "\\"})

_Slot: TypeAlias = tuple[str, str, int, str] | tuple[str, str, int]
"""A binding's (sys, mod, index, name) or a debug stream's (sys, mod, index) as a
plain tuple: the tables are keyed by these, not by `Binding`, because hashing and
comparing a tuple of strings runs in C, where an attrs class runs Python code, and
a notify's lookup is on the hot path."""

_NO_VALUE: Any = object()
"""A binding's cached value before its first notify."""

_BIND = "bind"
_UNBIND = "unbind"
_EXEC = "exec"
_DEBUG = "debug"
_IGNORE = "ignore"


class _Sub:
    """A binding or debug stream the application holds, reference-counted.

    ``refs`` counts binds minus unbinds, less the binds that failed, timed out or
    were aborted; at zero the sub is detached from its table. ``waiters`` are the
    application's binds waiting for the server's answer (or, while disconnected,
    for a connection). ``wire`` is the id of the bind/debug in flight, ``deadline``
    its own deadline when it is a re-send for references already held.
    """

    __slots__ = (
        "attached",
        "confirmed",
        "deadline",
        "debug",
        "key",
        "refs",
        "slot",
        "value",
        "waiters",
        "wire",
    )

    def __init__(self, key: Binding | ModuleMeta, slot: _Slot, debug: bool) -> None:
        self.key = key
        self.slot = slot
        self.debug = debug
        self.refs = 0
        self.waiters: list[_Req] = []
        self.wire: int | None = None
        self.deadline: float | None = None
        self.confirmed = False
        self.attached = True
        self.value: Any = _NO_VALUE


class _Req:
    """An application request waiting for its end (``sub`` for binds and debugs)."""

    __slots__ = ("deadline", "id", "kind", "sub", "timeout")

    def __init__(self, id_: int, kind: str, sub: _Sub | None, timeout: float) -> None:
        self.id = id_
        self.kind = kind
        self.sub = sub
        self.timeout = timeout
        self.deadline: float | None = None


class _Internal:
    """A request the client sent on its own (an unbind after a lost bind): its
    answer, or its timeout, concerns nobody."""

    __slots__ = ("deadline", "id")

    def __init__(self, id_: int) -> None:
        self.id = id_
        self.deadline: float | None = None


_Timed: TypeAlias = _Req | _Sub | _Internal


def _seconds(name: str, value: object) -> float:
    if (
        value.__class__ is bool
        or not isinstance(value, int | float)
        or not 0 < value < math.inf  # also refuses NaN
    ):
        raise LocalProtocolError(f"{name} must be a positive, finite number of seconds")
    return float(value)


def _optional_seconds(name: str, value: object) -> float | None:
    return None if value is None else _seconds(name, value)


def _check_secret(secret: object, what: str, placement: str) -> str:
    """``secret`` if it can travel in ``placement`` as is; the error never quotes it."""
    if not isinstance(secret, str) or not secret:
        raise LocalProtocolError(f"{what} must be a non-empty str")
    if placement == "cookie":
        if not all(ch in _COOKIE_OCTETS for ch in secret):
            raise LocalProtocolError(
                f"{what} cannot be sent in a cookie: it must be printable ASCII without "
                "spaces, '\"', ',', ';' or '\\'"
            )
    elif not (secret.isascii() and secret.isprintable() and secret.strip(" ") == secret):
        raise LocalProtocolError(
            f"{what} cannot be sent in the {placement}: it must be printable ASCII "
            "without leading or trailing spaces"
        )
    return secret


def _check_target(sys: str, mod: str, index: int) -> None:
    if sys.__class__ is not str or not sys:
        raise LocalProtocolError("sys must be a non-empty str (a system id)")
    if mod.__class__ is not str or not mod:
        raise LocalProtocolError("mod must be a non-empty str (a module name or id)")
    if index.__class__ is not int or index < 1:
        raise LocalProtocolError("index must be an int >= 1 (module indexes are 1-based)")


def _check_name(name: str) -> None:
    if name.__class__ is not str or not name:
        raise LocalProtocolError("name must be a non-empty str")


class PlaceOSClient:
    """The client session of the PlaceOS real-time WebSocket (see the module doc).

    Credentials: exactly one of ``api_key`` and ``bearer_token``, sent where
    ``auth`` says (`AuthPlacement`). ``fixed_device`` adds ``fixed_device=true`` to
    the query. Default deadlines: ``exec_timeout`` for exec, debug and ignore,
    ``bind_timeout`` for bind and unbind; each call may pass its own ``timeout``.
    ``heartbeat_interval`` / ``heartbeat_timeout`` drive the text heartbeat (None
    turns either off). ``value_format`` says how notify values are read
    (`ValueFormat`; AUTO accepts both servers, RAW or STRINGIFIED is exact).
    The credentials appear in no repr, event or error message.
    """

    __slots__ = (
        "_auth",
        "_bind_timeout",
        "_bindings",
        "_connected",
        "_events",
        "_exec_timeout",
        "_handshake",
        "_heard",
        "_heartbeat_interval",
        "_heartbeat_timeout",
        "_lost",
        "_next_id",
        "_out",
        "_ping_at",
        "_requests",
        "_seq",
        "_streams",
        "_timers",
        "_value_format",
        "_wire",
    )

    def __init__(
        self,
        *,
        api_key: str | None = None,
        bearer_token: str | None = None,
        auth: AuthPlacement = "header",
        fixed_device: bool = False,
        exec_timeout: float = 10.0,
        bind_timeout: float = 30.0,
        heartbeat_interval: float | None = 15.0,
        heartbeat_timeout: float | None = 60.0,
        value_format: ValueFormat = ValueFormat.AUTO,
    ) -> None:
        if auth not in _PLACEMENTS:
            raise LocalProtocolError(f"auth must be one of {', '.join(_PLACEMENTS)}")
        if (api_key is None) == (bearer_token is None):
            raise LocalProtocolError("give exactly one of api_key and bearer_token")
        if not isinstance(value_format, ValueFormat):
            raise LocalProtocolError("value_format must be a ValueFormat")
        self._handshake = _build_handshake(api_key, bearer_token, auth, fixed_device)
        # What repr shows of the credential: its kind and place, never its value.
        self._auth = f"{'api_key' if api_key is not None else 'bearer_token'} in the {auth}"
        self._exec_timeout = _seconds("exec_timeout", exec_timeout)
        self._bind_timeout = _seconds("bind_timeout", bind_timeout)
        self._heartbeat_interval = _optional_seconds("heartbeat_interval", heartbeat_interval)
        self._heartbeat_timeout = _optional_seconds("heartbeat_timeout", heartbeat_timeout)
        self._value_format = value_format

        self._connected = False
        self._next_id = 1
        self._out: list[str] = []
        self._events: list[Event] = []
        # Application requests not yet ended, by request id.
        self._requests: dict[int, _Req] = {}
        # What an answer's id resolves: a direct request, a bind/debug in flight
        # (its `_Sub`), or a request of the client's own.
        self._wire: dict[int, _Timed] = {}
        self._bindings: dict[tuple[str, str, int, str], _Sub] = {}
        self._streams: dict[tuple[str, str, int], _Sub] = {}
        # Deadlines: a heap of (deadline, seq, record), stale entries skipped lazily
        # (an entry is live while its record's deadline is still that deadline).
        self._timers: list[tuple[float, int, _Timed]] = []
        self._seq = 0
        self._ping_at: float | None = None
        self._heard = 0.0
        self._lost = False

    # -- the session protocol -------------------------------------------------------

    def handshake(self) -> ClientHandshake:
        """The credential (and ``fixed_device``) in the form chosen at construction."""
        return self._handshake

    def connection_made(self, now: float) -> list[Event]:
        """Start the heartbeat and send every held binding and debug stream again."""
        if self._connected:
            raise LocalProtocolError("connection_made() called twice without connection_lost()")
        self._connected = True
        self._heard = now
        self._lost = False
        interval = self._heartbeat_interval
        if interval is not None:
            self._out.append("ping")
            self._ping_at = now + interval
        for table in (self._bindings, self._streams):
            for sub in table.values():
                self._send_sub(sub, self._new_id())
                for req in sub.waiters:
                    self._arm(req, now + req.timeout)
                if sub.refs > len(sub.waiters):
                    # A re-send for references the application already holds.
                    default = self._exec_timeout if sub.debug else self._bind_timeout
                    self._arm(sub, now + default)
        return []

    def connection_lost(self, now: float) -> list[Event]:
        """Abort every request in flight; keep what the application holds.

        A no-op when not connected (a connection whose handshake failed calls it
        too): binds and debugs queued while disconnected keep waiting.
        """
        if not self._connected:
            return []
        self._connected = False
        self._ping_at = None
        events: list[Event] = []
        for req in self._requests.values():
            req.deadline = None
            events.append(RequestAborted(req.id, AbortReason.CONNECTION_LOST))
        self._requests.clear()
        self._wire.clear()
        self._timers.clear()
        self._out.clear()
        for table in (self._bindings, self._streams):
            for sub in list(table.values()):
                sub.refs -= len(sub.waiters)
                sub.waiters = []
                sub.wire = sub.deadline = None
                sub.confirmed = False
                if sub.refs <= 0:
                    self._detach(sub)
        return events

    def receive_message(self, data: str | bytes, now: float) -> list[Event]:
        """One whole text message from the server; never raises.

        Anything received counts as liveness. A notify is routed by its ``meta``;
        an answer by its ``id``.
        """
        self._heard = now
        try:
            response = decode_response(data, value_format=self._value_format)
        except DecodeError as exc:
            return [BadMessage(data, exc)]
        except Exception as exc:  # a codec bug must not take the connection down
            return [BadMessage(data, DecodeError(f"undecodable ({type(exc).__name__})"))]
        if isinstance(response, Notification):
            binding = response.binding
            value = response.value
            sub = self._bindings.get((binding.sys, binding.mod, binding.index, binding.name))
            if sub is not None:
                sub.value = value
            event = _new(ValueChanged)  # `_value_changed`, inlined
            _set_binding(event, binding)
            _set_value(event, value)
            _set_notification(event, response)
            return [event]
        if isinstance(response, SuccessResponse):
            return self._succeeded(response)
        if isinstance(response, ErrorResponse):
            return self._failed(response)
        if isinstance(response, DebugMessage):
            return [DebugLog(response)]
        return []  # Pong: liveness only

    def messages_to_send(self) -> list[str]:
        """Drain the text messages queued for the server, oldest first."""
        out = self._out
        if not out:
            return []
        self._out = []
        return out

    def next_deadline(self) -> float | None:
        """The earliest of the request deadlines, the next ping and the heartbeat expiry."""
        timers = self._timers
        while timers:
            deadline, _, record = timers[0]
            if record.deadline == deadline:
                break
            heapq.heappop(timers)
        best = timers[0][0] if timers else None
        ping_at = self._ping_at
        if ping_at is not None and (best is None or ping_at < best):
            best = ping_at
        limit = self._heartbeat_timeout
        if limit is not None and self._connected and not self._lost:
            expiry = self._heard + limit
            if best is None or expiry < best:
                best = expiry
        return best

    def handle_timer(self, now: float) -> list[Event]:
        """Fire everything due at ``now``: request deadlines, the ping, the heartbeat."""
        events: list[Event] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, record = heapq.heappop(timers)
            if record.deadline == deadline:
                record.deadline = None
                self._expire(record, now, events)
        if self._connected:
            ping_at = self._ping_at
            if ping_at is not None and now >= ping_at:
                self._out.append("ping")
                assert self._heartbeat_interval is not None
                self._ping_at = now + self._heartbeat_interval
            limit = self._heartbeat_timeout
            if limit is not None and not self._lost and now >= self._heard + limit:
                self._lost = True
                events.append(HeartbeatLost(limit))
        return events

    # -- requests -------------------------------------------------------------------

    def bind(
        self,
        sys: str,
        mod: str,
        name: str,
        *,
        index: int = 1,
        now: float,
        timeout: float | None = None,
    ) -> int:
        """Subscribe to status variable ``name`` of module ``mod`` (``index``) in ``sys``.

        Returns the request id. Values arrive as `ValueChanged`, also cached
        (`value`). Reference-counted: only the first bind of a binding is sent.
        """
        _check_target(sys, mod, index)
        _check_name(name)
        wait = self._timeout(timeout, self._bind_timeout)
        slot = (sys, mod, index, name)
        return self._acquire(self._bindings, slot, Binding(*slot), wait, now)

    def unbind(
        self,
        sys: str,
        mod: str,
        name: str,
        *,
        index: int = 1,
        now: float,
        timeout: float | None = None,
    ) -> int:
        """Release one reference to a binding; the ``unbind`` goes out at zero."""
        _check_target(sys, mod, index)
        _check_name(name)
        wait = self._timeout(timeout, self._bind_timeout)
        slot = (sys, mod, index, name)
        return self._release(self._bindings, slot, Binding(*slot), wait, now)

    def exec(
        self,
        sys: str,
        mod: str,
        name: str,
        *args: Any,
        index: int = 1,
        now: float,
        timeout: float | None = None,
    ) -> int:
        """Call method ``name`` with JSON ``args``; the result is `RequestSucceeded.value`.

        Raises `EncodeError` (a `LocalProtocolError`) for arguments JSON cannot
        carry. Aborted at once (`AbortReason.NOT_CONNECTED`) while disconnected.
        """
        _check_target(sys, mod, index)
        _check_name(name)
        wait = self._timeout(timeout, self._exec_timeout)
        rid = self._next_id
        text = encode_request(Exec(rid, sys, mod, name, index, args)).decode("utf-8")
        self._next_id = rid + 1
        if not self._connected:
            self._events.append(RequestAborted(rid, AbortReason.NOT_CONNECTED))
            return rid
        self._out.append(text)
        req = _Req(rid, _EXEC, None, wait)
        self._requests[rid] = self._wire[rid] = req
        self._arm(req, now + wait)
        return rid

    def debug(
        self,
        sys: str,
        mod: str,
        *,
        index: int = 1,
        now: float,
        timeout: float | None = None,
    ) -> int:
        """Forward module ``mod``'s log lines as `DebugLog` (reference-counted like bind).

        ``mod`` is in practice the module id (``mod-...``).
        """
        _check_target(sys, mod, index)
        wait = self._timeout(timeout, self._exec_timeout)
        slot = (sys, mod, index)
        return self._acquire(self._streams, slot, ModuleMeta(*slot), wait, now)

    def ignore(
        self,
        sys: str,
        mod: str,
        *,
        index: int = 1,
        now: float,
        timeout: float | None = None,
    ) -> int:
        """Release one reference to a debug stream; the ``ignore`` goes out at zero."""
        _check_target(sys, mod, index)
        wait = self._timeout(timeout, self._exec_timeout)
        slot = (sys, mod, index)
        return self._release(self._streams, slot, ModuleMeta(*slot), wait, now)

    def take_events(self) -> list[Event]:
        """Drain the events the client produced during the application's own calls.

        A bind answered from a confirmed binding, an unbind that only dropped a
        reference, an exec while disconnected...: these ids end inside the call
        that made them, so their event waits here, oldest first.
        """
        events = self._events
        if not events:
            return []
        self._events = []
        return events

    # -- state for the application --------------------------------------------------

    @property
    def connected(self) -> bool:
        """Between `connection_made` and `connection_lost`."""
        return self._connected

    def value(self, binding: Binding, default: Any = None) -> Any:
        """The last value notified for a held binding, else ``default``.

        The cache lives as long as the binding is held, across reconnects (until
        the fresh value arrives, it is the one from before the reconnect).
        """
        sub = self._bindings.get((binding.sys, binding.mod, binding.index, binding.name))
        if sub is None or sub.value is _NO_VALUE:
            return default
        return sub.value

    def has_value(self, binding: Binding) -> bool:
        """Whether a held binding has received a value (a null one counts)."""
        sub = self._bindings.get((binding.sys, binding.mod, binding.index, binding.name))
        return sub is not None and sub.value is not _NO_VALUE

    def is_bound(self, binding: Binding) -> bool:
        """Whether the server confirmed ``binding`` on the current connection."""
        sub = self._bindings.get((binding.sys, binding.mod, binding.index, binding.name))
        return sub is not None and sub.confirmed

    def holds(self, target: Binding | ModuleMeta) -> bool:
        """Whether the application holds ``target`` (a binding or a debug stream,
        confirmed or not): `bindings` without building the tuple (O(1), per unbind)."""
        if isinstance(target, Binding):
            slot: _Slot = (target.sys, target.mod, target.index, target.name)
            return slot in self._bindings
        return (target.sys, target.mod, target.index) in self._streams

    @property
    def bindings(self) -> tuple[Binding, ...]:
        """The bindings the application holds (confirmed or not), oldest first."""
        return tuple(cast("Binding", sub.key) for sub in self._bindings.values())

    @property
    def debug_streams(self) -> tuple[ModuleMeta, ...]:
        """The debug streams the application holds, oldest first."""
        return tuple(cast("ModuleMeta", sub.key) for sub in self._streams.values())

    @property
    def pending(self) -> tuple[int, ...]:
        """The ids of the requests that have not ended yet."""
        return tuple(self._requests)

    def __repr__(self) -> str:
        return (
            f"<PlaceOSClient {self._auth} connected={self._connected} "
            f"bindings={len(self._bindings)} debug_streams={len(self._streams)} "
            f"pending={len(self._requests)}>"
        )

    # -- internals ------------------------------------------------------------------

    def _new_id(self) -> int:
        rid = self._next_id
        self._next_id = rid + 1
        return rid

    @staticmethod
    def _timeout(timeout: float | None, default: float) -> float:
        return default if timeout is None else _seconds("timeout", timeout)

    def _arm(self, record: _Timed, deadline: float) -> None:
        record.deadline = deadline
        self._seq += 1
        timers = self._timers
        heapq.heappush(timers, (deadline, self._seq, record))
        # Ended requests leave stale entries behind; rebuild when they dominate.
        if len(timers) > 64 + 2 * (len(self._requests) + len(self._wire)):
            live = [entry for entry in timers if entry[2].deadline == entry[0]]
            heapq.heapify(live)
            self._timers = live

    def _send(self, command: Request) -> None:
        self._out.append(encode_request(command).decode("utf-8"))

    def _send_sub(self, sub: _Sub, wire: int) -> None:
        key = sub.key
        if sub.debug:
            self._send(Debug(wire, key.sys, key.mod, "debug", key.index))
        else:
            assert isinstance(key, Binding)
            self._send(Bind(wire, key.sys, key.mod, key.name, key.index))
        sub.wire = wire
        self._wire[wire] = sub

    def _release_command(self, key: Binding | ModuleMeta, wire: int) -> Unbind | Ignore:
        if isinstance(key, Binding):
            return Unbind(wire, key.sys, key.mod, key.name, key.index)
        return Ignore(wire, key.sys, key.mod, "ignore", key.index)

    def _acquire(
        self,
        table: dict[Any, _Sub],
        slot: _Slot,
        key: Binding | ModuleMeta,
        wait: float,
        now: float,
    ) -> int:
        rid = self._new_id()
        sub = table.get(slot)
        if sub is None:
            sub = table[slot] = _Sub(key, slot, debug=table is self._streams)
        sub.refs += 1
        if sub.confirmed:
            self._events.append(RequestSucceeded(rid))
            return rid
        req = _Req(rid, _DEBUG if sub.debug else _BIND, sub, wait)
        self._requests[rid] = req
        sub.waiters.append(req)
        if self._connected:
            if sub.wire is None:
                self._send_sub(sub, rid)
            self._arm(req, now + wait)
        return rid

    def _release(
        self,
        table: dict[Any, _Sub],
        slot: _Slot,
        key: Binding | ModuleMeta,
        wait: float,
        now: float,
    ) -> int:
        rid = self._new_id()
        sub = table.get(slot)
        if sub is not None:
            sub.refs -= 1
            if sub.refs > 0:
                self._events.append(RequestSucceeded(rid))
                return rid
            self._detach(sub)
        if not self._connected:
            # The server keeps nothing across connections: not sending it again is
            # the whole unbind.
            self._events.append(RequestSucceeded(rid))
            return rid
        # Held, in flight, or unknown to us (then the server is the judge): send it.
        self._send(self._release_command(key, rid))
        req = _Req(rid, _IGNORE if isinstance(key, ModuleMeta) else _UNBIND, None, wait)
        self._requests[rid] = self._wire[rid] = req
        self._arm(req, now + wait)
        return rid

    def _detach(self, sub: _Sub) -> None:
        """Forget ``sub`` (its references are gone); abort its binds never sent."""
        sub.attached = False
        table: dict[Any, _Sub] = self._streams if sub.debug else self._bindings
        if table.get(sub.slot) is sub:
            del table[sub.slot]
        if not self._connected and sub.waiters:
            for req in sub.waiters:
                del self._requests[req.id]
                self._events.append(RequestAborted(req.id, AbortReason.CANCELLED))
            sub.waiters = []

    def _release_on_server(self, sub: _Sub, now: float) -> None:
        """Send an unbind/ignore of the client's own: the server may hold ``sub``.

        Only called from a timer, and timers run only while connected.
        """
        internal = _Internal(self._new_id())
        self._send(self._release_command(sub.key, internal.id))
        self._wire[internal.id] = internal
        default = self._exec_timeout if sub.debug else self._bind_timeout
        self._arm(internal, now + default)

    def _succeeded(self, response: SuccessResponse) -> list[Event]:
        target = self._wire.pop(response.id, None)  # type: ignore[arg-type]
        if target is None:
            return [UnexpectedResponse(response)]
        target.deadline = None
        if isinstance(target, _Req):
            del self._requests[target.id]
            return [RequestSucceeded(target.id, response.value, response)]
        if isinstance(target, _Sub):
            target.wire = None
            target.confirmed = True
            waiters, target.waiters = target.waiters, []
            events: list[Event] = []
            for req in waiters:
                req.deadline = None
                del self._requests[req.id]
                events.append(RequestSucceeded(req.id, response.value, response))
            return events
        return []  # our own unbind/ignore

    def _failed(self, response: ErrorResponse) -> list[Event]:
        rid = response.id
        target = None if rid is None else self._wire.pop(rid, None)  # type: ignore[arg-type]
        if target is None:
            return [UnexpectedResponse(response)]
        target.deadline = None
        code, message = response.code, response.message
        if isinstance(target, _Req):
            del self._requests[target.id]
            return [RequestFailed(target.id, code, message, response)]
        if isinstance(target, _Sub):
            target.wire = None
            waiters, target.waiters = target.waiters, []
            events: list[Event] = []
            for req in waiters:
                req.deadline = None
                del self._requests[req.id]
                events.append(RequestFailed(req.id, code, message, response))
            if target.attached:
                target.refs -= len(waiters)
                if target.refs > 0:  # a re-send for references already held
                    events.append(BindingLost(target.key, response))
                self._detach(target)  # refused: nobody holds it now
            return events
        return []  # our own unbind/ignore

    def _expire(self, record: _Timed, now: float, events: list[Event]) -> None:
        """``record``'s deadline passed with no answer."""
        if isinstance(record, _Req):
            del self._requests[record.id]
            events.append(RequestTimedOut(record.id))
            sub = record.sub
            if sub is None:
                del self._wire[record.id]  # a late answer is unexpected
                return
            sub.waiters.remove(record)
            dropped = False
            if sub.wire is not None and not sub.waiters and sub.deadline is None:
                # Nobody waits for this bind any more: a late answer is unexpected.
                del self._wire[sub.wire]
                sub.wire = None
                dropped = True
            # A bind without waiters and without a re-send deadline has no
            # references beyond those waiters: dropping it leaves the count at zero.
            if sub.attached:
                sub.refs -= 1
                if sub.refs <= 0:
                    self._detach(sub)
                    if dropped:
                        self._release_on_server(sub, now)
        elif isinstance(record, _Sub):
            # A re-send after a reconnect got no answer: what was held is lost.
            assert record.wire is not None
            del self._wire[record.wire]
            record.wire = None
            for req in record.waiters:
                req.deadline = None
                del self._requests[req.id]
                events.append(RequestTimedOut(req.id))
            record.waiters = []
            if record.attached:
                events.append(BindingLost(record.key))
                self._detach(record)
                self._release_on_server(record, now)
        else:
            del self._wire[record.id]


def _build_handshake(
    api_key: str | None, bearer_token: str | None, auth: str, fixed_device: bool
) -> ClientHandshake:
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    if api_key is not None:
        key = _check_secret(api_key, "api_key", auth)
        if auth == "header":
            headers = (("X-API-Key", key),)
        elif auth == "query":
            query = (("api-key", key),)
        else:
            headers = (("Cookie", f"api-key={key}"),)
    else:
        token = _check_secret(bearer_token, "bearer_token", auth)
        if auth == "header":
            headers = (("Authorization", f"Bearer {token}"),)
        elif auth == "query":
            query = (("bearer_token", token),)
        else:
            headers = (("Cookie", f"bearer_token={token}"),)
    if fixed_device:
        query += (("fixed_device", "true"),)
    return ClientHandshake(headers=headers, query=query)
