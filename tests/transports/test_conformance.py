"""One suite, every client adapter against every server adapter, over real sockets.

Each test is a scenario run by the ``client`` facade (trio, asyncio or sync) against
a server of ``server_kind`` (trio, asyncio or sync) in a background thread: 3 x 3
pairs, fewer while an adapter is missing (skipped).
"""

from __future__ import annotations

import pytest
from harness import (
    ACCESS_TOKEN,
    API_KEY,
    BEARER,
    CLIENT_TOKEN,
    DISPLAY,
    DISPLAY_ID,
    MEWS_MESSAGES,
    SYS,
    Client,
    PlaceOS,
    Served,
)

from protocore import HandshakeFailed
from protocore.mews import PriceUpdateEvent, ResourceEvent, UnknownEvent, decode_envelope
from protocore.placeos import DebugMessage, ErrorCode
from protocore.placeos.exceptions import (
    AccessDenied,
    BadRequest,
    ModuleNotFound,
    RequestFailedError,
    RequestTimeout,
    SystemNotFound,
    UnexpectedFailure,
)

pytestmark = pytest.mark.timeout(60)


async def _round_trip(client: PlaceOS) -> None:
    """One exec answered: everything this client sent before has been handled."""
    assert await client.exec(SYS, DISPLAY, "add", 1, 1) == 2


def test_exec_returns_values_and_carries_args(client: Client, placeos_server: Served) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_placeos(placeos_server.url, api_key=API_KEY) as placeos:
            assert placeos.connected
            assert await placeos.exec(SYS, DISPLAY, "add", 2, 3) == 5
            args = ["text", 1.5, None, True, [1, [2]], {"k": {"n": None}}]
            assert await placeos.exec(SYS, DISPLAY, "echo", *args) == args
            assert await placeos.exec(SYS, DISPLAY, "echo") == []

    client.run(scenario)


def test_bind_notify_unbind(client: Client, placeos_server: Served) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_placeos(placeos_server.url, api_key=API_KEY) as placeos:
            async with placeos.bind(SYS, DISPLAY, "power") as power:
                assert await power.next() is False  # the current value comes first
                assert placeos_server.set_status(SYS, DISPLAY, "power", True) == 1
                assert await power.next() is True
                placeos_server.set_status(SYS, DISPLAY, "power", {"level": 3})
                assert await power.next() == {"level": 3}
                async with placeos.bind(SYS, DISPLAY, "input") as source:
                    assert await source.next() == "hdmi1"
                    placeos_server.set_status(SYS, DISPLAY, "input", "usb-c")
                    assert await source.next() == "usb-c"
            await _round_trip(placeos)
            # Both unbinds were handled before the exec: nobody hears changes now.
            assert placeos_server.set_status(SYS, DISPLAY, "power", "off") == 0
            assert placeos_server.set_status(SYS, DISPLAY, "input", "hdmi2") == 0

    client.run(scenario)


def test_bind_to_a_variable_without_a_value_yet(client: Client, placeos_server: Served) -> None:
    async def scenario(c: Client) -> None:
        async with (
            c.connect_placeos(placeos_server.url, api_key=API_KEY) as placeos,
            placeos.bind(SYS, DISPLAY, "volume") as volume,
        ):
            assert placeos_server.set_status(SYS, DISPLAY, "volume", 40) == 1
            assert await volume.next() == 40

    client.run(scenario)


def test_debug_and_ignore(client: Client, placeos_server: Served) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_placeos(placeos_server.url, api_key=API_KEY) as placeos:
            async with placeos.debug(SYS, DISPLAY_ID) as lines:
                assert placeos_server.log(SYS, DISPLAY, "warming up", level="info") == 1
                line = await lines.next()
                assert isinstance(line, DebugMessage)
                assert (line.mod, line.message, str(line.level)) == (
                    DISPLAY_ID,
                    "warming up",
                    "info",
                )
                placeos_server.log(SYS, DISPLAY, "ready")
                assert (await lines.next()).message == "ready"
            await _round_trip(placeos)
            assert placeos_server.log(SYS, DISPLAY, "nobody listens") == 0

    client.run(scenario)


ERRORS = [
    # (module, method, exception class, error number)
    (DISPLAY, "no_such_method", BadRequest, ErrorCode.BAD_REQUEST),
    ("_Secret", "peek", AccessDenied, ErrorCode.ACCESS_DENIED),
    (DISPLAY, "fail", RequestFailedError, ErrorCode.REQUEST_FAILED),
    ("Projector", "power", ModuleNotFound, ErrorCode.MODULE_NOT_FOUND),
    (DISPLAY, "not_json", UnexpectedFailure, ErrorCode.UNEXPECTED_FAILURE),
]


def test_every_reachable_error_number(client: Client, placeos_server: Served) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_placeos(placeos_server.url, api_key=API_KEY) as placeos:
            for mod, method, cls, code in ERRORS:
                with pytest.raises(cls) as caught:
                    await placeos.exec(SYS, mod, method)
                assert caught.value.code == code
            with pytest.raises(SystemNotFound) as missing:
                await placeos.exec("sys-nowhere", DISPLAY, "add", 1, 2)
            assert missing.value.code == ErrorCode.SYSTEM_NOT_FOUND
            with pytest.raises(RequestFailedError, match="projector lamp failure"):
                await placeos.exec(SYS, DISPLAY, "fail")
            # A refused bind raises from the ``bind`` block's entry.
            with pytest.raises(ModuleNotFound):
                async with placeos.bind(SYS, "Projector", "power"):
                    pytest.fail("a refused bind gives no iterator")
            # The connection is still good after all these errors.
            await _round_trip(placeos)

    client.run(scenario)


def test_request_timeout(client: Client, placeos_server: Served) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_placeos(
            placeos_server.url, api_key=API_KEY, exec_timeout=0.3
        ) as placeos:
            with pytest.raises(RequestTimeout):
                await placeos.exec(SYS, DISPLAY, "hang")
            with pytest.raises(RequestTimeout):
                await placeos.exec(SYS, DISPLAY, "hang", timeout=0.2)
            assert placeos_server.engine is not None
            assert placeos_server.engine.hung.is_set()
            await _round_trip(placeos)  # a timeout does not break the connection

    client.run(scenario)


def test_auth_placements(client: Client, placeos_server: Served) -> None:
    forms = [
        {"api_key": API_KEY, "auth": "query"},
        {"api_key": API_KEY, "auth": "cookie"},
        {"bearer_token": BEARER},
        {"bearer_token": BEARER, "auth": "query"},
    ]

    async def scenario(c: Client) -> None:
        for form in forms:
            async with c.connect_placeos(placeos_server.url, **form) as placeos:
                await _round_trip(placeos)

    client.run(scenario)


def test_placeos_auth_refused(client: Client, placeos_server: Served) -> None:
    async def scenario(c: Client) -> None:
        for form in ({"api_key": "wrong-key"}, {"bearer_token": "wrong", "auth": "cookie"}):
            with pytest.raises(HandshakeFailed) as refused:
                async with c.connect_placeos(placeos_server.url, **form):
                    pytest.fail("a refused client gets no connection")
            assert refused.value.status_code == 401

    client.run(scenario)


# -- Mews -------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["cookie", "query"])
def test_mews_events_of_every_seed_version(client: Client, mews_server: Served, auth: str) -> None:
    envelopes = {name: decode_envelope(text) for name, text in MEWS_MESSAGES.items()}

    async def scenario(c: Client) -> None:
        async with c.connect_mews(
            mews_server.url, client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN, auth=auth
        ) as events:
            for envelope in envelopes.values():
                assert mews_server.publish(envelope) == 1
            for name, envelope in envelopes.items():
                got = [await events.next() for _ in envelope.events]
                assert tuple(got) == envelope.events, name
            # Old spellings and unknown things arrive as the codec decoded them.
            legacy, newer = envelopes["000"].events[2], envelopes["002"].events
            assert isinstance(legacy, ResourceEvent)
            assert legacy.legacy_space
            assert isinstance(newer[0], PriceUpdateEvent)
            assert newer[0].start_utc is None
            assert isinstance(newer[2], UnknownEvent)
            assert newer[2].type == "Invoice"
            # A list of events is one message too.
            assert mews_server.publish(list(envelopes["001"].events[:2])) == 1
            assert [await events.next(), await events.next()] == list(envelopes["001"].events[:2])

    client.run(scenario)


def test_mews_auth_refused(client: Client, mews_server: Served) -> None:
    async def scenario(c: Client) -> None:
        for auth in ("cookie", "query"):
            with pytest.raises(HandshakeFailed) as refused:
                async with c.connect_mews(
                    mews_server.url,
                    client_token=CLIENT_TOKEN,
                    access_token="AT-wrong",
                    auth=auth,
                ):
                    pytest.fail("a refused client gets no connection")
            assert refused.value.status_code == 401

    client.run(scenario)
