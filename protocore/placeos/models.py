"""The PlaceOS real-time WebSocket's messages as small frozen attrs classes.

Requests go from client to server (`Bind`, `Unbind`, `Exec`, `Debug`, `Ignore`, and
the raw text heartbeat `Ping`); responses come back (`SuccessResponse`,
`ErrorResponse`, `Notification`, `DebugMessage`, and the raw `Pong`). The models say
nothing about JSON: `protocore.placeos.codec` puts them on the wire and takes them off.

Enumerations keep values they do not know: an error number or a log level a newer
server invents survives decoding as a plain ``int`` or ``str``, so a client never drops
a message only because the server grew a value.
"""

from __future__ import annotations

import enum
from typing import Any, TypeAlias

import attrs

__all__ = [
    "ErrorCode",
    "LogLevel",
    "Dialect",
    "ValueFormat",
    "RequestId",
    "Binding",
    "ModuleMeta",
    "Meta",
    "Command",
    "Bind",
    "Unbind",
    "Exec",
    "Debug",
    "Ignore",
    "Ping",
    "Request",
    "SuccessResponse",
    "ErrorResponse",
    "Notification",
    "DebugMessage",
    "Pong",
    "Response",
    "error_code",
    "log_level",
]

RequestId: TypeAlias = int | str
"""A request id: the seed allows a number or a string; the reference server wants an int."""


class ErrorCode(enum.IntEnum):
    """The error numbers of an ``error`` reply (the seed's table)."""

    PARSE_ERROR = 0
    BAD_REQUEST = 1
    ACCESS_DENIED = 2
    REQUEST_FAILED = 3
    UNKNOWN_COMMAND = 4
    SYSTEM_NOT_FOUND = 5
    MODULE_NOT_FOUND = 6
    UNEXPECTED_FAILURE = 7


class LogLevel(enum.StrEnum):
    """The ``level`` of a ``debug`` message (Crystal's ``Log::Severity`` names)."""

    TRACE = "trace"
    DEBUG = "debug"
    INFO = "info"
    NOTICE = "notice"
    WARN = "warn"
    ERROR = "error"
    FATAL = "fatal"


class Dialect(enum.Enum):
    """Which server's wire form an encoder writes.

    ``CURRENT`` is the reference server (PlaceOS rest-api): errors carry the error
    number in ``error_code`` and an HTTP-like status in ``code``; notify values are
    raw JSON. ``SEED`` is the published document: the error number is ``code`` and
    notify values are stringified JSON. Decoders accept both without being told.
    """

    CURRENT = "current"
    SEED = "seed"


class ValueFormat(enum.Enum):
    """How a decoder reads a notify's ``value``.

    ``RAW`` takes it as it is (the reference server). ``STRINGIFIED`` requires a
    string holding a JSON document and parses it (the seed). ``AUTO`` parses a string
    when it holds a JSON document and keeps anything else as it is, as the reference
    TypeScript client does; it is ambiguous for a raw string that happens to be JSON
    text (a status ``"1"`` reads as the number 1), so a client that knows its server
    should say ``RAW`` or ``STRINGIFIED``. A missing or null ``value`` is None in all
    three. Only notifies are affected: exec results are raw JSON in both dialects.
    """

    AUTO = "auto"
    RAW = "raw"
    STRINGIFIED = "stringified"


_ERROR_CODES: dict[int, ErrorCode] = {member.value: member for member in ErrorCode}
_LOG_LEVELS: dict[str, LogLevel] = {member.value: member for member in LogLevel}


def error_code(value: int) -> ErrorCode | int:
    """``value`` as an `ErrorCode` when it is one, else unchanged (unknown numbers survive)."""
    if value.__class__ is int:
        return _ERROR_CODES.get(value, value)
    return value


def log_level(value: str) -> LogLevel | str:
    """``value`` as a `LogLevel` when it is one, else unchanged (unknown levels survive)."""
    if value.__class__ is str:
        return _LOG_LEVELS.get(value, value)
    return value


@attrs.frozen(slots=True)
class Binding:
    """What a ``bind`` subscribes to, and the key notifies are matched by.

    The server answers every bind of the same (sys, mod, index, name) with one
    stream of notifies, whose ``id`` is that of the first bind: match on this, never
    on the id.
    """

    sys: str
    mod: str
    index: int
    name: str


@attrs.frozen(slots=True)
class ModuleMeta:
    """A ``meta`` without ``name``: the seed's answer to ``debug`` names only the module."""

    sys: str
    mod: str
    index: int = 1


Meta: TypeAlias = Binding | ModuleMeta
"""A ``meta`` object: a `Binding` when it has a ``name``, a `ModuleMeta` otherwise."""


@attrs.frozen(slots=True)
class Command:
    """What every JSON request carries; use its subclasses, one per ``cmd``.

    ``index`` is 1-based (the first module of that name in the system is 1). For
    `Debug` and `Ignore`, ``mod`` is in practice a module id (``mod-...``).
    """

    id: RequestId
    sys: str
    mod: str
    name: str
    index: int = 1

    @property
    def binding(self) -> Binding:
        """The (sys, mod, index, name) this command addresses, as a binding key."""
        return Binding(self.sys, self.mod, self.index, self.name)


@attrs.frozen(slots=True)
class Bind(Command):
    """Subscribe to a status variable: a success, then a notify per change."""


@attrs.frozen(slots=True)
class Unbind(Command):
    """End a subscription; answered with a bare success even when nothing was bound."""


def _args(value: Any) -> tuple[Any, ...]:
    return value if value.__class__ is tuple else tuple(value)


@attrs.frozen(slots=True)
class Exec(Command):
    """Call a method on a module; ``args`` are its JSON arguments, in order."""

    args: tuple[Any, ...] = attrs.field(default=(), converter=_args)


@attrs.frozen(slots=True)
class Debug(Command):
    """Forward the module's log messages to this connection (as `DebugMessage`)."""


@attrs.frozen(slots=True)
class Ignore(Command):
    """Stop forwarding the module's log messages."""


@attrs.frozen(slots=True)
class Ping:
    """The application heartbeat: the raw text ``ping``, not JSON."""


Request: TypeAlias = Bind | Unbind | Exec | Debug | Ignore | Ping
"""Anything a client sends (``isinstance(x, Request)`` works: it is a union)."""


@attrs.frozen(slots=True)
class SuccessResponse:
    """A request succeeded.

    ``value`` is an exec's result (None when absent or null: the wire does not tell
    the two apart). ``meta`` echoes the request's target (a `ModuleMeta` for the seed's
    debug answer, which has no name); ``mod_id`` is the module id a seed server returns
    to ``debug``. ``http_status`` is the reference server's ``code`` on exec answers.
    """

    id: RequestId
    value: Any = None
    meta: Meta | None = None
    mod_id: str | None = None
    http_status: int | None = None


@attrs.frozen(slots=True)
class ErrorResponse:
    """A request failed.

    ``code`` is the error number (an `ErrorCode`, or a plain int the enum does not
    know). ``http_status`` is the reference server's HTTP-like ``code`` (500 unless a
    driver said otherwise); None means the message came in the seed's form, which has
    none, and the encoders then write the seed's form back. ``id`` is None when the
    server could not read the request's id.
    """

    id: RequestId | None
    code: ErrorCode | int = attrs.field(converter=error_code)
    message: str = ""
    http_status: int | None = 500


@attrs.frozen(slots=True, weakref_slot=False)
class Notification:
    """A bound status variable changed (or its first value, maybe before the success).

    ``id`` is that of the first bind for ``binding``; ``value`` is the decoded JSON.
    (No ``__weakref__`` slot: without one the codec can build it at a third of the
    cost, through a plain twin class; see `protocore.placeos.codec`.)
    """

    id: RequestId
    binding: Binding
    value: Any = None


@attrs.frozen(slots=True)
class DebugMessage:
    """A log line of a module being debugged.

    ``mod`` is the module id; ``klass`` the driver class (seed only); ``meta`` and
    ``id`` (the debug request's) come from the reference server only.
    """

    mod: str
    klass: str | None
    level: LogLevel | str = attrs.field(converter=log_level)
    message: str
    meta: Meta | None = None
    id: RequestId | None = None


@attrs.frozen(slots=True)
class Pong:
    """The heartbeat's answer: the raw text ``pong``; servers also send it unasked."""


Response: TypeAlias = SuccessResponse | ErrorResponse | Notification | DebugMessage | Pong
"""Anything a server sends (``isinstance(x, Response)`` works: it is a union)."""
