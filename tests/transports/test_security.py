"""Security, for every adapter: refusals before the upgrade, secrets kept out of sight.

* Every fake server refuses missing or wrong credentials with a plain HTTP 401
  before any upgrade (checked on the raw response), and the check goes through
  `hmac.compare_digest` (a spy, not a timing test).
* Tokens and keys never appear in the repr or str of clients, subscriptions,
  server handles and exceptions, nor in any log record of a full scenario
  (refused handshake, query auth, reconnects, errors) captured at DEBUG.
* A token that could break the request (CR, LF, non-ASCII; ';', ',', spaces where
  it travels in a cookie) is refused by every ``connect_*`` before a byte is sent.
* TLS verification is on by default: a ``wss://`` URL without a context checks the
  system store and refuses a throwaway CA (PlaceOS: test_faults.py; Mews here).
"""

from __future__ import annotations

import hmac
import logging
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from harness import (
    ACCESS_TOKEN,
    API_KEY,
    BEARER,
    CLIENT_TOKEN,
    DISPLAY,
    MEWS_MESSAGES,
    SECRETS,
    SYS,
    WAIT,
    Client,
    Served,
    make_engine,
    mews_options,
    placeos_options,
    require,
    running_server,
)

from protocore import ConnectionLost, HandshakeFailed, LocalProtocolError
from protocore.backoff import Backoff
from protocore.connection import ClientConnection
from protocore.mews import MewsClient, Reconnected, decode_envelope
from protocore.placeos import PlaceOSClient
from protocore.placeos.exceptions import RequestFailedError

pytestmark = pytest.mark.timeout(60)

PLACEOS_PATH = "/api/engine/v2/systems/control"
MEWS_PATH = "/ws/connector"
WRONG = "Wr0ng-Zz9-not-the-secret"
"""A wrong credential: it must not be echoed back or logged either."""
ALL_SECRETS = (*SECRETS, WRONG)


# -- 401 before the upgrade -----------------------------------------------------------


def _bare_request(path: str, port: int) -> bytes:
    """An upgrade request with no credentials at all."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def _request(session: Any, url: str) -> bytes:
    """The upgrade request the core's client writes for ``session``."""
    conn = ClientConnection(session, url)
    conn.start(0.0)
    return conn.data_to_send()


PLACEOS_FORMS: dict[str, Callable[[], Any] | None] = {
    "missing": None,
    "wrong key (header)": lambda: PlaceOSClient(api_key=WRONG),
    "wrong key (query)": lambda: PlaceOSClient(api_key=WRONG, auth="query"),
    "wrong key (cookie)": lambda: PlaceOSClient(api_key=WRONG, auth="cookie"),
    "wrong token (header)": lambda: PlaceOSClient(bearer_token=WRONG),
    "wrong token (query)": lambda: PlaceOSClient(bearer_token=WRONG, auth="query"),
    "key sent as a token": lambda: PlaceOSClient(bearer_token=API_KEY),
}
MEWS_FORMS: dict[str, Callable[[], Any] | None] = {
    "missing": None,
    "wrong access token (cookie)": lambda: MewsClient(CLIENT_TOKEN, WRONG),
    "wrong client token (cookie)": lambda: MewsClient(WRONG, ACCESS_TOKEN),
    "wrong access token (query)": lambda: MewsClient(CLIENT_TOKEN, WRONG, auth="query"),
    "tokens swapped": lambda: MewsClient(ACCESS_TOKEN, CLIENT_TOKEN),
}


def _exchange(port: int, request: bytes) -> bytes:
    """Send ``request``; the whole answer (headers and Content-Length body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        answer = b""
        while True:
            end = answer.find(b"\r\n\r\n")
            if end >= 0:
                head = answer[:end].lower()
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip() == b"content-length":
                        length = int(value)
                if len(answer) >= end + 4 + length:
                    return answer
            chunk = sock.recv(65536)
            if not chunk:
                return answer
            answer += chunk


@contextmanager
def compare_digest_spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[bytes, bytes]]]:
    """Record every `hmac.compare_digest` call (the servers run in other threads)."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((bytes(a), bytes(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    yield calls
    monkeypatch.undo()


def _check_refusal(answer: bytes, sent: bytes) -> None:
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 401 "), status
    head = rest.split(b"\r\n\r\n")[0].lower()
    assert b"upgrade: websocket" not in head
    assert b"sec-websocket-accept" not in head
    for secret in ALL_SECRETS:
        # Neither the real secrets nor what the client sent are echoed.
        assert secret.encode() not in answer
    assert b"101" not in status
    assert sent  # the request went out whole


@pytest.mark.parametrize("form", list(PLACEOS_FORMS))
def test_placeos_servers_refuse_with_401_before_the_upgrade(
    placeos_server: Served, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make = PLACEOS_FORMS[form]
    port = placeos_server.port
    request = (
        _bare_request(PLACEOS_PATH, port) if make is None else _request(make(), placeos_server.url)
    )
    with compare_digest_spy(monkeypatch) as calls:
        answer = _exchange(port, request)
    _check_refusal(answer, request)
    if make is not None:
        # The given credential was compared, in constant time, with a configured one.
        sent = API_KEY if form == "key sent as a token" else WRONG
        configured = BEARER if "token" in form else API_KEY
        assert (sent.encode(), configured.encode()) in calls


@pytest.mark.parametrize("form", list(MEWS_FORMS))
def test_mews_servers_refuse_with_401_before_the_upgrade(
    mews_server: Served, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make = MEWS_FORMS[form]
    port = mews_server.port
    request = _bare_request(MEWS_PATH, port) if make is None else _request(make(), mews_server.url)
    with compare_digest_spy(monkeypatch) as calls:
        answer = _exchange(port, request)
    _check_refusal(answer, request)
    if make is not None:
        # Both tokens are compared every time, even when the first one is wrong.
        assert len(calls) == 2
        assert {secret for _, secret in calls} == {CLIENT_TOKEN.encode(), ACCESS_TOKEN.encode()}


# -- secrets out of reprs, exception text and logs ------------------------------------


def _assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        for secret in ALL_SECRETS:
            assert secret not in text, f"a secret leaked into: {text[:200]!r}"


def _describe(*objects: Any) -> list[str]:
    texts = []
    for obj in objects:
        texts += [repr(obj), str(obj)]
        if isinstance(obj, BaseException):
            texts += [repr(arg) for arg in obj.args]
            texts += getattr(obj, "__notes__", [])
            body = getattr(obj, "body", None)
            if isinstance(body, bytes):
                texts.append(body.decode("latin-1"))
    return texts


@contextmanager
def unanswering_port() -> Iterator[int]:
    """A port whose listener never accepts: TCP connects, the upgrade never answers."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=8)
    with listener:
        yield listener.getsockname()[1]


def test_placeos_secrets_stay_out_of_reprs_errors_and_logs(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    async def scenario(c: Client) -> None:
        # A refused handshake, in every placement.
        for form in (
            {"api_key": WRONG},
            {"api_key": WRONG, "auth": "query"},
            {"bearer_token": WRONG, "auth": "cookie"},
        ):
            with pytest.raises(HandshakeFailed) as refused:
                async with c.connect_placeos(served.url, **form):
                    pytest.fail("refused")
            texts.extend(_describe(refused.value))
        # A handshake that times out (the URL's query holds the key).
        with unanswering_port() as port:
            with pytest.raises(TimeoutError) as slow:
                async with c.connect_placeos(
                    f"ws://127.0.0.1:{port}{PLACEOS_PATH}",
                    api_key=API_KEY,
                    auth="query",
                    connect_timeout=0.2,
                    reconnect=False,
                ):
                    pytest.fail("no answer, no connection")
            texts.extend(_describe(slow.value))
        # A working connection (key in the query), an error, a drop and a reconnect.
        async with (
            c.connect_placeos(
                served.url, api_key=API_KEY, auth="query", reconnect=Backoff(base=0.02, cap=0.1)
            ) as placeos,
            placeos.bind(SYS, DISPLAY, "power") as power,
        ):
            assert await power.next() is False
            texts.extend(_describe(placeos.raw, power.source, served.handle))
            if hasattr(placeos.raw, "session"):
                texts.extend(_describe(placeos.raw.session))
            with pytest.raises(RequestFailedError) as failed:
                await placeos.exec(SYS, DISPLAY, "fail")
            texts.extend(_describe(failed.value))
            served.drop_connections()
            served.set_status(SYS, DISPLAY, "power", "back")
            await power.until("back")
        with pytest.raises(ConnectionLost) as lost:
            await placeos.exec(SYS, DISPLAY, "add", 1, 2)
        texts.extend(_describe(lost.value, placeos.raw))

    with running_server(client.kind, "placeos", make_engine(), **placeos_options()) as handle:
        served = Served(handle)
        client.run(scenario)
    assert any("reconnect" in record.getMessage() for record in caplog.records)
    texts += [caplog.text]
    texts += [record.getMessage() for record in caplog.records]
    texts += [record.exc_text or "" for record in caplog.records]
    _assert_no_secret(texts)


def test_mews_secrets_stay_out_of_reprs_errors_and_logs(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    require(client.kind, "mews")
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    envelope = decode_envelope(MEWS_MESSAGES["001"])

    async def scenario(c: Client) -> None:
        for auth in ("cookie", "query"):
            with pytest.raises(HandshakeFailed) as refused:
                async with c.connect_mews(
                    served.url, client_token=CLIENT_TOKEN, access_token=WRONG, auth=auth
                ):
                    pytest.fail("refused")
            texts.extend(_describe(refused.value))
        async with c.connect_mews(
            served.url,
            client_token=CLIENT_TOKEN,
            access_token=ACCESS_TOKEN,
            auth="query",
            reconnect=Backoff(base=0.02, cap=0.1),
        ) as events:
            texts.extend(_describe(events.source, served.handle))
            served.drop_connections()
            assert isinstance(await events.next(), Reconnected)
            assert served.publish(envelope) == 1
            assert tuple([await events.next() for _ in envelope.events]) == envelope.events
            texts.extend(_describe(events.source))

    with running_server(client.kind, "mews", **mews_options()) as handle:
        served = Served(handle)
        client.run(scenario)
    texts += [caplog.text]
    texts += [record.getMessage() for record in caplog.records]
    _assert_no_secret(texts)


def test_core_sessions_and_connections_hide_their_secrets() -> None:
    url = f"ws://127.0.0.1:1{PLACEOS_PATH}"
    objects: list[Any] = []
    for session in (
        PlaceOSClient(api_key=API_KEY, auth="query"),
        PlaceOSClient(bearer_token=BEARER, auth="cookie"),
        MewsClient(CLIENT_TOKEN, ACCESS_TOKEN, auth="query"),
    ):
        conn = ClientConnection(session, url)
        conn.start(0.0)
        request = conn.data_to_send()
        assert any(s.encode() in request for s in SECRETS)  # they do travel
        objects += [session, conn, conn.url]
    _assert_no_secret(_describe(*objects))


# -- header injection through tokens --------------------------------------------------

MARK = "Zz9evil"
# (what, where it travels, the bad token)
PLACEOS_BAD = [
    ("api_key", "header", f"key\r\nX-Injected: {MARK}"),
    ("api_key", "header", f"key\n{MARK}"),
    ("api_key", "header", f"key\r{MARK}"),
    ("api_key", "header", f"kéy{MARK}"),
    ("api_key", "header", f" key{MARK}"),
    ("api_key", "header", f"key{MARK}\x00"),
    ("api_key", "query", f"key\r\n{MARK}"),
    ("api_key", "query", f"k\u2028ey{MARK}"),
    ("api_key", "cookie", f"key; other={MARK}"),
    ("api_key", "cookie", f"key;{MARK}"),
    ("api_key", "cookie", f"key {MARK}"),
    ("api_key", "cookie", f"key,{MARK}"),
    ("bearer_token", "header", f"tok\r\nX-Injected: {MARK}"),
    ("bearer_token", "query", f"tök{MARK}"),
    ("bearer_token", "cookie", f"tok;{MARK}"),
]
MEWS_BAD = [
    ("client_token", "cookie", f"ct\r\nX-Injected: {MARK}"),
    ("client_token", "cookie", f"ct;{MARK}"),
    ("access_token", "cookie", f"at {MARK}"),
    ("access_token", "cookie", f"at={MARK}"),
    ("access_token", "cookie", f"ät{MARK}"),
    ("access_token", "query", f"at\n{MARK}"),
    ("client_token", "query", f"ct {MARK}"),
]


@contextmanager
def untouched_port() -> Iterator[int]:
    """A listening port; afterwards, asserts nobody even connected to it."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=8)
    with listener:
        yield listener.getsockname()[1]
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()[0].close()


@pytest.mark.parametrize(("what", "auth", "bad"), PLACEOS_BAD)
def test_placeos_token_injection_is_refused_before_connecting(
    client: Client, what: str, auth: str, bad: str
) -> None:
    async def scenario(c: Client) -> None:
        with pytest.raises(LocalProtocolError) as refused:
            async with c.connect_placeos(
                f"ws://127.0.0.1:{port}{PLACEOS_PATH}", **{what: bad}, auth=auth
            ):
                pytest.fail("a token that breaks the request was accepted")
        assert what in str(refused.value)
        assert MARK not in str(refused.value)
        assert MARK not in repr(refused.value)

    with untouched_port() as port:
        client.run(scenario)


@pytest.mark.parametrize(("what", "auth", "bad"), MEWS_BAD)
def test_mews_token_injection_is_refused_before_connecting(
    client: Client, what: str, auth: str, bad: str
) -> None:
    require(client.kind, "mews")
    tokens = {"client_token": CLIENT_TOKEN, "access_token": ACCESS_TOKEN, what: bad}

    async def scenario(c: Client) -> None:
        with pytest.raises(LocalProtocolError) as refused:
            async with c.connect_mews(f"ws://127.0.0.1:{port}{MEWS_PATH}", **tokens, auth=auth):
                pytest.fail("a token that breaks the request was accepted")
        assert what in str(refused.value)
        assert MARK not in str(refused.value)
        assert MARK not in repr(refused.value)

    with untouched_port() as port:
        client.run(scenario)


# -- TLS on by default ----------------------------------------------------------------


def test_mews_tls_verifies_by_default(
    client: Client, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    require(client.kind, "mews")
    envelope = decode_envelope(MEWS_MESSAGES["000"])

    async def scenario(c: Client) -> None:
        assert served.url.startswith("wss://")
        with pytest.raises(ssl.SSLCertVerificationError) as untrusted:
            async with c.connect_mews(
                served.url, client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN, reconnect=False
            ):
                pytest.fail("an untrusted certificate was accepted")
        assert untrusted.value.verify_code != 0
        # With the CA trusted explicitly, the same server works.
        async with c.connect_mews(
            served.url,
            client_token=CLIENT_TOKEN,
            access_token=ACCESS_TOKEN,
            ssl_context=client_ssl,
        ) as events:
            assert served.publish(envelope) == 1
            assert tuple([await events.next() for _ in envelope.events]) == envelope.events

    with running_server("trio", "mews", ssl_context=server_ssl, **mews_options()) as handle:
        served = Served(handle)
        client.run(scenario)


def test_a_context_on_a_plain_url_is_refused(client: Client, client_ssl: ssl.SSLContext) -> None:
    async def scenario(c: Client) -> None:
        with pytest.raises(ValueError, match="wss://"):
            async with c.connect_placeos(
                f"ws://127.0.0.1:{port}{PLACEOS_PATH}", api_key=API_KEY, ssl_context=client_ssl
            ):
                pytest.fail("TLS was asked for on a plain URL")

    with untouched_port() as port:
        client.run(scenario)
