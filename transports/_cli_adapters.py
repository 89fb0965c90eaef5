"""One async face over the three transports, so each CLI command is written once.

`transports.trio` and `transports.asyncio` already share their shape (``async with
connect_placeos(...) as client``, ``await client.exec(...)``, ``async with
client.bind(...) as values: async for value in values``), so for them the module is
used as it is and only running and sleeping differ. `transports.sync` blocks: its
calls are wrapped in coroutines that never suspend, and `Adapter.run` drives such a
coroutine with a single ``send`` — no event loop, so a Ctrl-C raises
`KeyboardInterrupt` straight out of the blocking call, as the adapter promises.

A transport that lacks Mews (``connect_mews``/``serve_mews``) says so through
`Adapter.has_mews`; the commands refuse clearly instead of substituting another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import ModuleType, TracebackType
from typing import Any, Final, Literal, Protocol, TypeVar

from protocore.backoff import Backoff
from protocore.mews import Envelope
from protocore.placeos import DebugMessage, MockEngine

__all__ = [
    "TRANSPORTS",
    "Adapter",
    "MewsServer",
    "PlaceOSClient",
    "PlaceOSServer",
    "TransportMissing",
    "adapter",
]

TRANSPORTS: Final = ("trio", "asyncio", "sync")
Transport = Literal["trio", "asyncio", "sync"]

T = TypeVar("T")


class TransportMissing(Exception):
    """The chosen transport cannot do what was asked (not installed, or no Mews yet)."""


class PlaceOSClient(Protocol):
    """What the commands use of a PlaceOS client, on every transport."""

    @property
    def connected(self) -> bool: ...

    async def exec(
        self, sys: str, mod: str, method: str, *args: Any, index: int = 1, timeout: float | None
    ) -> Any: ...

    def bind(
        self, sys: str, mod: str, name: str, *, index: int = 1
    ) -> AbstractAsyncContextManager[AsyncIterator[Any]]: ...

    def debug(
        self, sys: str, module_id: str, *, index: int = 1
    ) -> AbstractAsyncContextManager[AsyncIterator[DebugMessage]]: ...


class _Server(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def connections(self) -> int: ...

    def drop_connections(self) -> object: ...


class PlaceOSServer(_Server, Protocol):
    """What the commands use of a PlaceOS server handle."""

    def set_status(self, sys: str, mod: str, name: str, value: Any, *, index: int = 1) -> int: ...


class MewsServer(_Server, Protocol):
    """What the commands use of a Mews server handle."""

    def publish(self, events: Envelope) -> object: ...


# -- the blocking adapter seen through coroutines ------------------------------------------


class _Entered(AbstractAsyncContextManager[T]):
    """A blocking context manager (made by ``open``) as an async one."""

    def __init__(self, open_: Callable[[], AbstractContextManager[Any]], wrap: Callable[[Any], T]):
        self._open = open_
        self._wrap = wrap
        self._cm: AbstractContextManager[Any] | None = None

    async def __aenter__(self) -> T:
        cm = self._open()
        value = cm.__enter__()
        self._cm = cm
        return self._wrap(value)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._cm is not None
        return self._cm.__exit__(exc_type, exc, tb)


class _Items(AsyncIterator[T]):
    """A blocking iterator as an async one (each step simply blocks)."""

    def __init__(self, items: Iterable[T]) -> None:
        self._items: Iterator[T] = iter(items)

    async def __anext__(self) -> T:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None


class _BlockingPlaceOS:
    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def connected(self) -> bool:
        return bool(self._client.connected)

    async def exec(
        self, sys: str, mod: str, method: str, *args: Any, index: int = 1, timeout: float | None
    ) -> Any:
        return self._client.exec(sys, mod, method, *args, index=index, timeout=timeout)

    def bind(
        self, sys: str, mod: str, name: str, *, index: int = 1
    ) -> AbstractAsyncContextManager[AsyncIterator[Any]]:
        return _Entered(lambda: self._client.bind(sys, mod, name, index=index), _Items)

    def debug(
        self, sys: str, module_id: str, *, index: int = 1
    ) -> AbstractAsyncContextManager[AsyncIterator[DebugMessage]]:
        return _Entered(lambda: self._client.debug(sys, module_id, index=index), _Items)


def _same(value: T) -> T:
    return value


def _drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (every await inside it is a blocking call)."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise RuntimeError("a blocking-transport coroutine tried to suspend")


# -- the adapter -------------------------------------------------------------------------


class Adapter:
    """One transport, for the CLI: connect, serve, sleep and run, all as async calls."""

    def __init__(self, name: Transport, module: ModuleType, trio: ModuleType | None) -> None:
        self.name: Transport = name
        self._module = module
        self._trio: Any = trio

    @property
    def blocking(self) -> bool:
        return self.name == "sync"

    @property
    def has_mews(self) -> bool:
        return hasattr(self._module, "connect_mews") and hasattr(self._module, "serve_mews")

    def require_mews(self) -> None:
        if not self.has_mews:
            raise TransportMissing(
                f"the {self.name} transport has no Mews support yet (use --transport trio)"
            )

    # -- running --------------------------------------------------------------------------

    def run(self, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``main()`` to completion on this transport's loop (none for sync)."""
        if self.name == "trio":
            result: T = self._trio.run(main)
            return result
        if self.name == "asyncio":
            return asyncio.run(main())
        return _drive(main())

    async def sleep(self, seconds: float) -> None:
        if self.name == "trio":
            await self._trio.sleep(seconds)
        elif self.name == "asyncio":
            await asyncio.sleep(seconds)
        else:
            time.sleep(seconds)

    async def sleep_forever(self) -> None:
        """Until cancelled or interrupted (Ctrl-C)."""
        while True:
            await self.sleep(3600)

    def deadline(self, seconds: float, what: str) -> AbstractAsyncContextManager[None]:
        """Raise `TimeoutError` naming ``what`` if the block takes longer than ``seconds``.

        Blocking calls have no loop to cancel them: for sync, a SIGALRM timer raises in
        the main thread (its waits come back every few milliseconds to let it).
        """
        return _deadline(self, seconds, what)

    async def wait_for(self, what: Callable[[], bool], *, timeout: float) -> bool:
        """Poll ``what`` (a server's state, which no event announces) until true."""
        deadline = time.monotonic() + timeout
        while not what():
            if time.monotonic() >= deadline:
                return False
            await self.sleep(0.02)
        return True

    # -- clients and servers --------------------------------------------------------------

    def connect_placeos(
        self, url: str, *, api_key: str, reconnect: bool | Backoff = True
    ) -> AbstractAsyncContextManager[PlaceOSClient]:
        if self.blocking:
            return _Entered(
                lambda: self._module.connect_placeos(url, api_key=api_key, reconnect=reconnect),
                _BlockingPlaceOS,
            )
        cm: AbstractAsyncContextManager[PlaceOSClient] = self._module.connect_placeos(
            url, api_key=api_key, reconnect=reconnect
        )
        return cm

    def connect_mews(
        self,
        url: str,
        *,
        client_token: str,
        access_token: str,
        auth: Literal["cookie", "query"] = "cookie",
        reconnect: bool | Backoff = True,
    ) -> AbstractAsyncContextManager[AsyncIterator[Any]]:
        self.require_mews()
        options = {
            "client_token": client_token,
            "access_token": access_token,
            "auth": auth,
            "reconnect": reconnect,
        }
        if self.blocking:
            return _Entered(lambda: self._module.connect_mews(url, **options), _Items)
        cm: AbstractAsyncContextManager[AsyncIterator[Any]] = self._module.connect_mews(
            url, **options
        )
        return cm

    def serve_placeos(
        self,
        engine: MockEngine,
        host: str,
        port: int,
        *,
        api_keys: tuple[str, ...],
    ) -> AbstractAsyncContextManager[PlaceOSServer]:
        options = {"api_keys": api_keys, "allow_anonymous": not api_keys}
        if self.blocking:
            return _Entered(
                lambda: self._module.serve_placeos(engine, host, port, **options), _same
            )
        cm: AbstractAsyncContextManager[PlaceOSServer] = self._module.serve_placeos(
            engine, host, port, **options
        )
        return cm

    def serve_mews(
        self, host: str, port: int, *, client_token: str, access_token: str
    ) -> AbstractAsyncContextManager[MewsServer]:
        self.require_mews()
        options = {"client_token": client_token, "access_token": access_token}
        if self.blocking:
            return _Entered(lambda: self._module.serve_mews(host, port, **options), _same)
        cm: AbstractAsyncContextManager[MewsServer] = self._module.serve_mews(host, port, **options)
        return cm


@contextlib.asynccontextmanager
async def _deadline(ad: Adapter, seconds: float, what: str) -> AsyncIterator[None]:
    message = f"{what} took more than {seconds:g} s"
    if ad.name == "trio":
        trio = ad._trio
        try:
            with trio.fail_after(seconds):
                yield
        except trio.TooSlowError:
            raise TimeoutError(message) from None
    elif ad.name == "asyncio":
        try:
            async with asyncio.timeout(seconds):
                yield
        except TimeoutError:
            raise TimeoutError(message) from None
    else:
        with _alarm(seconds, message):
            yield


@contextlib.contextmanager
def _alarm(seconds: float, message: str) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield  # no timer off the main thread (or on Windows): unbounded, as plain calls are
        return

    def ring(signum: int, frame: object) -> None:
        raise TimeoutError(message)

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_NAMES: Final[dict[str, Transport]] = {"trio": "trio", "asyncio": "asyncio", "sync": "sync"}


def adapter(name: str) -> Adapter:
    """The adapter for ``transports.<name>``; `TransportMissing` when it cannot load."""
    if name not in _NAMES:
        raise TransportMissing(f"unknown transport {name!r} (choose {', '.join(TRANSPORTS)})")
    try:
        module = importlib.import_module(f"transports.{name}")
    except ModuleNotFoundError as exc:  # trio is an optional dependency
        raise TransportMissing(
            f"the {name} transport needs {exc.name!r}: pip install 'protocore[{name}]'"
        ) from None
    loop = importlib.import_module("trio") if name == "trio" else None
    return Adapter(_NAMES[name], module, loop)
