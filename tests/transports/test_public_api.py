"""One public API: the three transports expose the same names, members and messages.

The surface is compared by introspection (exported names; each class's public
members, properties and signatures with defaults), with only the async/sync spelling
of the protocol methods told apart (``__aenter__``/``__enter__``...). Then the same
fault gets the same exception class and message from every client.
"""

from __future__ import annotations

import inspect
import re
import socket
import ssl
import threading
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trustme
from harness import API_KEY, KINDS, Client, make_engine, placeos_options, running_server

from protocore import ConnectionLost, HandshakeFailed, ProxyError
from transports import _transport

SHOWN = {"__len__", "__repr__"}
SPELLING = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
}


def _type_arguments(cls: type) -> dict[str, Any]:
    """What each inherited type variable stands for (``_Items[MewsItem]``: T is MewsItem),
    so that an inherited ``-> T`` and an overriding ``-> MewsItem`` read the same."""
    bound: dict[str, Any] = {}
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            origin = typing.get_origin(base)
            parameters = getattr(origin, "__parameters__", ())
            for parameter, argument in zip(parameters, typing.get_args(base), strict=False):
                if not isinstance(argument, typing.TypeVar):
                    bound.setdefault(parameter.__name__, argument)
    return bound


def _signature(method: Any, bound: dict[str, Any]) -> str:
    signature = inspect.signature(method, eval_str=True)

    def resolve(annotation: Any) -> Any:
        if isinstance(annotation, typing.TypeVar):
            return bound.get(annotation.__name__, annotation)
        return annotation

    parameters = [
        p.replace(annotation=resolve(p.annotation)) for p in signature.parameters.values()
    ]
    text = str(
        signature.replace(
            parameters=parameters, return_annotation=resolve(signature.return_annotation)
        )
    )
    return re.sub(r"transports\._(aio|blocking)\.", "", text)  # each spelling's own class


def _members(cls: type) -> dict[str, str]:
    found: dict[str, str] = {}
    bound = _type_arguments(cls)
    for name in dir(cls):
        spelled = name in SPELLING or name in SPELLING.values()
        if name.startswith("_") and not spelled and name not in SHOWN:
            continue
        static = inspect.getattr_static(cls, name)
        if name == "__repr__" and static is object.__repr__:
            continue
        if isinstance(static, property):
            kind = "property"
        elif callable(static):
            kind = f"method{_signature(getattr(cls, name), bound)}"
        else:
            kind = f"attribute {type(static).__name__}"
        found[SPELLING.get(name, name)] = kind
    slots = getattr(cls, "__slots__", ())
    for name in slots if isinstance(slots, tuple) else ():
        if not name.startswith("_"):
            found[name] = "attribute"
    return found


def surface(kind: str) -> dict[str, Any]:
    module = __import__(f"transports.{kind}", fromlist=["*"])
    described: dict[str, Any] = {"__all__": sorted(module.__all__)}
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            described[name] = _members(obj)
        else:
            described[name] = str(inspect.signature(obj))
    return described


def _differences() -> list[str]:
    surfaces = {kind: surface(kind) for kind in KINDS}
    found = []
    keys = set().union(*surfaces.values())
    for key in sorted(keys):
        values = {kind: s.get(key) for kind, s in surfaces.items()}
        if isinstance(values["trio"], dict):
            members = set().union(*(v or {} for v in values.values()))
            for member in sorted(members):
                each = {kind: (v or {}).get(member) for kind, v in values.items()}
                if len(set(map(str, each.values()))) > 1:
                    found.append(f"{key}.{member}: {each}")
        elif len(set(map(str, values.values()))) > 1:
            found.append(f"{key}: {values}")
    return found


def test_every_transport_exports_the_same_names() -> None:
    for kind in KINDS:
        module = __import__(f"transports.{kind}", fromlist=["*"])
        assert module.__all__ == _transport.PUBLIC
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_the_three_public_surfaces_have_no_difference() -> None:
    assert _differences() == []


def test_the_surface_test_sees_a_difference() -> None:
    # The comparison is not vacuous: members, properties and defaults are all seen.
    described = surface("trio")
    assert "exec" in described["PlaceOSConnection"]
    assert described["PlaceOSConnection"]["connected"] == "property"
    assert "timeout: float | None = None" in described["Subscription"]["get"]
    assert "MewsEvent" in described["MewsEvents"]["get"]  # T read as what it stands for
    assert "buffer_size: 'int' = 10000" in described["connect_mews"]


def test_trio_and_asyncio_share_the_async_classes_and_sync_has_its_own() -> None:
    import transports.asyncio
    import transports.sync
    import transports.trio

    assert transports.trio.PlaceOSConnection is transports.asyncio.PlaceOSConnection
    assert transports.sync.PlaceOSConnection is not transports.trio.PlaceOSConnection
    assert inspect.iscoroutinefunction(transports.trio.PlaceOSConnection.exec)
    assert not inspect.iscoroutinefunction(transports.sync.PlaceOSConnection.exec)


# -- the same fault, the same error, on every transport -------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never says a word (no TLS, no HTTP)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peers: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    peers.append(listener.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept)
        thread.start()
        try:
            yield int(listener.getsockname()[1])
        finally:
            stop.set()
            thread.join()
            for peer in peers:
                peer.close()


def _raised(client: Client, url: str, **options: Any) -> BaseException:
    caught: list[BaseException] = []

    async def scenario(c: Client) -> None:
        try:
            async with c.connect_placeos(url, reconnect=False, **options):
                pytest.fail("connected")
        except (OSError, HandshakeFailed) as exc:
            caught.append(exc)

    client.run(scenario)
    (error,) = caught
    return error


def _same_everywhere(errors: dict[str, BaseException]) -> BaseException:
    kinds = {kind: (type(error), str(error)) for kind, error in errors.items()}
    assert len(set(kinds.values())) == 1, kinds
    return next(iter(errors.values()))


def test_a_refused_connection_reads_the_same() -> None:
    port = _free_port()
    url = f"ws://127.0.0.1:{port}/api/engine/v2/systems/control?api-key=secret"
    errors = {kind: _raised(Client(kind), url, api_key=API_KEY) for kind in KINDS}
    error = _same_everywhere(errors)
    assert isinstance(error, ConnectionRefusedError)
    assert str(error) == (
        f"[Errno 111] could not connect to ws://127.0.0.1:{port}/api/engine/v2/systems/control:"
        " connection refused"
    )


def test_an_unknown_host_reads_the_same() -> None:
    # Names are not looked up here (tests stay off DNS): every runtime hands its
    # resolver's gaierror to the one wording function, so that is what is checked.
    from protocore.driver.wording import connect_failure

    error = connect_failure(socket.gaierror(-2, "Name or service not known"), "ws://nope/x")
    assert isinstance(error, socket.gaierror)
    assert str(error) == (
        "[Errno -2] could not connect to ws://nope/x: unknown host (Name or service not known)"
    )


def test_a_refused_key_reads_the_same() -> None:
    with running_server("trio", "placeos", make_engine(), **placeos_options()) as server:
        url = server.url
        errors = {kind: _raised(Client(kind), url, api_key="wrong") for kind in KINDS}
    error = _same_everywhere(errors)
    assert isinstance(error, HandshakeFailed)
    assert error.status_code == 401
    assert str(error) == f"{url} refused the API key (HTTP 401)"


def test_a_tls_failure_reads_the_same(ca: trustme.CA) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    options = placeos_options(ssl_context=context)
    with running_server("trio", "placeos", make_engine(), **options) as server:
        url = server.url
        errors = {kind: _raised(Client(kind), url, api_key=API_KEY) for kind in KINDS}
    error = _same_everywhere(errors)
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert error.verify_code != 0
    assert str(error).endswith(f"TLS with {url} failed: unable to get local issuer certificate")


def test_a_connect_timeout_reads_the_same() -> None:
    # A TLS handshake nobody answers: the socket never opens.
    with silent_server() as port:
        url = f"wss://127.0.0.1:{port}/control"
        errors = {
            kind: _raised(Client(kind), url, api_key=API_KEY, connect_timeout=0.3) for kind in KINDS
        }
    error = _same_everywhere(errors)
    assert isinstance(error, TimeoutError)
    assert str(error) == (f"connecting to {url} timed out after 0.3 s (opening the connection)")


def test_a_handshake_timeout_reads_the_same() -> None:
    # The socket opens, the upgrade is never answered.
    with silent_server() as port:
        url = f"ws://127.0.0.1:{port}/control"
        errors = {
            kind: _raised(Client(kind), url, api_key=API_KEY, connect_timeout=0.3) for kind in KINDS
        }
    error = _same_everywhere(errors)
    assert isinstance(error, TimeoutError)
    assert str(error) == (
        f"connecting to {url} timed out after 0.3 s (waiting for the WebSocket handshake)"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_misuse_reads_the_same(kind: str) -> None:
    messages: list[str] = []
    client = Client(kind)
    with running_server("trio", "placeos", make_engine(), **placeos_options()) as server:

        async def scenario(c: Client) -> None:
            async with c.connect_placeos(server.url, api_key=API_KEY) as placeos:
                values = placeos.raw.bind("sys-room1", "Display", "power")
                with pytest.raises(RuntimeError) as outside:
                    await c.next_of(values)  # iterated before its block was entered
                messages.append(str(outside.value))
                async with c.enter(values):
                    with pytest.raises(RuntimeError) as twice:
                        async with c.enter(values):
                            pytest.fail("entered twice")
                    messages.append(str(twice.value))
            with pytest.raises(ConnectionLost) as closed:
                await placeos.exec("sys-room1", "Display", "add", 1, 2)
            messages.append(str(closed.value))

        client.run(scenario)
    assert messages == [
        "a subscription is iterated inside its block: (async) with client.bind(...) as values",
        "a subscription can be entered only once",
        "the client was closed",
    ]


def test_a_proxy_refusal_reads_the_same() -> None:
    from proxies import scripted_proxy

    url = "ws://example.test:80/control"
    for answer, status in [
        (b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n", 407),
        (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", 502),
        (b"HTTP/1.1 20", None),
    ]:
        with scripted_proxy(answer) as port:
            proxy = f"http://user:pw-secret@127.0.0.1:{port}"
            errors = {
                kind: _raised(Client(kind), url, api_key=API_KEY, proxy=proxy) for kind in KINDS
            }
        error = _same_everywhere(errors)
        assert isinstance(error, ProxyError)
        assert error.status_code == status
        assert str(error).startswith(f"proxy http://127.0.0.1:{port} ")
        assert "pw-secret" not in f"{error} {error!r}"
