"""PlaceOSClient as a pure session: messages and a fake clock in, events out.

No sockets and no clock: ``now`` is a float the test picks. Helpers build the
server's messages as JSON text (`success`, `error`, `notify`...) and read back what
the client queued (`sent`). The last section drives the client through a real
`ClientConnection` against a scripted server session, in memory.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocore.connection import ClientConnection, ConnectionState, ServerConnection
from protocore.errors import DecodeError, EncodeError, LocalProtocolError
from protocore.events import BadMessage, Connected, Event, LivenessLost
from protocore.placeos import (
    AbortReason,
    Binding,
    BindingLost,
    DebugLog,
    DebugMessage,
    ErrorCode,
    ErrorResponse,
    HeartbeatLost,
    LogLevel,
    ModuleMeta,
    Notification,
    PlaceOSClient,
    RequestAborted,
    RequestFailed,
    RequestSucceeded,
    RequestTimedOut,
    SuccessResponse,
    UnexpectedResponse,
    ValueChanged,
    ValueFormat,
)
from protocore.placeos.events import _value_changed
from protocore.session import ClientHandshake, Rejection

SECRET = "s3cr3t-KEY-7f9a"
SYS, MOD, NAME = "sys-1234", "Bookings", "bookings"
B = Binding(SYS, MOD, 1, NAME)
B2 = Binding(SYS, MOD, 2, NAME)
STREAM = ModuleMeta(SYS, "mod-Z6XXB1doL4", 1)

# -- helpers ------------------------------------------------------------------------


def make(**kwargs: Any) -> PlaceOSClient:
    """A client with the test key and no heartbeat unless asked (timers stay simple)."""
    if "bearer_token" not in kwargs:
        kwargs.setdefault("api_key", SECRET)
    kwargs.setdefault("heartbeat_interval", None)
    kwargs.setdefault("heartbeat_timeout", None)
    return PlaceOSClient(**kwargs)


def connected(now: float = 0.0, **kwargs: Any) -> PlaceOSClient:
    """A connected client whose opening messages have been drained."""
    client = make(**kwargs)
    assert client.connection_made(now) == []
    client.messages_to_send()
    return client


def sent(client: PlaceOSClient) -> list[Any]:
    """What the client queued: JSON requests parsed, the raw heartbeat as ``"ping"``."""
    return [m if m == "ping" else json.loads(m) for m in client.messages_to_send()]


def meta(binding: Binding) -> dict[str, Any]:
    return {"sys": binding.sys, "mod": binding.mod, "index": binding.index, "name": binding.name}


def success(rid: int | str, **fields: Any) -> str:
    return json.dumps({"id": rid, "type": "success", **fields})


def error_current(rid: int | None, number: int, msg: str = "boom") -> str:
    """The reference server's form: number in ``error_code``, HTTP-like ``code``."""
    return json.dumps({"id": rid, "type": "error", "error_code": number, "code": 500, "msg": msg})


def error_seed(rid: int | None, number: int, msg: str = "boom") -> str:
    """The seed document's form: the number in ``code``."""
    return json.dumps({"id": rid, "type": "error", "code": number, "msg": msg})


def notify(binding: Binding, value: Any, *, rid: int = 1, stringified: bool = False) -> str:
    wire_value = json.dumps(value) if stringified else value
    return json.dumps({"id": rid, "type": "notify", "value": wire_value, "meta": meta(binding)})


def bind_request(rid: int, binding: Binding = B) -> dict[str, Any]:
    return {"id": rid, "cmd": "bind", **meta(binding)}


def unbind_request(rid: int, binding: Binding = B) -> dict[str, Any]:
    return {"id": rid, "cmd": "unbind", **meta(binding)}


def debug_request(rid: int, stream: ModuleMeta = STREAM) -> dict[str, Any]:
    return {
        "id": rid,
        "cmd": "debug",
        "sys": stream.sys,
        "mod": stream.mod,
        "index": stream.index,
        "name": "debug",
    }


def ignore_request(rid: int, stream: ModuleMeta = STREAM) -> dict[str, Any]:
    return {**debug_request(rid, stream), "cmd": "ignore", "name": "ignore"}


def bound(client: PlaceOSClient, binding: Binding = B, now: float = 0.0) -> int:
    """Bind and confirm ``binding``; the bind's id."""
    rid = client.bind(binding.sys, binding.mod, binding.name, index=binding.index, now=now)
    (request,) = sent(client)
    events = client.receive_message(success(request["id"], meta=meta(binding)), now)
    assert [type(e) for e in events] == [RequestSucceeded]
    return rid


def ids(events: list[Event]) -> list[tuple[str, int]]:
    """(event class, request id) for the request events, in order."""
    return [(type(e).__name__, e.request_id) for e in events]  # type: ignore[attr-defined]


# -- construction and the handshake ---------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "headers", "query"),
    [
        ({"api_key": SECRET}, (("X-API-Key", SECRET),), ()),
        ({"api_key": SECRET, "auth": "header"}, (("X-API-Key", SECRET),), ()),
        ({"api_key": SECRET, "auth": "query"}, (), (("api-key", SECRET),)),
        ({"api_key": SECRET, "auth": "cookie"}, (("Cookie", f"api-key={SECRET}"),), ()),
        ({"bearer_token": "a.b-c_d"}, (("Authorization", "Bearer a.b-c_d"),), ()),
        ({"bearer_token": "a.b-c_d", "auth": "query"}, (), (("bearer_token", "a.b-c_d"),)),
        (
            {"bearer_token": "a.b-c_d", "auth": "cookie"},
            (("Cookie", "bearer_token=a.b-c_d"),),
            (),
        ),
        (
            {"api_key": SECRET, "fixed_device": True},
            (("X-API-Key", SECRET),),
            (("fixed_device", "true"),),
        ),
        (
            {"api_key": SECRET, "auth": "query", "fixed_device": True},
            (),
            (("api-key", SECRET), ("fixed_device", "true")),
        ),
    ],
)
def test_handshake_puts_the_credential_where_asked(
    kwargs: dict[str, Any], headers: tuple[tuple[str, str], ...], query: tuple[tuple[str, str], ...]
) -> None:
    assert PlaceOSClient(**kwargs).handshake() == ClientHandshake(headers=headers, query=query)


@pytest.mark.parametrize("kwargs", [{}, {"api_key": "a", "bearer_token": "b"}])
def test_exactly_one_credential(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError, match="exactly one"):
        PlaceOSClient(**kwargs)


def test_unknown_auth_placement_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="auth"):
        PlaceOSClient(api_key=SECRET, auth="body")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("secret", "placements"),
    [
        ("", ("header", "query", "cookie")),
        (f"{SECRET}\r\nX-Evil: 1", ("header", "query", "cookie")),
        (f"{SECRET}\n", ("header", "query", "cookie")),
        (f"{SECRET}\x00", ("header", "query", "cookie")),
        (f"{SECRET}\x7f", ("header", "query", "cookie")),
        (f"{SECRET}\t1", ("header", "query", "cookie")),
        (f"{SECRET}\u00e9", ("header", "query", "cookie")),
        (f"{SECRET}\ud800", ("header", "query", "cookie")),
        (f" {SECRET}", ("header", "query", "cookie")),
        (f"{SECRET} ", ("header", "query", "cookie")),
        (f"{SECRET};x=1", ("cookie",)),
        (f"{SECRET},x", ("cookie",)),
        (f"{SECRET} x", ("cookie",)),
        (f'{SECRET}"', ("cookie",)),
        (f"{SECRET}\\", ("cookie",)),
    ],
)
def test_unsafe_credentials_are_refused_without_showing_them(
    secret: str, placements: tuple[str, ...]
) -> None:
    for placement in placements:
        for name in ("api_key", "bearer_token"):
            with pytest.raises(LocalProtocolError) as info:
                PlaceOSClient(**{name: secret}, auth=placement)  # type: ignore[arg-type]
            text = str(info.value) + repr(info.value)
            assert name in text
            assert SECRET not in text
            assert info.value.__cause__ is None
            assert info.value.__context__ is None


@pytest.mark.parametrize("secret", [f"{SECRET};x", f"{SECRET} x", f"{SECRET},x"])
def test_header_and_query_forms_accept_what_only_a_cookie_cannot_carry(secret: str) -> None:
    assert PlaceOSClient(api_key=secret).handshake().headers == (("X-API-Key", secret),)
    assert PlaceOSClient(api_key=secret, auth="query").handshake().query == (("api-key", secret),)


@pytest.mark.parametrize("secret", [123, b"bytes", ["k"]])
@pytest.mark.parametrize("name", ["api_key", "bearer_token"])
def test_non_str_credential_is_refused(name: str, secret: Any) -> None:
    with pytest.raises(LocalProtocolError, match="non-empty str"):
        PlaceOSClient(**{name: secret})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"exec_timeout": 0},
        {"exec_timeout": -1.0},
        {"bind_timeout": math.nan},
        {"bind_timeout": math.inf},
        {"bind_timeout": True},
        {"heartbeat_interval": 0},
        {"heartbeat_timeout": "60"},
        {"value_format": "raw"},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        PlaceOSClient(api_key=SECRET, **kwargs)


def test_secrets_never_appear_in_repr_events_or_errors() -> None:
    for kwargs in (
        {"api_key": SECRET},
        {"bearer_token": SECRET, "auth": "cookie"},
        {"api_key": SECRET, "auth": "query"},
    ):
        client = PlaceOSClient(**kwargs)  # type: ignore[arg-type]
        assert SECRET not in repr(client)
        assert SECRET not in repr(client.handshake())
        events: list[Event] = []
        events += client.connection_made(0.0)
        client.bind(SYS, MOD, NAME, now=0.0)
        client.exec(SYS, MOD, "m", 1, now=0.0)
        events += client.receive_message("garbage", 1.0)
        events += client.receive_message(success(1), 1.0)
        events += client.handle_timer(100.0)
        events += client.connection_lost(101.0)
        events += client.take_events()
        assert events
        assert all(SECRET not in repr(e) for e in events)
        with pytest.raises(LocalProtocolError) as info:
            client.exec(SYS, MOD, "m", {1, 2}, now=102.0)
        assert SECRET not in str(info.value)
        assert SECRET not in repr(client)


def test_repr_says_which_credential_and_where() -> None:
    assert "bearer_token in the cookie" in repr(PlaceOSClient(bearer_token="t", auth="cookie"))
    assert "connected=False" in repr(PlaceOSClient(api_key="k"))


# -- requests and answers ---------------------------------------------------------------


def test_exec_sends_its_arguments_and_gets_its_value(json_backend: str) -> None:
    client = connected()
    rid = client.exec(SYS, MOD, "make_booking", 1631058815, {"x": [1]}, index=2, now=0.0)
    assert sent(client) == [
        {
            "id": rid,
            "cmd": "exec",
            "sys": SYS,
            "mod": MOD,
            "index": 2,
            "name": "make_booking",
            "args": [1631058815, {"x": [1]}],
        }
    ]
    assert client.pending == (rid,)
    message = success(rid, value={"booked": True}, code=200)
    events = client.receive_message(message, 1.0)
    assert events == [
        RequestSucceeded(
            rid, {"booked": True}, SuccessResponse(rid, {"booked": True}, None, None, 200)
        )
    ]
    assert client.pending == ()
    assert client.next_deadline() is None


def test_request_ids_are_distinct_and_answers_may_come_in_any_order() -> None:
    client = connected()
    first = client.exec(SYS, MOD, "a", now=0.0)
    second = client.exec(SYS, MOD, "b", now=0.0)
    third = client.bind(SYS, MOD, NAME, now=0.0)
    assert len({first, second, third}) == 3
    assert [m["id"] for m in sent(client)] == [first, second, third]
    assert ids(client.receive_message(success(third), 1.0)) == [("RequestSucceeded", third)]
    assert ids(client.receive_message(success(first, value=1), 1.0)) == [
        ("RequestSucceeded", first)
    ]
    assert ids(client.receive_message(success(second, value=2), 1.0)) == [
        ("RequestSucceeded", second)
    ]


@pytest.mark.parametrize(
    ("message", "code", "http_status"),
    [
        (error_current, ErrorCode.MODULE_NOT_FOUND, 500),
        (error_seed, ErrorCode.MODULE_NOT_FOUND, None),
    ],
)
def test_errors_in_both_dialects(
    json_backend: str, message: Any, code: ErrorCode, http_status: int | None
) -> None:
    client = connected()
    rid = client.exec(SYS, MOD, "m", now=0.0)
    events = client.receive_message(message(rid, 6, "module not found"), 1.0)
    assert events == [
        RequestFailed(
            rid, code, "module not found", ErrorResponse(rid, code, "module not found", http_status)
        )
    ]
    assert isinstance(events[0], RequestFailed)
    assert events[0].code is ErrorCode.MODULE_NOT_FOUND


def test_an_error_number_the_enum_does_not_know_survives() -> None:
    client = connected()
    rid = client.exec(SYS, MOD, "m", now=0.0)
    (event,) = client.receive_message(error_current(rid, 42), 1.0)
    assert isinstance(event, RequestFailed)
    assert event.code == 42
    assert type(event.code) is int


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("", MOD, NAME), {}),
        ((SYS, "", NAME), {}),
        ((SYS, MOD, ""), {}),
        ((1, MOD, NAME), {}),
        ((SYS, None, NAME), {}),
        ((SYS, MOD, b"name"), {}),
        ((SYS, MOD, NAME), {"index": 0}),
        ((SYS, MOD, NAME), {"index": True}),
        ((SYS, MOD, NAME), {"index": 1.0}),
        ((SYS, MOD, NAME), {"timeout": 0}),
        ((SYS, MOD, NAME), {"timeout": math.nan}),
    ],
)
@pytest.mark.parametrize("method", ["bind", "unbind", "exec"])
def test_bad_arguments_are_refused_and_change_nothing(
    method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    client = connected()
    with pytest.raises(LocalProtocolError):
        getattr(client, method)(*args, now=0.0, **kwargs)
    assert client.messages_to_send() == []
    assert client.take_events() == []
    assert client.pending == ()
    assert client.bindings == ()


@pytest.mark.parametrize(("args", "kwargs"), [(("", "mod-1"), {}), (("s", "mod-1"), {"index": 0})])
@pytest.mark.parametrize("method", ["debug", "ignore"])
def test_bad_debug_arguments_are_refused(
    method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    client = connected()
    with pytest.raises(LocalProtocolError):
        getattr(client, method)(*args, now=0.0, **kwargs)
    assert client.messages_to_send() == []


@pytest.mark.parametrize("bad", [{1, 2}, math.nan, object(), b"bytes"])
def test_exec_arguments_json_cannot_carry_are_refused(json_backend: str, bad: Any) -> None:
    client = connected()
    with pytest.raises(EncodeError):
        client.exec(SYS, MOD, "m", 1, bad, now=0.0)
    assert client.messages_to_send() == []
    assert client.pending == ()
    assert client.next_deadline() is None
    # The failed call burnt no id and left the client usable.
    rid = client.exec(SYS, MOD, "m", now=0.0)
    assert sent(client)[0]["id"] == rid == 1


def test_unexpected_answers_are_kept() -> None:
    client = connected()
    stray_success = success(77, value=1)
    stray_error = error_current(None, 0, "parse error")
    assert client.receive_message(stray_success, 1.0) == [
        UnexpectedResponse(SuccessResponse(77, 1))
    ]
    assert client.receive_message(stray_error, 1.0) == [
        UnexpectedResponse(ErrorResponse(None, ErrorCode.PARSE_ERROR, "parse error", 500))
    ]
    # Our ids are ints: a string id naming the same number is someone else's.
    rid = client.exec(SYS, MOD, "m", now=0.0)
    (event,) = client.receive_message(success(str(rid)), 1.0)
    assert isinstance(event, UnexpectedResponse)
    assert client.pending == (rid,)


def test_an_answer_counts_once() -> None:
    client = connected()
    rid = client.exec(SYS, MOD, "m", now=0.0)
    assert ids(client.receive_message(success(rid), 1.0)) == [("RequestSucceeded", rid)]
    (again,) = client.receive_message(success(rid), 1.0)
    assert isinstance(again, UnexpectedResponse)


# -- notifies ---------------------------------------------------------------------------


def test_notify_before_the_bind_success_is_delivered_and_cached() -> None:
    client = connected()
    rid = client.bind(SYS, MOD, NAME, now=0.0)
    assert sent(client) == [bind_request(rid)]
    assert not client.has_value(B)
    events = client.receive_message(notify(B, [1, 2], rid=rid), 0.5)
    assert events == [ValueChanged(B, [1, 2], Notification(rid, B, [1, 2]))]
    assert client.value(B) == [1, 2]
    assert not client.is_bound(B)
    assert ids(client.receive_message(success(rid, meta=meta(B)), 0.6)) == [
        ("RequestSucceeded", rid)
    ]
    assert client.is_bound(B)
    assert client.value(B) == [1, 2]


def test_notifies_are_routed_by_meta_not_by_id() -> None:
    client = connected()
    bound(client, B)
    bound(client, B2)
    # The id of a notify is the first bind's on the server (maybe another client's).
    (event,) = client.receive_message(notify(B2, "on", rid=9999), 1.0)
    assert isinstance(event, ValueChanged)
    assert event.binding == B2
    assert event.value == "on"
    assert client.value(B2) == "on"
    assert client.value(B) is None
    assert not client.has_value(B)


def test_value_cache() -> None:
    client = connected()
    bound(client)
    assert client.value(B) is None
    assert client.value(B, "default") == "default"
    assert not client.has_value(B)
    client.receive_message(notify(B, None), 1.0)
    assert client.has_value(B)  # a null value is a value
    assert client.value(B, "default") is None
    client.receive_message(notify(B, {"a": 1}), 2.0)
    client.receive_message(notify(B, {"a": 2}), 3.0)
    assert client.value(B) == {"a": 2}
    # Unknown bindings: the default, no KeyError.
    unknown = Binding("sys-x", "M", 3, "v")
    assert client.value(unknown, 5) == 5
    assert not client.has_value(unknown)
    assert not client.is_bound(unknown)


def test_notify_for_a_binding_not_held_is_reported_but_not_cached() -> None:
    client = connected()
    (event,) = client.receive_message(notify(B, 3), 1.0)
    assert event == ValueChanged(B, 3, Notification(1, B, 3))
    assert not client.has_value(B)
    assert client.bindings == ()


@pytest.mark.parametrize(
    ("value_format", "stringified", "value", "expected"),
    [
        (ValueFormat.AUTO, True, [], []),
        (ValueFormat.AUTO, True, {"a": [1, "x"]}, {"a": [1, "x"]}),
        (ValueFormat.AUTO, False, {"a": [1, "x"]}, {"a": [1, "x"]}),
        (ValueFormat.AUTO, False, "HDMI 1", "HDMI 1"),
        (ValueFormat.AUTO, False, 12.5, 12.5),
        (ValueFormat.RAW, False, "[1]", "[1]"),
        (ValueFormat.RAW, False, [1], [1]),
        (ValueFormat.STRINGIFIED, True, "text", "text"),
        (ValueFormat.STRINGIFIED, True, [1, {"b": None}], [1, {"b": None}]),
    ],
)
def test_stringified_and_raw_values(
    json_backend: str, value_format: ValueFormat, stringified: bool, value: Any, expected: Any
) -> None:
    client = connected(value_format=value_format)
    bound(client)
    (event,) = client.receive_message(notify(B, value, stringified=stringified), 1.0)
    assert isinstance(event, ValueChanged)
    assert event.value == expected
    assert client.value(B) == expected


def test_stringified_format_refuses_a_raw_value_as_a_bad_message() -> None:
    client = connected(value_format=ValueFormat.STRINGIFIED)
    bound(client)
    message = notify(B, [1])
    (event,) = client.receive_message(message, 1.0)
    assert isinstance(event, BadMessage)
    assert event.data == message
    assert event.error.path == "value"
    assert not client.has_value(B)


def test_value_changed_built_fast_equals_built_by_init() -> None:
    notification = Notification(3, B, ("x", 1))
    fast = _value_changed(notification)
    slow = ValueChanged(B, ("x", 1), notification)
    assert type(fast) is ValueChanged
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    assert (fast.binding, fast.value, fast.notification) == (B, ("x", 1), notification)
    with pytest.raises(AttributeError):
        fast.notification = notification  # type: ignore[misc]


# -- debug streams ----------------------------------------------------------------------


def test_debug_stream_and_its_log_lines(json_backend: str) -> None:
    client = connected()
    rid = client.debug(STREAM.sys, STREAM.mod, now=0.0)
    assert sent(client) == [debug_request(rid)]
    answer = success(rid, mod_id=STREAM.mod, meta={"sys": SYS, "mod": MOD, "index": 1})
    (event,) = client.receive_message(answer, 1.0)
    assert isinstance(event, RequestSucceeded)
    assert event.request_id == rid
    assert event.response is not None
    assert event.response.mod_id == STREAM.mod
    assert client.debug_streams == (STREAM,)
    seed_line = json.dumps(
        {
            "type": "debug",
            "mod": STREAM.mod,
            "klass": "::Some::Display",
            "level": "debug",
            "msg": "input changed to HDMI",
        }
    )
    assert client.receive_message(seed_line, 2.0) == [
        DebugLog(
            DebugMessage(STREAM.mod, "::Some::Display", LogLevel.DEBUG, "input changed to HDMI")
        )
    ]
    current_line = json.dumps(
        {
            "type": "debug",
            "id": rid,
            "mod": STREAM.mod,
            "level": "shout",
            "msg": "x",
            "meta": meta(B),
        }
    )
    (log,) = client.receive_message(current_line, 3.0)
    assert log == DebugLog(DebugMessage(STREAM.mod, None, "shout", "x", B, rid))


def test_debug_streams_are_reference_counted() -> None:
    client = connected()
    first = client.debug(STREAM.sys, STREAM.mod, now=0.0)
    second = client.debug(STREAM.sys, STREAM.mod, now=0.0)
    assert sent(client) == [debug_request(first)]
    assert ids(client.receive_message(success(first), 1.0)) == [
        ("RequestSucceeded", first),
        ("RequestSucceeded", second),
    ]
    third = client.debug(STREAM.sys, STREAM.mod, now=1.0)
    assert client.messages_to_send() == []
    assert client.take_events() == [RequestSucceeded(third)]
    ignores = [client.ignore(STREAM.sys, STREAM.mod, now=2.0) for _ in range(3)]
    assert client.take_events() == [RequestSucceeded(ignores[0]), RequestSucceeded(ignores[1])]
    assert sent(client) == [ignore_request(ignores[2])]
    assert client.debug_streams == ()
    assert ids(client.receive_message(success(ignores[2]), 3.0)) == [
        ("RequestSucceeded", ignores[2])
    ]


# -- reference-counted bindings ---------------------------------------------------------


def test_two_binds_send_one_frame_and_both_succeed_on_its_answer() -> None:
    client = connected()
    first = client.bind(SYS, MOD, NAME, now=0.0)
    second = client.bind(SYS, MOD, NAME, now=0.0)
    assert sent(client) == [bind_request(first)]
    events = client.receive_message(success(first, meta=meta(B)), 1.0)
    response = SuccessResponse(first, None, B)
    assert events == [
        RequestSucceeded(first, None, response),
        RequestSucceeded(second, None, response),
    ]
    assert client.take_events() == []
    assert client.bindings == (B,)


def test_bind_of_a_confirmed_binding_succeeds_at_once_without_a_frame() -> None:
    client = connected()
    bound(client)
    rid = client.bind(SYS, MOD, NAME, now=1.0)
    assert client.messages_to_send() == []
    assert client.take_events() == [RequestSucceeded(rid, None, None)]
    assert client.take_events() == []
    assert client.pending == ()


def test_different_index_or_name_is_another_binding() -> None:
    client = connected()
    a = client.bind(SYS, MOD, NAME, now=0.0)
    b = client.bind(SYS, MOD, NAME, index=2, now=0.0)
    c = client.bind(SYS, MOD, "other", now=0.0)
    assert sent(client) == [
        bind_request(a),
        bind_request(b, B2),
        bind_request(c, Binding(SYS, MOD, 1, "other")),
    ]


def test_unbind_goes_out_only_when_the_count_drops_to_zero() -> None:
    client = connected()
    bound(client)
    client.bind(SYS, MOD, NAME, now=1.0)
    client.bind(SYS, MOD, NAME, now=1.0)
    client.take_events()
    first = client.unbind(SYS, MOD, NAME, now=2.0)
    second = client.unbind(SYS, MOD, NAME, now=2.0)
    assert client.messages_to_send() == []
    assert client.take_events() == [RequestSucceeded(first), RequestSucceeded(second)]
    assert client.bindings == (B,)
    last = client.unbind(SYS, MOD, NAME, now=3.0)
    assert sent(client) == [unbind_request(last)]
    assert client.take_events() == []
    assert client.bindings == ()
    assert not client.has_value(B)
    assert client.receive_message(success(last), 4.0) == [
        RequestSucceeded(last, None, SuccessResponse(last))
    ]


def test_unbind_failure_is_reported() -> None:
    client = connected()
    bound(client)
    rid = client.unbind(SYS, MOD, NAME, now=1.0)
    sent(client)
    (event,) = client.receive_message(error_seed(rid, 1, "bad request"), 2.0)
    assert isinstance(event, RequestFailed)
    assert (event.request_id, event.code) == (rid, ErrorCode.BAD_REQUEST)


def test_unbind_of_something_not_bound_is_left_to_the_server() -> None:
    client = connected()
    rid = client.unbind(SYS, MOD, NAME, now=0.0)
    assert sent(client) == [unbind_request(rid)]
    assert ids(client.receive_message(success(rid), 1.0)) == [("RequestSucceeded", rid)]


def test_values_after_unbind_and_rebind_start_afresh() -> None:
    client = connected()
    bound(client)
    client.receive_message(notify(B, 1), 1.0)
    client.unbind(SYS, MOD, NAME, now=2.0)
    client.messages_to_send()
    bound(client, now=3.0)
    assert not client.has_value(B)


def test_bind_failure_fails_every_waiter_and_forgets_the_binding() -> None:
    client = connected()
    first = client.bind(SYS, MOD, NAME, now=0.0)
    second = client.bind(SYS, MOD, NAME, now=0.0)
    sent(client)
    client.receive_message(notify(B, "early"), 0.5)
    events = client.receive_message(error_current(first, 2, "access denied"), 1.0)
    response = ErrorResponse(first, ErrorCode.ACCESS_DENIED, "access denied", 500)
    assert events == [
        RequestFailed(first, ErrorCode.ACCESS_DENIED, "access denied", response),
        RequestFailed(second, ErrorCode.ACCESS_DENIED, "access denied", response),
    ]
    assert client.bindings == ()
    assert not client.has_value(B)
    third = client.bind(SYS, MOD, NAME, now=2.0)
    assert sent(client) == [bind_request(third)]


def test_unbind_while_the_bind_is_in_flight() -> None:
    client = connected()
    rid = client.bind(SYS, MOD, NAME, now=0.0)
    undo = client.unbind(SYS, MOD, NAME, now=0.0)
    # Sent in this order, so the server binds, then unbinds.
    assert sent(client) == [bind_request(rid), unbind_request(undo)]
    assert client.bindings == ()
    assert ids(client.receive_message(success(rid), 1.0)) == [("RequestSucceeded", rid)]
    assert ids(client.receive_message(success(undo), 1.0)) == [("RequestSucceeded", undo)]
    assert not client.is_bound(B)
    assert client.pending == ()


# -- deadlines --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "args", "default"),
    [
        ("exec", (SYS, MOD, "m"), 10.0),
        ("debug", (SYS, "mod-1"), 10.0),
        ("ignore", (SYS, "mod-1"), 10.0),
        ("bind", (SYS, MOD, NAME), 30.0),
        ("unbind", (SYS, MOD, NAME), 30.0),
    ],
)
def test_default_deadlines(method: str, args: tuple[str, ...], default: float) -> None:
    client = connected(now=100.0)
    rid = getattr(client, method)(*args, now=100.0)
    assert len(sent(client)) == 1
    assert client.next_deadline() == 100.0 + default
    assert client.handle_timer(100.0 + default - 0.001) == []
    assert client.pending == (rid,)
    assert client.handle_timer(100.0 + default) == [RequestTimedOut(rid)]
    assert client.pending == ()
    # A bind or debug that timed out may still be live on the server: released.
    release = {"bind": "unbind", "debug": "ignore"}.get(method)
    assert [m["cmd"] for m in sent(client)] == ([release] if release else [])
    assert client.handle_timer(1000.0) == []
    assert client.next_deadline() is None


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("exec", (SYS, MOD, "m")),
        ("debug", (SYS, "mod-1")),
        ("ignore", (SYS, "mod-1")),
        ("bind", (SYS, MOD, NAME)),
        ("unbind", (SYS, MOD, NAME)),
    ],
)
def test_per_call_timeout_overrides_the_default(method: str, args: tuple[str, ...]) -> None:
    client = connected()
    rid = getattr(client, method)(*args, now=0.0, timeout=2.5)
    assert client.next_deadline() == 2.5
    assert client.handle_timer(2.4) == []
    assert client.handle_timer(2.5) == [RequestTimedOut(rid)]


def test_constructor_sets_the_defaults() -> None:
    client = connected(exec_timeout=3.0, bind_timeout=7.0)
    execute = client.exec(SYS, MOD, "m", now=0.0)
    subscribe = client.bind(SYS, MOD, NAME, now=0.0)
    assert client.next_deadline() == 3.0
    assert client.handle_timer(3.0) == [RequestTimedOut(execute)]
    assert client.next_deadline() == 7.0
    assert client.handle_timer(7.0) == [RequestTimedOut(subscribe)]


def test_one_timer_call_fires_everything_due_in_deadline_order() -> None:
    client = connected()
    late = client.exec(SYS, MOD, "m", now=0.0, timeout=5.0)
    early = client.exec(SYS, MOD, "m", now=0.0, timeout=1.0)
    later = client.exec(SYS, MOD, "m", now=0.0, timeout=50.0)
    assert client.handle_timer(6.0) == [RequestTimedOut(early), RequestTimedOut(late)]
    assert client.pending == (later,)
    assert client.next_deadline() == 50.0


def test_an_answered_request_leaves_no_deadline_behind() -> None:
    client = connected()
    first = client.exec(SYS, MOD, "m", now=0.0, timeout=1.0)
    client.exec(SYS, MOD, "m", now=0.0, timeout=20.0)
    client.receive_message(success(first), 0.5)
    assert client.next_deadline() == 20.0
    assert client.handle_timer(1.0) == []


def test_stale_deadlines_do_not_pile_up() -> None:
    client = connected()
    waiting = client.exec(SYS, MOD, "m", now=0.0, timeout=1.0)  # keeps the heap's top live
    for _ in range(5000):
        rid = client.exec(SYS, MOD, "m", now=0.0)
        client.receive_message(success(rid), 0.0)
        assert client.next_deadline() == 1.0
    client.messages_to_send()
    # Lazy deletion with compaction: the heap does not keep 5000 dead entries.
    assert len(client._timers) < 200
    assert client.handle_timer(10.0) == [RequestTimedOut(waiting)]
    assert client.next_deadline() is None


def test_late_answer_after_a_timeout_is_unexpected_not_success() -> None:
    client = connected()
    rid = client.exec(SYS, MOD, "m", now=0.0)
    assert client.handle_timer(10.0) == [RequestTimedOut(rid)]
    late = client.receive_message(success(rid, value=1), 11.0)
    assert late == [UnexpectedResponse(SuccessResponse(rid, 1))]
    late_error = client.receive_message(error_current(rid, 3), 11.0)
    assert [type(e) for e in late_error] == [UnexpectedResponse]


def test_a_timed_out_bind_releases_its_reference() -> None:
    client = connected()
    rid = client.bind(SYS, MOD, NAME, now=0.0)
    sent(client)
    assert client.handle_timer(30.0) == [RequestTimedOut(rid)]
    assert client.bindings == ()
    # The server may have bound it after all: the client unbinds on its own.
    (unbind,) = sent(client)
    assert unbind["cmd"] == "unbind"
    assert unbind["id"] != rid
    assert client.pending == ()
    # The late success is unexpected; our own unbind's answer concerns nobody.
    assert client.receive_message(success(rid), 31.0) == [UnexpectedResponse(SuccessResponse(rid))]
    assert client.receive_message(success(unbind["id"]), 31.0) == []
    client.receive_message(notify(B, 1), 31.0)
    assert not client.has_value(B)
    # Binding again sends a fresh bind.
    again = client.bind(SYS, MOD, NAME, now=32.0)
    assert sent(client) == [bind_request(again)]


def test_the_clients_own_unbind_times_out_silently() -> None:
    client = connected()
    client.bind(SYS, MOD, NAME, now=0.0)
    sent(client)
    client.handle_timer(30.0)
    (unbind,) = sent(client)
    assert client.next_deadline() == 60.0
    assert client.handle_timer(60.0) == []
    assert client.next_deadline() is None
    assert client.receive_message(success(unbind["id"]), 61.0) == [
        UnexpectedResponse(SuccessResponse(unbind["id"]))
    ]


def test_a_joined_bind_keeps_waiting_when_the_first_times_out() -> None:
    client = connected()
    first = client.bind(SYS, MOD, NAME, now=0.0, timeout=1.0)
    second = client.bind(SYS, MOD, NAME, now=0.0, timeout=30.0)
    assert sent(client) == [bind_request(first)]
    assert client.handle_timer(1.0) == [RequestTimedOut(first)]
    assert client.messages_to_send() == []  # still wanted: no unbind
    assert client.bindings == (B,)
    # The frame carried the first id; its answer now resolves the second request.
    assert client.receive_message(success(first), 2.0) == [
        RequestSucceeded(second, None, SuccessResponse(first))
    ]
    assert client.is_bound(B)


# -- the text heartbeat -----------------------------------------------------------------


def test_ping_on_connect_and_every_interval() -> None:
    client = make(heartbeat_interval=15.0, heartbeat_timeout=None)
    client.connection_made(0.0)
    assert client.messages_to_send() == ["ping"]
    assert client.next_deadline() == 15.0
    assert client.handle_timer(14.9) == []
    assert client.messages_to_send() == []
    assert client.handle_timer(15.0) == []
    assert client.messages_to_send() == ["ping"]
    assert client.next_deadline() == 30.0
    client.handle_timer(30.0)
    assert client.messages_to_send() == ["ping"]


def test_defaults_ping_every_15_s_and_give_up_after_60_s_of_silence() -> None:
    client = PlaceOSClient(api_key=SECRET)
    client.connection_made(0.0)
    assert client.messages_to_send() == ["ping"]
    for t in (15.0, 30.0, 45.0):
        assert client.handle_timer(t) == []
        assert client.messages_to_send() == ["ping"]
    assert client.next_deadline() == 60.0
    (event,) = client.handle_timer(60.0)
    assert event == HeartbeatLost(60.0)
    assert isinstance(event, LivenessLost)


def test_heartbeat_lost_is_reported_once() -> None:
    client = make(heartbeat_interval=None, heartbeat_timeout=60.0)
    client.connection_made(0.0)
    assert client.messages_to_send() == []
    assert client.handle_timer(59.9) == []
    assert client.handle_timer(60.0) == [HeartbeatLost(60.0)]
    assert client.next_deadline() is None
    assert client.handle_timer(120.0) == []
    assert client.handle_timer(500.0) == []


@pytest.mark.parametrize("message", ["pong", b"pong", None])
def test_any_message_keeps_the_connection_alive(message: str | bytes | None) -> None:
    client = make(heartbeat_interval=None, heartbeat_timeout=60.0)
    client.connection_made(0.0)
    data = notify(B, 1) if message is None else message
    events = client.receive_message(data, 50.0)
    assert (events == []) is (message is not None)  # an unsolicited pong is silent
    assert client.next_deadline() == 110.0
    assert client.handle_timer(60.0) == []
    assert client.handle_timer(110.0) == [HeartbeatLost(60.0)]


def test_even_a_bad_message_counts_as_liveness() -> None:
    client = make(heartbeat_interval=None, heartbeat_timeout=60.0)
    client.connection_made(0.0)
    client.receive_message("garbage", 30.0)
    assert client.handle_timer(60.0) == []


def test_heartbeat_starts_again_on_each_connection() -> None:
    client = make(heartbeat_interval=15.0, heartbeat_timeout=60.0)
    client.connection_made(0.0)
    assert client.handle_timer(60.0) == [HeartbeatLost(60.0)]
    client.connection_lost(60.0)
    assert client.next_deadline() is None
    assert client.handle_timer(200.0) == []
    client.messages_to_send()
    client.connection_made(300.0)
    assert client.messages_to_send() == ["ping"]
    assert client.next_deadline() == 315.0
    assert client.handle_timer(360.0) == [HeartbeatLost(60.0)]


def test_heartbeat_can_be_turned_off() -> None:
    client = make(heartbeat_interval=None, heartbeat_timeout=None)
    client.connection_made(0.0)
    assert client.messages_to_send() == []
    assert client.next_deadline() is None
    assert client.handle_timer(1e9) == []


# -- connection lost, connection made again ---------------------------------------------


def test_connection_lost_aborts_every_pending_request() -> None:
    client = connected(heartbeat_interval=15.0, heartbeat_timeout=60.0)
    bound(client, B)
    execute = client.exec(SYS, MOD, "m", now=1.0)
    subscribe = client.bind(SYS, MOD, NAME, index=2, now=1.0)
    release = client.unbind(SYS, MOD, NAME, now=1.0)
    stream = client.debug(SYS, "mod-1", now=1.0)
    events = client.connection_lost(2.0)
    assert events == [
        RequestAborted(rid, AbortReason.CONNECTION_LOST)
        for rid in (execute, subscribe, release, stream)
    ]
    assert client.pending == ()
    assert client.messages_to_send() == []  # nothing queued for a dead connection
    assert client.next_deadline() is None
    assert client.handle_timer(1e6) == []
    assert not client.connected
    # Answers that were in flight for the old connection are nobody's now.
    (late,) = client.receive_message(success(execute), 3.0)
    assert isinstance(late, UnexpectedResponse)


def test_connection_lost_keeps_held_bindings_and_drops_unconfirmed_ones() -> None:
    client = connected()
    bound(client, B)
    client.receive_message(notify(B, "kept"), 1.0)
    client.bind(SYS, MOD, NAME, index=2, now=1.0)
    client.debug(STREAM.sys, STREAM.mod, now=1.0)
    (debug_frame,) = [m for m in sent(client) if m["cmd"] == "debug"]
    client.receive_message(success(debug_frame["id"]), 1.0)
    client.connection_lost(2.0)
    assert client.bindings == (B,)
    assert client.debug_streams == (STREAM,)
    assert not client.is_bound(B)
    assert client.value(B) == "kept"  # until the fresh value arrives


def test_connection_lost_when_not_connected_does_nothing() -> None:
    client = make()
    rid = client.bind(SYS, MOD, NAME, now=0.0)
    assert client.connection_lost(0.0) == []  # e.g. a handshake that failed
    assert client.pending == (rid,)
    client.connection_made(1.0)
    assert client.connection_lost(2.0) == [RequestAborted(rid, AbortReason.CONNECTION_LOST)]
    assert client.connection_lost(3.0) == []


def test_connection_made_twice_is_a_local_error() -> None:
    client = connected()
    with pytest.raises(LocalProtocolError):
        client.connection_made(1.0)


def test_reconnect_rebinds_every_binding_and_debug_stream_exactly_once() -> None:
    client = connected()
    bound(client, B)
    client.bind(SYS, MOD, NAME, now=0.0)  # a second reference: still one frame later
    bound(client, B2)
    stream = client.debug(STREAM.sys, STREAM.mod, now=0.0)
    client.receive_message(success(stream), 0.0)
    client.take_events()
    client.connection_lost(1.0)
    assert client.connection_made(2.0) == []
    frames = sent(client)
    assert [(f["cmd"], f["index"]) for f in frames] == [("bind", 1), ("bind", 2), ("debug", 1)]
    assert frames[0] == bind_request(frames[0]["id"], B)
    assert frames[1] == bind_request(frames[1]["id"], B2)
    assert frames[2] == debug_request(frames[2]["id"])
    wire_ids = [f["id"] for f in frames]
    assert len(set(wire_ids)) == 3
    assert min(wire_ids) > stream  # fresh ids, never reused
    # Re-binds are internal: their successes say nothing to the application.
    for rid in wire_ids:
        assert client.receive_message(success(rid), 3.0) == []
    assert client.is_bound(B)
    assert client.is_bound(B2)
    assert client.pending == ()
    assert client.next_deadline() is None
    # Another reconnect: again one frame each, no doubles.
    client.connection_lost(4.0)
    client.connection_made(5.0)
    assert sorted((f["cmd"], f["index"]) for f in sent(client)) == [
        ("bind", 1),
        ("bind", 2),
        ("debug", 1),
    ]


def test_rebind_failure_is_binding_lost() -> None:
    client = connected()
    bound(client, B)
    bound(client, B2)
    client.receive_message(notify(B, 1), 1.0)
    client.connection_lost(1.0)
    client.connection_made(2.0)
    first, second = (f["id"] for f in sent(client))
    events = client.receive_message(error_current(first, 5, "system not found"), 3.0)
    response = ErrorResponse(first, ErrorCode.SYSTEM_NOT_FOUND, "system not found", 500)
    assert events == [BindingLost(B, response)]
    assert client.bindings == (B2,)
    assert not client.has_value(B)
    assert client.receive_message(success(second), 3.0) == []
    assert client.is_bound(B2)


def test_debug_stream_resend_failure_is_binding_lost() -> None:
    client = connected()
    rid = client.debug(STREAM.sys, STREAM.mod, now=0.0)
    client.receive_message(success(rid), 0.0)
    client.connection_lost(1.0)
    client.connection_made(2.0)
    (frame,) = sent(client)
    (event,) = client.receive_message(error_seed(frame["id"], 6), 3.0)
    assert isinstance(event, BindingLost)
    assert event.target == STREAM
    assert event.error is not None
    assert event.error.code is ErrorCode.MODULE_NOT_FOUND
    assert client.debug_streams == ()


def test_rebind_timeout_is_binding_lost_and_unbinds() -> None:
    client = connected()
    bound(client)
    client.connection_lost(1.0)
    client.connection_made(2.0)
    (frame,) = sent(client)
    assert client.next_deadline() == 32.0
    assert client.handle_timer(32.0) == [BindingLost(B, None)]
    assert client.bindings == ()
    assert sent(client) == [unbind_request(frame["id"] + 1)]
    (late,) = client.receive_message(success(frame["id"]), 33.0)
    assert isinstance(late, UnexpectedResponse)


def test_a_bind_joining_a_rebind_resolves_with_it() -> None:
    client = connected()
    bound(client)
    client.connection_lost(1.0)
    client.connection_made(2.0)
    (frame,) = sent(client)
    joined = client.bind(SYS, MOD, NAME, now=2.5)
    assert client.messages_to_send() == []
    assert client.receive_message(success(frame["id"]), 3.0) == [
        RequestSucceeded(joined, None, SuccessResponse(frame["id"]))
    ]


def test_a_bind_joining_a_rebind_that_times_out_times_out_with_it() -> None:
    client = connected()
    bound(client)
    client.connection_lost(1.0)
    client.connection_made(2.0)
    assert [m["cmd"] for m in sent(client)] == ["bind"]
    joined = client.bind(SYS, MOD, NAME, now=2.5)
    assert client.handle_timer(32.0) == [RequestTimedOut(joined), BindingLost(B, None)]
    assert client.pending == ()
    assert client.bindings == ()
    assert [m["cmd"] for m in sent(client)] == ["unbind"]
    assert client.handle_timer(32.5) == []  # the joined bind's own deadline is gone


def test_the_answer_to_the_clients_own_unbind_is_silent_even_an_error() -> None:
    client = connected()
    client.bind(SYS, MOD, NAME, now=0.0)
    sent(client)
    client.handle_timer(30.0)
    (unbind,) = sent(client)
    assert client.receive_message(error_current(unbind["id"], 3), 31.0) == []
    assert client.next_deadline() is None


def test_a_codec_failure_of_any_kind_is_a_bad_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import protocore.placeos.client as client_module

    def broken(data: str | bytes, **_: Any) -> Any:
        raise ValueError(f"codec bug on {SECRET}")

    monkeypatch.setattr(client_module, "decode_response", broken)
    client = connected()
    (event,) = client.receive_message("{}", 1.0)
    assert isinstance(event, BadMessage)
    assert event.data == "{}"
    assert "ValueError" in str(event.error)
    assert SECRET not in repr(event)


def test_a_bind_joining_a_failed_rebind_fails_with_it() -> None:
    client = connected()
    bound(client)
    client.connection_lost(1.0)
    client.connection_made(2.0)
    (frame,) = sent(client)
    joined = client.bind(SYS, MOD, NAME, now=2.5)
    events = client.receive_message(error_current(frame["id"], 2), 3.0)
    assert [type(e) for e in events] == [RequestFailed, BindingLost]
    assert events[0].request_id == joined  # type: ignore[attr-defined]


# -- requests while disconnected --------------------------------------------------------


def test_bind_before_connecting_goes_out_on_connect_and_resolves_then() -> None:
    client = make()
    rid = client.bind(SYS, MOD, NAME, now=0.0)
    assert client.messages_to_send() == []
    assert client.pending == (rid,)
    assert client.next_deadline() is None  # its deadline starts when it is sent
    assert client.handle_timer(1000.0) == []
    client.connection_made(500.0)
    (frame,) = sent(client)
    assert frame["cmd"] == "bind"
    assert client.next_deadline() == 530.0
    assert client.receive_message(success(frame["id"]), 501.0) == [
        RequestSucceeded(rid, None, SuccessResponse(frame["id"]))
    ]
    assert client.is_bound(B)


def test_bind_while_disconnected_joins_the_rebind_of_a_held_binding() -> None:
    client = connected()
    bound(client)
    client.connection_lost(1.0)
    rid = client.bind(SYS, MOD, NAME, now=2.0)
    stream = client.debug(STREAM.sys, STREAM.mod, now=2.0)
    assert client.take_events() == []
    client.connection_made(3.0)
    bind_frame, debug_frame = sent(client)
    assert (bind_frame["cmd"], debug_frame["cmd"]) == ("bind", "debug")
    assert client.receive_message(success(bind_frame["id"]), 4.0) == [
        RequestSucceeded(rid, None, SuccessResponse(bind_frame["id"]))
    ]
    assert ids(client.receive_message(success(debug_frame["id"]), 4.0)) == [
        ("RequestSucceeded", stream)
    ]
    assert client.pending == ()


def test_exec_while_disconnected_is_aborted_at_once() -> None:
    client = make()
    rid = client.exec(SYS, MOD, "m", now=0.0)
    assert client.take_events() == [RequestAborted(rid, AbortReason.NOT_CONNECTED)]
    assert client.messages_to_send() == []
    assert client.pending == ()
    client.connection_made(1.0)
    assert client.messages_to_send() == []


def test_unbind_and_ignore_while_disconnected_release_locally() -> None:
    client = connected()
    bound(client)
    stream = client.debug(STREAM.sys, STREAM.mod, now=0.0)
    client.receive_message(success(stream), 0.0)
    client.connection_lost(1.0)
    release = client.unbind(SYS, MOD, NAME, now=2.0)
    stop = client.ignore(STREAM.sys, STREAM.mod, now=2.0)
    assert client.take_events() == [RequestSucceeded(release), RequestSucceeded(stop)]
    assert client.bindings == ()
    assert client.debug_streams == ()
    client.connection_made(3.0)
    assert client.messages_to_send() == []  # the server forgot them; so do we


def test_bind_then_unbind_while_disconnected_cancels_the_bind() -> None:
    client = make()
    rid = client.bind(SYS, MOD, NAME, now=0.0)
    undo = client.unbind(SYS, MOD, NAME, now=0.0)
    assert client.take_events() == [
        RequestAborted(rid, AbortReason.CANCELLED),
        RequestSucceeded(undo),
    ]
    assert client.pending == ()
    client.connection_made(1.0)
    assert client.messages_to_send() == []


# -- bad input never raises -------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "",
        "ping",
        "not json",
        "{",
        "[]",
        "null",
        '"pong"',
        b"\xff\xfe",
        b'{"type": "success", "id": 1, "x": "\xff"}',
        "{}",
        '{"type": "bogus", "id": 1}',
        '{"type": 7}',
        '{"type": "success"}',
        '{"type": "success", "id": [1]}',
        '{"type": "success", "id": 1, "meta": {"sys": 1}}',
        '{"type": "error", "id": 1}',
        '{"type": "error", "id": 1, "code": "x"}',
        '{"type": "notify", "id": 1, "value": 1}',
        '{"type": "notify", "id": 1, "meta": {"sys": "s", "mod": "m", "index": 0, "name": "n"}}',
        '{"type": "debug", "mod": "m"}',
        '{"type": "success", "id": 1, "value": NaN}',
        "[" * 100_000,
    ],
)
def test_garbage_is_a_bad_message_with_the_raw_data(json_backend: str, data: str | bytes) -> None:
    client = connected()
    rid = client.exec(SYS, MOD, "m", now=0.0)
    (event,) = client.receive_message(data, 1.0)
    assert isinstance(event, BadMessage)
    assert event.data is data
    assert isinstance(event.error, DecodeError)
    # The session goes on.
    assert ids(client.receive_message(success(rid), 1.0)) == [("RequestSucceeded", rid)]


DOCUMENTED = (
    BadMessage,
    RequestSucceeded,
    RequestFailed,
    ValueChanged,
    DebugLog,
    UnexpectedResponse,
    BindingLost,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
message_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["success", "error", "notify", "debug", "pong", "x"])},
    optional={
        "id": st.one_of(st.integers(0, 5), st.text(max_size=2), json_values),
        "value": json_values,
        "meta": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"sys": st.just(SYS), "mod": st.just(MOD), "name": st.just(NAME)},
                optional={"index": st.one_of(st.none(), st.integers(-1, 3), json_values)},
            ),
        ),
        "code": json_values,
        "error_code": json_values,
        "msg": json_values,
        "mod": json_values,
        "level": json_values,
        "mod_id": json_values,
    },
)


def _check_only_documented_events(client: PlaceOSClient, data: str | bytes) -> None:
    events = client.receive_message(data, 1.0)
    assert len(events) <= 2
    for event in events:
        assert isinstance(event, DOCUMENTED)
        if isinstance(event, BadMessage):
            assert event.data is data


def _fresh_client_with_pending_work() -> PlaceOSClient:
    client = connected()
    for _ in range(3):
        client.exec(SYS, MOD, "m", now=0.0)
    client.bind(SYS, MOD, NAME, now=0.0)
    client.debug(SYS, "mod-1", now=0.0)
    return client


@given(data=st.one_of(st.text(), st.binary()))
def test_arbitrary_text_or_bytes_never_raises(data: str | bytes) -> None:
    _check_only_documented_events(_fresh_client_with_pending_work(), data)


@given(obj=message_like, as_bytes=st.booleans())
def test_message_lookalikes_never_raise(obj: dict[str, Any], as_bytes: bool) -> None:
    text = json.dumps(obj)
    _check_only_documented_events(
        _fresh_client_with_pending_work(), text.encode() if as_bytes else text
    )


# -- end to end through ClientConnection ------------------------------------------------


class ScriptedPlaceOSServer:
    """Just enough of a PlaceOS server to answer this client over real frames.

    Admits the test key in ``X-API-Key``; answers ``ping`` with ``pong``; answers a
    bind with its success and a notify (with a different id, as a server does when
    another client bound first); answers an exec with its arguments summed.
    """

    def __init__(self) -> None:
        self.outbox: list[str] = []
        self.received: list[str | bytes] = []

    def authorize(self, target: str, headers: Any) -> Rejection | None:
        return None if dict(headers).get("x-api-key") == SECRET else Rejection(401)

    def connection_made(self, now: float) -> list[Event]:
        return []

    def receive_message(self, data: str | bytes, now: float) -> list[Event]:
        self.received.append(data)
        if data == "ping":
            self.outbox.append("pong")
            return []
        request = json.loads(data)
        if request["cmd"] == "bind":
            binding = {k: request[k] for k in ("sys", "mod", "index", "name")}
            self.outbox.append(success(request["id"], meta=binding))
            self.outbox.append(
                json.dumps({"id": 1, "type": "notify", "value": "[1,2]", "meta": binding})
            )
        elif request["cmd"] == "exec":
            self.outbox.append(success(request["id"], value=sum(request["args"]), code=200))
        return []

    def messages_to_send(self) -> list[str]:
        out, self.outbox = self.outbox, []
        return out

    def next_deadline(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> list[Event]:
        return []

    def connection_lost(self, now: float) -> list[Event]:
        return []


def pump(a: ClientConnection, b: ServerConnection, now: float) -> None:
    for _ in range(100):
        to_b, to_a = a.data_to_send(), b.data_to_send()
        if not to_a and not to_b:
            return
        if to_b:
            b.receive_data(to_b, now)
        if to_a:
            a.receive_data(to_a, now)
    raise AssertionError("the two ends never went quiet")


def test_end_to_end_bind_notify_and_exec_over_websocket_frames() -> None:
    session = PlaceOSClient(api_key=SECRET)
    server_session = ScriptedPlaceOSServer()
    client = ClientConnection(session, "ws://example.com/api/engine/v2/systems/control")
    server = ServerConnection(server_session)
    # Bound before the connection exists: it goes out on connect.
    subscribe = session.bind(SYS, MOD, NAME, now=0.0)
    client.start(0.0)
    server.start(0.0)
    pump(client, server, 0.0)
    assert client.state is ConnectionState.OPEN
    assert server_session.received[0] == "ping"
    assert json.loads(server_session.received[1]) == bind_request(
        json.loads(server_session.received[1])["id"]
    )
    events = client.events()
    assert events[0] == Connected(None)
    # The re-sent bind carries an internal id; the application's id resolves with it.
    assert [type(e) for e in events[1:]] == [RequestSucceeded, ValueChanged]
    assert isinstance(events[1], RequestSucceeded)
    assert events[1].request_id == subscribe
    assert events[2] == ValueChanged(B, [1, 2], Notification(1, B, [1, 2]))
    assert session.value(B) == [1, 2]

    call = session.exec(SYS, MOD, "add", 2, 3, now=1.0)
    pump(client, server, 1.0)
    assert client.events() == [RequestSucceeded(call, 5, SuccessResponse(call, 5, None, None, 200))]
    assert session.pending == ()

    # A result decided inside the application's call reaches it through events().
    again = session.bind(SYS, MOD, NAME, now=2.0)
    assert client.events() == [RequestSucceeded(again)]
    assert client.data_to_send() == b""


def test_holds_follows_the_reference_count_of_bindings_and_streams() -> None:
    client = connected()
    other = Binding(SYS, MOD, 1, "other")
    assert not client.holds(B)
    client.bind(SYS, MOD, NAME, now=0.0)
    client.bind(SYS, MOD, NAME, now=0.0)
    client.debug(STREAM.sys, STREAM.mod, now=0.0)
    assert client.holds(B)
    assert client.holds(STREAM)
    assert not client.holds(B2)
    assert not client.holds(other)
    client.unbind(SYS, MOD, NAME, now=0.0)
    assert client.holds(B)  # one reference left
    client.unbind(SYS, MOD, NAME, now=0.0)
    client.ignore(STREAM.sys, STREAM.mod, now=0.0)
    assert not client.holds(B)
    assert not client.holds(STREAM)
    assert client.holds(B) == (B in client.bindings)
