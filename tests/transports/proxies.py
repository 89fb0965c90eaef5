"""Proxies for the tests, on 127.0.0.1: a real one (pproxy) and a refusing one.

`running_pproxy` runs pproxy's HTTP-and-SOCKS5 server in a thread with its own
asyncio loop and keeps its log lines, so a test can see that a connection really
went through it. `scripted_proxy` answers every connection with fixed bytes and
closes: a 403, or half a response (a proxy that dies mid-handshake).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

USER = "proxy-user"
PASSWORD = "pw-Ee5-not-a-real-proxy-password"


class RunningProxy:
    """A pproxy server: its port and what it logged (one line per tunnel)."""

    def __init__(self, port: int, auth: bool) -> None:
        self.port = port
        self.auth = auth
        self.log: list[str] = []

    def url(self, scheme: str = "http", *, password: str = PASSWORD) -> str:
        userinfo = f"{USER}:{password}@" if self.auth else ""
        return f"{scheme}://{userinfo}127.0.0.1:{self.port}"

    def tunnels_to(self, port: int) -> int:
        return sum(1 for line in self.log if line.endswith(f"-> 127.0.0.1:{port}"))


@contextmanager
def running_pproxy(*, auth: bool = False) -> Iterator[RunningProxy]:
    pproxy = pytest.importorskip("pproxy")
    uri = "http+socks5://127.0.0.1:0/" + (f"#{USER}:{PASSWORD}" if auth else "")
    started: list[tuple[RunningProxy, asyncio.AbstractEventLoop, asyncio.Event]] = []
    ready = threading.Event()

    async def main() -> None:
        # pproxy starts each tunnel's two relay tasks with a bare ensure_future and
        # keeps no reference: the loop holds tasks weakly, so the collector may take
        # one mid-tunnel ("Task was destroyed but it is pending!") and the tunnel goes
        # quiet (seen on Python 3.13). Keep every task alive until it is done.
        running: set[asyncio.Future[Any]] = set()

        def keep(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            task = asyncio.Task(coro, loop=loop, **kwargs)
            running.add(task)
            task.add_done_callback(running.discard)
            return task

        asyncio.get_running_loop().set_task_factory(keep)
        log: list[str] = []
        # authtime -1: check the password on every connection (pproxy otherwise trusts
        # an address that once authenticated, process-wide).
        args = {"rserver": [], "verbose": log.append, "authtime": -1}
        server = await pproxy.Server(uri).start_server(args)
        proxy = RunningProxy(server.sockets[0].getsockname()[1], auth)
        proxy.log = log
        stop = asyncio.Event()
        started.append((proxy, asyncio.get_running_loop(), stop))
        ready.set()
        try:
            await stop.wait()
        finally:
            server.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="pproxy")
    thread.start()
    try:
        assert ready.wait(10), "pproxy did not start"
        proxy, loop, stop = started[0]
        try:
            yield proxy
        finally:
            loop.call_soon_threadsafe(stop.set)
    finally:
        thread.join(10)


@contextmanager
def scripted_proxy(answer: bytes) -> Iterator[int]:
    """Reads a request, sends ``answer``, closes; for every connection. Yields the port."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.1)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    peer, _ = listener.accept()
                except TimeoutError:
                    continue
                with peer:
                    peer.settimeout(5)
                    request = b""
                    while b"\r\n\r\n" not in request:
                        chunk = peer.recv(4096)
                        if not chunk:
                            break
                        request += chunk
                    peer.sendall(answer)

        thread = threading.Thread(target=serve, name="scripted-proxy")
        thread.start()
        try:
            yield int(listener.getsockname()[1])
        finally:
            stop.set()
            thread.join(10)
