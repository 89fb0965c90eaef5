"""MockEngine serving PlaceOSServer sessions, in memory; and one end-to-end run through
`ServerConnection` and `ClientConnection` with real frames (no sockets, no clock)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from protocore.connection import ClientConnection, ConnectionState, ServerConnection
from protocore.errors import EncodeError, LocalProtocolError
from protocore.events import Connected, ConnectionClosed, Event, HandshakeRejected
from protocore.placeos import (
    Bind,
    Binding,
    Debug,
    DebugMessage,
    Dialect,
    ErrorCode,
    ErrorResponse,
    Exec,
    Ignore,
    Notification,
    Ping,
    Request,
    Response,
    SuccessResponse,
    Unbind,
    ValueFormat,
    decode_response,
    encode_request,
)
from protocore.placeos.engine import ConfigError, MockEngine
from protocore.placeos.server import PlaceOSServer
from protocore.session import ClientHandshake

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "systems.json"
SYS = "sys-1"
KEY = "engine-test-key-0123"


def engine_with_display() -> MockEngine:
    engine = MockEngine()
    engine.add_system(SYS, name="Room 1")

    def power(state: bool) -> bool:
        engine.set_status(SYS, "Display", "power", state)
        return state

    def fail() -> None:
        raise RuntimeError("projector lamp failure")

    def fail_quietly() -> None:
        raise ValueError

    def inner_type_error() -> None:
        return len(5)  # type: ignore[arg-type,return-value]

    engine.add_module(
        SYS,
        "Display",
        module_id="mod-disp",
        klass="::Place::Display",
        status={"power": False, "input": "hdmi1"},
        methods={
            "power": power,
            "fail": fail,
            "fail_quietly": fail_quietly,
            "inner_type_error": inner_type_error,
            "unencodable": object,
            "add": lambda a, b=0: a + b,
            "builtin": max,
        },
    )
    engine.add_module(SYS, "_Private", status={"secret": 1})
    return engine


def session(engine: MockEngine, **kwargs: Any) -> PlaceOSServer:
    server = engine.new_session(**kwargs)
    server.connection_made(0.0)
    return server


def ask(server: PlaceOSServer, request: Request) -> list[Response]:
    """Send one request, return what came back (raw notify values)."""
    events = server.receive_message(encode_request(request), 1.0)
    assert events == []
    return drain(server)


def drain(server: PlaceOSServer) -> list[Response]:
    return [decode_response(m, value_format=ValueFormat.RAW) for m in server.messages_to_send()]


def error_of(replies: list[Response]) -> tuple[ErrorCode | int, str]:
    [reply] = replies
    assert isinstance(reply, ErrorResponse)
    return reply.code, reply.message


# -- error numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (Bind(1, SYS, "_Private", "secret"), ErrorCode.ACCESS_DENIED, "protected"),
        (Exec(1, SYS, "_Private", "anything"), ErrorCode.ACCESS_DENIED, "protected"),
        (Debug(1, SYS, "_Private", "debug"), ErrorCode.ACCESS_DENIED, "protected"),
        (Bind(1, "sys-nope", "Display", "power"), ErrorCode.SYSTEM_NOT_FOUND, "sys-nope"),
        (Exec(1, "sys-nope", "Display", "power"), ErrorCode.SYSTEM_NOT_FOUND, "sys-nope"),
        (Debug(1, "sys-nope", "mod-disp", "debug"), ErrorCode.SYSTEM_NOT_FOUND, "sys-nope"),
        (Bind(1, SYS, "Camera", "zoom"), ErrorCode.MODULE_NOT_FOUND, "Camera"),
        (Bind(1, SYS, "Display", "power", index=2), ErrorCode.MODULE_NOT_FOUND, "index 2"),
        (Exec(1, SYS, "Camera", "zoom"), ErrorCode.MODULE_NOT_FOUND, "Camera"),
        (Debug(1, SYS, "mod-nope", "debug"), ErrorCode.MODULE_NOT_FOUND, "mod-nope"),
        (Exec(1, SYS, "Display", "explode"), ErrorCode.BAD_REQUEST, "no method 'explode'"),
        (Exec(1, SYS, "Display", "power"), ErrorCode.BAD_REQUEST, "bad arguments"),
        (Exec(1, SYS, "Display", "power", args=(1, 2)), ErrorCode.BAD_REQUEST, "bad arguments"),
        (Exec(1, SYS, "Display", "fail"), ErrorCode.REQUEST_FAILED, "projector lamp failure"),
        (Exec(1, SYS, "Display", "fail_quietly"), ErrorCode.REQUEST_FAILED, "ValueError"),
        (Exec(1, SYS, "Display", "inner_type_error"), ErrorCode.REQUEST_FAILED, "len()"),
        (Exec(1, SYS, "Display", "add", args=("a", 1)), ErrorCode.REQUEST_FAILED, "str"),
        (Exec(1, SYS, "Display", "unencodable"), ErrorCode.UNEXPECTED_FAILURE, "JSON"),
    ],
)
def test_engine_error_numbers(request_: Request, code: ErrorCode, words: str) -> None:
    engine = engine_with_display()
    server = session(engine)
    got_code, message = error_of(ask(server, request_))
    assert got_code is code
    assert words in message
    assert server.bindings == {}
    assert server.debug_streams == {}


def test_session_errors_still_come_through_an_engine_session() -> None:
    engine = engine_with_display()
    server = session(engine)
    server.receive_message("{oops", 1.0)
    server.receive_message('{"id": 3, "cmd": "reboot"}', 1.0)
    server.receive_message('{"id": 4, "cmd": "exec", "sys": "sys-1"}', 1.0)
    codes = [(r.code, r.id) for r in drain(server) if isinstance(r, ErrorResponse)]
    assert codes == [
        (ErrorCode.PARSE_ERROR, None),
        (ErrorCode.UNKNOWN_COMMAND, 3),
        (ErrorCode.BAD_REQUEST, 4),
    ]


# -- bind and status ------------------------------------------------------------------------


def test_bind_gets_the_current_value_then_every_change() -> None:
    engine = engine_with_display()
    server = session(engine)
    binding = Binding(SYS, "Display", 1, "power")
    assert ask(server, Bind(10, SYS, "Display", "power")) == [
        SuccessResponse(10, meta=binding),
        Notification(10, binding, False),
    ]
    assert engine.set_status(SYS, "Display", "power", True) == 1
    assert engine.set_status(SYS, "Display", "input", "hdmi2") == 0  # not bound
    assert drain(server) == [Notification(10, binding, True)]
    assert engine.status(SYS, "Display", "power") is True


def test_unchanged_value_notifies_nobody_unless_forced() -> None:
    engine = engine_with_display()
    server = session(engine)
    ask(server, Bind(1, SYS, "Display", "input"))
    assert engine.set_status(SYS, "Display", "input", "hdmi1") == 0
    assert drain(server) == []
    assert engine.set_status(SYS, "Display", "input", "hdmi1", force=True) == 1
    assert [type(r) for r in drain(server)] == [Notification]


def test_bind_to_a_status_that_does_not_exist_yet() -> None:
    engine = engine_with_display()
    server = session(engine)
    binding = Binding(SYS, "Display", 1, "temperature")
    assert ask(server, Bind(2, SYS, "Display", "temperature")) == [SuccessResponse(2, meta=binding)]
    with pytest.raises(KeyError, match="temperature"):
        engine.status(SYS, "Display", "temperature")
    engine.set_status(SYS, "Display", "temperature", 21.5)
    assert drain(server) == [Notification(2, binding, 21.5)]


def test_many_changes_leave_the_notify_memo_one_entry_per_variable() -> None:
    # The engine once made a fresh Binding per change, and the codec's memo (by
    # identity) kept every one until it held 4096 and started again.
    from protocore.placeos import codec

    engine = engine_with_display()
    server = session(engine)
    ask(server, Bind(1, SYS, "Display", "power"))
    ask(server, Bind(2, SYS, "Display", "input"))
    codec._META_JSON.clear()
    codec._META_BY_VALUE.clear()
    for n in range(codec._BINDINGS_MAX + 10):
        engine.set_status(SYS, "Display", "power", n % 2 == 0)
        engine.set_status(SYS, "Display", "input", f"hdmi{n}")
        assert len(drain(server)) == 2
    assert len(codec._META_JSON) == len(codec._META_BY_VALUE) == 2


def test_status_values_are_stored_compactly(json_backend: str) -> None:
    # orjson hands back each document in a 4 KiB buffer; the engine keeps the encoded
    # form of every variable, so it keeps a copy that holds only its own bytes.
    engine = engine_with_display()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            engine.set_status(SYS, "Display", f"sensor{i}", i)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1000 * 1024, f"{grown / 1000:.0f} bytes per status variable"


def test_set_status_reaches_every_bound_session_and_only_them() -> None:
    engine = engine_with_display()
    engine.add_module(SYS, "Display", status={"power": True})  # Display_2
    a, b, c, d = (session(engine) for _ in range(4))
    ask(a, Bind(1, SYS, "Display", "power"))
    ask(b, Bind(7, SYS, "Display", "power"))
    ask(c, Bind(1, SYS, "Display", "input"))  # other variable
    ask(d, Bind(1, SYS, "Display", "power", index=2))  # other module
    wakes: dict[str, int] = {"a": 0, "b": 0, "c": 0, "d": 0}
    for name, server in zip("abcd", (a, b, c, d), strict=True):
        server.wakeup = lambda name=name: wakes.__setitem__(name, wakes[name] + 1)

    assert engine.set_status(SYS, "Display", "power", True) == 2
    binding = Binding(SYS, "Display", 1, "power")
    assert drain(a) == [Notification(1, binding, True)]
    assert drain(b) == [Notification(7, binding, True)]
    assert drain(c) == []
    assert drain(d) == []
    assert wakes == {"a": 1, "b": 1, "c": 0, "d": 0}

    ask(b, Unbind(8, SYS, "Display", "power"))
    assert engine.set_status(SYS, "Display", "power", False) == 1
    assert drain(b) == []


def test_status_is_stored_as_a_json_copy_and_unencodable_values_are_refused() -> None:
    engine = engine_with_display()
    value = {"list": [1, 2]}
    engine.set_status(SYS, "Display", "layout", value)
    value["list"].append(3)
    assert engine.status(SYS, "Display", "layout") == {"list": [1, 2]}
    with pytest.raises(EncodeError):
        engine.set_status(SYS, "Display", "layout", {1, 2})
    assert engine.status(SYS, "Display", "layout") == {"list": [1, 2]}


def test_unknown_status_system_and_module_raise_key_error() -> None:
    engine = engine_with_display()
    with pytest.raises(KeyError):
        engine.status(SYS, "Display", "nope")
    with pytest.raises(KeyError):
        engine.status("sys-nope", "Display", "power")
    with pytest.raises(KeyError):
        engine.status(SYS, "Display", "power", index=3)
    with pytest.raises(KeyError):
        engine.set_status(SYS, "Camera", "zoom", 1)
    assert engine.status(SYS, "mod-disp", "input") == "hdmi1"  # a module id works too


# -- exec ---------------------------------------------------------------------------------


def test_exec_returns_the_method_value_and_its_status_changes_reach_binders() -> None:
    engine = engine_with_display()
    caller, watcher = session(engine), session(engine)
    ask(watcher, Bind(5, SYS, "Display", "power"))
    replies = ask(caller, Exec(1, SYS, "Display", "power", args=(True,)))
    assert replies == [
        SuccessResponse(1, True, Binding(SYS, "Display", 1, "power"), http_status=200)
    ]
    assert drain(watcher) == [Notification(5, Binding(SYS, "Display", 1, "power"), True)]
    [ok] = ask(caller, Exec(2, SYS, "Display", "add", args=(2, 3)))
    assert isinstance(ok, SuccessResponse)
    assert ok.value == 5
    [ok] = ask(caller, Exec(3, SYS, "Display", "add", args=(2,)))
    assert isinstance(ok, SuccessResponse)
    assert ok.value == 2
    [ok] = ask(caller, Exec(4, SYS, "Display", "builtin", args=(3, 9, 4)))
    assert isinstance(ok, SuccessResponse)
    assert ok.value == 9


def test_exec_that_returns_none_has_no_value() -> None:
    engine = engine_with_display()
    engine.add_method(SYS, "Display", "noop", lambda: None)
    server = session(engine)
    server.receive_message(encode_request(Exec(1, SYS, "Display", "noop")), 1.0)
    [raw] = server.messages_to_send()
    assert "value" not in json.loads(raw)


# -- debug ---------------------------------------------------------------------------------


def test_debug_by_module_id_or_name_streams_logs_until_ignore() -> None:
    engine = engine_with_display()
    by_id, by_name, other = session(engine), session(engine), session(engine)
    [ok] = ask(by_id, Debug(1, SYS, "mod-disp", "debug"))
    assert isinstance(ok, SuccessResponse)
    assert ok.mod_id == "mod-disp"
    [ok] = ask(by_name, Debug(2, SYS, "Display", "debug"))
    assert isinstance(ok, SuccessResponse)
    assert ok.mod_id == "mod-disp"

    assert engine.log(SYS, "Display", "input changed to HDMI", level="info") == 2
    [line] = drain(by_id)
    assert isinstance(line, DebugMessage)
    assert (line.mod, line.klass, line.level, line.message) == (
        "mod-disp",
        "::Place::Display",
        "info",
        "input changed to HDMI",
    )
    assert line.id == 1
    [line] = drain(by_name)
    assert isinstance(line, DebugMessage)
    assert line.id == 2
    assert drain(other) == []

    assert ask(by_id, Ignore(3, SYS, "mod-disp", "ignore")) == [SuccessResponse(3)]
    assert engine.log(SYS, "mod-disp", "after ignore", klass="::Override") == 1
    assert drain(by_id) == []
    [line] = drain(by_name)
    assert isinstance(line, DebugMessage)
    assert line.klass == "::Override"


def test_debug_lines_in_the_seed_dialect() -> None:
    engine = engine_with_display()
    server = session(engine, dialect=Dialect.SEED)
    ask(server, Debug(1, SYS, "mod-disp", "debug"))
    engine.log(SYS, "Display", "hello")
    [raw] = server.messages_to_send()
    assert json.loads(raw) == {
        "type": "debug",
        "mod": "mod-disp",
        "klass": "::Place::Display",
        "level": "debug",
        "msg": "hello",
    }


# -- sessions -------------------------------------------------------------------------------


def test_sessions_attach_and_detach() -> None:
    engine = engine_with_display()
    assert engine.sessions == 0
    a = engine.new_session()
    b = session(engine)
    assert engine.sessions == 2
    assert list(engine.iter_sessions()) == [a, b]
    b.connection_lost(2.0)
    assert engine.sessions == 1
    a.connection_lost(2.0)  # never opened (a refused handshake ends like this)
    assert engine.sessions == 0
    assert engine.set_status(SYS, "Display", "power", True) == 0


def test_a_session_built_by_hand_attaches_on_its_first_request() -> None:
    engine = engine_with_display()
    server = PlaceOSServer(handler=engine)
    server.connection_made(0.0)
    assert engine.sessions == 0
    ask(server, Bind(1, SYS, "Display", "power"))
    assert engine.sessions == 1
    assert engine.set_status(SYS, "Display", "power", True) == 1


def test_building_mistakes_are_refused() -> None:
    engine = engine_with_display()
    with pytest.raises(LocalProtocolError):
        engine.add_system(SYS)
    with pytest.raises(KeyError):
        engine.add_module("sys-nope", "Display")
    with pytest.raises(LocalProtocolError):
        engine.add_module(SYS, "Display", index=1)
    with pytest.raises(LocalProtocolError):
        engine.add_module(SYS, "Other", module_id="mod-disp")
    with pytest.raises(LocalProtocolError):
        engine.add_module(SYS, "Other", index=0)
    with pytest.raises(LocalProtocolError):
        engine.add_module(SYS, "Other", methods={"x": 3})  # type: ignore[dict-item]
    with pytest.raises(EncodeError):
        engine.add_module(SYS, "Other", status={"x": {1}})
    assert [name for name, _, _ in engine.modules(SYS)] == ["Display", "_Private"]


def test_module_ids_and_indexes_are_generated() -> None:
    engine = MockEngine()
    engine.add_system("sys-a")
    first = engine.add_module("sys-a", "Display")
    second = engine.add_module("sys-a", "Display")
    assert first != second
    assert first.startswith("mod-")
    assert engine.modules("sys-a") == (("Display", 1, first), ("Display", 2, second))
    assert engine.module_id("sys-a", "Display", index=2) == second
    assert "systems=1" in repr(engine)


# -- the systems file ------------------------------------------------------------------------


def example_engine() -> MockEngine:
    return MockEngine.from_config(json.loads(EXAMPLE.read_text(encoding="utf-8")))


def test_example_file_loads() -> None:
    engine = example_engine()
    assert engine.system_ids == ("sys-room-1", "sys-room-2")
    assert engine.modules("sys-room-1") == (
        ("Display", 1, "mod-room1-display"),
        ("Bookings", 1, "mod-room1-bookings"),
    )
    assert engine.status("sys-room-1", "Display", "volume") == 30
    bookings = engine.status("sys-room-1", "Bookings", "bookings")
    assert [b["id"] for b in bookings] == ["bk-1001", "bk-1002"]
    assert engine.status("sys-room-2", "Lighting", "scene") == "presentation"


def test_example_scripted_methods() -> None:
    engine = example_engine()
    server = session(engine)
    room = "sys-room-1"
    ask(server, Bind(1, room, "Display", "power"))
    ask(server, Debug(2, room, "mod-room1-display", "debug"))

    replies = ask(server, Exec(3, room, "Display", "power", args=(True,)))
    kinds = [type(r) for r in replies]
    assert kinds == [DebugMessage, Notification, SuccessResponse]
    log, notify, ok = replies
    assert isinstance(log, DebugMessage)
    assert (log.level, log.message) == ("info", "power requested: true")
    assert notify == Notification(1, Binding(room, "Display", 1, "power"), True)
    assert isinstance(ok, SuccessResponse)
    assert ok.value is True
    assert engine.status(room, "Display", "power") is True

    [log, ok] = ask(server, Exec(4, room, "Display", "switch_to", args=("hdmi2",)))
    assert isinstance(log, DebugMessage)
    assert log.message == "switching input to hdmi2"
    assert isinstance(ok, SuccessResponse)
    assert ok.value == {"input": "hdmi2"}
    assert engine.status(room, "Display", "input") == "hdmi2"

    [log, err] = ask(server, Exec(5, room, "Display", "firmware_update"))
    assert isinstance(log, DebugMessage)
    assert log.level == "error"
    assert err == ErrorResponse(5, ErrorCode.REQUEST_FAILED, "display is in use")

    [ok] = ask(server, Exec(6, room, "Bookings", "make_booking", args=(1631058815,)))
    assert isinstance(ok, SuccessResponse)
    assert ok.value == {"id": "bk-2001", "event_start": 1631058815, "status": "accepted"}

    code, message = error_of(ask(server, Exec(7, room, "Display", "power")))
    assert code is ErrorCode.BAD_REQUEST
    assert "bad arguments" in message

    [ok] = ask(server, Exec(8, "sys-room-2", "Lighting", "trigger", args=("off",)))
    assert isinstance(ok, SuccessResponse)
    assert ok.value == "scene off"


def test_config_templates_and_dollar_escapes() -> None:
    engine = MockEngine.from_config(
        {
            "systems": {
                "s": {
                    "modules": [
                        {
                            "name": "M",
                            "methods": {
                                "echo": {
                                    "params": ["a", "b"],
                                    "returns": {"raw": "${a}", "text": "$a and $b", "lit": "$$a"},
                                },
                                "nothing": {},
                            },
                        }
                    ]
                }
            }
        }
    )
    server = session(engine)
    [ok] = ask(server, Exec(1, "s", "M", "echo", args=([1, 2], "x")))
    assert isinstance(ok, SuccessResponse)
    assert ok.value == {"raw": [1, 2], "text": "[1,2] and x", "lit": "$a"}
    [ok] = ask(server, Exec(2, "s", "M", "nothing"))
    assert ok == SuccessResponse(2, None, Binding("s", "M", 1, "nothing"), http_status=200)


def _one_module(**module: Any) -> dict[str, Any]:
    return {"systems": {"s": {"modules": [{"name": "M", **module}]}}}


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"systms": {}}, "config: unknown key 'systms'"),
        ({"systems": []}, "systems: expected an object"),
        ({"systems": {"s": {"modules": {}}}}, "systems.s.modules: expected an array"),
        ({"systems": {"s": {"modules": [{}]}}}, "systems.s.modules[0].name: missing"),
        (_one_module(index=0), "systems.s.modules[0].index"),
        (_one_module(colour="red"), "unknown key 'colour'"),
        (_one_module(status=[1]), "systems.s.modules[0].status: expected an object"),
        (_one_module(status={"x": {1}}), "systems.s.modules[0].status.x: not a JSON value"),
        (_one_module(methods={"m": {"retruns": 1}}), "methods.m: unknown key 'retruns'"),
        (_one_module(methods={"m": {"returns": "$x"}}), "methods.m.returns: $x is not a param"),
        (_one_module(methods={"m": {"params": [1]}}), "methods.m.params"),
        (_one_module(methods={"m": {"params": ["a", "a"]}}), "named twice"),
        (_one_module(methods={"m": {"raises": "x", "returns": 1}}), "raises excludes"),
        (_one_module(methods={"m": {"raises": 5}}), "methods.m.raises"),
        (_one_module(methods={"m": {"log": {"level": "info"}}}), "methods.m.log.message"),
        (_one_module(methods={"m": {"sets": 1}}), "methods.m.sets: expected an object"),
    ],
)
def test_config_mistakes_say_where(config: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        MockEngine.from_config(config)
    assert where in str(info.value)


def test_config_duplicate_module_is_a_config_error() -> None:
    config = {"systems": {"s": {"modules": [{"name": "M", "index": 1}, {"name": "M", "index": 1}]}}}
    with pytest.raises(ConfigError, match=r"systems\.s\.modules\[1\]"):
        MockEngine.from_config(config)


# -- end to end: real frames through ServerConnection -----------------------------------------


class MiniClient:
    """The least client session that speaks PlaceOS: queued requests out, responses in."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.outbox: list[str] = []
        self.responses: list[Response] = []

    def request(self, request: Request) -> None:
        self.outbox.append(encode_request(request).decode())

    def handshake(self) -> ClientHandshake:
        return ClientHandshake(headers=(("X-API-Key", self.api_key),))

    def connection_made(self, now: float) -> list[Event]:
        return []

    def receive_message(self, data: str | bytes, now: float) -> list[Event]:
        self.responses.append(decode_response(data, value_format=ValueFormat.RAW))
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

    def take(self) -> list[Response]:
        out, self.responses = self.responses, []
        return out


def pump(client: ClientConnection, server: ServerConnection, now: float) -> None:
    for _ in range(100):
        to_server = client.data_to_send()
        to_client = server.data_to_send()
        if not to_server and not to_client:
            return
        if to_server and server.state is not ConnectionState.CLOSED:
            server.receive_data(to_server, now)
        if to_client and client.state is not ConnectionState.CLOSED:
            client.receive_data(to_client, now)
    raise AssertionError("the two ends never went quiet")


URL = "ws://placeos.example/api/engine/v2/systems/control"


def test_end_to_end_through_real_frames() -> None:
    engine = engine_with_display()
    woken: list[None] = []
    server_session = engine.new_session(api_keys=[KEY], wakeup=lambda: woken.append(None))
    mini = MiniClient(KEY)
    client = ClientConnection(mini, URL)
    server = ServerConnection(server_session)
    client.start(0.0)
    server.start(0.0)
    pump(client, server, 0.0)
    assert client.events() == [Connected(None)]
    assert server.events() == [Connected(None)]

    power = Binding(SYS, "Display", 1, "power")
    mini.request(Bind(1, SYS, "Display", "power"))
    pump(client, server, 1.0)
    assert mini.take() == [SuccessResponse(1, meta=power), Notification(1, power, False)]

    # A change made by application code: the session wakes its transport, and the
    # notify goes out with the next data_to_send.
    assert engine.set_status(SYS, "Display", "power", True) == 1
    assert woken == [None]
    pump(client, server, 2.0)
    assert mini.take() == [Notification(1, power, True)]

    mini.request(Exec(2, SYS, "Display", "add", args=(40, 2)))
    mini.request(Exec(3, SYS, "Display", "fail"))
    mini.request(Ping())  # the raw text heartbeat
    pump(client, server, 3.0)
    ok, err, pong = mini.take()
    assert isinstance(ok, SuccessResponse)
    assert ok.value == 42
    assert err == ErrorResponse(3, ErrorCode.REQUEST_FAILED, "projector lamp failure")
    assert decode_response(b"pong") == pong

    client.close(now=4.0)
    pump(client, server, 4.0)
    assert client.state is server.state is ConnectionState.CLOSED
    assert engine.sessions == 0
    assert engine.set_status(SYS, "Display", "power", False) == 0


def test_end_to_end_wrong_key_gets_401_without_upgrade() -> None:
    engine = engine_with_display()
    server_session = engine.new_session(api_keys=[KEY])
    client = ClientConnection(MiniClient("wrong-key-" + "x" * 10), URL)
    server = ServerConnection(server_session)
    client.start(0.0)
    server.start(0.0)
    pump(client, server, 0.0)
    events = client.events()
    assert isinstance(events[0], HandshakeRejected)
    assert events[0].status_code == 401
    assert KEY.encode() not in events[0].body
    assert isinstance(events[-1], ConnectionClosed)
    assert not any(isinstance(e, Connected) for e in server.events())
    assert server.state is ConnectionState.CLOSED
    assert engine.sessions == 0  # the refused session detached itself
