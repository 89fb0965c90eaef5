"""The four entry points of every transport, defined once.

`Transport` holds ``connect_placeos``, ``connect_mews``, ``serve_placeos`` and
``serve_mews`` with their parameters, defaults and checks. Each runtime module makes
one and exports its bound methods, so the three modules cannot drift apart: what
differs is only which classes the calls return (async or blocking spellings of the
same API, each bound to its runtime).
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Callable, Iterable
from typing import Generic, Literal, TypeVar

from protocore.backoff import Backoff
from protocore.connection import parse_ws_url
from protocore.driver import (
    ClientState,
    ConnectionOptions,
    DriverOptions,
    MewsDriver,
    PlaceOSDriver,
    ServerDriver,
)
from protocore.mews import MewsClient, MewsServer
from protocore.placeos import (
    AuthPlacement,
    Dialect,
    MockEngine,
    PlaceOSClient,
    ValueFormat,
)
from protocore.placeos.server import DEFAULT_PATH as PLACEOS_PATH
from protocore.proxy import Proxy, resolve_proxy

__all__ = ["MEWS_PATH", "PLACEOS_PATH", "PUBLIC", "Transport", "client_ssl_context"]

MEWS_PATH = "/ws/connector"

PUBLIC = [
    "connect_placeos",
    "connect_mews",
    "serve_placeos",
    "serve_mews",
    "PlaceOSConnection",
    "Subscription",
    "MewsEvents",
    "PlaceOSServerHandle",
    "MewsServerHandle",
]
"""What every transport module exports: the same names, in trio, asyncio and sync."""

PC = TypeVar("PC")
ME = TypeVar("ME")
PH = TypeVar("PH")
MH = TypeVar("MH")


def client_ssl_context(secure: bool, ssl_context: ssl.SSLContext | None) -> ssl.SSLContext | None:
    """The TLS context for a ``wss://`` URL: the caller's, or the system CA store's.

    Verification is on by default; turning it off takes an explicit context. A
    ``ws://`` URL with a context is refused: the caller evidently expected TLS.
    """
    if not secure:
        if ssl_context is not None:
            raise ValueError("ssl_context given for a ws:// URL; use wss:// for TLS")
        return None
    return ssl_context if ssl_context is not None else ssl.create_default_context()


def client_proxy(proxy: str | None, url: str) -> Proxy | None:
    """The proxy for ``url``: ``"auto"`` reads ``https_proxy``, ``no_proxy``... from the env."""
    u = parse_ws_url(url)
    found = resolve_proxy(proxy, u.scheme, u.host, u.port, os.environ)
    if found is not None and found.tls:
        raise ValueError(
            f"proxy {found.name}: TLS to the proxy itself (https://) is not supported;"
            " use an http:// proxy (wss:// stays encrypted end to end through it)"
        )
    return found


class Transport(Generic[PC, ME, PH, MH]):
    """The entry points, returning the runtime's classes (made by the four factories)."""

    def __init__(
        self,
        placeos_client: Callable[[PlaceOSDriver, ssl.SSLContext | None], PC],
        mews_client: Callable[[MewsDriver, ssl.SSLContext | None], ME],
        placeos_server: Callable[[ServerDriver, MockEngine, str, int, ssl.SSLContext | None], PH],
        mews_server: Callable[[ServerDriver, str, int, ssl.SSLContext | None], MH],
    ) -> None:
        self._placeos_client = placeos_client
        self._mews_client = mews_client
        self._placeos_server = placeos_server
        self._mews_server = mews_server

    def connect_placeos(
        self,
        url: str,
        *,
        api_key: str | None = None,
        bearer_token: str | None = None,
        auth: AuthPlacement = "header",
        ssl_context: ssl.SSLContext | None = None,
        reconnect: bool | Backoff = True,
        connect_timeout: float = 10.0,
        close_timeout: float = 10.0,
        keepalive_interval: float | None = 20.0,
        keepalive_timeout: float = 20.0,
        heartbeat_interval: float | None = 15.0,
        heartbeat_timeout: float | None = 60.0,
        exec_timeout: float = 10.0,
        bind_timeout: float = 30.0,
        max_message_size: int = 1 << 20,
        buffer_size: int = 1000,
        value_format: ValueFormat = ValueFormat.AUTO,
        proxy: str | None = "auto",
        on_state_change: Callable[[ClientState], None] | None = None,
    ) -> PC:
        """A PlaceOS real-time client for ``url`` (``wss://<domain>/api/engine/v2/systems/control``).

        Use it as a context manager: the first connection is made on entry (its failure
        raises there: OSError, ssl.SSLError, TimeoutError, `HandshakeFailed`), the close
        handshake runs on exit. Exactly one of ``api_key`` and ``bearer_token``, placed
        as ``auth`` says (``header``, ``query`` or ``cookie``). Later drops reconnect
        (``reconnect``: True, False or a `Backoff`); bindings and debug streams come
        back by themselves. ``exec_timeout``/``bind_timeout`` bound every request,
        since a server may drop one it cannot parse; ``heartbeat_*`` drive the text
        ``ping``/``pong``, ``keepalive_*`` the WebSocket pings. Each subscription
        buffers ``buffer_size`` items and then drops the oldest. ``proxy``: ``"auto"``
        (from ``https_proxy``/``http_proxy``/``all_proxy``, minus ``no_proxy``), None
        (direct) or a URL (``http://user:pass@host:port``, ``socks5://``, ``socks4a://``).
        ``on_state_change`` is called with each new `ClientState` (connecting, open,
        reconnecting with its attempt and delay, closing, closed), from the client's
        I/O (its loop, or its I/O thread for the blocking client): keep it short.
        """
        session = PlaceOSClient(
            api_key=api_key,
            bearer_token=bearer_token,
            auth=auth,
            exec_timeout=exec_timeout,
            bind_timeout=bind_timeout,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            value_format=value_format,
        )
        options = DriverOptions(
            credential="API key" if api_key is not None else "bearer token",
            reconnect=reconnect,
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            max_message_size=max_message_size,
            proxy=client_proxy(proxy, url),
        )
        driver = PlaceOSDriver(session, url, buffer_size=buffer_size, **options)
        driver.on_state_change = on_state_change
        return self._placeos_client(driver, client_ssl_context(driver.url.secure, ssl_context))

    def connect_mews(
        self,
        url: str,
        *,
        client_token: str,
        access_token: str,
        auth: Literal["cookie", "query"] = "cookie",
        ssl_context: ssl.SSLContext | None = None,
        reconnect: bool | Backoff = True,
        connect_timeout: float = 10.0,
        close_timeout: float = 10.0,
        keepalive_interval: float | None = 20.0,
        keepalive_timeout: float = 20.0,
        max_message_size: int = 1 << 20,
        buffer_size: int = 10000,
        proxy: str | None = "auto",
        on_state_change: Callable[[ClientState], None] | None = None,
    ) -> ME:
        """A Mews Connector WebSocket stream for ``url`` (``wss://ws.mews.com/ws/connector``).

        Use it as a context manager, then iterate: Mews events in order, a
        `Reconnected` marker after each reconnect (Mews does not replay: resynchronise
        through its REST API), a `BadMessage` for a message that could not be decoded.
        The tokens go in a cookie, or with ``auth="query"`` in the query (the legacy
        endpoint). No event is ever dropped: once ``buffer_size`` wait, the client
        stops reading until the consumer catches up. ``proxy`` and ``on_state_change``
        work as in `connect_placeos`.
        """
        session = MewsClient(
            client_token, access_token, auth=auth, max_message_size=max_message_size
        )
        driver = MewsDriver(
            session,
            url,
            buffer_size=buffer_size,
            reconnect=reconnect,
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            max_message_size=max_message_size,
            proxy=client_proxy(proxy, url),
        )
        driver.on_state_change = on_state_change
        return self._mews_client(driver, client_ssl_context(driver.url.secure, ssl_context))

    def serve_placeos(
        self,
        engine: MockEngine,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_keys: Iterable[str] = (),
        bearer_tokens: Iterable[str] = (),
        allow_anonymous: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        bad_requests: Literal["reply", "drop"] = "reply",
        dialect: Dialect = Dialect.CURRENT,
        keepalive_interval: float | None = 20.0,
        keepalive_timeout: float = 20.0,
        handshake_timeout: float = 10.0,
        close_timeout: float = 10.0,
        max_message_size: int = 1 << 20,
    ) -> PH:
        """A fake PlaceOS engine serving ``engine``'s systems (tests, demos).

        Use it as a context manager: it listens on entry (``port=0``: any free port,
        see ``server.url``); on exit it stops listening, then says goodbye (1001) to
        every client, waiting up to ``close_timeout`` for their answers. Without keys or
        tokens everyone is refused unless ``allow_anonymous``. With ``ssl_context`` (a
        server context) it speaks ``wss://``. ``dialect`` picks the error form
        (`Dialect.SEED`: the number in ``code``, for older clients). Every connection
        gets the same options:

        - ``keepalive_interval``: seconds between pings to the client (None: no pings).
        - ``keepalive_timeout``: seconds to wait for the pong; then close 1011 and drop.
        - ``handshake_timeout``: seconds for the client to finish the upgrade; then drop.
        - ``close_timeout``: seconds to wait for a close answer, on server exit too.
        - ``max_message_size``: bytes per client message; a bigger one closes with 1009.
        """
        make_session = functools.partial(
            engine.new_session,
            api_keys=tuple(api_keys),
            bearer_tokens=tuple(bearer_tokens),
            allow_anonymous=allow_anonymous,
            bad_requests=bad_requests,
            dialect=dialect,
        )
        options = ConnectionOptions(
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            max_message_size=max_message_size,
        )
        driver = ServerDriver("PlaceOS", make_session, options)
        return self._placeos_server(driver, engine, host, port, ssl_context)

    def serve_mews(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        client_token: str,
        access_token: str,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_interval: float | None = 20.0,
        keepalive_timeout: float = 20.0,
        handshake_timeout: float = 10.0,
        close_timeout: float = 10.0,
        max_message_size: int = 1 << 20,
    ) -> MH:
        """A fake Mews Connector server at ``/ws/connector`` (tests, demos).

        ``server.publish(events)`` pushes a message to every connected client. It
        accepts the tokens as cookies or, as the legacy endpoint, in the query.
        ``keepalive_interval``, ``keepalive_timeout``, ``handshake_timeout``,
        ``close_timeout`` and ``max_message_size`` work as in `serve_placeos`.
        """

        def make_session() -> MewsServer:
            return MewsServer(client_token, access_token, path=MEWS_PATH)

        options = ConnectionOptions(
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            max_message_size=max_message_size,
        )
        driver = ServerDriver("Mews", make_session, options)
        return self._mews_server(driver, host, port, ssl_context)
