"""Fixtures for the transport suites: every client kind, every server kind, certificates.

``client`` and ``server_kind`` are parametrized over trio, asyncio and sync; kinds
whose module does not exist yet are skipped. Servers run in background threads
(`harness.running_server`), so any client can talk to any server.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator

import pytest
import trustme
from harness import (
    KINDS,
    Client,
    Served,
    adapter,
    make_engine,
    mews_options,
    placeos_options,
    running_server,
)


def _present(kind: str) -> str:
    if adapter(kind) is None:
        pytest.skip(f"transports.{kind} does not exist yet")
    return kind


@pytest.fixture(params=KINDS)
def client(request: pytest.FixtureRequest) -> Client:
    """A facade running scenarios with one client adapter."""
    return Client(_present(request.param))


@pytest.fixture(params=KINDS)
def server_kind(request: pytest.FixtureRequest) -> str:
    """Which adapter serves."""
    return _present(request.param)


@pytest.fixture
def placeos_server(server_kind: str) -> Iterator[Served]:
    """A PlaceOS server of ``server_kind`` (harness engine, an API key and a token)."""
    engine = make_engine()
    with running_server(server_kind, "placeos", engine, **placeos_options()) as handle:
        yield Served(handle, engine)


@pytest.fixture
def mews_server(server_kind: str) -> Iterator[Served]:
    """A Mews server of ``server_kind`` with the harness tokens."""
    with running_server(server_kind, "mews", **mews_options()) as handle:
        yield Served(handle)


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients read proxies from the environment: a developer's own must not reroute
    the suites' 127.0.0.1 connections (the proxy tests set what they need)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(autouse=True)
def _no_thread_left_behind() -> Iterator[None]:
    """Every test ends with the threads it started gone (servers, blocking clients)."""
    before = set(threading.enumerate())
    yield
    # trio.to_thread keeps idle workers ("Trio thread N") cached for a few seconds by
    # design; they run nothing of ours.
    ours = [t for t in set(threading.enumerate()) - before if not t.name.startswith("Trio thread")]
    for thread in ours:
        thread.join(5.0)
    left = [t.name for t in ours if t.is_alive()]
    assert not left, f"threads still running after the test: {left}"


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A throwaway certificate authority (real TLS handshakes on 127.0.0.1)."""
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 signed by `ca`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    """A client context trusting only `ca`."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context
