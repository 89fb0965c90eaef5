"""A TCP proxy on 127.0.0.1 that breaks WebSocket connections on request.

It runs its own asyncio loop in a thread, so it sits in front of a server of any
transport. The server-to-client direction is followed frame by frame (after the
HTTP head), so a fault can land exactly where it must: a cut inside a frame, a
frame injected between two others. Faults (`FAULTS`), applied to every open
connection by `FaultProxy.inject` (safe from any thread):

- ``reset``: both sockets closed at once, the client's with a TCP RST.
- ``stall``: nothing moves either way for ``stall_seconds`` (a dead-looking peer).
- ``half_close``: the client gets a FIN; its own bytes are still read, then dropped.
- ``cut``: the client gets part of the next frame, then both sockets close.
- ``refuse``: every connection is reset and new ones are reset on accept for
  ``refuse_seconds``.
- ``reserved_opcode``: a frame with opcode 3 reaches the client between two frames.
- ``close_1012``: the client gets the server's close frame 1012 (service restart)
  between two frames; its answer is swallowed, then both sockets close.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

__all__ = ["FAULTS", "FaultProxy"]

FAULTS = (
    "reset",
    "stall",
    "half_close",
    "cut",
    "refuse",
    "reserved_opcode",
    "close_1012",
)

_RESERVED_OPCODE = bytes([0x83, 0x00])
_CLOSE_1012 = bytes([0x88, 0x02]) + (1012).to_bytes(2, "big")


class _Frames:
    """Where frames start in the server's byte stream (after the HTTP head)."""

    def __init__(self) -> None:
        self._head = b""
        self._in_head = True
        self._header = b""
        self._left = 0  # payload bytes of the current frame still to come

    @property
    def at_boundary(self) -> bool:
        return not self._in_head and not self._left and not self._header

    def starts(self, data: bytes) -> list[int]:
        """Offsets in ``data`` where a frame starts; follows the stream as it goes."""
        out = []
        pos = 0
        if self._in_head:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                self._head = self._head[-3:]
                return []
            pos = len(data) - (len(self._head) - end - 4)
            self._in_head = False
        while pos < len(data):
            if self._left:
                take = min(self._left, len(data) - pos)
                self._left -= take
                pos += take
                continue
            if not self._header:
                out.append(pos)
            need = self._header_size(self._header + data[pos : pos + 14])
            have = len(self._header)
            if need is None or have + len(data) - pos < need:
                self._header += data[pos:]
                return out
            header = self._header + data[pos : pos + need - have]
            pos += need - have
            self._header = b""
            self._left = self._payload_size(header)
        return out

    @staticmethod
    def _header_size(head: bytes) -> int | None:
        if len(head) < 2:
            return None
        size = head[1] & 0x7F
        extra = 2 if size == 126 else 8 if size == 127 else 0
        return 2 + extra + (4 if head[1] & 0x80 else 0)

    @staticmethod
    def _payload_size(header: bytes) -> int:
        size = header[1] & 0x7F
        if size == 126:
            return int(struct.unpack("!H", header[2:4])[0])
        if size == 127:
            return int(struct.unpack("!Q", header[2:10])[0])
        return size


class _Pair:
    """One client connection and its upstream one."""

    def __init__(
        self,
        proxy: FaultProxy,
        down: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = down
        self.server_reader, self.server_writer = up
        self.frames = _Frames()
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.pending: str | None = None  # a fault waiting for the next frame boundary
        self.swallow_client = False
        self.client_eof = False  # the client got a FIN: nothing more goes to it
        self.closed = False

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._down())
                group.create_task(self._up())
        except* (OSError, RuntimeError, asyncio.IncompleteReadError):
            pass  # a socket the other side or a fault closed
        finally:
            self.close()

    async def _down(self) -> None:
        while not self.closed:
            data = await self.server_reader.read(65536)
            await self.flowing.wait()
            if not data:
                self.close()
                return
            if self.closed:
                return
            self._forward_down(data)
            await self.client_writer.drain()

    def _forward_down(self, data: bytes) -> None:
        starts = self.frames.starts(data)
        if self.client_eof:
            return
        fault = self.pending
        if fault is None:
            self.client_writer.write(data)
            return
        if fault == "cut":
            # One byte into the first frame that starts here: a frame cut short.
            if starts:
                self.client_writer.write(data[: starts[0] + 1])
                self.pending = None
                self.close(reset=False)
            else:
                self.client_writer.write(data)
            return
        if not starts:
            self.client_writer.write(data)
            return
        self.client_writer.write(data[: starts[0]])
        self.pending = None
        self._inject(fault)
        if not self.closed and not self.swallow_client:
            self.client_writer.write(data[starts[0] :])

    async def _up(self) -> None:
        while not self.closed:
            data = await self.client_reader.read(65536)
            await self.flowing.wait()
            if not data:
                self.close()
                return
            if self.swallow_client or self.closed:
                continue
            self.server_writer.write(data)
            await self.server_writer.drain()

    def apply(self, fault: str) -> None:
        if self.closed:
            return
        if fault in ("reset", "refuse"):
            self.close(reset=True)
        elif fault == "stall":
            self.flowing.clear()
            asyncio.get_running_loop().call_later(self.proxy.stall_seconds, self.flowing.set)
        elif fault == "half_close":
            self.swallow_client = self.client_eof = True
            with contextlib.suppress(OSError):
                self.client_writer.write_eof()
        elif fault == "cut" or not self.frames.at_boundary:
            self.pending = fault
        else:
            self._inject(fault)

    def _inject(self, fault: str) -> None:
        if fault == "reserved_opcode":
            self.client_writer.write(_RESERVED_OPCODE)
        elif fault == "close_1012":
            self.client_writer.write(_CLOSE_1012)
            self.swallow_client = True
            asyncio.get_running_loop().call_later(1.0, self.close)

    def close(self, *, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.flowing.set()
        if reset:
            sock = self.client_writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for writer in (self.client_writer, self.server_writer):
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()
        self.proxy._pairs.discard(self)


class FaultProxy:
    """Listens on 127.0.0.1 (an ephemeral port), forwards to ``upstream``."""

    def __init__(
        self,
        upstream_port: int,
        *,
        stall_seconds: float = 3.0,
        refuse_seconds: float = 2.0,
    ) -> None:
        self.upstream_port = upstream_port
        self.stall_seconds = stall_seconds
        self.refuse_seconds = refuse_seconds
        self.accepted = 0
        self.linked = 0  # accepted connections that reached the upstream server
        self.port = 0
        self._pairs: set[_Pair] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.errors: list[str] = []
        self._refusing = False
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="soak-fault-proxy", daemon=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[FaultProxy]:
        self._thread.start()
        self._ready.wait(10)
        try:
            yield self
        finally:
            stopped = self._stopped
            assert stopped is not None
            self._loop.call_soon_threadsafe(stopped.set)
            self._thread.join(10)

    def inject(self, fault: str) -> None:
        """Apply ``fault`` (one of `FAULTS`) to every open connection."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        self._loop.call_soon_threadsafe(self._apply, fault)

    def _apply(self, fault: str) -> None:
        if fault == "refuse":
            self._refusing = True
            self._loop.call_later(self.refuse_seconds, setattr, self, "_refusing", False)
        for pair in list(self._pairs):
            pair.apply(fault)

    def _on_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        # The proxy's own surprises are counted (the soak reports them), not printed.
        self.errors.append(str(context.get("exception") or context.get("message")))

    def _main(self) -> None:
        self._loop.set_exception_handler(self._on_error)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopped.wait()
            for pair in list(self._pairs):
                pair.close(reset=True)
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._link(reader, writer)
        except asyncio.CancelledError:
            pass  # the proxy is shutting down
        finally:
            self._handlers.discard(task)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._refusing:
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            return
        try:
            up = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self.linked += 1
        pair = _Pair(self, (reader, writer), up)
        self._pairs.add(pair)
        await pair.run()
