"""One async face over the three transports, so each command is written once.

The transports share one public API (`connect_placeos`, `connect_mews`, `serve_placeos`,
`serve_mews`, with the same parameters), so this module only evens out what sync
versus async really is: `transports.trio` and `transports.asyncio` are used as they
are, and differ only in how to run, sleep and time out. `transports.sync` blocks: its
context managers and iterators are wrapped in coroutines that never suspend, and
`Runtime.run` drives such a coroutine with a single ``send`` (no event loop, so a
Ctrl-C raises `KeyboardInterrupt` straight out of the blocking call).
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
from typing import Any, Final, Protocol, TypeVar

from protocore.mews import Envelope
from protocore.placeos import DebugMessage

__all__ = [
    "TRANSPORTS",
    "DEFAULT_TRANSPORT",
    "Runtime",
    "MewsServer",
    "PlaceOSClient",
    "PlaceOSServer",
    "TransportMissing",
    "runtime",
]

TRANSPORTS: Final = ("asyncio", "trio", "sync")
DEFAULT_TRANSPORT: Final = "asyncio"
"""asyncio: in the standard library, so the first command works after a plain install
(trio is an extra), and the fastest of the three in the benchmarks."""

T = TypeVar("T")


class TransportMissing(Exception):
    """The chosen transport cannot be loaded (trio is an optional dependency)."""


class PlaceOSClient(Protocol):
    """What the commands use of a `PlaceOSConnection`, seen as async."""

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

    def drop_connections(self) -> int: ...


class PlaceOSServer(_Server, Protocol):
    """What the commands use of a `PlaceOSServerHandle`."""

    def set_status(self, sys: str, mod: str, name: str, value: Any, *, index: int = 1) -> int: ...


class MewsServer(_Server, Protocol):
    """What the commands use of a `MewsServerHandle`."""

    def publish(self, events: Envelope) -> int: ...


# -- the blocking transport seen through coroutines ------------------------------------------


class _Entered(AbstractAsyncContextManager[T]):
    """A blocking context manager as an async one; ``wrap`` makes what it gives async."""

    def __init__(self, cm: AbstractContextManager[Any], wrap: Callable[[Any], T]) -> None:
        self._cm = cm
        self._wrap = wrap

    async def __aenter__(self) -> T:
        return self._wrap(self._cm.__enter__())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
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
        return _Entered(self._client.bind(sys, mod, name, index=index), _Items)

    def debug(
        self, sys: str, module_id: str, *, index: int = 1
    ) -> AbstractAsyncContextManager[AsyncIterator[DebugMessage]]:
        return _Entered(self._client.debug(sys, module_id, index=index), _Items)


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


# -- the runtime -----------------------------------------------------------------------------


class Runtime:
    """One transport, for the commands: its four entry points, sleeping and running."""

    def __init__(self, name: str, module: ModuleType, trio: ModuleType | None) -> None:
        self.name = name
        self._module = module
        self._trio: Any = trio

    @property
    def blocking(self) -> bool:
        return self.name == "sync"

    def _open(self, cm: Any, wrap: Callable[[Any], Any] = _same) -> Any:
        """The transport's context manager ``cm``, as an async one."""
        return _Entered(cm, wrap) if self.blocking else cm

    def connect_placeos(
        self, url: str, **options: Any
    ) -> AbstractAsyncContextManager[PlaceOSClient]:
        cm = self._module.connect_placeos(url, **options)
        opened: AbstractAsyncContextManager[PlaceOSClient] = self._open(cm, _BlockingPlaceOS)
        return opened

    def connect_mews(
        self, url: str, **options: Any
    ) -> AbstractAsyncContextManager[AsyncIterator[Any]]:
        opened: AbstractAsyncContextManager[AsyncIterator[Any]] = self._open(
            self._module.connect_mews(url, **options), _Items
        )
        return opened

    def serve_placeos(
        self, engine: Any, host: str, port: int, **options: Any
    ) -> AbstractAsyncContextManager[PlaceOSServer]:
        opened: AbstractAsyncContextManager[PlaceOSServer] = self._open(
            self._module.serve_placeos(engine, host, port, **options)
        )
        return opened

    def serve_mews(
        self, host: str, port: int, **options: Any
    ) -> AbstractAsyncContextManager[MewsServer]:
        opened: AbstractAsyncContextManager[MewsServer] = self._open(
            self._module.serve_mews(host, port, **options)
        )
        return opened

    # -- running and waiting --------------------------------------------------------------

    def run(self, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``main()`` to completion on this transport's loop (none for sync)."""
        if self._trio is not None:
            result: T = self._trio.run(main)
            return result
        if self.blocking:
            return _drive(main())
        return asyncio.run(main())

    async def sleep(self, seconds: float) -> None:
        if self._trio is not None:
            await self._trio.sleep(seconds)
        elif self.blocking:
            time.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    async def sleep_forever(self) -> None:
        """Until cancelled or interrupted (Ctrl-C)."""
        while True:
            await self.sleep(3600)

    async def wait_for(self, what: Callable[[], bool], *, timeout: float) -> bool:
        """Poll ``what`` (a server's state, which no event announces) until true."""
        deadline = time.monotonic() + timeout
        while not what():
            if time.monotonic() >= deadline:
                return False
            await self.sleep(0.02)
        return True

    def deadline(self, seconds: float, what: str) -> AbstractAsyncContextManager[None]:
        """Raise `TimeoutError` naming ``what`` if the block takes longer than ``seconds``.

        Blocking calls have no loop to cancel them: for sync, a SIGALRM timer raises in
        the main thread (its waits come back every few milliseconds to let it).
        """
        return _deadline(self, seconds, f"{what} took more than {seconds:g} s")


@contextlib.asynccontextmanager
async def _deadline(rt: Runtime, seconds: float, message: str) -> AsyncIterator[None]:
    if rt._trio is not None:
        try:
            with rt._trio.fail_after(seconds):
                yield
        except rt._trio.TooSlowError:
            raise TimeoutError(message) from None
    elif rt.blocking:
        with _alarm(seconds, message):
            yield
    else:
        try:
            async with asyncio.timeout(seconds):
                yield
        except TimeoutError:
            raise TimeoutError(message) from None


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


def runtime(name: str) -> Runtime:
    """The runtime for ``transports.<name>``; `TransportMissing` when it cannot load."""
    if name not in TRANSPORTS:
        raise TransportMissing(f"unknown transport {name!r} (choose {', '.join(TRANSPORTS)})")
    try:
        module = importlib.import_module(f"transports.{name}")
        loop = importlib.import_module("trio") if name == "trio" else None
    except ModuleNotFoundError as exc:  # trio is an optional dependency
        raise TransportMissing(
            f"the {name} transport needs {exc.name!r}, which is not installed "
            f"(pip install it, or use --transport {DEFAULT_TRANSPORT})"
        ) from None
    return Runtime(name, module, loop)
