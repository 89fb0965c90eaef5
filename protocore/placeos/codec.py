"""PlaceOS messages to and from the wire: bytes in, models out, and back.

Four calls: `encode_request` / `decode_request` (the server decodes requests) and
`encode_response` / `decode_response` (the client decodes responses). The raw text
heartbeat goes through the same calls: ``decode_request(b"ping")`` is `Ping`,
``encode_response(Pong())`` is ``b"pong"``.

Decoders accept both wire dialects (see `Dialect`) without being told, tolerate
unknown fields, and fail only with `DecodeError`, whose ``path`` names the field in
the wire's spelling (``meta.index``). `decode_request` fails with its subclass
`RequestError`, which also carries the `ErrorCode` a server answers with and the
request's id when it could be read.

Speed is designed in. Each message type has two structure functions: a fast one that
reads the fields it needs with plain indexing and ``__class__ is`` checks and gives up
(by any exception) on the first surprise, and a checked one that validates field by
field and builds the precise error. The checked one runs only when the fast one gave
up, so a good message pays for no error machinery. The structure and unstructure
functions are registered once, at import, in cattrs converters (one per direction,
and per value format or dialect where those change the wiring); the decoders dispatch
on ``type``/``cmd`` by a dict lookup into hooks fetched from those converters, so no
per-call cattrs dispatch runs. Notifies repeat the same ``meta`` endlessly, so decoded
`Binding` objects are memoised (they are immutable; the memo is bounded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import cattrs

from protocore import _json
from protocore.errors import DecodeError, EncodeError, LocalProtocolError, describe_value

from .models import (
    _ERROR_CODES,
    _LOG_LEVELS,
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
    Pong,
    Request,
    RequestId,
    Response,
    SuccessResponse,
    Unbind,
    ValueFormat,
    error_code,
    log_level,
)

__all__ = [
    "RequestError",
    "encode_request",
    "decode_request",
    "encode_response",
    "decode_response",
]

_T = TypeVar("_T")
_Hook = Callable[[Any, Any], _T]

_PING = Ping()
_PONG = Pong()

_COMMANDS: dict[str, type[Command]] = {
    "bind": Bind,
    "unbind": Unbind,
    "exec": Exec,
    "debug": Debug,
    "ignore": Ignore,
}
_COMMAND_NAMES = ", ".join(_COMMANDS)
_RESPONSE_NAMES = "success, error, notify, debug"

# Enum members looked up as ``ValueFormat.AUTO`` cost a slow class-attribute access,
# and hashing one runs Python code: hot paths compare module-level aliases by identity.
_AUTO = ValueFormat.AUTO
_CURRENT = Dialect.CURRENT
_SEED = Dialect.SEED

# Decoded responses are built without their attrs ``__init__``: a frozen class's init
# goes through ``object.__setattr__`` once per field, about twice the cost of setting
# the slots directly. The builders below take values already validated and already
# converted (``code`` and ``level`` pass through their enum lookups first); a test
# checks that what they build equals what ``__init__`` builds.
_new = object.__new__


def _slot_setter(cls: type[Any], name: str) -> Callable[[Any, Any], None]:
    setter: Callable[[Any, Any], None] = getattr(cls, name).__set__
    return setter


_set_success_id = _slot_setter(SuccessResponse, "id")
_set_success_value = _slot_setter(SuccessResponse, "value")
_set_success_meta = _slot_setter(SuccessResponse, "meta")
_set_success_mod_id = _slot_setter(SuccessResponse, "mod_id")
_set_success_status = _slot_setter(SuccessResponse, "http_status")
_set_error_id = _slot_setter(ErrorResponse, "id")
_set_error_code = _slot_setter(ErrorResponse, "code")
_set_error_message = _slot_setter(ErrorResponse, "message")
_set_error_status = _slot_setter(ErrorResponse, "http_status")
_set_debug_mod = _slot_setter(DebugMessage, "mod")
_set_debug_klass = _slot_setter(DebugMessage, "klass")
_set_debug_level = _slot_setter(DebugMessage, "level")
_set_debug_message = _slot_setter(DebugMessage, "message")
_set_debug_meta = _slot_setter(DebugMessage, "meta")
_set_debug_id = _slot_setter(DebugMessage, "id")


class _NotificationTwin:
    """`Notification`'s slots with a plain ``__setattr__``: a notify is built as one and
    re-classed (allowed between classes of one layout), cheaper again than the setters.
    """

    __slots__ = Notification.__slots__
    id: Any
    binding: Any
    value: Any


def _notification(id_: RequestId, binding: Binding, value: Any) -> Notification:
    """``Notification(id_, binding, value)``, faster (see above)."""
    obj = _NotificationTwin()
    obj.id = id_
    obj.binding = binding
    obj.value = value
    obj.__class__ = Notification  # type: ignore[assignment]
    return obj  # type: ignore[return-value]


def _success(
    id_: RequestId, value: Any, meta: Meta | None, mod_id: str | None, status: int | None
) -> SuccessResponse:
    """``SuccessResponse(id_, value, meta, mod_id, status)``, faster (see above)."""
    obj = _new(SuccessResponse)
    _set_success_id(obj, id_)
    _set_success_value(obj, value)
    _set_success_meta(obj, meta)
    _set_success_mod_id(obj, mod_id)
    _set_success_status(obj, status)
    return obj


def _error(
    id_: RequestId | None, code: ErrorCode | int, message: str, status: int | None
) -> ErrorResponse:
    """``ErrorResponse(id_, code, message, status)`` for a converted ``code``."""
    obj = _new(ErrorResponse)
    _set_error_id(obj, id_)
    _set_error_code(obj, code)
    _set_error_message(obj, message)
    _set_error_status(obj, status)
    return obj


def _debug(  # noqa: PLR0917 - one parameter per field, like the model
    mod: str,
    klass: str | None,
    level: LogLevel | str,
    message: str,
    meta: Meta | None,
    id_: RequestId | None,
) -> DebugMessage:
    """``DebugMessage(mod, klass, level, message, meta, id_)`` for a converted ``level``."""
    obj = _new(DebugMessage)
    _set_debug_mod(obj, mod)
    _set_debug_klass(obj, klass)
    _set_debug_level(obj, level)
    _set_debug_message(obj, message)
    _set_debug_meta(obj, meta)
    _set_debug_id(obj, id_)
    return obj


class RequestError(DecodeError):
    """A request a server cannot act on, with what to answer it.

    ``code`` is the `ErrorCode` for the error reply: ``PARSE_ERROR`` when the message
    is not a JSON object (invalid JSON or UTF-8, too large, too deep, an array...),
    ``UNKNOWN_COMMAND`` for a ``cmd`` string that is not a command, ``BAD_REQUEST`` for
    a missing or ill-typed field (named by ``path``). ``id`` is the request's id when
    it could be read, so the reply can carry it; None otherwise.
    """

    code: ErrorCode
    id: RequestId | None

    def __init__(
        self,
        reason: str,
        path: str = "",
        *,
        code: ErrorCode = ErrorCode.BAD_REQUEST,
        id: RequestId | None = None,
    ) -> None:
        super().__init__(reason, path)
        self.code = code
        self.id = id

    def __repr__(self) -> str:
        return (
            f"RequestError({self.reason!r}, path={self.path!r}, code={self.code!r}, id={self.id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle (and copy) the keyword-only fields too, not just Exception.args.
        return (_request_error, (self.reason, self.path, self.code, self.id))

    def under(self, prefix: str) -> RequestError:
        """The same error located inside ``prefix``, keeping ``code`` and ``id``."""
        moved = super().under(prefix)
        return RequestError(moved.reason, moved.path, code=self.code, id=self.id)

    def to_response(self, *, http_status: int | None = 500) -> ErrorResponse:
        """The error reply a server sends for this request (``msg`` is ``str(self)``)."""
        return ErrorResponse(self.id, self.code, str(self), http_status)


def _request_error(reason: str, path: str, code: ErrorCode, id_: RequestId | None) -> RequestError:
    return RequestError(reason, path, code=code, id=id_)


# --------------------------------------------------------------------------------------
# Checked reading: field by field, with the path and what was expected.


def _got(value: Any) -> str:
    """``value`` named in JSON's terms, bounded (a 50 MB string stays short)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return f"the string {describe_value(value)}"
    return f"the number {describe_value(value)}"


def _wrong(path: str, expected: str, value: Any) -> DecodeError:
    return DecodeError(f"expected {expected}, got {_got(value)}", path)


def _missing(path: str, expected: str) -> DecodeError:
    return DecodeError(f"missing; expected {expected}", path)


def _object(value: Any, path: str) -> dict[str, Any]:
    if value.__class__ is not dict:
        raise _wrong(path, "a JSON object", value)
    return value


def _str(obj: dict[str, Any], key: str, path: str) -> str:
    try:
        value = obj[key]
    except KeyError:
        raise _missing(path, "a string") from None
    if value.__class__ is not str:
        raise _wrong(path, "a string", value)
    return value


def _opt_str(obj: dict[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None or value.__class__ is str:
        return value
    raise _wrong(path, "a string or null", value)


def _int(value: Any, path: str, expected: str = "an integer") -> int:
    # bool is an int subclass and floats compare equal to ints: neither is an integer.
    if value.__class__ is not int:
        raise _wrong(path, expected, value)
    return value


def _id_value(value: Any, path: str) -> RequestId:
    if value.__class__ is int or value.__class__ is str:
        return value
    raise _wrong(path, "an integer or a string", value)


def _id(obj: dict[str, Any], path: str = "id") -> RequestId:
    try:
        value = obj[path]
    except KeyError:
        raise _missing(path, "an integer or a string") from None
    return _id_value(value, path)


def _opt_id(obj: dict[str, Any], path: str = "id") -> RequestId | None:
    value = obj.get(path)
    if value is None:
        return None
    return _id_value(value, path)


def _index(obj: dict[str, Any], path: str) -> int:
    """A module index: 1-based; missing or null means 1."""
    value = obj.get("index")
    if value is None:
        return 1
    if value.__class__ is not int or value < 1:
        raise _wrong(path, "a positive integer (the 1-based module index) or null", value)
    return value


_BINDINGS: dict[tuple[Any, Any, Any, Any], Binding] = {}
_BINDINGS_MAX = 4096


def _checked_meta(value: Any, path: str, *, need_name: bool) -> Meta:
    meta = _object(value, path)
    sys = _str(meta, "sys", f"{path}.sys")
    mod = _str(meta, "mod", f"{path}.mod")
    index = _index(meta, f"{path}.index")
    name = meta.get("name")
    if name is None and not need_name:
        return ModuleMeta(sys, mod, index)
    if name is None:
        raise _missing(f"{path}.name", "a string (notifies name their status variable)")
    if name.__class__ is not str:
        raise _wrong(f"{path}.name", "a string", name)
    binding = Binding(sys, mod, index, name)
    # Memoise under the key the fast path looks up: the raw index (1, or None).
    if len(_BINDINGS) >= _BINDINGS_MAX:
        _BINDINGS.clear()
    _BINDINGS[(sys, mod, meta.get("index", 1), name)] = binding
    return binding


def _opt_meta(obj: dict[str, Any]) -> Meta | None:
    value = obj.get("meta")
    if value is None:
        return None
    return _checked_meta(value, "meta", need_name=False)


# The stdlib backend's check for lone surrogates walks the parsed value recursively and
# can exceed the recursion limit on a value a few hundred levels deep that the parser
# itself accepted; the decoders turn that into the DecodeError it should have been.
_TOO_DEEP = "invalid JSON: nested too deeply"


def _is_json_start(text: str) -> bool:
    """Whether ``text`` could hold a JSON document: saves a failed parse on plain text."""
    first = text[:1]
    if first in _JSON_SPACE and first:
        first = text.lstrip(" \t\r\n")[:1]
    return first != "" and first in _JSON_FIRST


_JSON_SPACE = " \t\r\n"
_JSON_FIRST = frozenset('{["-0123456789tfn')


def _auto_value(value: Any) -> Any:
    """AUTO: a string holding a JSON document is stringified JSON; anything else is raw."""
    if value.__class__ is str and _is_json_start(value):
        try:
            return _json.loads(value)
        except (DecodeError, RecursionError):  # see _TOO_DEEP
            return value
    return value


def _stringified_value(value: Any) -> Any:
    if value is None:
        return None
    if value.__class__ is not str:
        raise _wrong("value", "a string holding JSON (stringified value)", value)
    try:
        return _json.loads(value)
    except DecodeError as exc:
        raise DecodeError(f"stringified value is not JSON: {exc.reason}", "value") from None
    except RecursionError:  # see _TOO_DEEP
        raise DecodeError(f"stringified value is not JSON: {_TOO_DEEP}", "value") from None


def _value_reader(fmt: ValueFormat) -> Callable[[Any], Any]:
    if fmt is _AUTO:
        return _auto_value
    if fmt is ValueFormat.STRINGIFIED:
        return _stringified_value
    return lambda value: value


# --------------------------------------------------------------------------------------
# Requests.


def _request_id_for_reply(obj: dict[str, Any]) -> RequestId | None:
    value = obj.get("id")
    return value if value.__class__ is int or value.__class__ is str else None


def _checked_request(obj: Any) -> Request:
    """Validate a parsed request field by field; raise the `RequestError` to answer."""
    if obj.__class__ is not dict:
        raise RequestError(f"expected a JSON object, got {_got(obj)}", code=ErrorCode.PARSE_ERROR)
    reply_id = _request_id_for_reply(obj)
    if "cmd" not in obj:
        raise RequestError(f"missing; expected one of {_COMMAND_NAMES}", "cmd", id=reply_id)
    cmd = obj["cmd"]
    if cmd.__class__ is not str:
        raise RequestError(f"expected a command string, got {_got(cmd)}", "cmd", id=reply_id)
    cls = _COMMANDS.get(cmd)
    if cls is None:
        raise RequestError(
            f"unknown command {describe_value(cmd)}; expected one of {_COMMAND_NAMES}",
            "cmd",
            code=ErrorCode.UNKNOWN_COMMAND,
            id=reply_id,
        )
    try:
        id_ = _id(obj)
        sys = _str(obj, "sys", "sys")
        mod = _str(obj, "mod", "mod")
        name = _str(obj, "name", "name")
        index = _index(obj, "index")
        if cls is not Exec:
            return cls(id_, sys, mod, name, index)  # type: ignore[return-value]
        args = obj.get("args")
        if args is None:
            args = ()
        elif args.__class__ is not list:
            raise _wrong("args", "a JSON array of arguments", args)
        return Exec(id_, sys, mod, name, index, args)
    except DecodeError as exc:
        raise RequestError(exc.reason, exc.path, id=reply_id) from None


def _command_hook(cls: type[Command]) -> _Hook[Request]:
    def structure(obj: Any, _: Any = None) -> Request:
        try:
            id_ = obj["id"]
            sys = obj["sys"]
            mod = obj["mod"]
            name = obj["name"]
            index = obj.get("index", 1)
            if (
                (id_.__class__ is int or id_.__class__ is str)
                and sys.__class__ is str
                and mod.__class__ is str
                and name.__class__ is str
                and index.__class__ is int
                and index > 0
            ):
                return cls(id_, sys, mod, name, index)  # type: ignore[return-value]
        except Exception:  # noqa: S110 - any surprise: the checked path explains it
            pass
        return _checked_request(obj)

    return structure


def _exec_hook(obj: Any, _: Any = None) -> Request:
    try:
        id_ = obj["id"]
        sys = obj["sys"]
        mod = obj["mod"]
        name = obj["name"]
        index = obj.get("index", 1)
        args = obj.get("args")
        if args is None:
            args = ()
        if (
            (id_.__class__ is int or id_.__class__ is str)
            and sys.__class__ is str
            and mod.__class__ is str
            and name.__class__ is str
            and index.__class__ is int
            and index > 0
            and (args.__class__ is list or args.__class__ is tuple)
        ):
            return Exec(id_, sys, mod, name, index, args)
    except Exception:  # noqa: S110 - any surprise: the checked path explains it
        pass
    return _checked_request(obj)


def _encodable_id(value: Any, path: str, *, nullable: bool = False) -> Any:
    if (isinstance(value, int | str) and not isinstance(value, bool)) or (
        nullable and value is None
    ):
        return value
    raise EncodeError(f"{path}: expected an int or a str, got {describe_value(value)}")


def _encodable_str(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    raise EncodeError(f"{path}: expected a str, got {describe_value(value)}")


def _encodable_index(value: Any, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise EncodeError(f"{path}: expected a positive int, got {describe_value(value)}")


def _command_unhook(cmd: str) -> Callable[[Command], dict[str, Any]]:
    def unstructure(req: Command) -> dict[str, Any]:
        out = {
            "id": _encodable_id(req.id, "id"),
            "cmd": cmd,
            "sys": _encodable_str(req.sys, "sys"),
            "mod": _encodable_str(req.mod, "mod"),
            "index": _encodable_index(req.index, "index"),
            "name": _encodable_str(req.name, "name"),
        }
        if isinstance(req, Exec):
            out["args"] = list(req.args)
        return out

    return unstructure


def _request_converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=False)
    for cmd, cls in _COMMANDS.items():
        converter.register_structure_hook(cls, _exec_hook if cls is Exec else _command_hook(cls))
        converter.register_unstructure_hook(cls, _command_unhook(cmd))
    return converter


_REQUEST_CONVERTER = _request_converter()
"""The cattrs converter for requests (structure from parsed JSON, unstructure to it)."""

_REQUEST_HOOKS: dict[str, _Hook[Request]] = {
    cmd: _REQUEST_CONVERTER.get_structure_hook(cls) for cmd, cls in _COMMANDS.items()
}
_REQUEST_UNHOOKS: dict[type[Any], Callable[[Any], dict[str, Any]]] = {
    cls: _REQUEST_CONVERTER.get_unstructure_hook(cls) for cls in _COMMANDS.values()
}


def _is_raw(data: bytes | str, text: str) -> bool:
    if isinstance(data, str):
        return data == text
    return bytes(data) == text.encode("ascii")


def decode_request(data: bytes | str, *, max_size: int | None = None) -> Request:
    """One text message from a client as a `Request` (the raw ``ping`` is `Ping`).

    Raises `RequestError` (a `DecodeError`) saying what to answer; see its doc.
    ``max_size`` bounds the message's length before any parsing.
    """
    if len(data) == 4 and _is_raw(data, "ping"):
        return _PING
    try:
        obj = _json.loads(data, max_size=max_size)
    except DecodeError as exc:
        raise RequestError(exc.reason, exc.path, code=ErrorCode.PARSE_ERROR) from None
    except RecursionError:  # see _TOO_DEEP
        raise RequestError(_TOO_DEEP, code=ErrorCode.PARSE_ERROR) from None
    try:
        hook = _REQUEST_HOOKS[obj["cmd"]]
    except Exception:
        return _checked_request(obj)  # raises: no command to dispatch on
    return hook(obj, None)


def encode_request(req: Request) -> bytes:
    """A `Request` as the text message to send (``b"ping"`` for `Ping`).

    Raises `EncodeError` for a value the wire cannot carry (a bool id, index 0,
    an argument that is not JSON).
    """
    if req.__class__ is Ping:
        return b"ping"
    unhook = _REQUEST_UNHOOKS.get(req.__class__)
    if unhook is None:
        raise EncodeError(f"not a PlaceOS request: {describe_value(req)}")
    return _json.dumps(unhook(req))


# --------------------------------------------------------------------------------------
# Responses.


def _checked_success(obj: dict[str, Any]) -> SuccessResponse:
    id_ = _id(obj)
    meta = _opt_meta(obj)
    mod_id = _opt_str(obj, "mod_id", "mod_id")
    status = obj.get("code")
    if status is not None:
        status = _int(status, "code", "an integer (HTTP-like status) or null")
    return SuccessResponse(id_, obj.get("value"), meta, mod_id, status)


def _success_hook(obj: Any, _: Any = None) -> SuccessResponse:
    try:
        id_ = obj["id"]
        meta = obj.get("meta")
        if meta is not None:
            index = meta.get("index", 1)
            meta = _BINDINGS[(meta["sys"], meta["mod"], index, meta["name"])]
            if index.__class__ is not int and index is not None:
                raise TypeError  # a bool or float equal to a cached index: check it
        mod_id = obj.get("mod_id")
        status = obj.get("code")
        if (
            (id_.__class__ is int or id_.__class__ is str)
            and (mod_id is None or mod_id.__class__ is str)
            and (status is None or status.__class__ is int)
        ):
            return _success(id_, obj.get("value"), meta, mod_id, status)
    except Exception:  # noqa: S110 - any surprise: the checked path explains it
        pass
    return _checked_success(_object(obj, ""))


def _checked_error(obj: dict[str, Any]) -> ErrorResponse:
    # The rule: when ``error_code`` is present it is the error number (and ``code`` the
    # HTTP-like status); otherwise ``code`` is the error number (the seed's form).
    id_ = _opt_id(obj)
    number = obj.get("error_code")
    status: int | None
    if number is not None:
        number = _int(number, "error_code", "an integer (the error number)")
        status = obj.get("code")
        if status is not None:
            status = _int(status, "code", "an integer (HTTP-like status) or null")
    else:
        if obj.get("code") is None:
            raise _missing("code", "an integer error number (in error_code or code)")
        number = _int(obj["code"], "code", "an integer (the error number)")
        status = None
    message = _opt_str(obj, "msg", "msg")
    return _error(id_, error_code(number), message or "", status)


def _error_hook(obj: Any, _: Any = None) -> ErrorResponse:
    try:
        id_ = obj.get("id")
        number = obj.get("error_code")
        status = obj.get("code")
        if number is None:
            number, status = status, None
        message = obj.get("msg")
        if message is None:
            message = ""
        if (
            (id_.__class__ is int or id_.__class__ is str or id_ is None)
            and number.__class__ is int
            and (status is None or status.__class__ is int)
            and message.__class__ is str
        ):
            return _error(id_, _ERROR_CODES.get(number, number), message, status)
    except Exception:  # noqa: S110 - any surprise: the checked path explains it
        pass
    return _checked_error(_object(obj, ""))


def _checked_debug(obj: dict[str, Any]) -> DebugMessage:
    mod = _str(obj, "mod", "mod")
    klass = _opt_str(obj, "klass", "klass")
    level = _str(obj, "level", "level")
    message = _str(obj, "msg", "msg")
    meta = _opt_meta(obj)
    return _debug(mod, klass, log_level(level), message, meta, _opt_id(obj))


def _debug_hook(obj: Any, _: Any = None) -> DebugMessage:
    try:
        mod = obj["mod"]
        klass = obj.get("klass")
        level = obj["level"]
        message = obj["msg"]
        id_ = obj.get("id")
        meta = obj.get("meta")
        if meta is not None:
            index = meta.get("index", 1)
            meta = _BINDINGS[(meta["sys"], meta["mod"], index, meta["name"])]
            if index.__class__ is not int and index is not None:
                raise TypeError  # a bool or float equal to a cached index: check it
        if (
            mod.__class__ is str
            and (klass is None or klass.__class__ is str)
            and level.__class__ is str
            and message.__class__ is str
            and (id_.__class__ is int or id_.__class__ is str or id_ is None)
        ):
            return _debug(mod, klass, _LOG_LEVELS.get(level, level), message, meta, id_)
    except Exception:  # noqa: S110 - any surprise: the checked path explains it
        pass
    return _checked_debug(_object(obj, ""))


def _checked_notify(obj: dict[str, Any], read_value: Callable[[Any], Any]) -> Notification:
    id_ = _id(obj)
    if obj.get("meta") is None:
        raise _missing("meta", "an object naming the binding (sys, mod, index, name)")
    binding = _checked_meta(obj["meta"], "meta", need_name=True)
    assert isinstance(binding, Binding)
    return Notification(id_, binding, read_value(obj.get("value")))


def _notify_hook(fmt: ValueFormat) -> _Hook[Notification]:
    read_value = _value_reader(fmt)
    auto = fmt is _AUTO

    def structure(obj: Any, _: Any = None) -> Notification:
        try:
            meta = obj["meta"]
            index = meta.get("index", 1)
            binding = _BINDINGS[(meta["sys"], meta["mod"], index, meta["name"])]
            id_ = obj["id"]
            if (index.__class__ is int or index is None) and (
                id_.__class__ is int or id_.__class__ is str
            ):
                value = obj.get("value")
                if auto:
                    # Inlined `_auto_value`: only a string can be stringified JSON.
                    if value.__class__ is str and _is_json_start(value):
                        value = _auto_value(value)
                else:
                    value = read_value(value)
                return _notification(id_, binding, value)
        except Exception:  # noqa: S110 - any surprise: the checked path explains it
            pass
        return _checked_notify(_object(obj, ""), read_value)

    return structure


def _meta_unhook(meta: Meta) -> dict[str, Any]:
    if isinstance(meta, Binding):
        return {
            "sys": _encodable_str(meta.sys, "meta.sys"),
            "mod": _encodable_str(meta.mod, "meta.mod"),
            "index": _encodable_index(meta.index, "meta.index"),
            "name": _encodable_str(meta.name, "meta.name"),
        }
    if isinstance(meta, ModuleMeta):
        return {
            "sys": _encodable_str(meta.sys, "meta.sys"),
            "mod": _encodable_str(meta.mod, "meta.mod"),
            "index": _encodable_index(meta.index, "meta.index"),
        }
    raise EncodeError(f"meta: expected a Binding or a ModuleMeta, got {describe_value(meta)}")


def _encodable_int(value: Any, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise EncodeError(f"{path}: expected an int, got {describe_value(value)}")


def _success_unhook(dialect: Dialect) -> Callable[[SuccessResponse], dict[str, Any]]:
    def unstructure(resp: SuccessResponse) -> dict[str, Any]:
        out: dict[str, Any] = {"id": _encodable_id(resp.id, "id"), "type": "success"}
        if resp.meta is not None:
            out["meta"] = _meta_unhook(resp.meta)
        if resp.value is not None:
            out["value"] = resp.value
        if resp.mod_id is not None:
            out["mod_id"] = _encodable_str(resp.mod_id, "mod_id")
        if resp.http_status is not None and dialect is _CURRENT:
            out["code"] = _encodable_int(resp.http_status, "http_status")
        return out

    return unstructure


def _error_unhook(dialect: Dialect) -> Callable[[ErrorResponse], dict[str, Any]]:
    def unstructure(resp: ErrorResponse) -> dict[str, Any]:
        out: dict[str, Any] = {"id": _encodable_id(resp.id, "id", nullable=True), "type": "error"}
        number = _encodable_int(resp.code, "code")
        if dialect is _SEED:
            out["code"] = number
        else:
            out["error_code"] = number
            status = 500 if resp.http_status is None else resp.http_status
            out["code"] = _encodable_int(status, "http_status")
        out["msg"] = _encodable_str(resp.message, "message")
        return out

    return unstructure


def _notify_unhook(dialect: Dialect) -> Callable[[Notification], dict[str, Any]]:
    seed = dialect is _SEED

    def unstructure(resp: Notification) -> dict[str, Any]:
        # The common case, checked by exact classes and written in one go; anything
        # else takes the checked way below, which names what cannot be encoded.
        binding = resp.binding
        id_ = resp.id
        if binding.__class__ is Binding and (id_.__class__ is int or id_.__class__ is str):
            sys = binding.sys
            mod = binding.mod
            index = binding.index
            name = binding.name
            if (
                sys.__class__ is str
                and mod.__class__ is str
                and name.__class__ is str
                and index.__class__ is int
                and index >= 1
            ):
                value = resp.value
                if seed:
                    value = _json.dumps(value).decode("utf-8")
                return {
                    "id": id_,
                    "type": "notify",
                    "value": value,
                    "meta": {"sys": sys, "mod": mod, "index": index, "name": name},
                }
        return _checked_notify_wire(resp, seed)

    return unstructure


def _checked_notify_wire(resp: Notification, seed: bool) -> dict[str, Any]:
    if not isinstance(resp.binding, Binding):
        raise EncodeError(f"binding: expected a Binding, got {describe_value(resp.binding)}")
    value = resp.value
    if seed:
        value = _json.dumps(value).decode("utf-8")
    return {
        "id": _encodable_id(resp.id, "id"),
        "type": "notify",
        "value": value,
        "meta": _meta_unhook(resp.binding),
    }


def _debug_unhook(resp: DebugMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "debug"}
    if resp.id is not None:
        out["id"] = _encodable_id(resp.id, "id")
    out["mod"] = _encodable_str(resp.mod, "mod")
    if resp.klass is not None:
        out["klass"] = _encodable_str(resp.klass, "klass")
    out["level"] = str(_encodable_str(resp.level, "level"))
    out["msg"] = _encodable_str(resp.message, "message")
    if resp.meta is not None:
        out["meta"] = _meta_unhook(resp.meta)
    return out


def _response_decoder(fmt: ValueFormat) -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=False)
    converter.register_structure_hook(SuccessResponse, _success_hook)
    converter.register_structure_hook(ErrorResponse, _error_hook)
    converter.register_structure_hook(Notification, _notify_hook(fmt))
    converter.register_structure_hook(DebugMessage, _debug_hook)
    return converter


def _response_encoder(dialect: Dialect) -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=False)
    converter.register_unstructure_hook(SuccessResponse, _success_unhook(dialect))
    converter.register_unstructure_hook(ErrorResponse, _error_unhook(dialect))
    converter.register_unstructure_hook(Notification, _notify_unhook(dialect))
    converter.register_unstructure_hook(DebugMessage, _debug_unhook)
    return converter


_RESPONSE_DECODERS = {fmt: _response_decoder(fmt) for fmt in ValueFormat}
"""The cattrs converters structuring parsed responses, one per notify `ValueFormat`."""
_RESPONSE_ENCODERS = {dialect: _response_encoder(dialect) for dialect in Dialect}
"""The cattrs converters unstructuring responses, one per `Dialect`."""

_RESPONSE_CLASSES: dict[str, type[Any]] = {
    "success": SuccessResponse,
    "error": ErrorResponse,
    "notify": Notification,
    "debug": DebugMessage,
}
_RESPONSE_HOOKS: dict[ValueFormat, dict[str, _Hook[Response]]] = {
    fmt: {name: conv.get_structure_hook(cls) for name, cls in _RESPONSE_CLASSES.items()}
    for fmt, conv in _RESPONSE_DECODERS.items()
}
_AUTO_HOOKS = _RESPONSE_HOOKS[_AUTO]
_RESPONSE_UNHOOKS: dict[Dialect, dict[type[Any], Callable[[Any], dict[str, Any]]]] = {
    dialect: {cls: conv.get_unstructure_hook(cls) for cls in _RESPONSE_CLASSES.values()}
    for dialect, conv in _RESPONSE_ENCODERS.items()
}
_CURRENT_UNHOOKS = _RESPONSE_UNHOOKS[_CURRENT]
_notify_current = _CURRENT_UNHOOKS[Notification]
_SEED_UNHOOKS = _RESPONSE_UNHOOKS[_SEED]


_shape: Any
try:
    from . import _shape
except ImportError:  # pragma: no cover - the fast extra is not installed
    _shape = None
_UNSET: Any = _shape.UNSET if _shape is not None else object()
_NotifyShape: Any = _shape.Notify if _shape is not None else _UNSET


def _bad_type(obj: Any) -> DecodeError:
    if obj.__class__ is not dict:
        return _wrong("", "a JSON object", obj)
    if "type" not in obj:
        return _missing("type", f"one of {_RESPONSE_NAMES}")
    kind = obj["type"]
    if kind.__class__ is not str:
        return _wrong("type", f"one of {_RESPONSE_NAMES}", kind)
    return DecodeError(
        f"unknown response type {describe_value(kind)}; expected one of {_RESPONSE_NAMES}",
        "type",
    )


def decode_response(
    data: bytes | str,
    *,
    max_size: int | None = None,
    value_format: ValueFormat = ValueFormat.AUTO,
) -> Response:
    """One text message from a server as a `Response` (the raw ``pong`` is `Pong`).

    Accepts both dialects: errors with ``error_code`` + ``code`` or with ``code``
    alone, ids as ints or strings, a missing or null ``index`` as 1, a ``meta``
    without ``name`` as `ModuleMeta`. ``value_format`` says how to read a notify's
    ``value`` (see `ValueFormat`; other values are always raw). Raises `DecodeError`
    with the failing field's ``path`` (``type`` for an unknown message type).
    """
    if len(data) == 4 and _is_raw(data, "pong"):
        return _PONG
    if (
        _shape is not None
        and value_format is _AUTO
        and _json.BACKEND == "orjson"
        and (max_size is None or len(data) <= max_size)
    ):
        try:  # the fast extra's first try; on any doubt the ordinary way decides
            shaped = _shape.decode(data)
        except Exception:  # not in the shape: decode it the ordinary way
            shaped = None
        if shaped.__class__ is _NotifyShape:
            # The notify as the fast hook builds it (AUTO values), inlined: here a
            # call costs a tenth of the decode. A binding not seen yet goes the
            # ordinary way, which reads and remembers it.
            meta = shaped.meta
            index = meta.index
            binding = _BINDINGS.get(
                (meta.sys, meta.mod, 1 if index is _UNSET else index, meta.name)
            )
            if binding is not None:
                value = shaped.value
                if value.__class__ is str and _is_json_start(value):
                    value = _auto_value(value)
                obj: Any = _NotificationTwin()  # as in _notification
                obj.id = shaped.id
                obj.binding = binding
                obj.value = value
                obj.__class__ = Notification
                return obj  # type: ignore[no-any-return]
    hooks = _AUTO_HOOKS if value_format is _AUTO else _RESPONSE_HOOKS.get(value_format)
    if hooks is None:
        raise LocalProtocolError(f"value_format: expected a ValueFormat, got {value_format!r}")
    try:
        obj = _json.loads(data, max_size=max_size)
    except RecursionError:  # see _TOO_DEEP
        raise DecodeError(_TOO_DEEP) from None
    try:
        hook = hooks[obj["type"]]
    except Exception:
        raise _bad_type(obj) from None
    return hook(obj, None)


def encode_response(resp: Response, *, dialect: Dialect | None = None) -> bytes:
    """A `Response` as the text message to send (``b"pong"`` for `Pong`).

    ``dialect`` None writes each message in its own form: the current server's,
    except an `ErrorResponse` without ``http_status`` (decoded from the seed's form),
    which is written in the seed's form again. Name a `Dialect` to force one; the
    seed's form has no place for ``http_status``, and `Dialect.CURRENT` writes 500
    when it is None.
    """
    if resp.__class__ is Notification and (dialect is None or dialect is _CURRENT):
        # The hot one: a binding notified before, a scalar value (see `_encode_notify`).
        known = _META_JSON.get(id(resp.binding))
        if known is not None:
            binding, meta, dumps = known
            id_ = resp.id
            value = resp.value
            if binding is resp.binding and dumps is _json.dumps and id_.__class__ is int:
                try:  # "%d" writes any int as both backends do, or raises (4,300 digits)
                    if value is True:
                        return _NOTIFY_BY_INT % (id_, b"true", meta)
                    if value is False:
                        return _NOTIFY_BY_INT % (id_, b"false", meta)
                    if value is None:
                        return _NOTIFY_BY_INT % (id_, b"null", meta)
                except ValueError:
                    pass
        return _encode_notify(resp)
    if resp.__class__ is Pong:
        return b"pong"
    if dialect is None:
        seed = resp.__class__ is ErrorResponse and resp.http_status is None
        unhooks = _SEED_UNHOOKS if seed else _CURRENT_UNHOOKS
    elif dialect is _CURRENT:
        unhooks = _CURRENT_UNHOOKS
    elif dialect is _SEED:
        unhooks = _SEED_UNHOOKS
    else:
        raise LocalProtocolError(f"dialect: expected a Dialect or None, got {dialect!r}")
    unhook = unhooks.get(resp.__class__)
    if unhook is None:
        raise EncodeError(f"not a PlaceOS response: {describe_value(resp)}")
    if type(resp) is Notification and resp.value.__class__ in _SCALARS:
        return _json.dumps_floatless(unhook(resp))
    return _json.dumps(unhook(resp))


def _encode_notify(resp: Notification) -> bytes:
    """`encode_response` of a notify in the current dialect (see `_META_JSON`).

    A binding notified before has its ``meta`` serialised already: the message is that
    text and the id's and value's, put in a template. JSON's text composes (the
    compact form of an object is its members' texts in order), so this is the very
    output of serialising the whole object, on either backend; on any doubt or error
    the whole object is serialised instead, which decides (and words any error).
    """
    binding = resp.binding
    known = _META_JSON.get(id(binding))
    if (known is None or known[0] is not binding) and binding.__class__ is Binding:
        try:  # an equal binding made afresh (a server that builds one per change)
            known = _META_BY_VALUE.get(binding)
        except TypeError:  # a field that is not even hashable: the full path words it
            known = None
    if known is not None and known[2] is _json.dumps:
        id_ = resp.id
        value = resp.value
        try:
            if value is True:
                text = b"true"
            elif value is False:
                text = b"false"
            elif value is None:
                text = b"null"
            elif value.__class__ is int:
                text = b"%d" % value
            elif value.__class__ is str:
                text = _json.dumps_floatless(value)
            else:
                text = _json.dumps(value)
            if id_.__class__ is int:
                return _NOTIFY_BY_INT % (id_, text, known[1])
            if id_.__class__ is str:
                return _NOTIFY_BY_TEXT % (_json.dumps_floatless(id_), text, known[1])
        except Exception:  # noqa: S110 - the whole object's serialisation decides
            pass
    wire = _notify_current(resp)
    out = _json.dumps_floatless(wire) if resp.value.__class__ in _SCALARS else _json.dumps(wire)
    if binding.__class__ is Binding:
        if len(_META_BY_VALUE) >= _BINDINGS_MAX or len(_META_JSON) >= _BINDINGS_MAX:
            _META_JSON.clear()
            _META_BY_VALUE.clear()
        entry = (binding, _json.kept(_json.dumps_floatless(wire["meta"])), _json.dumps)
        _META_JSON[id(binding)] = _META_BY_VALUE[binding] = entry
    return out


_SCALARS = frozenset({bool, int, str, type(None)})
_NOTIFY_BY_INT = b'{"id":%d,"type":"notify","value":%b,"meta":%b}'
_NOTIFY_BY_TEXT = b'{"id":%b,"type":"notify","value":%b,"meta":%b}'

# The serialised ``meta`` of each binding notified lately, by identity (a binding is
# immutable and the entry holds it, so its id is not reused meanwhile), with the
# backend's ``dumps`` that wrote it: a server notifies the same bindings over and over.
_META_JSON: dict[int, tuple[Binding, bytes, Callable[[Any], bytes]]] = {}
# The same entries by value, for an equal binding made afresh: it finds the entry
# without adding one, so both hold one per distinct binding. Keyed by identity alone,
# a server that builds a Binding per change filled the memo with copies of the same
# few bindings and threw it away every 4096 notifies.
_META_BY_VALUE: dict[Binding, tuple[Binding, bytes, Callable[[Any], bytes]]] = {}
