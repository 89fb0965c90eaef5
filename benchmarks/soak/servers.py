"""The soak's test infrastructure in a process of its own.

The fake servers (`transports.sync.serve_placeos` with a `MockEngine`,
`transports.sync.serve_mews`) start a thread per connection, and the two fault
proxies run an asyncio loop each in a thread. In the clients' process that thread
churn, and the allocator state it leaves, would count in the memory the soak judges.
So they run in a child process (multiprocessing's "spawn": a fresh interpreter, none
of the parent's heap), driven over a pipe by `ServerProcess`: each round's calls
(status values, Mews events, faults, the proxies' counters, a memory sample) are
requests, and every wait for an answer is bounded.

The child ignores Ctrl-C (the parent stops it) and ends when the pipe closes or its
parent goes away, so it never outlives the soak.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from protocore.mews import CommandState, DeviceCommandEvent
from protocore.placeos import MockEngine

from .clients import ACCESS_TOKEN, API_KEY, BINDINGS, CLIENT_TOKEN, MOD, SYS, Urls
from .proxy import FaultProxy
from .sampling import Sample, take_sample

__all__ = ["ServerProcess", "ServerProcessError"]

START_TIMEOUT = 60.0
"""Seconds for the child to import, start its servers and proxies, and say so."""
ANSWER_TIMEOUT = 30.0
"""Seconds for any one answer (a sample collects and may trim: not instant)."""
STOP_TIMEOUT = 10.0


class ServerProcessError(RuntimeError):
    """The server process failed a request, ended, or did not answer in time."""


class ServerProcess:
    """The servers and proxies in a child process; a context manager.

    ``urls`` are the proxies' (what the clients connect to)."""

    def __init__(self, *, trim: bool = False) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_child, args=(child_conn, trim), name="soak-servers", daemon=True
        )
        self._child_conn = child_conn
        self.urls = Urls("", "")

    def __enter__(self) -> ServerProcess:
        self._process.start()
        self._child_conn.close()  # the child's end: ours closing lets recv see its exit
        try:
            placeos, mews = self._answer("start", START_TIMEOUT)
        except BaseException:
            self._stop()
            raise
        self.urls = Urls(placeos, mews)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    @property
    def process(self) -> multiprocessing.process.BaseProcess:
        """The child process (its ``pid``, whether it ``is_alive()``)."""
        return self._process

    def set_status(self, index: int, value: int) -> None:
        self.call("set_status", index, value)

    def publish(self, number: int) -> None:
        """Publish the Mews event ``evt-<number>``."""
        self.call("publish", number)

    def inject(self, fault: str, links: tuple[str, ...]) -> None:
        """Inject ``fault`` into the proxy of each of ``links`` ("placeos", "mews")."""
        self.call("inject", fault, links)

    def counters(self) -> dict[str, dict[str, Any]]:
        """Per link: connections the proxy ``accepted``, ``linked`` through, its ``errors``."""
        return dict(self.call("counters"))

    def sample(self, t: float) -> Sample:
        """The server process's own memory, fds and threads, now."""
        sample = self.call("sample", t)
        assert isinstance(sample, Sample)
        return sample

    def call(self, name: str, *args: Any, timeout: float = ANSWER_TIMEOUT) -> Any:
        try:
            self._conn.send((name, args))
        except OSError as error:
            raise ServerProcessError(f"the server process is gone ({error})") from None
        return self._answer(name, timeout)

    def _answer(self, name: str, timeout: float) -> Any:
        try:
            ready = self._conn.poll(timeout)
            status, value = self._conn.recv() if ready else (None, None)
        except (EOFError, OSError):
            self._process.join(1)
            raise ServerProcessError(
                f"the server process ended during {name!r} (exit code {self._process.exitcode})"
            ) from None
        if status is None:
            raise ServerProcessError(
                f"the server process did not answer {name!r} within {timeout:g} s"
            )
        if status != "ok":
            raise ServerProcessError(f"the server process failed {name!r}: {value}")
        return value

    def _stop(self) -> None:
        with contextlib.suppress(OSError, ServerProcessError):
            if self._process.is_alive():
                self.call("stop", timeout=STOP_TIMEOUT)
        self._process.join(STOP_TIMEOUT)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(STOP_TIMEOUT)
        self._conn.close()


class _Servers:
    """The child's side: the servers, the proxies, and the requests they answer."""

    def __init__(self, stack: contextlib.ExitStack, trim: bool) -> None:
        from transports import sync

        self.trim = trim
        engine = MockEngine()
        engine.add_system(SYS)
        engine.add_module(
            SYS,
            MOD,
            status={f"v{i}": 0 for i in range(BINDINGS)},
            methods={"add": lambda a, b: a + b},
        )
        options: dict[str, Any] = {
            "keepalive_interval": 1.0,
            "keepalive_timeout": 2.0,
            "close_timeout": 1.0,
        }
        self.placeos = stack.enter_context(
            sync.serve_placeos(engine, api_keys=[API_KEY], **options)
        )
        self.mews = stack.enter_context(
            sync.serve_mews(client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN, **options)
        )
        self.proxies = {
            "placeos": stack.enter_context(FaultProxy(self.placeos.port).running()),
            "mews": stack.enter_context(FaultProxy(self.mews.port).running()),
        }

    def start(self) -> tuple[str, str]:
        return _via(self.placeos.url, self.proxies["placeos"]), _via(
            self.mews.url, self.proxies["mews"]
        )

    def set_status(self, index: int, value: int) -> None:
        self.placeos.set_status(SYS, MOD, f"v{index}", value)

    def publish(self, number: int) -> None:
        self.mews.publish([DeviceCommandEvent(id=f"evt-{number}", state=CommandState.PENDING)])

    def inject(self, fault: str, links: tuple[str, ...]) -> None:
        for link in links:
            self.proxies[link].inject(fault)

    def counters(self) -> dict[str, dict[str, Any]]:
        return {
            link: {"accepted": p.accepted, "linked": p.linked, "errors": list(p.errors)}
            for link, p in self.proxies.items()
        }

    def sample(self, t: float) -> Sample:
        return take_sample(t, trim=self.trim)


_REQUESTS = ("set_status", "publish", "inject", "counters", "sample")


def _child(conn: Connection, trim: bool) -> None:
    """The child process: start everything, then answer requests until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    with contextlib.ExitStack() as stack:
        try:
            servers = _Servers(stack, trim)
            urls = servers.start()
        except Exception as error:
            _send(conn, "error", f"{type(error).__name__}: {error}")
            return
        _send(conn, "ok", urls)
        stopped = _answer_requests(conn, servers)
    if stopped:
        _send(conn, "ok", None)  # after the servers and proxies have closed


def _answer_requests(conn: Connection, servers: _Servers) -> bool:
    """Answer until "stop" (True) or until the parent is gone (False)."""
    parent = os.getppid()
    while True:
        try:
            if not conn.poll(1.0):
                if os.getppid() != parent:
                    return False  # orphaned: the parent died without closing the pipe
                continue
            name, args = conn.recv()
        except (EOFError, OSError):
            return False  # the parent closed the pipe
        if name == "stop":
            return True
        if name not in _REQUESTS:
            _send(conn, "error", f"unknown request {name!r}")
            continue
        try:
            result = getattr(servers, name)(*args)
        except Exception as error:
            _send(conn, "error", f"{type(error).__name__}: {error}")
        else:
            _send(conn, "ok", result)


def _send(conn: Connection, status: str, value: Any) -> None:
    with contextlib.suppress(OSError):
        conn.send((status, value))


def _via(url: str, proxy: FaultProxy) -> str:
    """``url`` with the proxy's port in place of the server's."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
