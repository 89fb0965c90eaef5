"""One JSON backend for the whole core: orjson when installed, the stdlib otherwise.

Both backends give the same answers on the same input: NaN/Infinity literals, numbers
that overflow a double, lone surrogates, a byte order mark, invalid UTF-8 and nesting
too deep are all refused as `DecodeError`. Integers beyond 64 bits are the one
documented difference (orjson reads them as floats), so keep wire integers in range.

Call these as ``_json.loads(...)`` (attribute lookup at call time), so that
`set_backend` switches every codec at once; tests run every codec under both.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from typing import Any

from .errors import DecodeError, EncodeError

__all__ = [
    "BACKEND",
    "available_backends",
    "dumps",
    "dumps_floatless",
    "kept",
    "loads",
    "set_backend",
]

_orjson: Any
try:  # the `fast` extra
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised when orjson is absent
    _orjson = None
_orjson_decode: Callable[[Any], Any] = _orjson.loads if _orjson is not None else json.loads
_orjson_encode: Callable[[Any], bytes] = _orjson.dumps if _orjson is not None else bytes

Data = bytes | bytearray | memoryview | str

BACKEND: str = "json"
loads: Callable[..., Any]
dumps: Callable[[Any], bytes]

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _syntax_error(exc: json.JSONDecodeError) -> DecodeError:
    return DecodeError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")


def _check_size(data: Data, max_size: int | None) -> None:
    if max_size is not None and len(data) > max_size:
        raise DecodeError(f"message is {len(data)} bytes, over the limit of {max_size}")


def _reject_constant(name: str) -> Any:
    raise DecodeError(f"invalid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise DecodeError(f"invalid JSON: number {text[:40]} overflows a double")
    return value


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _all_pairs(pairs: list[tuple[str, Any]]) -> list[Any]:
    return [item for pair in pairs for item in pair]


# Reads objects as flat [key, value, ...] lists, so that a value a later duplicate key
# replaced is still there to be checked (orjson refuses a lone surrogate anywhere).
_pairs_decoder = json.JSONDecoder(
    object_pairs_hook=_all_pairs, parse_constant=_reject_constant, parse_float=_finite_float
)


def _has_surrogate(value: Any) -> bool:
    # Iterative: a deeply nested document must not turn into a RecursionError here.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
    return False


def _stdlib_loads(data: Data, *, max_size: int | None = None) -> Any:
    _check_size(data, max_size)
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        value = _decoder.decode(text)
    except DecodeError:
        raise
    except UnicodeDecodeError as exc:
        raise DecodeError(f"invalid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise _syntax_error(exc) from None
    except RecursionError:
        raise DecodeError("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than int() allows
        raise DecodeError(f"invalid JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(text) and _has_surrogate(_pairs_decoder.decode(text)):
        raise DecodeError("invalid JSON: lone surrogate in a string")
    return value


def _stdlib_dumps(obj: Any) -> bytes:
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
            "utf-8"
        )
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as exc:
        raise EncodeError(f"cannot encode as JSON: {exc}") from None


def _orjson_loads(data: Data, *, max_size: int | None = None) -> Any:
    if max_size is not None and len(data) > max_size:  # _check_size, inlined: hot path
        _check_size(data, max_size)
    try:
        return _orjson_decode(data)
    except _orjson.JSONDecodeError as exc:
        raise _syntax_error(exc) from None


def _has_nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list | tuple):
        return any(_has_nonfinite(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nonfinite(item) for item in value.values())
    return False


def _orjson_dumps(obj: Any) -> bytes:
    try:
        out: bytes = _orjson_encode(obj)
    except _orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits; the stdlib writes them, so fall back
        # before calling the value unencodable.
        return _stdlib_dumps(obj)
    # orjson writes NaN and infinities as null where the stdlib refuses them: look
    # for them only when a null appeared, so the common case costs one scan in C.
    if b"null" in out and _has_nonfinite(obj):
        raise EncodeError("cannot encode as JSON: NaN and infinities are not JSON numbers")
    return out


def dumps_floatless(obj: Any) -> bytes:
    """`dumps` for a document its caller knows holds no float (so no NaN to look for:
    the scan for one costs orjson's whole encoding time again on a short document)."""
    if dumps is _orjson_dumps:
        try:
            return _orjson_encode(obj)
        except _orjson.JSONEncodeError:
            return _stdlib_dumps(obj)
    return dumps(obj)


def kept(data: bytes) -> bytes:
    """``data`` (a `dumps` result) fit to be stored: orjson hands back each document
    in a buffer of at least 4 KiB, fine for a message sent at once, not for thousands
    of short ones kept for hours. A copy holds only its own bytes."""
    return bytes(memoryview(data))


def available_backends() -> tuple[str, ...]:
    """The backends this interpreter can use, preferred first."""
    return ("orjson", "json") if _orjson is not None else ("json",)


def set_backend(name: str) -> None:
    """Switch every codec to ``"orjson"`` or ``"json"`` (tests use this)."""
    global BACKEND, loads, dumps  # noqa: PLW0603 - the module is the switch
    if name == "orjson" and _orjson is not None:
        loads, dumps = _orjson_loads, _orjson_dumps
    elif name == "json":
        loads, dumps = _stdlib_loads, _stdlib_dumps
    else:
        raise ValueError(
            f"unknown or unavailable JSON backend {name!r}: this interpreter has "
            + " and ".join(repr(backend) for backend in available_backends())
        )
    BACKEND = name


def _backend_from_environment() -> None:
    chosen = os.environ.get(ENVIRONMENT_VARIABLE)
    if not chosen:
        set_backend(available_backends()[0])
        return
    try:
        set_backend(chosen)
    except ValueError:
        valid = " or ".join(available_backends())
        hint = (
            " (orjson is not installed: pip install 'protocore-ws[fast]')"
            if chosen == "orjson"
            else ""
        )
        raise ValueError(
            f"{ENVIRONMENT_VARIABLE}={chosen!r} is not a JSON backend protocore can use{hint}: "
            f"set {ENVIRONMENT_VARIABLE} to {valid}, or unset it to pick the fastest"
        ) from None


ENVIRONMENT_VARIABLE = "PROTOCORE_JSON"
_backend_from_environment()
