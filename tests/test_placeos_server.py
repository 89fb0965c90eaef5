"""PlaceOSServer on its own: no connection, no sockets, ``now`` is a float we pass.

Every test drives the session the way `ServerConnection` does (authorize, then
connection_made, receive_message, messages_to_send, next_deadline/handle_timer,
connection_lost) and reads what it queued back through the codec.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocore.errors import EncodeError, LocalProtocolError
from protocore.events import BadMessage
from protocore.placeos import (
    Bind,
    Binding,
    Command,
    Debug,
    Dialect,
    ErrorCode,
    ErrorResponse,
    Exec,
    Ignore,
    Notification,
    Request,
    SuccessResponse,
    Unbind,
    ValueFormat,
    decode_response,
    encode_request,
)
from protocore.placeos.server import (
    DEFAULT_PATH,
    DebugStream,
    HandlerFailed,
    PlaceOSServer,
    RequestReceived,
)
from protocore.testing import placeos as placeos_st
from protocore.testing import wire

KEY = "api-key-5ecret-0001"
OTHER_KEY = "api-key-5ecret-0002"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
PATH = DEFAULT_PATH
SYS = "sys-Z6XXA-Kc_v"
BINDING = Binding(SYS, "Display", 1, "power")


def opened(**kwargs: Any) -> PlaceOSServer:
    server = PlaceOSServer(**kwargs)
    assert server.connection_made(0.0) == []
    return server


def drain(server: PlaceOSServer) -> list[Any]:
    """What the server queued, decoded (raw values: the current dialect's notifies)."""
    return [decode_response(m, value_format=ValueFormat.RAW) for m in server.messages_to_send()]


def drain_json(server: PlaceOSServer) -> list[Any]:
    return [m if m == "pong" else json.loads(m) for m in server.messages_to_send()]


def send(server: PlaceOSServer, request: Request, now: float = 1.0) -> list[Any]:
    return server.receive_message(encode_request(request).decode(), now)


class Recorder:
    """A handler that records calls and answers binds and execs with fixed values."""

    def __init__(self, *, fail: bool = False) -> None:
        self.requests: list[Command] = []
        self.closed: list[PlaceOSServer] = []
        self.fail = fail

    def handle_request(self, server: PlaceOSServer, request: Command) -> None:
        self.requests.append(request)
        if self.fail:
            raise RuntimeError("handler bug: internal detail")
        if isinstance(request, Debug):
            server.reply_success(request, module_id="mod-1")
        else:
            server.reply_success(request, value=42)

    def session_closed(self, server: PlaceOSServer) -> None:
        self.closed.append(server)


# -- authorize ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        pytest.param(PATH, [("x-api-key", KEY)], id="header X-API-Key"),
        pytest.param(f"{PATH}?api-key={KEY}", [], id="query api-key"),
        pytest.param(PATH, [("cookie", f"api-key={KEY}")], id="cookie api-key"),
        pytest.param(PATH, [("authorization", f"Bearer {TOKEN}")], id="header Bearer"),
        pytest.param(f"{PATH}?bearer_token={TOKEN}", [], id="query bearer_token"),
        pytest.param(PATH, [("cookie", f"bearer_token={TOKEN}")], id="cookie bearer_token"),
    ],
)
def test_each_credential_form_is_accepted_and_a_wrong_one_refused(
    target: str, headers: list[tuple[str, str]]
) -> None:
    server = PlaceOSServer(api_keys=[KEY], bearer_tokens=[TOKEN])
    assert server.authorize(target, headers) is None

    wrong_target = target.replace(KEY, "nope").replace(TOKEN, "nope")
    wrong_headers = [(n, v.replace(KEY, "nope").replace(TOKEN, "nope")) for n, v in headers]
    rejection = server.authorize(wrong_target, wrong_headers)
    assert rejection is not None
    assert rejection.status_code == 401
    assert b"nope" not in rejection.body


def test_missing_credentials_are_refused_with_401() -> None:
    server = PlaceOSServer(api_keys=[KEY])
    rejection = server.authorize(PATH, [("host", "example.com")])
    assert rejection is not None
    assert rejection.status_code == 401


def test_an_api_key_is_not_a_bearer_token_and_the_reverse() -> None:
    server = PlaceOSServer(api_keys=[KEY], bearer_tokens=[TOKEN])
    assert server.authorize(PATH, [("x-api-key", TOKEN)]) is not None
    assert server.authorize(PATH, [("authorization", f"Bearer {KEY}")]) is not None


def test_wrong_path_is_404_before_any_credential_check() -> None:
    server = PlaceOSServer(api_keys=[KEY])
    for target in ("/", "/api/engine/v2/systems", f"/elsewhere?api-key={KEY}"):
        rejection = server.authorize(target, [("x-api-key", KEY)])
        assert rejection is not None
        assert rejection.status_code == 404


def test_path_variants_that_name_the_same_endpoint_are_accepted() -> None:
    server = PlaceOSServer(api_keys=[KEY])
    assert server.authorize(PATH + "/", [("x-api-key", KEY)]) is None
    assert server.authorize(f"{PATH}?fixed_device=true", [("x-api-key", KEY)]) is None
    assert server.authorize(f"http://example.com{PATH}", [("x-api-key", KEY)]) is None
    anywhere = PlaceOSServer(api_keys=[KEY], path=None)
    assert anywhere.authorize("/any/where", [("x-api-key", KEY)]) is None


def test_first_credential_found_decides_in_the_reference_order() -> None:
    server = PlaceOSServer(api_keys=[KEY], bearer_tokens=[TOKEN])
    # A wrong X-API-Key is not rescued by a good bearer token further down the order...
    refused = server.authorize(
        f"{PATH}?bearer_token={TOKEN}",
        [("x-api-key", "wrong"), ("authorization", f"Bearer {TOKEN}")],
    )
    assert refused is not None
    assert refused.status_code == 401
    # ...and the query api-key comes before the cookie one.
    assert server.authorize(f"{PATH}?api-key={KEY}", [("cookie", "api-key=wrong")]) is None
    assert server.authorize(f"{PATH}?api-key=wrong", [("cookie", f"api-key={KEY}")]) is not None


def test_empty_values_and_other_schemes_count_as_absent() -> None:
    server = PlaceOSServer(api_keys=[KEY], bearer_tokens=[TOKEN])
    assert (
        server.authorize(f"{PATH}?api-key=", [("x-api-key", ""), ("cookie", f"api-key={KEY}")])
        is None
    )
    assert (
        server.authorize(
            PATH, [("authorization", "Basic dXNlcjpwdw=="), ("cookie", f"bearer_token={TOKEN}")]
        )
        is None
    )
    assert server.authorize(PATH, [("authorization", "Bearer ")]) is not None


def test_bearer_scheme_is_case_insensitive_and_spacing_tolerant() -> None:
    server = PlaceOSServer(bearer_tokens=[TOKEN])
    assert server.authorize(PATH, [("authorization", f"bearer   {TOKEN}  ")]) is None


@pytest.mark.parametrize(
    "cookie_headers",
    [
        [f"theme=dark; api-key={KEY}; lang=en"],
        [f'api-key="{KEY}"'],
        [f"junk; ;=x; a=b=c;api-key={KEY};"],
        ["theme=dark", f"api-key={KEY}"],
        [f"  api-key  =  {KEY}  "],
        [f"api-key={KEY}; api-key=second-one-is-ignored"],
    ],
    ids=["among-others", "quoted", "junk-around", "two-headers", "spaces", "first-wins"],
)
def test_cookie_headers_are_parsed_robustly(cookie_headers: list[str]) -> None:
    server = PlaceOSServer(api_keys=[KEY])
    headers = [("host", "x")] + [("cookie", value) for value in cookie_headers]
    assert server.authorize(PATH, headers) is None


def test_a_cookie_named_like_a_suffix_is_not_the_credential() -> None:
    server = PlaceOSServer(api_keys=[KEY])
    assert server.authorize(PATH, [("cookie", f"my-api-key={KEY}")]) is not None
    assert server.authorize(PATH, [("cookie", f"api-key-old={KEY}")]) is not None


def test_query_credentials_are_percent_decoded() -> None:
    key = "k/with+special&chars=é"
    server = PlaceOSServer(api_keys=[key])
    assert server.authorize(f"{PATH}?x=1&api-key=k%2Fwith%2Bspecial%26chars%3D%C3%A9", []) is None


def test_every_configured_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    keys = [KEY, OTHER_KEY, "third-key"]
    server = PlaceOSServer(api_keys=keys)
    assert server.authorize(PATH, [("x-api-key", KEY)]) is None
    # The match was the first key, yet all three were compared: no early exit.
    assert [b for _, b in calls] == [k.encode() for k in keys]
    calls.clear()
    assert server.authorize(PATH, [("x-api-key", "wrong")]) is not None
    assert len(calls) == 3


def test_no_configured_secret_refuses_everyone_unless_anonymous_is_allowed() -> None:
    closed = PlaceOSServer()
    assert closed.authorize(PATH, []) is not None
    assert closed.authorize(PATH, [("x-api-key", "anything")]) is not None
    assert "closed" in repr(closed)
    server = PlaceOSServer(allow_anonymous=True)
    assert server.authorize(PATH, []) is None
    assert "anonymous" in repr(server)
    # Configured secrets win over allow_anonymous: it only opens a keyless server.
    keyed = PlaceOSServer(api_keys=[KEY], allow_anonymous=True)
    assert keyed.authorize(PATH, []) is not None


def test_secrets_appear_in_no_repr_rejection_or_error() -> None:
    server = PlaceOSServer(api_keys=[KEY, OTHER_KEY], bearer_tokens=[TOKEN])
    assert KEY not in repr(server)
    assert TOKEN not in repr(server)
    rejection = server.authorize(PATH, [("x-api-key", KEY + "x")])
    assert rejection is not None
    text = repr(rejection) + repr(rejection.body) + repr(rejection.headers)
    assert KEY not in text
    assert TOKEN not in text
    with pytest.raises(LocalProtocolError) as info:
        PlaceOSServer(api_keys=KEY)  # one string, not a collection
    assert KEY not in str(info.value)
    with pytest.raises(LocalProtocolError) as info:
        PlaceOSServer(bearer_tokens=[TOKEN, ""])
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bad_requests": "ignore"},
        {"dialect": "current"},
        {"path": "no-slash"},
        {"pong_interval": 0},
        {"pong_interval": True},
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        PlaceOSServer(**kwargs)


# -- heartbeat ----------------------------------------------------------------------


def test_ping_is_answered_pong_and_nothing_else() -> None:
    server = opened()
    assert server.receive_message("ping", 1.0) == []
    assert server.messages_to_send() == ["pong"]
    assert server.receive_message(b"ping", 1.0) == []
    assert server.messages_to_send() == ["pong"]


def test_unsolicited_pong_every_interval() -> None:
    server = PlaceOSServer(pong_interval=80.0)
    assert server.next_deadline() is None  # no connection yet
    server.connection_made(10.0)
    assert server.next_deadline() == 90.0
    assert server.handle_timer(89.5) == []
    assert server.messages_to_send() == []
    assert server.handle_timer(90.0) == []
    assert server.messages_to_send() == ["pong"]
    assert server.next_deadline() == 170.0
    server.connection_lost(100.0)
    assert server.next_deadline() is None


def test_no_unsolicited_pong_when_disabled() -> None:
    server = opened(pong_interval=None)
    assert server.next_deadline() is None
    assert server.handle_timer(1e9) == []
    assert server.messages_to_send() == []


# -- bad requests ---------------------------------------------------------------------

_GOOD = {"id": 7, "cmd": "bind", "sys": SYS, "mod": "Display", "index": 1, "name": "power"}


def _with(**changes: Any) -> str:
    obj = dict(_GOOD)
    for key, value in changes.items():
        if value is _DROP:
            del obj[key]
        else:
            obj[key] = value
    return json.dumps(obj)


_DROP = object()
P, B, U = ErrorCode.PARSE_ERROR, ErrorCode.BAD_REQUEST, ErrorCode.UNKNOWN_COMMAND

BAD_REQUESTS: list[tuple[str, str | bytes, ErrorCode, Any, str]] = [
    # (id, message, error number, reply id, what the message names)
    ("truncated", '{"id": 1, "cmd": "bind"', P, None, ""),
    ("not-json", "hello", P, None, ""),
    ("array", '[{"id": 1}]', P, None, ""),
    ("string", '"bind"', P, None, ""),
    ("null", "null", P, None, ""),
    ("nan", '{"id": NaN}', P, None, ""),
    ("bad-utf8", b'{"id": 1, "cmd": "\xff"}', P, None, ""),
    ("empty", "", P, None, ""),
    ("unknown-cmd", _with(cmd="subscribe"), U, 7, "cmd"),
    ("cmd-case", _with(id="abc", cmd="BIND"), U, "abc", "cmd"),
    ("unknown-cmd-bytes", _with(cmd="shutdown").encode(), U, 7, "cmd"),
    ("missing-cmd", _with(cmd=_DROP), B, 7, "cmd"),
    ("cmd-number", _with(cmd=3), B, 7, "cmd"),
    ("cmd-null", _with(cmd=None), B, 7, "cmd"),
    ("missing-id", _with(id=_DROP), B, None, "id"),
    ("id-bool", _with(id=True), B, None, "id"),
    ("id-float", _with(id=1.5), B, None, "id"),
    ("id-object", _with(id={"n": 1}), B, None, "id"),
    ("missing-sys", _with(sys=_DROP), B, 7, "sys"),
    ("sys-number", _with(sys=12), B, 7, "sys"),
    ("missing-mod", _with(mod=_DROP), B, 7, "mod"),
    ("mod-null", _with(mod=None), B, 7, "mod"),
    ("missing-name", _with(name=_DROP), B, 7, "name"),
    ("index-zero", _with(index=0), B, 7, "index"),
    ("index-string", _with(index="1"), B, 7, "index"),
    ("index-bool", _with(index=True), B, 7, "index"),
    ("exec-args-object", _with(cmd="exec", args={"a": 1}), B, 7, "args"),
    ("exec-args-string", _with(cmd="exec", args="[1]"), B, 7, "args"),
]


@pytest.mark.parametrize(
    ("message", "code", "reply_id", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_REQUESTS],
)
@pytest.mark.usefixtures("json_backend")
def test_bad_request_gets_the_right_error_and_id(
    message: str | bytes, code: ErrorCode, reply_id: Any, field: str
) -> None:
    server = opened()
    events = server.receive_message(message, 1.0)
    [event] = events
    assert isinstance(event, BadMessage)
    assert event.data == message
    assert event.error.path == field
    [reply] = drain(server)
    assert isinstance(reply, ErrorResponse)
    assert reply.code is code
    assert reply.id == reply_id
    assert reply.http_status == 500
    if field:
        assert reply.message.startswith(f"{field}:")
    # The session goes on serving.
    assert server.receive_message("ping", 2.0) == []
    assert server.messages_to_send() == ["pong"]


def test_bad_request_reply_in_the_seed_dialect_puts_the_number_in_code() -> None:
    server = opened(dialect=Dialect.SEED)
    server.receive_message(_with(cmd="nope"), 1.0)
    [raw] = drain_json(server)
    assert raw["code"] == 4
    assert "error_code" not in raw
    assert raw["id"] == 7


@pytest.mark.parametrize(
    "message", [case[1] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS]
)
def test_drop_mode_stays_silent_but_reports_bad_messages(message: str | bytes) -> None:
    server = opened(bad_requests="drop")
    [event] = server.receive_message(message, 1.0)
    assert isinstance(event, BadMessage)
    assert server.messages_to_send() == []
    assert server.receive_message(_with(cmd="unbind"), 2.0) == []
    assert drain(server) == [SuccessResponse(7)]


# -- requests for the application -----------------------------------------------------


def test_without_a_handler_new_requests_become_events_and_replies_go_out() -> None:
    server = opened()
    bind = Bind(1, SYS, "Display", "power")
    assert send(server, bind) == [RequestReceived(bind)]
    assert server.bindings == {}  # nothing bound until the application says so
    server.reply_success(bind, value=True)
    assert drain(server) == [
        SuccessResponse(1, meta=BINDING),
        Notification(1, BINDING, True),
    ]
    assert dict(server.bindings) == {BINDING: 1}

    run = Exec(2, SYS, "Display", "switch_to", args=("hdmi2",))
    assert send(server, run) == [RequestReceived(run)]
    server.reply_success(run, value={"input": "hdmi2"})
    [success] = drain(server)
    assert success == SuccessResponse(
        2, {"input": "hdmi2"}, Binding(SYS, "Display", 1, "switch_to"), http_status=200
    )

    debug = Debug(3, SYS, "mod-abc", "debug")
    assert send(server, debug) == [RequestReceived(debug)]
    server.reply_error(debug, ErrorCode.MODULE_NOT_FOUND, "no such module")
    assert drain(server) == [ErrorResponse(3, ErrorCode.MODULE_NOT_FOUND, "no such module")]
    assert server.debug_streams == {}


def test_bind_without_value_sends_no_notify() -> None:
    server = opened()
    bind = Bind(1, SYS, "Display", "not_yet")
    send(server, bind)
    server.reply_success(bind)
    assert drain(server) == [SuccessResponse(1, meta=bind.binding)]
    assert bind.binding in server.bindings


def test_bind_with_a_null_value_sends_a_null_notify() -> None:
    server = opened()
    bind = Bind(1, SYS, "Display", "power")
    server.reply_success(bind, value=None)
    assert drain(server)[1] == Notification(1, BINDING, None)


def test_duplicate_bind_succeeds_without_a_second_binding() -> None:
    server = opened()
    first = Bind(1, SYS, "Display", "power")
    send(server, first)
    server.reply_success(first, value=False)
    drain(server)

    again = Bind(2, SYS, "Display", "power")
    assert send(server, again) == []  # answered by the session, not handed over
    assert drain(server) == [SuccessResponse(2, meta=BINDING)]
    assert dict(server.bindings) == {BINDING: 1}

    assert server.send_notify(BINDING, True) is True
    assert drain(server) == [Notification(1, BINDING, True)]  # the FIRST bind's id


def test_a_different_index_is_a_different_binding() -> None:
    server = opened()
    server.reply_success(Bind(1, SYS, "Display", "power"))
    second = Bind(2, SYS, "Display", "power", index=2)
    assert send(server, second) == [RequestReceived(second)]


def test_binds_in_flight_keep_the_first_id() -> None:
    # Two binds reach an application that answers later: the first answered wins.
    server = opened()
    a, b = Bind(1, SYS, "Display", "power"), Bind(2, SYS, "Display", "power")
    assert send(server, a) == [RequestReceived(a)]
    assert send(server, b) == [RequestReceived(b)]
    server.reply_success(a)
    server.reply_success(b, value=1)
    assert drain(server) == [
        SuccessResponse(1, meta=BINDING),
        SuccessResponse(2, meta=BINDING),
        Notification(1, BINDING, 1),
    ]
    assert dict(server.bindings) == {BINDING: 1}


def test_unbind_of_nothing_is_a_bare_success() -> None:
    server = opened()
    assert send(server, Unbind(5, SYS, "Display", "power")) == []
    assert drain_json(server) == [{"id": 5, "type": "success"}]


def test_unbind_ends_the_binding_and_a_new_bind_gets_its_own_id() -> None:
    server = opened()
    server.reply_success(Bind(1, SYS, "Display", "power"))
    drain(server)
    assert send(server, Unbind(2, SYS, "Display", "power")) == []
    assert drain(server) == [SuccessResponse(2)]
    assert server.bindings == {}
    assert server.send_notify(BINDING, True) is False
    assert server.messages_to_send() == []

    server.reply_success(Bind(9, SYS, "Display", "power"))
    drain(server)
    server.send_notify(BINDING, 3)
    assert drain(server) == [Notification(9, BINDING, 3)]


def test_debug_stream_until_ignore_by_module_id() -> None:
    server = opened()
    debug = Debug(4, SYS, "Display", "debug")
    server.reply_success(debug, module_id="mod-Z6XXB1doL4")
    [success] = drain_json(server)
    assert success == {
        "id": 4,
        "type": "success",
        "mod_id": "mod-Z6XXB1doL4",
        "meta": {"sys": SYS, "mod": "Display", "index": 1},
    }
    assert server.debug_streams == {
        "mod-Z6XXB1doL4": DebugStream("mod-Z6XXB1doL4", 4, SYS, "Display", 1, "debug")
    }
    assert server.send_debug("mod-Z6XXB1doL4", "input changed to HDMI", klass="::Some::Display")
    [line] = drain_json(server)
    assert line["type"] == "debug"
    assert line["mod"] == "mod-Z6XXB1doL4"
    assert line["msg"] == "input changed to HDMI"
    assert line["klass"] == "::Some::Display"
    assert line["level"] == "debug"
    assert line["id"] == 4  # the reference server's extras
    assert line["meta"]["mod"] == "Display"
    assert server.send_debug("mod-other", "not debugged") is False

    assert send(server, Ignore(5, SYS, "mod-Z6XXB1doL4", "ignore")) == []
    assert drain(server) == [SuccessResponse(5)]
    assert server.debug_streams == {}
    assert server.send_debug("mod-Z6XXB1doL4", "after ignore") is False
    assert server.messages_to_send() == []


def test_ignore_by_the_module_name_used_to_debug_and_ignore_of_nothing() -> None:
    server = opened()
    server.reply_success(Debug(4, SYS, "Display", "debug"), module_id="mod-1")
    drain(server)
    assert send(server, Ignore(6, SYS, "Nothing", "ignore")) == []
    assert drain(server) == [SuccessResponse(6)]
    assert "mod-1" in server.debug_streams
    send(server, Ignore(7, SYS, "Display", "ignore"))
    assert drain(server) == [SuccessResponse(7)]
    assert server.debug_streams == {}


def test_seed_dialect_debug_lines_and_notifies() -> None:
    server = opened(dialect=Dialect.SEED)
    server.reply_success(Debug(4, SYS, "Display", "debug"), module_id="mod-1")
    server.reply_success(Bind(1, SYS, "Display", "power"), value=[1, 2])
    server.send_debug("mod-1", "hello", level="info")
    out = drain_json(server)
    assert out[2] == {"id": 1, "type": "notify", "value": "[1,2]", "meta": BINDING_JSON}
    assert out[3] == {"type": "debug", "mod": "mod-1", "level": "info", "msg": "hello"}


BINDING_JSON = {"sys": SYS, "mod": "Display", "index": 1, "name": "power"}


def test_debug_reply_needs_a_module_id() -> None:
    server = opened()
    with pytest.raises(LocalProtocolError):
        server.reply_success(Debug(4, SYS, "Display", "debug"))
    assert server.messages_to_send() == []


def test_unencodable_value_raises_and_changes_nothing() -> None:
    server = opened()
    with pytest.raises(EncodeError):
        server.reply_success(Bind(1, SYS, "Display", "power"), value={1, 2})
    assert server.bindings == {}
    assert server.messages_to_send() == []
    with pytest.raises(EncodeError):
        server.reply_success(Exec(2, SYS, "Display", "x"), value=object())
    assert server.messages_to_send() == []


def test_raw_send_methods_change_no_state() -> None:
    server = opened()
    server.send_success(1, value=[1], meta=BINDING)
    server.send_error(None, ErrorCode.UNEXPECTED_FAILURE, "boom", http_status=503)
    assert drain(server) == [
        SuccessResponse(1, [1], BINDING),
        ErrorResponse(None, ErrorCode.UNEXPECTED_FAILURE, "boom", 503),
    ]
    assert server.bindings == {}


def test_reply_methods_want_a_request() -> None:
    server = opened()
    with pytest.raises(LocalProtocolError):
        server.reply_success(1)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        server.reply_error("x", 1)  # type: ignore[arg-type]


# -- handler ----------------------------------------------------------------------------


def test_handler_answers_new_requests_and_session_rules_stay_in_the_session() -> None:
    handler = Recorder()
    server = opened(handler=handler)
    bind = Bind(1, SYS, "Display", "power")
    assert send(server, bind) == []
    assert send(server, Bind(2, SYS, "Display", "power")) == []  # duplicate: session
    assert send(server, Unbind(3, SYS, "Display", "volume")) == []  # unbind: session
    assert send(server, Ignore(4, SYS, "mod-1", "ignore")) == []  # ignore: session
    assert handler.requests == [bind]
    assert drain(server) == [
        SuccessResponse(1, meta=BINDING),
        Notification(1, BINDING, 42),
        SuccessResponse(2, meta=BINDING),
        SuccessResponse(3),
        SuccessResponse(4),
    ]


def test_a_failing_handler_is_reported_and_answered_with_error_7() -> None:
    handler = Recorder(fail=True)
    server = opened(handler=handler)
    run = Exec(1, SYS, "Display", "power", args=(True,))
    [event] = send(server, run)
    assert isinstance(event, HandlerFailed)
    assert event.request == run
    assert isinstance(event.error, RuntimeError)
    [reply] = drain(server)
    assert reply == ErrorResponse(1, ErrorCode.UNEXPECTED_FAILURE, "unexpected failure")
    assert "internal detail" not in reply.message
    assert server.receive_message("ping", 2.0) == []
    assert server.messages_to_send() == ["pong"]


def test_connection_lost_detaches_and_forgets() -> None:
    handler = Recorder()
    server = opened(handler=handler)
    send(server, Bind(1, SYS, "Display", "power"))
    send(server, Debug(2, SYS, "Display", "debug"))
    assert server.bindings
    assert server.debug_streams
    server.send_notify(BINDING, 1)  # queued, never sent
    assert server.connection_lost(5.0) == []
    assert handler.closed == [server]
    assert server.closed
    assert server.bindings == {}
    assert server.debug_streams == {}
    assert server.messages_to_send() == []
    assert server.connection_lost(6.0) == []  # idempotent
    assert handler.closed == [server]
    # Late answers and messages are dropped quietly.
    server.reply_success(Exec(3, SYS, "Display", "x"), value=1)
    server.send_error(4, ErrorCode.REQUEST_FAILED, "late")
    assert server.send_notify(BINDING, 2) is False
    assert server.receive_message("ping", 7.0) == []
    assert server.messages_to_send() == []


def test_a_handler_failing_on_close_is_reported() -> None:
    class Broken(Recorder):
        def session_closed(self, server: PlaceOSServer) -> None:
            raise RuntimeError("cleanup failed")

    server = opened(handler=Broken())
    [event] = server.connection_lost(1.0)
    assert isinstance(event, HandlerFailed)
    assert event.request is None


# -- wakeup -------------------------------------------------------------------------------


def test_wakeup_when_queued_from_outside_a_session_call_once_per_drain() -> None:
    calls: list[None] = []
    server = opened(wakeup=lambda: calls.append(None))
    server.reply_success(Bind(1, SYS, "Display", "power"))
    assert len(calls) == 1  # the success was queued from application code
    server.send_notify(BINDING, 1)
    assert len(calls) == 1  # already woken, nothing drained since
    assert len(server.messages_to_send()) == 2
    server.send_notify(BINDING, 2)
    assert len(calls) == 2


def test_no_wakeup_for_what_a_session_call_queues() -> None:
    calls: list[None] = []
    server = opened(handler=Recorder(), wakeup=lambda: calls.append(None))
    send(server, Bind(1, SYS, "Display", "power"))  # the handler answers inside the call
    server.receive_message("ping", 1.0)
    server.receive_message("{", 1.0)
    server.handle_timer(1000.0)
    assert calls == []
    assert len(server.messages_to_send()) == 5
    server.wakeup = None
    server.send_notify(BINDING, 5)  # no callback set: nothing to call
    assert calls == []
    assert len(server.messages_to_send()) == 1


def test_repr_shows_state_not_secrets() -> None:
    server = PlaceOSServer(api_keys=[KEY])
    assert repr(server).startswith("<PlaceOSServer idle")
    server.connection_made(0.0)
    server.reply_success(Bind(1, SYS, "Display", "power"))
    assert "bindings=1" in repr(server)


# -- arbitrary input ----------------------------------------------------------------------

# Look-alikes, garbage and near-miss requests (protocore.testing), as text or bytes.
_GARBAGE = (
    st.text()
    | placeos_st.garbage_messages()
    | placeos_st.request_messages().flatmap(wire.mutations)
    | placeos_st.lookalikes().map(json.dumps)
)


@given(messages=st.lists(_GARBAGE, max_size=5), drop=st.booleans())
def test_arbitrary_input_never_raises_and_the_session_keeps_serving(
    messages: list[str | bytes], drop: bool
) -> None:
    server = opened(handler=Recorder(), bad_requests="drop" if drop else "reply")
    for message in messages:
        events = server.receive_message(message, 1.0)
        assert all(isinstance(e, BadMessage | HandlerFailed) for e in events)
        for text in server.messages_to_send():
            decode_response(text)  # whatever went out is a valid response
    server.receive_message(encode_request(Exec(12345, SYS, "Display", "power")), 2.0)
    replies = drain(server)
    assert (
        SuccessResponse(12345, 42, Binding(SYS, "Display", 1, "power"), http_status=200) in replies
    )
