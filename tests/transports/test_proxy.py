"""Every client through a real proxy on 127.0.0.1: HTTP CONNECT (with and without
credentials, ``wss://`` inside the tunnel), SOCKS5, the environment, refusals."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from harness import (
    ACCESS_TOKEN,
    API_KEY,
    CLIENT_TOKEN,
    DISPLAY,
    MEWS_MESSAGES,
    SYS,
    Client,
    Served,
    make_engine,
    placeos_options,
    running_server,
)
from proxies import PASSWORD, running_pproxy, scripted_proxy

from protocore.errors import ProxyError
from protocore.mews import decode_envelope


def _exec_through(client: Client, url: str, **options: Any) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_placeos(url, api_key=API_KEY, reconnect=False, **options) as p:
            assert await p.exec(SYS, DISPLAY, "add", 2, 3) == 5

    client.run(scenario)


def _refusal(client: Client, url: str, **options: Any) -> ProxyError:
    caught: list[ProxyError] = []

    async def scenario(c: Client) -> None:
        with pytest.raises(ProxyError) as info:
            async with c.connect_placeos(url, api_key=API_KEY, reconnect=False, **options):
                pytest.fail("connected")
        caught.append(info.value)

    client.run(scenario)
    return caught[0]


@pytest.mark.parametrize("auth", [False, True], ids=["open", "credentials"])
def test_placeos_through_http_connect(client: Client, placeos_server: Served, auth: bool) -> None:
    with running_pproxy(auth=auth) as proxy:
        _exec_through(client, placeos_server.url, proxy=proxy.url())
        assert proxy.tunnels_to(placeos_server.port) == 1


def test_mews_through_http_connect(client: Client, mews_server: Served) -> None:
    async def scenario(c: Client) -> None:
        async with c.connect_mews(
            mews_server.url,
            client_token=CLIENT_TOKEN,
            access_token=ACCESS_TOKEN,
            reconnect=False,
            proxy=proxy.url(),
        ) as events:
            envelope = decode_envelope(MEWS_MESSAGES["001"])
            assert mews_server.publish(envelope) == 1
            assert await events.next() == envelope.events[0]

    with running_pproxy(auth=True) as proxy:
        client.run(scenario)
        assert proxy.tunnels_to(mews_server.port) == 1


def test_wss_inside_the_tunnel_verifies_the_server_not_the_proxy(
    client: Client, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    options = placeos_options(ssl_context=server_ssl)
    with (
        running_server("trio", "placeos", make_engine(), **options) as server,
        running_pproxy(auth=True) as proxy,
    ):
        assert server.url.startswith("wss://127.0.0.1:")
        _exec_through(client, server.url, ssl_context=client_ssl, proxy=proxy.url())
        # The certificate names 127.0.0.1: asked for "localhost", the client must refuse
        # it, which shows that TLS checks the server's name, not the proxy's.
        other = server.url.replace("127.0.0.1", "localhost")
        with pytest.raises(ssl.SSLCertVerificationError):
            _exec_through(client, other, ssl_context=client_ssl, proxy=proxy.url())


def test_socks5(client: Client, placeos_server: Served) -> None:
    with running_pproxy(auth=True) as proxy:
        _exec_through(client, placeos_server.url, proxy=proxy.url("socks5"))
        assert proxy.tunnels_to(placeos_server.port) == 1


def test_the_environment_picks_the_proxy_and_no_proxy_bypasses_it(
    client: Client, placeos_server: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_pproxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        _exec_through(client, placeos_server.url)
        assert proxy.tunnels_to(placeos_server.port) == 1
        monkeypatch.setenv("NO_PROXY", f"example.com, 127.0.0.1:{placeos_server.port}")
        _exec_through(client, placeos_server.url)
        _exec_through(client, placeos_server.url, proxy=None)
        assert proxy.tunnels_to(placeos_server.port) == 1  # the bypasses went direct


def test_a_wrong_proxy_password_is_a_407_without_the_password(
    client: Client, placeos_server: Served
) -> None:
    with running_pproxy(auth=True) as proxy:
        error = _refusal(client, placeos_server.url, proxy=proxy.url(password="wrong-pw"))
    assert error.status_code == 407
    assert error.proxy == f"http://127.0.0.1:{proxy.port}"
    text = f"{error} {error!r} {error.args}"
    assert "wrong-pw" not in text
    assert "proxy-user" not in text
    assert PASSWORD not in text
    assert str(error) == (
        f"proxy http://127.0.0.1:{proxy.port} refused the credentials"
        " (HTTP 407 Proxy Authentication Required)"
    )


def test_a_proxy_that_forbids_the_tunnel(client: Client) -> None:
    answer = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    with scripted_proxy(answer) as port:
        error = _refusal(client, "ws://example.test:80/control", proxy=f"http://127.0.0.1:{port}")
    assert error.status_code == 403
    assert str(error) == (
        f"proxy http://127.0.0.1:{port} refused the tunnel to example.test:80 (HTTP 403 Forbidden)"
    )


def test_a_proxy_that_closes_mid_handshake(client: Client) -> None:
    with scripted_proxy(b"HTTP/1.1 200 Conn") as port:
        error = _refusal(client, "ws://example.test:80/control", proxy=f"http://127.0.0.1:{port}")
    assert error.status_code is None
    assert str(error) == (
        f"proxy http://127.0.0.1:{port} closed the connection during the CONNECT handshake"
    )


def test_a_proxy_nobody_listens_on(client: Client, placeos_server: Served) -> None:
    with scripted_proxy(b"") as port:
        pass  # closed: nothing listens there now
    caught: list[OSError] = []

    async def scenario(c: Client) -> None:
        with pytest.raises(ConnectionRefusedError) as info:
            async with c.connect_placeos(
                placeos_server.url,
                api_key=API_KEY,
                reconnect=False,
                proxy=f"http://127.0.0.1:{port}",
            ):
                pytest.fail("connected")
        caught.append(info.value)

    client.run(scenario)
    assert str(caught[0]) == (
        f"[Errno 111] could not connect to proxy http://127.0.0.1:{port}: connection refused"
    )
