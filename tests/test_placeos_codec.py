"""PlaceOS models and codec: the seed's examples, both dialects, bad input, round trips.

Every test runs once per JSON backend (orjson and the stdlib) with the same result.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import tracemalloc
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from protocore import DecodeError, EncodeError, LocalProtocolError
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
    ModuleMeta,
    Notification,
    Ping,
    Pong,
    Request,
    RequestError,
    Response,
    SuccessResponse,
    Unbind,
    ValueFormat,
    codec,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from protocore.samples import PLACEOS_MESSAGES, PLACEOS_REQUESTS, PLACEOS_RESPONSES
from protocore.testing import placeos as placeos_st

pytestmark = pytest.mark.usefixtures("json_backend")


BOOKINGS = Binding("sys-1234", "Bookings", 1, "bookings")


def wire(data: bytes) -> Any:
    """A message as parsed JSON, to compare wire forms without caring for key order."""
    return json.loads(data)


# --------------------------------------------------------------------------------------
# The seed's examples.

SEED_REQUESTS: dict[str, Request] = {
    "bind_request": Bind(1, "sys-1234", "Bookings", "bookings", 1),
    "unbind_request": Unbind(2, "sys-1234", "Bookings", "bookings", 1),
    "exec_request": Exec(3, "sys-1234", "Bookings", "make_booking", 1, (1631058815,)),
    "debug_request": Debug(4, "sys-Z6XXA-Kc_v", "Bookings", "debug", 1),
    "ignore_request": Ignore(5, "sys-Z6XXA-Kc_v", "mod-Z6XXB1doL4", "ignore", 1),
    "heartbeat_request": Ping(),
}

SEED_RESPONSES: dict[str, Response] = {
    "bind_success": SuccessResponse(1, meta=BOOKINGS),
    "notify": Notification(18, BOOKINGS, []),
    "unbind_success": SuccessResponse(2, meta=BOOKINGS),
    "exec_success": SuccessResponse(3, value={}, meta=BOOKINGS),
    "debug_success": SuccessResponse(
        4, meta=ModuleMeta("sys-Z6XXA-Kc_v", "Bookings", 1), mod_id="mod-Z6XXB1doL4"
    ),
    "debug_message": DebugMessage(
        "mod-Z6XXB1doL4", "::Some::Display", LogLevel.DEBUG, "input changed to HDMI"
    ),
    "ignore_success": SuccessResponse(5),
    "heartbeat_response": Pong(),
}


def test_every_seed_example_is_covered() -> None:
    assert set(PLACEOS_REQUESTS) == set(SEED_REQUESTS)
    assert set(PLACEOS_RESPONSES) == set(SEED_RESPONSES)


@pytest.mark.parametrize("name", sorted(SEED_REQUESTS))
def test_seed_request_decodes_and_round_trips(name: str) -> None:
    data = PLACEOS_MESSAGES[name].encode()
    request = decode_request(data)
    assert request == SEED_REQUESTS[name]
    assert type(request) is type(SEED_REQUESTS[name])
    assert decode_request(data.decode("utf-8")) == request  # text frames arrive as str
    assert decode_request(encode_request(request)) == request


@pytest.mark.parametrize("name", sorted(SEED_RESPONSES))
def test_seed_response_decodes_and_round_trips(name: str) -> None:
    data = PLACEOS_MESSAGES[name].encode()
    response = decode_response(data)
    assert response == SEED_RESPONSES[name]
    assert type(response) is type(SEED_RESPONSES[name])
    assert decode_response(data.decode("utf-8")) == response
    assert decode_response(encode_response(response)) == response
    assert decode_response(encode_response(response, dialect=Dialect.SEED)) == response


def test_seed_notify_reencoded_in_the_seed_dialect_is_stringified_again() -> None:
    response = decode_response(PLACEOS_MESSAGES["notify"].encode())
    assert wire(encode_response(response, dialect=Dialect.SEED)) == wire(
        PLACEOS_MESSAGES["notify"].encode()
    )
    assert wire(encode_response(response))["value"] == []  # the current server's raw JSON


def test_seed_requests_encode_as_published() -> None:
    for name, request in SEED_REQUESTS.items():
        if name != "heartbeat_request":
            expected = wire(PLACEOS_MESSAGES[name])
            expected["index"] = expected["index"] or 1  # null is written as the 1 it means
            assert wire(encode_request(request)) == expected


def test_requests_encode_integer_ids_as_json_integers() -> None:
    assert encode_request(Bind(7, "s", "m", "n")) == (
        b'{"id":7,"cmd":"bind","sys":"s","mod":"m","index":1,"name":"n"}'
    )
    assert wire(encode_request(Bind("7", "s", "m", "n")))["id"] == "7"


# --------------------------------------------------------------------------------------
# Dialects and legacy variants (PROTOCOLS.md), one test each.


def test_error_with_error_code_and_http_code_current_server() -> None:
    data = b'{"id":7,"type":"error","msg":"could not find module","error_code":6,"code":500}'
    response = decode_response(data)
    assert response == ErrorResponse(7, ErrorCode.MODULE_NOT_FOUND, "could not find module", 500)
    assert isinstance(response, ErrorResponse)
    assert response.code is ErrorCode.MODULE_NOT_FOUND
    assert wire(encode_response(response)) == wire(data)


def test_error_with_plain_code_seed() -> None:
    data = b'{"id":7,"type":"error","code":2,"msg":"access denied"}'
    response = decode_response(data)
    assert response == ErrorResponse(7, ErrorCode.ACCESS_DENIED, "access denied", None)
    # Re-encoding keeps the seed's form: http_status None remembers it.
    assert wire(encode_response(response)) == wire(data)
    assert wire(encode_response(response, dialect=Dialect.CURRENT)) == {
        "id": 7,
        "type": "error",
        "msg": "access denied",
        "error_code": 2,
        "code": 500,
    }


def test_error_code_wins_over_code_whatever_the_order() -> None:
    data = b'{"code":200,"error_code":3,"id":1,"type":"error","msg":"x"}'
    assert decode_response(data) == ErrorResponse(1, ErrorCode.REQUEST_FAILED, "x", 200)


def test_null_error_code_means_the_seed_form() -> None:
    data = b'{"id":1,"type":"error","error_code":null,"code":4,"msg":"x"}'
    assert decode_response(data) == ErrorResponse(1, ErrorCode.UNKNOWN_COMMAND, "x", None)


def test_notify_with_stringified_value_seed() -> None:
    data = (
        b'{"id":18,"type":"notify","value":"{\\"on\\": true}",'
        b'"meta":{"sys":"s","mod":"m","index":1,"name":"power"}}'
    )
    binding = Binding("s", "m", 1, "power")
    assert decode_response(data) == Notification(18, binding, {"on": True})
    assert decode_response(data, value_format=ValueFormat.STRINGIFIED) == Notification(
        18, binding, {"on": True}
    )
    assert decode_response(data, value_format=ValueFormat.RAW) == Notification(
        18, binding, '{"on": true}'
    )


def test_notify_with_raw_value_current_server() -> None:
    data = (
        b'{"id":18,"type":"notify","value":{"on":true},'
        b'"meta":{"sys":"s","mod":"m","index":1,"name":"power"}}'
    )
    expected = Notification(18, Binding("s", "m", 1, "power"), {"on": True})
    assert decode_response(data) == expected
    assert decode_response(data, value_format=ValueFormat.RAW) == expected
    assert wire(encode_response(expected)) == wire(data)


def test_notify_raw_string_that_is_not_json_stays_a_string() -> None:
    data = b'{"id":1,"type":"notify","value":"HDMI 1","meta":{"sys":"s","mod":"m","name":"input"}}'
    response = decode_response(data)
    assert isinstance(response, Notification)
    assert response.value == "HDMI 1"


def test_auto_value_is_ambiguous_for_raw_strings_that_look_like_json() -> None:
    # Documented: a raw string "1" from the current server reads as the number 1 under
    # AUTO (as the reference TypeScript client reads it); RAW keeps it.
    data = b'{"id":1,"type":"notify","value":"1","meta":{"sys":"s","mod":"m","name":"input"}}'
    auto = decode_response(data)
    raw = decode_response(data, value_format=ValueFormat.RAW)
    assert isinstance(auto, Notification)
    assert isinstance(raw, Notification)
    assert auto.value == 1
    assert raw.value == "1"


def test_string_id() -> None:
    request = decode_request(b'{"id":"req-9","cmd":"bind","sys":"s","mod":"m","name":"n"}')
    assert request == Bind("req-9", "s", "m", "n")
    response = decode_response(b'{"id":"req-9","type":"success"}')
    assert response == SuccessResponse("req-9")
    assert wire(encode_response(SuccessResponse("req-9")))["id"] == "req-9"


def test_int_id() -> None:
    request = decode_request(b'{"id":9,"cmd":"bind","sys":"s","mod":"m","name":"n"}')
    assert isinstance(request, Bind)
    assert request.id == 9
    assert type(request.id) is int
    assert decode_response(b'{"id":9,"type":"success"}') == SuccessResponse(9)


def test_index_missing_means_1() -> None:
    request = decode_request(b'{"id":1,"cmd":"bind","sys":"s","mod":"m","name":"n"}')
    assert request == Bind(1, "s", "m", "n", 1)
    notify = decode_response(
        b'{"id":1,"type":"notify","value":5,"meta":{"sys":"s","mod":"m","name":"n"}}'
    )
    assert notify == Notification(1, Binding("s", "m", 1, "n"), 5)


def test_index_null_means_1() -> None:
    request = decode_request(b'{"id":1,"cmd":"exec","sys":"s","mod":"m","index":null,"name":"n"}')
    assert request == Exec(1, "s", "m", "n", 1, ())
    notify = decode_response(
        b'{"id":1,"type":"notify","value":5,"meta":{"sys":"s","mod":"m","index":null,"name":"n"}}'
    )
    assert notify == Notification(1, Binding("s", "m", 1, "n"), 5)


def test_meta_without_name_is_a_module_meta() -> None:
    success = decode_response(b'{"id":4,"type":"success","meta":{"sys":"s","mod":"m","index":2}}')
    assert success == SuccessResponse(4, meta=ModuleMeta("s", "m", 2))
    debug = decode_response(
        b'{"type":"debug","mod":"mod-1","level":"info","msg":"x","meta":{"sys":"s","mod":"m"}}'
    )
    assert isinstance(debug, DebugMessage)
    assert debug.meta == ModuleMeta("s", "m", 1)
    assert wire(encode_response(success))["meta"] == {"sys": "s", "mod": "m", "index": 2}


def test_unsolicited_pong() -> None:
    # The reference server sends ``pong`` every 80 s whether asked or not.
    assert decode_response(b"pong") == Pong()
    assert decode_response("pong") == Pong()
    assert encode_response(Pong()) == b"pong"
    assert decode_request(b"ping") == Ping()
    assert decode_request("ping") == Ping()
    assert encode_request(Ping()) == b"ping"


def test_unknown_error_number_survives_as_a_plain_int() -> None:
    response = decode_response(b'{"id":1,"type":"error","error_code":42,"code":500,"msg":"new"}')
    assert isinstance(response, ErrorResponse)
    assert response.code == 42
    assert type(response.code) is int
    assert wire(encode_response(response))["error_code"] == 42


def test_unknown_debug_level_survives_as_a_plain_str() -> None:
    response = decode_response(b'{"type":"debug","mod":"mod-1","level":"none","msg":"x"}')
    assert isinstance(response, DebugMessage)
    assert response.level == "none"
    assert type(response.level) is str
    assert wire(encode_response(response))["level"] == "none"


def test_current_server_debug_message_has_id_and_meta() -> None:
    data = (
        b'{"id":4,"type":"debug","msg":"hello","meta":{"sys":"s","mod":"mod-1","index":1,'
        b'"name":"debug"},"mod":"mod-1","level":"warn"}'
    )
    response = decode_response(data)
    assert response == DebugMessage(
        "mod-1", None, LogLevel.WARN, "hello", Binding("s", "mod-1", 1, "debug"), 4
    )
    assert wire(encode_response(response)) == wire(data)


def test_current_server_exec_success_keeps_its_http_code() -> None:
    data = (
        b'{"id":3,"type":"success","meta":{"sys":"s","mod":"m","index":1,"name":"f"},'
        b'"value":[1],"code":200}'
    )
    response = decode_response(data)
    assert response == SuccessResponse(3, [1], Binding("s", "m", 1, "f"), None, 200)
    assert wire(encode_response(response)) == wire(data)
    assert "code" not in wire(encode_response(response, dialect=Dialect.SEED))


def test_unknown_fields_are_tolerated() -> None:
    request = decode_request(
        b'{"id":1,"cmd":"bind","sys":"s","mod":"m","name":"n","args":null,"extra":{"a":1}}'
    )
    assert request == Bind(1, "s", "m", "n")
    notify = decode_response(
        b'{"id":1,"type":"notify","value":2,"later":true,'
        b'"meta":{"sys":"s","mod":"m","index":1,"name":"n","zone":"z"}}'
    )
    assert notify == Notification(1, Binding("s", "m", 1, "n"), 2)


def test_error_reply_without_a_readable_id() -> None:
    response = decode_response(b'{"type":"error","code":0,"msg":"parse error"}')
    assert response == ErrorResponse(None, ErrorCode.PARSE_ERROR, "parse error", None)
    assert wire(encode_response(response))["id"] is None


def test_error_reply_without_msg_has_an_empty_message() -> None:
    assert decode_response(b'{"id":1,"type":"error","code":7}') == ErrorResponse(
        1, ErrorCode.UNEXPECTED_FAILURE, "", None
    )


# --------------------------------------------------------------------------------------
# Models.


def test_binding_is_a_hashable_key_and_commands_name_theirs() -> None:
    key = Binding("s", "m", 2, "n")
    assert {key: 1}[Binding("s", "m", 2, "n")] == 1
    assert Bind(1, "s", "m", "n", 2).binding == key
    assert Unbind(9, "s", "m", "n", 2).binding == key


def test_commands_of_different_kinds_are_not_equal() -> None:
    assert Bind(1, "s", "m", "n") != Unbind(1, "s", "m", "n")
    assert isinstance(Bind(1, "s", "m", "n"), Command)
    assert isinstance(Exec(1, "s", "m", "n"), Request)  # type: ignore[misc,arg-type,unused-ignore]
    assert isinstance(Pong(), Response)  # type: ignore[misc,arg-type,unused-ignore]


def test_exec_args_are_a_tuple_even_from_a_list() -> None:
    assert Exec(1, "s", "m", "n", 1, [1, [2]]).args == (1, [2])
    assert Exec(1, "s", "m", "n", 1, [1, 2]) == Exec(1, "s", "m", "n", 1, (1, 2))


def test_models_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        BOOKINGS.index = 2  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Notification(1, BOOKINGS).value = 1  # type: ignore[misc]


def test_known_error_numbers_and_levels_become_enum_members() -> None:
    assert ErrorResponse(1, 5, "x").code is ErrorCode.SYSTEM_NOT_FOUND
    assert DebugMessage("m", None, "fatal", "x").level is LogLevel.FATAL
    assert [int(code) for code in ErrorCode] == list(range(8))


def test_fast_builders_equal_init() -> None:
    meta = ModuleMeta("s", "m", 3)
    assert codec._notification(1, BOOKINGS, [1]) == Notification(1, BOOKINGS, [1])
    assert codec._success("a", {}, meta, "mod-1", 200) == SuccessResponse(
        "a", {}, meta, "mod-1", 200
    )
    assert codec._error(None, ErrorCode.BAD_REQUEST, "x", None) == ErrorResponse(None, 1, "x", None)
    assert codec._debug("m", "K", LogLevel.INFO, "x", meta, 4) == DebugMessage(
        "m", "K", "info", "x", meta, 4
    )
    for built, init in [
        (codec._notification(1, BOOKINGS, None), Notification(1, BOOKINGS)),
        (codec._success(1, None, None, None, None), SuccessResponse(1)),
    ]:
        assert repr(built) == repr(init)
        assert hash(built) == hash(init)


def test_request_error_answers_with_its_code_and_id() -> None:
    with pytest.raises(RequestError) as caught:
        decode_request(b'{"id":8,"cmd":"bind","sys":"s","mod":"m","name":"n","index":0}')
    reply = caught.value.to_response()
    assert reply == ErrorResponse(8, ErrorCode.BAD_REQUEST, str(caught.value), 500)
    assert str(caught.value).startswith("index: expected a positive integer")
    moved = caught.value.under("outer")
    assert isinstance(moved, RequestError)
    assert (moved.path, moved.code, moved.id) == ("outer.index", ErrorCode.BAD_REQUEST, 8)
    assert "code=<ErrorCode.BAD_REQUEST: 1>" in repr(caught.value)
    copied = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(copied, RequestError)
    assert (copied.reason, copied.path, copied.code, copied.id) == (
        caught.value.reason,
        "index",
        ErrorCode.BAD_REQUEST,
        8,
    )


# --------------------------------------------------------------------------------------
# Bad input: exact path, and for requests the error number and id to answer with.

BIG = 50_000_000


def big_string_message(prefix: bytes, suffix: bytes) -> bytes:
    return b"".join([prefix, b"x" * BIG, suffix])


DEEP = b"[" * 10_000 + b"]" * 10_000

BAD_REQUESTS: list[tuple[str, Callable[[], bytes], str, ErrorCode, Any]] = [
    ("truncated", lambda: b'{"id":1,"cmd":"bind","sys":"s"', "", ErrorCode.PARSE_ERROR, None),
    ("empty", lambda: b"", "", ErrorCode.PARSE_ERROR, None),
    ("whitespace", lambda: b"  \n", "", ErrorCode.PARSE_ERROR, None),
    ("invalid utf-8", lambda: b'{"id":1,"cmd":"b\xffnd"}', "", ErrorCode.PARSE_ERROR, None),
    ("deep nesting", lambda: DEEP, "", ErrorCode.PARSE_ERROR, None),
    (
        "deep args",
        lambda: b'{"id":1,"cmd":"exec","sys":"s","mod":"m","name":"n","args":' + DEEP + b"}",
        "",
        ErrorCode.PARSE_ERROR,
        None,
    ),
    (
        "50 MB over max_size",
        lambda: big_string_message(b'{"id":1,"cmd":"bind","sys":"', b'","mod":"m","name":"n"}'),
        "",
        ErrorCode.PARSE_ERROR,
        None,
    ),
    ("NaN", lambda: b'{"id":NaN,"cmd":"bind","sys":"s","mod":"m","name":"n"}', "", 0, None),
    (
        "Infinity",
        lambda: b'{"id":1,"cmd":"exec","sys":"s","mod":"m","name":"n","args":[Infinity]}',
        "",
        ErrorCode.PARSE_ERROR,
        None,
    ),
    ("lone surrogate", lambda: b'{"id":1,"cmd":"bind","sys":"\\ud800"}', "", 0, None),
    ("top-level array", lambda: b'[{"id":1,"cmd":"bind"}]', "", ErrorCode.PARSE_ERROR, None),
    ("top-level string", lambda: b'"bind"', "", ErrorCode.PARSE_ERROR, None),
    ("raw pong", lambda: b"pong", "", ErrorCode.PARSE_ERROR, None),
    ("unknown cmd", lambda: b'{"id":7,"cmd":"frobnicate"}', "cmd", ErrorCode.UNKNOWN_COMMAND, 7),
    ("cmd case", lambda: b'{"id":7,"cmd":"Bind"}', "cmd", ErrorCode.UNKNOWN_COMMAND, 7),
    ("missing cmd", lambda: b'{"id":"a","sys":"s"}', "cmd", ErrorCode.BAD_REQUEST, "a"),
    ("cmd not a string", lambda: b'{"id":1,"cmd":["bind"]}', "cmd", ErrorCode.BAD_REQUEST, 1),
    ("missing id", lambda: b'{"cmd":"bind","sys":"s","mod":"m","name":"n"}', "id", 1, None),
    ("null id", lambda: b'{"id":null,"cmd":"bind","sys":"s","mod":"m","name":"n"}', "id", 1, None),
    ("bool id", lambda: b'{"id":true,"cmd":"bind","sys":"s","mod":"m","name":"n"}', "id", 1, None),
    ("float id", lambda: b'{"id":1.5,"cmd":"bind","sys":"s","mod":"m","name":"n"}', "id", 1, None),
    (
        "integral float id",
        lambda: b'{"id":1.0,"cmd":"unbind","sys":"s","mod":"m","name":"n"}',
        "id",
        1,
        None,
    ),
    ("object id", lambda: b'{"id":{},"cmd":"bind","sys":"s","mod":"m","name":"n"}', "id", 1, None),
    ("missing sys", lambda: b'{"id":1,"cmd":"bind","mod":"m","name":"n"}', "sys", 1, 1),
    ("int sys", lambda: b'{"id":1,"cmd":"bind","sys":5,"mod":"m","name":"n"}', "sys", 1, 1),
    ("null mod", lambda: b'{"id":1,"cmd":"debug","sys":"s","mod":null,"name":"n"}', "mod", 1, 1),
    ("missing name", lambda: b'{"id":1,"cmd":"ignore","sys":"s","mod":"m"}', "name", 1, 1),
    (
        "index 0",
        lambda: b'{"id":1,"cmd":"bind","sys":"s","mod":"m","name":"n","index":0}',
        "index",
        1,
        1,
    ),
    (
        "negative index",
        lambda: b'{"id":2,"cmd":"bind","sys":"s","mod":"m","name":"n","index":-3}',
        "index",
        1,
        2,
    ),
    (
        "bool index",
        lambda: b'{"id":1,"cmd":"bind","sys":"s","mod":"m","name":"n","index":true}',
        "index",
        1,
        1,
    ),
    (
        "float index",
        lambda: b'{"id":1,"cmd":"bind","sys":"s","mod":"m","name":"n","index":1.0}',
        "index",
        1,
        1,
    ),
    (
        "string index",
        lambda: b'{"id":1,"cmd":"bind","sys":"s","mod":"m","name":"n","index":"1"}',
        "index",
        1,
        1,
    ),
    (
        "args an object",
        lambda: b'{"id":1,"cmd":"exec","sys":"s","mod":"m","name":"n","args":{}}',
        "args",
        1,
        1,
    ),
    (
        "args a string",
        lambda: b'{"id":1,"cmd":"exec","sys":"s","mod":"m","name":"n","args":"[1]"}',
        "args",
        1,
        1,
    ),
    (
        "args a number",
        lambda: b'{"id":1,"cmd":"exec","sys":"s","mod":"m","name":"n","args":5}',
        "args",
        1,
        1,
    ),
]


@pytest.mark.parametrize(
    ("make", "path", "code", "reply_id"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_REQUESTS],
)
def test_bad_request(make: Callable[[], bytes], path: str, code: ErrorCode, reply_id: Any) -> None:
    data = make()
    with pytest.raises(RequestError) as caught:
        decode_request(data, max_size=1_000_000)
    error = caught.value
    assert isinstance(error, DecodeError)
    assert error.path == path
    assert error.code == code
    assert type(error.code) is ErrorCode
    assert error.id == reply_id
    assert error.reason
    assert len(str(error)) < 300  # bounded, whatever the input's size
    if len(data) < 1_000_000:  # the same answer with no size limit
        with pytest.raises(RequestError) as again:
            decode_request(data)
        assert (again.value.path, again.value.code) == (path, code)


GOOD_META = b'{"sys":"s","mod":"m","index":1,"name":"n"}'

BAD_RESPONSES: list[tuple[str, Callable[[], bytes], str]] = [
    ("truncated", lambda: b'{"id":1,"type":"notify","value":[', ""),
    ("empty", lambda: b"", ""),
    ("invalid utf-8", lambda: b'{"id":1,"type":"error","code":1,"msg":"\xc3("}', ""),
    ("deep nesting", lambda: b'{"id":1,"type":"success","value":' + DEEP + b"}", ""),
    (
        "50 MB over max_size",
        lambda: big_string_message(b'{"id":1,"type":"success","value":"', b'"}'),
        "",
    ),
    ("NaN", lambda: b'{"id":1,"type":"notify","value":NaN,"meta":' + GOOD_META + b"}", ""),
    ("-Infinity", lambda: b'{"id":1,"type":"success","value":-Infinity}', ""),
    ("top-level array", lambda: b'[{"id":1,"type":"success"}]', ""),
    ("top-level number", lambda: b"42", ""),
    ("raw ping", lambda: b"ping", ""),
    ("unknown type", lambda: b'{"id":1,"type":"frobnicate"}', "type"),
    ("missing type", lambda: b'{"id":1,"value":2}', "type"),
    ("type not a string", lambda: b'{"id":1,"type":1}', "type"),
    ("notify without meta", lambda: b'{"id":1,"type":"notify","value":1}', "meta"),
    ("notify meta null", lambda: b'{"id":1,"type":"notify","value":1,"meta":null}', "meta"),
    ("notify meta a string", lambda: b'{"id":1,"type":"notify","value":1,"meta":"s/m/n"}', "meta"),
    (
        "notify meta without name",
        lambda: b'{"id":1,"type":"notify","meta":{"sys":"s","mod":"m"}}',
        "meta.name",
    ),
    (
        "notify meta.sys int",
        lambda: b'{"id":1,"type":"notify","meta":{"sys":1,"mod":"m","name":"n"}}',
        "meta.sys",
    ),
    (
        "notify missing meta.mod",
        lambda: b'{"id":1,"type":"notify","meta":{"sys":"s","name":"n"}}',
        "meta.mod",
    ),
    (
        "notify meta.index 0",
        lambda: b'{"id":1,"type":"notify","meta":{"sys":"s","mod":"m","index":0,"name":"n"}}',
        "meta.index",
    ),
    (
        "notify meta.index -1",
        lambda: b'{"id":1,"type":"notify","meta":{"sys":"s","mod":"m","index":-1,"name":"n"}}',
        "meta.index",
    ),
    (
        "notify meta.index true",
        lambda: b'{"id":1,"type":"notify","meta":{"sys":"s","mod":"m","index":true,"name":"n"}}',
        "meta.index",
    ),
    (
        "notify meta.index 1.0",
        lambda: b'{"id":1,"type":"notify","meta":{"sys":"s","mod":"m","index":1.0,"name":"n"}}',
        "meta.index",
    ),
    ("notify bool id", lambda: b'{"id":false,"type":"notify","meta":' + GOOD_META + b"}", "id"),
    ("notify float id", lambda: b'{"id":18.0,"type":"notify","meta":' + GOOD_META + b"}", "id"),
    ("notify missing id", lambda: b'{"type":"notify","value":1,"meta":' + GOOD_META + b"}", "id"),
    ("success missing id", lambda: b'{"type":"success","value":1}', "id"),
    ("success meta an array", lambda: b'{"id":1,"type":"success","meta":["s","m"]}', "meta"),
    (
        "success meta.index string",
        lambda: b'{"id":1,"type":"success","meta":{"sys":"s","mod":"m","index":"2"}}',
        "meta.index",
    ),
    (
        "success meta.name int",
        lambda: b'{"id":1,"type":"success","meta":{"sys":"s","mod":"m","name":3}}',
        "meta.name",
    ),
    ("success mod_id int", lambda: b'{"id":1,"type":"success","mod_id":5}', "mod_id"),
    ("success code string", lambda: b'{"id":1,"type":"success","code":"200"}', "code"),
    ("error without number", lambda: b'{"id":1,"type":"error","msg":"x"}', "code"),
    (
        "error error_code string",
        lambda: b'{"id":1,"type":"error","error_code":"6","code":500}',
        "error_code",
    ),
    (
        "error error_code float",
        lambda: b'{"id":1,"type":"error","error_code":6.0,"code":500}',
        "error_code",
    ),
    ("error status string", lambda: b'{"id":1,"type":"error","error_code":6,"code":"500"}', "code"),
    ("error seed code bool", lambda: b'{"id":1,"type":"error","code":true,"msg":"x"}', "code"),
    ("error msg int", lambda: b'{"id":1,"type":"error","code":1,"msg":1}', "msg"),
    ("error id float", lambda: b'{"id":0.5,"type":"error","code":1,"msg":"x"}', "id"),
    ("debug missing level", lambda: b'{"type":"debug","mod":"mod-1","msg":"x"}', "level"),
    ("debug level int", lambda: b'{"type":"debug","mod":"mod-1","level":3,"msg":"x"}', "level"),
    ("debug missing msg", lambda: b'{"type":"debug","mod":"mod-1","level":"info"}', "msg"),
    ("debug missing mod", lambda: b'{"type":"debug","level":"info","msg":"x"}', "mod"),
    (
        "debug klass int",
        lambda: b'{"type":"debug","mod":"m","klass":5,"level":"info","msg":"x"}',
        "klass",
    ),
    (
        "debug meta.index -1",
        lambda: (
            b'{"type":"debug","mod":"m","level":"info","msg":"x","meta":{"sys":"s","mod":"m","index":-1}}'
        ),
        "meta.index",
    ),
    (
        "debug id bool",
        lambda: b'{"id":true,"type":"debug","mod":"m","level":"info","msg":"x"}',
        "id",
    ),
]


@pytest.fixture
def cached_binding() -> None:
    """A good notify first: the binding memo must not make later bad ones pass."""
    decode_response(b'{"id":1,"type":"notify","value":0,"meta":' + GOOD_META + b"}")
    decode_response(b'{"id":1,"type":"success","meta":' + GOOD_META + b"}")
    decode_response(
        b'{"type":"debug","mod":"m","level":"info","msg":"x","meta":' + GOOD_META + b"}"
    )


@pytest.mark.usefixtures("cached_binding")
@pytest.mark.parametrize(
    ("make", "path"), [pytest.param(*case[1:], id=case[0]) for case in BAD_RESPONSES]
)
def test_bad_response(make: Callable[[], bytes], path: str) -> None:
    data = make()
    with pytest.raises(DecodeError) as caught:
        decode_response(data, max_size=1_000_000)
    assert caught.value.path == path
    assert caught.value.reason
    assert len(str(caught.value)) < 300
    assert not isinstance(caught.value, RequestError)


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (b'{"id":1,"type":"notify","value":[],"meta":' + GOOD_META + b"}", "value"),
        (b'{"id":1,"type":"notify","value":"not json","meta":' + GOOD_META + b"}", "value"),
        (b'{"id":1,"type":"notify","value":"[1,","meta":' + GOOD_META + b"}", "value"),
    ],
)
def test_bad_stringified_value(data: bytes, path: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_response(data, value_format=ValueFormat.STRINGIFIED)
    assert caught.value.path == path


@pytest.mark.usefixtures("cached_binding")
def test_binding_memo_distinguishes_index_spellings() -> None:
    null_index = decode_response(
        b'{"id":2,"type":"notify","value":1,"meta":{"sys":"s","mod":"m","index":null,"name":"n"}}'
    )
    assert null_index == Notification(2, Binding("s", "m", 1, "n"), 1)
    with pytest.raises(DecodeError) as caught:
        decode_response(
            b'{"id":2,"type":"notify","value":1,"meta":{"sys":"s","mod":"m","index":true,"name":"n"}}'
        )
    assert caught.value.path == "meta.index"


def test_binding_memo_is_bounded() -> None:
    for i in range(codec._BINDINGS_MAX + 10):
        decode_response(b'{"id":1,"type":"notify","meta":{"sys":"s","mod":"m","name":"v%d"}}' % i)
    assert 0 < len(codec._BINDINGS) <= codec._BINDINGS_MAX


def test_notify_memo_keeps_one_entry_per_distinct_binding() -> None:
    # A server that builds a fresh, equal Binding for every change (the fake engine did)
    # must not fill the memo with copies: it once held up to 4096 of them.
    codec._META_JSON.clear()
    codec._META_BY_VALUE.clear()
    for n in range(codec._BINDINGS_MAX + 10):
        binding = Binding("s", "m", 1, f"v{n % 3}")
        data = encode_response(Notification(n, binding, n))
        assert decode_response(data) == Notification(n, binding, n)
    assert len(codec._META_JSON) == len(codec._META_BY_VALUE) == 3


def test_notify_memo_entries_hold_only_their_own_bytes() -> None:
    # orjson hands back each document in a 4 KiB buffer; the memo keeps up to
    # _BINDINGS_MAX serialised metas for hours, so it keeps copies of their own size.
    codec._META_JSON.clear()
    codec._META_BY_VALUE.clear()
    bindings = [Binding("sys-1", "Display", 1, f"sensor{n}") for n in range(1000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n, binding in enumerate(bindings):
            encode_response(Notification(n, binding, True))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        codec._META_JSON.clear()
        codec._META_BY_VALUE.clear()
    assert grown < 1000 * 1024, f"{grown / 1000:.0f} bytes per remembered binding"


SURROGATE_DEEP = b"[" * 600 + b'"\\ud800"' + b"]" * 600


def test_deep_value_with_a_lone_surrogate_is_a_decode_error() -> None:
    # Deep enough to trip a recursive surrogate check, shallow enough to parse.
    with pytest.raises(DecodeError) as response_error:
        decode_response(b'{"id":1,"type":"success","value":' + SURROGATE_DEEP + b"}")
    assert response_error.value.path == ""
    with pytest.raises(RequestError) as request_error:
        decode_request(
            b'{"id":1,"cmd":"exec","sys":"s","mod":"m","name":"n","args":' + SURROGATE_DEEP + b"}"
        )
    assert (request_error.value.path, request_error.value.code) == ("", ErrorCode.PARSE_ERROR)


@pytest.mark.parametrize("inner", [DEEP, SURROGATE_DEEP], ids=["deep", "deep surrogate"])
def test_deep_stringified_value(inner: bytes) -> None:
    data = (
        b'{"id":1,"type":"notify","meta":'
        + GOOD_META
        + b',"value":'
        + json.dumps(inner.decode()).encode()
        + b"}"
    )
    auto = decode_response(data)
    assert isinstance(auto, Notification)
    assert auto.value == inner.decode()  # not JSON after all: kept as the string it is
    with pytest.raises(DecodeError) as caught:
        decode_response(data, value_format=ValueFormat.STRINGIFIED)
    assert caught.value.path == "value"


def test_huge_bad_value_gives_a_short_message() -> None:
    data = (
        b'{"id":1,"cmd":"bind","sys":"s","mod":"m","name":"n","index":"' + b"9" * 1_000_000 + b'"}'
    )
    with pytest.raises(RequestError) as caught:
        decode_request(data)
    assert caught.value.path == "index"
    assert len(str(caught.value)) < 300


def test_bad_value_format_and_dialect_are_the_callers_fault() -> None:
    with pytest.raises(LocalProtocolError):
        decode_response(b'{"id":1,"type":"success"}', value_format="raw")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_response(SuccessResponse(1), dialect="seed")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Encoding refuses what the wire cannot carry.


@pytest.mark.parametrize(
    "request_",
    [
        Bind(True, "s", "m", "n"),
        Bind(1.5, "s", "m", "n"),  # type: ignore[arg-type]
        Bind(None, "s", "m", "n"),  # type: ignore[arg-type]
        Bind(1, "s", "m", "n", 0),
        Unbind(1, "s", "m", "n", -1),
        Debug(1, "s", "m", "n", True),
        Ignore(1, 5, "m", "n"),  # type: ignore[arg-type]
        Exec(1, "s", "m", "n", 1, (object(),)),
        Exec(1, "s", "m", "n", 1, ({1, 2},)),
        Command(1, "s", "m", "n"),
    ],
)
def test_encode_request_refuses(request_: Any) -> None:
    with pytest.raises(EncodeError):
        encode_request(request_)


@pytest.mark.parametrize(
    "response",
    [
        SuccessResponse(True),
        SuccessResponse(1, value=b"bytes"),
        SuccessResponse(1, meta="s/m"),  # type: ignore[arg-type]
        ErrorResponse(1, "1", "x"),  # type: ignore[arg-type]
        ErrorResponse(1, 1, "x", http_status="500"),  # type: ignore[arg-type]
        Notification(1, ModuleMeta("s", "m")),  # type: ignore[arg-type]
        Notification(1, Binding("s", "m", 0, "n")),
        DebugMessage("m", None, 3, "x"),  # type: ignore[arg-type]
        Bind(1, "s", "m", "n"),
    ],
)
def test_encode_response_refuses(response: Any) -> None:
    with pytest.raises(EncodeError):
        encode_response(response)


def test_notify_encoding_remembers_only_what_it_checked() -> None:
    binding = Binding("sys-1", "Display", 1, "power")
    first = encode_response(Notification(1, binding, True))
    # The second notify of the binding reuses its wire meta: same bytes, its own id.
    assert encode_response(Notification(1, binding, True)) == first
    again = encode_response(Notification("a", binding, [1.5]))
    assert json.loads(again) == {**json.loads(first), "id": "a", "value": [1.5]}
    with pytest.raises(EncodeError):  # the id is still checked on every notify
        encode_response(Notification(True, binding, 1))  # type: ignore[arg-type]
    with pytest.raises(EncodeError):  # a value that is not JSON, also on the reused path
        encode_response(Notification(2, binding, float("nan")))
    bad = Binding("sys-1", "Display", 0, "power")
    for _ in range(2):  # refused, so never remembered
        with pytest.raises(EncodeError):
            encode_response(Notification(1, bad, True))


# Ids and values at the edges of what the template path writes itself: integers past
# 64 bits and past the digits limit, text that must be escaped or cannot be encoded,
# floats (NaN among them) and values that are not JSON at all.
ODD_IDS = st.sampled_from([0, -(2**63) - 1, 2**64, 10**5000, "", 'q"\\\x00', "\ud800", True, 1.0])
ODD_VALUES = st.sampled_from(
    [
        *(2**64 - 1, 2**64, -(2**63) - 1, 10**5000, "\ud800", "\x1f\u2028", 1.5, float("nan")),
        *([float("inf")], {1: "a"}, {2, 3}, b"x", (1, "2"), {"k": [None, False]}),
    ]
)
ODD_NOTIFICATIONS = st.builds(
    Notification,
    st.one_of(ODD_IDS, st.integers(), st.text()),
    st.builds(Binding, st.text(), st.text(), st.integers(min_value=1), st.text()),
    st.one_of(ODD_VALUES, st.none(), st.booleans(), st.integers(), st.text()),
)


def _outcome(encode: Callable[[], bytes]) -> bytes | str:
    try:
        return encode()
    except EncodeError as exc:
        return f"EncodeError: {exc}"


@pytest.mark.usefixtures("json_backend")
@given(st.one_of(placeos_st.notifications(), ODD_NOTIFICATIONS))
def test_property_remembered_notify_is_the_whole_objects_serialisation(
    response: Notification,
) -> None:
    """A notify of a binding seen before is written from a template (see `_encode_notify`):
    the very bytes, or the very error, of serialising the whole object, on either backend."""
    whole = _outcome(lambda: codec._json.dumps(codec._notify_current(response)))
    with contextlib.suppress(EncodeError):  # remember the binding, as a server would
        encode_response(Notification(1, response.binding, None))
    assert _outcome(lambda: encode_response(response)) == whole
    assert _outcome(lambda: encode_response(response, dialect=Dialect.CURRENT)) == whole


NOTIFY_EDGES = [
    b'{"id":1,"type":"notify","value":true,"meta":{"sys":"s","mod":"m","index":1,"name":"n"}}',
    b'{"id":1,"type":"notify","value":1.5,"meta":{"sys":"s","mod":"m","index":1,"name":"n"}}',
    b'{"id":1,"type":"notify","value":"[1]","meta":{"sys":"s","mod":"m","name":"n"}}',
    b'{"id":1,"type":"notify","meta":{"sys":"s","mod":"m","index":null,"name":"n"}}',
    b'{"id":1,"type":"notify","value":1,"meta":{"sys":"s","mod":"m","index":true,"name":"n"}}',
    b'{"id":99999999999999999999,"type":"notify","value":1,'
    b'"meta":{"sys":"s","mod":"m","index":1,"name":"n"}}',
    b'{"id":1,"type":"notify","value":18446744073709551615,'
    b'"meta":{"sys":"s","mod":"m","index":1,"name":"n"}}',
    b'{"id":"a","type":"notify","value":null,"x":1,"meta":{"sys":"s","mod":"m","name":"n"}}',
    b'{"id":1,"type":"notify","type":"success","meta":{"sys":"s","mod":"m","name":"n"}}',
    rb'{"id":1,"type":"notify","value":"\ud800","meta":{"sys":"s","mod":"m","name":"n"}}',
]


@given(
    st.one_of(
        placeos_st.response_messages(),
        placeos_st.garbage_messages(),
        st.sampled_from(NOTIFY_EDGES),
    )
)
def test_property_shaped_notify_agrees_with_the_ordinary_path(data: bytes) -> None:
    """With msgspec, a notify in the shape skips the dicts: same model as without."""
    if codec._shape is None:
        pytest.skip("msgspec (the fast extra) is not installed")
    with contextlib.suppress(DecodeError):
        decode_response(data)  # the ordinary way remembers the binding, as in a session
    try:
        struct = codec._shape.decode(data)
    except Exception:  # not in the shape: the ordinary way decides alone
        return
    if not isinstance(struct, codec._shape.Notify):
        return  # another response type: the ordinary way decides alone
    meta = struct.meta
    if (meta.sys, meta.mod, 1 if meta.index is codec._UNSET else meta.index, meta.name) not in (
        codec._BINDINGS
    ):
        return  # a binding not seen yet: the ordinary way decides alone
    shaped = decode_response(data)  # the shaped path, on the orjson backend
    ordinary = codec._AUTO_HOOKS["notify"](codec._json.loads(data), None)
    assert shaped == ordinary
    assert type(shaped.value) is type(ordinary.value)
    assert type(shaped.id) is type(ordinary.id)


# --------------------------------------------------------------------------------------
# Properties.

# The strategies are protocore.testing's, the ones users fuzz their own code with.
REQUESTS = placeos_st.requests()
SUCCESSES = placeos_st.successes()
ERRORS = placeos_st.errors()
DEBUGS = placeos_st.debug_messages()
NOTIFICATIONS = placeos_st.notifications()  # includes strings that look like JSON text
RESPONSES = placeos_st.responses()


@given(REQUESTS)
def test_request_round_trip(request_: Request) -> None:
    assert decode_request(encode_request(request_)) == request_


@given(RESPONSES)
def test_response_round_trip_raw(response: Response) -> None:
    assert decode_response(encode_response(response), value_format=ValueFormat.RAW) == response


@given(st.one_of(SUCCESSES, ERRORS, DEBUGS, NOTIFICATIONS))
def test_response_round_trip_auto(response: Response) -> None:
    # AUTO round-trips everything but a raw string holding JSON text (documented).
    assume(not (isinstance(response, Notification) and _holds_json(response.value)))
    assert decode_response(encode_response(response)) == response


def _holds_json(value: Any) -> bool:
    try:
        json.loads(value)
    except (TypeError, ValueError):
        return False
    return True


@given(NOTIFICATIONS)
def test_notify_round_trip_in_both_dialects(response: Notification) -> None:
    seed = encode_response(response, dialect=Dialect.SEED)
    assert decode_response(seed) == response
    assert decode_response(seed, value_format=ValueFormat.STRINGIFIED) == response
    current = encode_response(response, dialect=Dialect.CURRENT)
    assert decode_response(current, value_format=ValueFormat.RAW) == response
    assert wire(current)["value"] == response.value
    assert json.loads(wire(seed)["value"]) == response.value


@pytest.mark.parametrize("value", ["", "abc", "1", "null", " [1]", '"x"', "true story", "{"])
def test_string_values_in_both_dialects(value: str) -> None:
    response = Notification(1, BOOKINGS, value)
    assert decode_response(encode_response(response, dialect=Dialect.SEED)) == response
    assert decode_response(encode_response(response), value_format=ValueFormat.RAW) == response


@given(RESPONSES)
def test_response_round_trip_seed_dialect(response: Response) -> None:
    data = encode_response(response, dialect=Dialect.SEED)
    # The seed has no place for the HTTP-like status; everything else survives, and
    # its stringified values read back exactly under both AUTO and STRINGIFIED.
    if isinstance(response, SuccessResponse | ErrorResponse):
        response = attrs.evolve(response, http_status=None)
    assert decode_response(data) == response
    if isinstance(response, Notification):
        assert decode_response(data, value_format=ValueFormat.STRINGIFIED) == response


@given(ERRORS)
def test_error_round_trip_current_dialect(response: ErrorResponse) -> None:
    data = encode_response(response, dialect=Dialect.CURRENT)
    expected = (
        response if response.http_status is not None else attrs.evolve(response, http_status=500)
    )
    assert decode_response(data) == expected


@given(RESPONSES)
def test_fast_and_checked_paths_agree(response: Response) -> None:
    if isinstance(response, Pong):
        return
    obj = json.loads(encode_response(response))
    checked: dict[type[Any], Callable[[Any], Any]] = {
        SuccessResponse: codec._checked_success,
        ErrorResponse: codec._checked_error,
        DebugMessage: codec._checked_debug,
        Notification: lambda o: codec._checked_notify(o, lambda v: v),
    }
    assert checked[type(response)](obj) == response
    assert decode_response(json.dumps(obj), value_format=ValueFormat.RAW) == response


# Objects that look like messages: every field optional, each value anything nearby,
# so both the fast paths and every branch of the checked ones are reached.
LOOKALIKES = placeos_st.lookalikes()
NEAR = placeos_st.near_values()


@given(st.one_of(NEAR, LOOKALIKES))
def test_nothing_but_decode_error_escapes(obj: Any) -> None:
    data = json.dumps(obj).encode()
    for decode in (decode_request, decode_response):
        outcome: Any
        try:
            outcome = decode(data)
        except DecodeError as exc:  # anything else fails the test
            outcome = exc
        if isinstance(outcome, DecodeError):
            assert isinstance(outcome.path, str)
            assert outcome.reason
        else:
            assert isinstance(outcome, Request | Response)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_only_raise_decode_error(data: bytes) -> None:
    for decode in (decode_request, decode_response):
        with contextlib.suppress(DecodeError):  # anything else fails the test
            assert isinstance(decode(data), Request | Response)
