"""Mews sessions, driven directly: no sockets, no connection, no clock."""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mews_samples import COMMAND, LEGACY_SPACE, RESERVATION, SEED_000, SEED_001, SEEDS

from protocore import BadMessage, ClientHandshake, DecodeError, EncodeError, LocalProtocolError
from protocore.mews import (
    DEMO_URL,
    PRODUCTION_URL,
    DeviceCommandEvent,
    Envelope,
    EventsReceived,
    InvalidEvent,
    MewsClient,
    MewsServer,
    PriceUpdateEvent,
    Reconnected,
    ResourceEvent,
    SessionState,
    decode_envelope,
    legacy_url,
)
from protocore.session import ClientSession, Rejection, ServerSession
from protocore.testing import mews as mews_st
from protocore.testing import wire

pytestmark = pytest.mark.usefixtures("json_backend")
hsettings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

CLIENT_TOKEN = "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D"
ACCESS_TOKEN = "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D"
COOKIE = f"ClientToken={CLIENT_TOKEN}; AccessToken={ACCESS_TOKEN}"
QUERY = f"ClientToken={CLIENT_TOKEN}&AccessToken={ACCESS_TOKEN}"


def client(**kwargs: Any) -> MewsClient:
    return MewsClient(CLIENT_TOKEN, ACCESS_TOKEN, **kwargs)


def server(**kwargs: Any) -> MewsServer:
    return MewsServer(CLIENT_TOKEN, ACCESS_TOKEN, **kwargs)


def test_sessions_have_the_shape_a_connection_drives() -> None:
    # Static check (mypy) and a runtime one: every Protocol method is there.
    as_client: ClientSession = client()
    as_server: ServerSession = server()
    for name in ("connection_made", "receive_message", "messages_to_send", "next_deadline"):
        assert callable(getattr(as_client, name))
        assert callable(getattr(as_server, name))
    assert callable(as_client.handshake)
    assert callable(as_server.authorize)


# -------------------------------------------------------------------------- handshake


def test_cookie_handshake_is_exactly_the_documented_header() -> None:
    handshake = client().handshake()
    assert handshake == ClientHandshake(headers=(("Cookie", COOKIE),))
    assert handshake.query == ()
    # No spaces around "=", as the Mews documentation insists.
    assert " =" not in handshake.headers[0][1]
    assert "= " not in handshake.headers[0][1]


def test_query_handshake_is_exactly_the_legacy_parameters() -> None:
    handshake = client(auth="query").handshake()
    assert handshake == ClientHandshake(
        query=(("ClientToken", CLIENT_TOKEN), ("AccessToken", ACCESS_TOKEN))
    )
    assert handshake.headers == ()


def test_unknown_auth_style_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="auth must be"):
        client(auth="header")


UNSAFE_TOKENS = [
    "SECRET with space",
    "SECRET\r\nSet-Cookie: x=y",
    "SECRET\nline",
    "SECRET\rline",
    "SECRET;AccessToken=evil",
    "SECRET,other",
    "SECRET=padding",
    'SECRET"quoted"',
    "SECRET\\slash",
    "SECRET\ttab",
    "SECRET\x00nul",
    "SECRET\x7fdel",
    "SECRETtökén",
    "SECRET\u2028",
]


@pytest.mark.parametrize("token", UNSAFE_TOKENS, ids=repr)
@pytest.mark.parametrize("which", ["client_token", "access_token"])
@pytest.mark.parametrize("cls", [MewsClient, MewsServer])
def test_unsafe_tokens_are_refused_without_showing_them(
    token: str, which: str, cls: type[MewsClient | MewsServer]
) -> None:
    tokens = {"client_token": CLIENT_TOKEN, "access_token": ACCESS_TOKEN, which: token}
    with pytest.raises(LocalProtocolError) as info:
        cls(tokens["client_token"], tokens["access_token"])
    message = f"{info.value} {info.value!r} {info.value.args}"
    assert which in message
    assert "SECRET" not in message
    assert token not in message


@pytest.mark.parametrize("token", ["", None, b"bytes-token", 12])
def test_empty_or_non_string_tokens_are_refused(token: Any) -> None:
    with pytest.raises(LocalProtocolError, match="client_token"):
        MewsClient(token, ACCESS_TOKEN)
    with pytest.raises(LocalProtocolError, match="access_token"):
        MewsServer(CLIENT_TOKEN, token)


def test_tokens_with_every_safe_character_are_accepted() -> None:
    token = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\=')
    handshake = MewsClient(token, token).handshake()
    assert handshake.headers == (("Cookie", f"ClientToken={token}; AccessToken={token}"),)
    assert (
        server_for(token).authorize("/ws/connector", [("cookie", handshake.headers[0][1])]) is None
    )


def server_for(token: str) -> MewsServer:
    return MewsServer(token, token)


def test_reprs_never_show_the_tokens() -> None:
    c = client()
    s = server()
    shown = [
        repr(c),
        str(c),
        repr(s),
        str(s),
        repr(c.handshake()),
        repr(client(auth="query").handshake()),
    ]
    c.connection_made(0.0)
    shown += [repr(c), repr(c.handshake())]
    for text in shown:
        assert CLIENT_TOKEN not in text
        assert ACCESS_TOKEN not in text
        assert CLIENT_TOKEN[:8] not in text
    assert repr(c) == "MewsClient(auth='cookie', state=OPEN)"


# ----------------------------------------------------------------------- server auth


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/ws/connector", [("cookie", COOKIE)]),
        ("/ws/connector", [("Cookie", COOKIE)]),
        ("/ws/connector", [("cookie", f"AccessToken={ACCESS_TOKEN}; ClientToken={CLIENT_TOKEN}")]),
        (
            "/ws/connector",
            [
                (
                    "cookie",
                    f"theme=dark; ClientToken={CLIENT_TOKEN}; s=1; AccessToken={ACCESS_TOKEN}",
                )
            ],
        ),
        ("/ws/connector", [("cookie", f"ClientToken={CLIENT_TOKEN};AccessToken={ACCESS_TOKEN}")]),
        (
            "/ws/connector",
            [("cookie", f"ClientToken={CLIENT_TOKEN}"), ("cookie", f"AccessToken={ACCESS_TOKEN}")],
        ),
        (
            "/ws/connector",
            [("cookie", f"  ClientToken={CLIENT_TOKEN} ;\tAccessToken={ACCESS_TOKEN}; ")],
        ),
        ("/ws/connector", [("host", "ws.mews.com"), ("cookie", COOKIE), ("origin", "x")]),
        (f"/ws/connector?{QUERY}", []),
        (f"/ws/connector?x=1&{QUERY}&y", [("cookie", "unrelated=1")]),
        (f"/ws/connector?AccessToken={ACCESS_TOKEN}&ClientToken={CLIENT_TOKEN}", []),
        (f"/ws/connector?{QUERY}", [("cookie", "ClientToken=wrong; AccessToken=wrong")]),
    ],
    ids=[
        "cookie",
        "header name capitalised",
        "cookies in the other order",
        "extra cookies around",
        "no space after semicolon",
        "two Cookie headers",
        "whitespace around pairs",
        "other headers",
        "legacy query",
        "legacy query among other parameters",
        "query in the other order",
        "wrong cookie but right query",
    ],
)
def test_server_accepts_the_right_tokens(target: str, headers: list[tuple[str, str]]) -> None:
    assert server().authorize(target, headers) is None


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/ws/connector", []),
        ("/ws/connector", [("cookie", "")]),
        ("/ws/connector", [("cookie", f"ClientToken={CLIENT_TOKEN}")]),
        ("/ws/connector", [("cookie", f"AccessToken={ACCESS_TOKEN}")]),
        ("/ws/connector", [("cookie", f"ClientToken=wrong; AccessToken={ACCESS_TOKEN}")]),
        ("/ws/connector", [("cookie", f"ClientToken={CLIENT_TOKEN}; AccessToken=wrong")]),
        ("/ws/connector", [("cookie", f"ClientToken={CLIENT_TOKEN}; AccessToken={ACCESS_TOKEN}x")]),
        (
            "/ws/connector",
            [("cookie", f"ClientToken={CLIENT_TOKEN}; AccessToken={ACCESS_TOKEN[:-1]}")],
        ),
        ("/ws/connector", [("cookie", f"ClientToken={ACCESS_TOKEN}; AccessToken={CLIENT_TOKEN}")]),
        (
            "/ws/connector",
            [("cookie", f"ClientToken = {CLIENT_TOKEN}; AccessToken = {ACCESS_TOKEN}")],
        ),
        (
            "/ws/connector",
            [("cookie", f"ClientToken= {CLIENT_TOKEN}; AccessToken= {ACCESS_TOKEN}")],
        ),
        (
            "/ws/connector",
            [("cookie", f"ClientToken ={CLIENT_TOKEN}; AccessToken ={ACCESS_TOKEN}")],
        ),
        ("/ws/connector", [("cookie", f"clienttoken={CLIENT_TOKEN}; accesstoken={ACCESS_TOKEN}")]),
        (
            "/ws/connector",
            [("cookie", f'ClientToken="{CLIENT_TOKEN}"; AccessToken="{ACCESS_TOKEN}"')],
        ),
        ("/ws/connector", [("cookie", f"{COOKIE}; ClientToken=other")]),
        ("/ws/connector", [("authorization", f"Bearer {ACCESS_TOKEN}")]),
        ("/ws/connector", [("x-cookie", COOKIE)]),
        (f"/ws/connector?ClientToken={CLIENT_TOKEN}", []),
        (f"/ws/connector?{QUERY}&AccessToken=other", []),
        (f"/ws/connector?clienttoken={CLIENT_TOKEN}&accesstoken={ACCESS_TOKEN}", []),
        ("/ws/connector?ClientToken=&AccessToken=", []),
    ],
    ids=[
        "nothing",
        "empty cookie",
        "access token missing",
        "client token missing",
        "wrong client token",
        "wrong access token",
        "access token with a suffix",
        "access token cut short",
        "tokens swapped",
        "spaces around =",
        "space after =",
        "space before =",
        "names in lower case",
        "quoted values",
        "client token given twice",
        "bearer header",
        "other header",
        "query with one token",
        "query token given twice",
        "query names in lower case",
        "empty query values",
    ],
)
def test_server_refuses_everything_else_with_401(
    target: str, headers: list[tuple[str, str]]
) -> None:
    rejection = server().authorize(target, headers)
    assert isinstance(rejection, Rejection)
    assert rejection.status_code == 401
    assert CLIENT_TOKEN.encode() not in rejection.body
    assert ACCESS_TOKEN.encode() not in rejection.body
    assert b"ClientToken" in rejection.body  # says what is needed, not what was sent


def test_server_can_refuse_the_legacy_query_form() -> None:
    strict = server(allow_query_auth=False)
    assert strict.authorize(f"/ws/connector?{QUERY}", []) == strict.authorize("/", [])
    assert isinstance(strict.authorize(f"/ws/connector?{QUERY}", []), Rejection)
    assert strict.authorize("/ws/connector", [("cookie", COOKIE)]) is None


def test_server_with_a_path_answers_404_elsewhere() -> None:
    s = server(path="/ws/connector")
    assert s.authorize("/ws/connector", [("cookie", COOKIE)]) is None
    assert s.authorize(f"/ws/connector?{QUERY}", []) is None
    other = s.authorize("/ws/other", [("cookie", COOKIE)])
    assert isinstance(other, Rejection)
    assert other.status_code == 404
    # Without a path, any path is served.
    assert server().authorize("/", [("cookie", COOKIE)]) is None


def test_server_compares_tokens_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    s = server()
    assert s.authorize("/", [("cookie", COOKIE)]) is None
    assert len(calls) == 2
    calls.clear()
    # A wrong client token still compares the access token: timing shows nothing.
    assert s.authorize("/", [("cookie", f"ClientToken=x; AccessToken={ACCESS_TOKEN}")]) is not None
    assert calls == [(b"x", CLIENT_TOKEN.encode()), (ACCESS_TOKEN.encode(), ACCESS_TOKEN.encode())]


def test_server_survives_odd_header_values() -> None:
    s = server()
    odd: list[tuple[Any, Any]] = [
        ("cookie", "ClientToken=\udcff; AccessToken=é"),
        ("cookie", ";;;==;=;"),
        (b"cookie", b"ClientToken=x"),
        ("cookie", "\x00\r\n"),
    ]
    assert isinstance(s.authorize("/ws/connector?%ff%fe=%00&&&==", odd), Rejection)


@hsettings
@given(
    st.text(max_size=60),
    st.lists(
        st.tuples(st.sampled_from(["cookie", "Cookie", "x"]), st.text(max_size=80)), max_size=4
    ),
)
def test_server_authorize_never_raises(target: str, headers: list[tuple[str, str]]) -> None:
    assert isinstance(server().authorize(target, headers), Rejection)


# --------------------------------------------------------------------- client events


def test_a_good_message_becomes_one_events_received() -> None:
    c = client()
    assert c.connection_made(0.0) == []
    (event,) = c.receive_message(SEED_001, 1.0)
    assert isinstance(event, EventsReceived)
    assert event.envelope == decode_envelope(SEED_001)
    assert event.events == SEEDS[1][2]
    assert event.invalid == ()
    (legacy,) = c.receive_message(SEED_000.encode(), 2.0)
    assert isinstance(legacy, EventsReceived)
    assert legacy.events == (COMMAND, RESERVATION, LEGACY_SPACE)


def test_a_partly_bad_message_keeps_its_good_events() -> None:
    events = json.loads(SEED_001)["Events"]
    events[1]["StartUtc"] = "2016-13-45"
    events[3]["Id"] = None
    (event,) = client().receive_message(json.dumps({"Events": events}), 0.0)
    assert isinstance(event, EventsReceived)
    good_command, bad_reservation, good_resource, bad_price = event.events
    assert good_command == SEEDS[1][2][0]
    assert good_resource == SEEDS[1][2][2]
    assert isinstance(bad_reservation, InvalidEvent)
    assert isinstance(bad_price, InvalidEvent)
    assert [e.error.path for e in event.invalid] == ["Events[1].StartUtc", "Events[3].Id"]
    assert bad_reservation.fields == events[1]


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (b"", ""),
        (b"\xff\xfe", ""),
        ("not json", ""),
        ("[]", ""),
        ('{"events": []}', "Events"),
        ('{"Events": {}}', "Events"),
        ('{"Events": [1, {"Type": "Resource"}]}', "Events[0]"),
        (b'{"Events": [], "X": NaN}', ""),
        (b"[" * 5000 + b"]" * 5000, ""),
    ],
)
def test_garbage_becomes_bad_message_with_the_raw_data(data: str | bytes, path: str) -> None:
    (event,) = client().receive_message(data, 0.0)
    assert isinstance(event, BadMessage)
    assert event.data is data
    assert isinstance(event.error, DecodeError)
    assert event.error.path == path


def test_messages_over_the_size_limit_are_bad_messages() -> None:
    small = client(max_message_size=100)
    (event,) = small.receive_message(SEED_001, 0.0)
    assert isinstance(event, BadMessage)
    assert "over the limit" in event.error.reason
    (event,) = client(max_message_size=None).receive_message(SEED_001, 0.0)
    assert isinstance(event, EventsReceived)


@hsettings
@given(
    st.binary(max_size=80)
    | st.text(max_size=80)
    | mews_st.garbage_mews_messages()
    | mews_st.near_mews_messages()
    | mews_st.mews_messages().flatmap(wire.mutations)
)
def test_receive_message_never_raises(data: str | bytes) -> None:
    events = client().receive_message(data, 0.0)
    assert len(events) == 1
    assert isinstance(events[0], EventsReceived | BadMessage)


def test_the_client_sends_nothing_and_runs_no_timer() -> None:
    c = client()
    c.connection_made(0.0)
    c.receive_message(SEED_001, 1.0)
    assert c.messages_to_send() == []
    assert c.next_deadline() is None
    assert c.handle_timer(100.0) == []


# ------------------------------------------------------------------------ reconnects


def test_reconnected_after_a_lost_connection_only() -> None:
    c = client()
    assert c.state is SessionState.IDLE
    assert c.connection_made(0.0) == []  # the first connection is nothing special
    assert c.state is SessionState.OPEN
    assert c.connection_lost(5.0) == []
    assert c.state is SessionState.CLOSED
    assert c.connection_made(7.0) == [Reconnected()]
    assert c.connection_lost(9.0) == []
    assert c.connection_made(11.0) == [Reconnected()]


def test_a_failed_first_attempt_is_not_a_reconnect() -> None:
    c = client()
    assert c.connection_lost(1.0) == []  # the handshake never completed
    assert c.state is SessionState.IDLE
    assert c.connection_made(2.0) == []


def test_connection_made_twice_is_a_local_error() -> None:
    c = client()
    c.connection_made(0.0)
    with pytest.raises(LocalProtocolError):
        c.connection_made(1.0)


# ---------------------------------------------------------------------- server push


def test_push_queues_text_messages_that_decode_back() -> None:
    s = server()
    assert s.connection_made(0.0) == []
    envelope = decode_envelope(SEED_000)
    s.push(envelope)
    s.push([COMMAND, PriceUpdateEvent("p", rate_id="r")])
    first, second = s.messages_to_send()
    assert isinstance(first, str)
    assert json.loads(first) == json.loads(SEED_000)
    assert decode_envelope(second) == Envelope([COMMAND, PriceUpdateEvent("p", rate_id="r")])
    assert s.messages_to_send() == []
    assert s.next_deadline() is None
    assert s.handle_timer(1.0) == []


def test_push_before_the_upgrade_is_queued_and_after_the_loss_refused() -> None:
    s = server()
    s.push([COMMAND])
    s.connection_made(0.0)
    assert len(s.messages_to_send()) == 1
    s.push([COMMAND])
    assert s.connection_lost(1.0) == []
    assert s.messages_to_send() == []  # unsent messages die with the connection
    with pytest.raises(LocalProtocolError):
        s.push([COMMAND])
    with pytest.raises(LocalProtocolError):
        s.connection_made(2.0)  # one session per connection


def test_push_of_an_unencodable_event_raises_encode_error() -> None:
    s = server()
    naive = datetime(2016, 1, 1)
    with pytest.raises(EncodeError, match="naive"):
        s.push([PriceUpdateEvent("p", start_utc=naive)])
    assert s.messages_to_send() == []


def test_client_messages_to_the_server_are_reported_not_fatal() -> None:
    s = server()
    s.connection_made(0.0)
    for data in ("ping", b"\xff", '{"Events": []}'):
        (event,) = s.receive_message(data, 1.0)
        assert isinstance(event, BadMessage)
        assert event.data is data
    assert s.messages_to_send() == []


def test_server_to_client_in_memory() -> None:
    s, c = server(), client()
    assert s.authorize("/ws/connector", list(c.handshake().headers)) is None
    s.connection_made(0.0)
    c.connection_made(0.0)
    pushed = [
        DeviceCommandEvent("d", "Processing", extra={"New": [1]}),
        PriceUpdateEvent("p", start_utc=datetime(2024, 1, 1, tzinfo=UTC)),
    ]
    s.push(pushed)
    s.push(decode_envelope(SEED_000))
    received = [
        event for message in s.messages_to_send() for event in c.receive_message(message, 1.0)
    ]
    assert received == [EventsReceived(Envelope(pushed)), EventsReceived(decode_envelope(SEED_000))]
    last = received[1]
    assert isinstance(last, EventsReceived)
    space = last.events[2]
    assert space == LEGACY_SPACE
    assert isinstance(space, ResourceEvent)
    assert space.legacy_space is True


def test_query_auth_client_against_the_server() -> None:
    c = client(auth="query")
    query = "&".join(f"{name}={value}" for name, value in c.handshake().query)
    assert server().authorize(f"/ws/connector?{query}", []) is None
    assert isinstance(
        server(allow_query_auth=False).authorize(f"/ws/connector?{query}", []), Rejection
    )


# ---------------------------------------------------------------------- endpoints


def test_endpoints() -> None:
    assert DEMO_URL == "wss://ws.mews-demo.com/ws/connector"
    assert PRODUCTION_URL == "wss://ws.mews.com/ws/connector"
    assert legacy_url("https://api.mews-demo.com") == "wss://api.mews-demo.com/ws/connector"
    assert legacy_url("http://localhost:8080/") == "ws://localhost:8080/ws/connector"
    with pytest.raises(LocalProtocolError):
        legacy_url("api.mews.com")
