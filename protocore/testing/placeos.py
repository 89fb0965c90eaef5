"""Hypothesis strategies for the PlaceOS real-time WebSocket: models, wire messages, near misses.

- Models: `requests` (every command and the ``ping`` heartbeat) and `responses` (every
  reply type and ``pong``), built from `bindings`, `metas`, `request_ids`...
- Wire messages: `request_messages` and `response_messages`, encoded by protocore in
  either `Dialect` (or both), so they are exactly what a client or server sends.
- Near misses: `lookalikes` (objects with every field optional and every value
  nearly right) and `garbage_messages`; decoding them yields a message or a
  `DecodeError` (a `RequestError` for requests), never anything else.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from protocore.placeos import (
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
    encode_request,
    encode_response,
)

from .values import int64s, json_values, texts

__all__ = [
    "FIELDS",
    "WORDS",
    "request_ids",
    "indexes",
    "bindings",
    "metas",
    "commands",
    "requests",
    "successes",
    "errors",
    "debug_messages",
    "notifications",
    "responses",
    "request_messages",
    "response_messages",
    "near_values",
    "lookalikes",
    "garbage_messages",
]

#: Every field name either dialect uses, in requests or responses.
FIELDS = (
    "id",
    "cmd",
    "type",
    "sys",
    "mod",
    "index",
    "name",
    "args",
    "value",
    "meta",
    "msg",
    "code",
    "error_code",
    "mod_id",
    "klass",
    "level",
)
#: Every ``cmd`` and ``type`` value.
WORDS = ("bind", "unbind", "exec", "debug", "ignore", "success", "error", "notify")


def request_ids() -> st.SearchStrategy[RequestId]:
    """Request ids: 64-bit integers or strings (the seed allows both)."""
    return st.one_of(int64s(), texts())


def indexes() -> st.SearchStrategy[int]:
    """Module indexes: 1-based, up to 2**31 - 1."""
    return st.integers(min_value=1, max_value=2**31 - 1)


def bindings() -> st.SearchStrategy[Binding]:
    """(sys, mod, index, name) keys of bound status variables."""
    return st.builds(Binding, texts(), texts(), indexes(), texts())


def metas() -> st.SearchStrategy[Meta | None]:
    """A response's ``meta``: none, a `Binding`, or a `ModuleMeta` (no name)."""
    return st.one_of(st.none(), bindings(), st.builds(ModuleMeta, texts(), texts(), indexes()))


def commands(cls: type[Command]) -> st.SearchStrategy[Command]:
    """Requests of one command class (`Bind`, `Unbind`, `Debug`, `Ignore`; `Exec` gets
    JSON ``args`` too)."""
    if cls is Exec:
        args = st.lists(json_values(), max_size=4).map(tuple)
        return st.builds(Exec, request_ids(), texts(), texts(), texts(), indexes(), args)
    return st.builds(cls, request_ids(), texts(), texts(), texts(), indexes())


def requests() -> st.SearchStrategy[Request]:
    """Every request a client sends: the five commands and the ``ping`` heartbeat."""
    return st.one_of(*(commands(cls) for cls in (Bind, Unbind, Exec, Debug, Ignore))) | st.just(
        Ping()
    )


def _statuses() -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), st.integers(100, 599))


def successes() -> st.SearchStrategy[SuccessResponse]:
    """Success replies: any JSON value, meta, module id and HTTP-like status."""
    return st.builds(
        SuccessResponse, request_ids(), json_values(), metas(), st.none() | texts(), _statuses()
    )


def errors() -> st.SearchStrategy[ErrorResponse]:
    """Error replies: known and unknown error numbers; ``http_status`` None is the seed's form."""
    codes = st.one_of(st.sampled_from(ErrorCode), st.integers(-(2**31), 2**31 - 1))
    return st.builds(ErrorResponse, st.none() | request_ids(), codes, texts(), _statuses())


def debug_messages() -> st.SearchStrategy[DebugMessage]:
    """Debug log lines: known and unknown levels, with or without meta and id."""
    levels = st.one_of(st.sampled_from(LogLevel), texts())
    return st.builds(
        DebugMessage,
        texts(),
        st.none() | texts(),
        levels,
        texts(),
        metas(),
        st.none() | request_ids(),
    )


def notifications(values: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Notification]:
    """Notifies of ``values`` (default: any JSON, and strings that look like JSON text,
    the case where `ValueFormat.AUTO` is ambiguous)."""
    if values is None:
        tricky = st.sampled_from(["", "1", "null", " [1]", '"x"', "true story"])
        values = st.one_of(texts(), tricky, json_values())
    return st.builds(Notification, request_ids(), bindings(), values)


def responses() -> st.SearchStrategy[Response]:
    """Every response a server sends: success, error, notify, debug and ``pong``."""
    return st.one_of(successes(), errors(), debug_messages(), notifications(), st.just(Pong()))


def request_messages() -> st.SearchStrategy[bytes]:
    """Valid request messages as protocore's client writes them (requests have one
    form in both dialects)."""
    return requests().map(encode_request)


def response_messages(dialect: Dialect | None = None) -> st.SearchStrategy[bytes]:
    """Valid response messages written in ``dialect``: `Dialect.CURRENT` (raw notify
    values, ``error_code`` + HTTP-like ``code``), `Dialect.SEED` (stringified values,
    ``code`` is the error number), or None for both."""
    chosen = st.sampled_from(Dialect) if dialect is None else st.just(dialect)
    return st.builds(lambda r, d: encode_response(r, dialect=d), responses(), chosen)


def near_values() -> st.SearchStrategy[Any]:
    """Small JSON values close to what a field holds: tiny numbers, booleans, null,
    the command and type words, the empty string, and lists and objects of them."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.floats(-2, 2),
        st.sampled_from(WORDS),
        st.just(""),
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts(), inner, max_size=3),
    )


def lookalikes() -> st.SearchStrategy[dict[str, Any]]:
    """Objects that look like messages of either direction: every field optional, each
    value something nearby (small numbers, command and type words, nested bits), and
    ``meta`` often a meta-like object; they reach every branch of the decoders."""
    near = near_values()
    meta = st.fixed_dictionaries({}, optional=dict.fromkeys(["sys", "mod", "index", "name"], near))
    return st.fixed_dictionaries({}, optional={**dict.fromkeys(FIELDS, near), "meta": meta | near})


def garbage_messages() -> st.SearchStrategy[bytes]:
    """Wire messages that are not messages: look-alikes and any JSON as UTF-8, raw
    bytes, and the heartbeat words with something extra."""
    as_json = st.one_of(lookalikes(), near_values()).map(
        lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8")
    )
    words = st.sampled_from([b"ping", b"pong", b"Ping", b"ping ", b" pong", b'"ping"', b""])
    return st.one_of(as_json, st.binary(max_size=64), words)
