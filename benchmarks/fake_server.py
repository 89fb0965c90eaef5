"""The one fake Mews server every client is measured against, run as a subprocess.

``python -m benchmarks.fake_server stream`` answers any WebSocket handshake (wsproto's
server side; tokens are not checked) and then writes the same pre-framed 4-event
envelope as fast as the client reads it, until the client leaves. ``idle`` sends
nothing and only answers pings (the scale case). Either prints its port on the first
line of stdout. It runs in its own process so that its work never shares the
measured client's interpreter, and every client kind meets exactly the same server.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request

from .inputs import MEWS
from .pipeline import server_frames

CHUNK_FRAMES = 128


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _handshake(reader: asyncio.StreamReader, ws: WSConnection) -> bytes | None:
    while True:
        data = await reader.read(65536)
        if not data:
            return None
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, Request):
                return ws.send(AcceptConnection())


async def _drain_input(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws: WSConnection
) -> None:
    """Read what the client sends: answer pings and its close; stop at EOF."""
    while True:
        data = await reader.read(65536)
        if not data:
            return
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, Ping):
                writer.write(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                with contextlib.suppress(Exception):
                    writer.write(ws.send(event.response()))
                return


async def _serve(mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    ws = WSConnection(ConnectionType.SERVER)
    try:
        answer = await _handshake(reader, ws)
        if answer is None:
            return
        writer.write(answer)
        reading = asyncio.ensure_future(_drain_input(reader, writer, ws))
        if mode == "stream":
            chunk = server_frames(MEWS[1][1], CHUNK_FRAMES)
            while not reading.done():
                writer.write(chunk)
                await writer.drain()
        await reading
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _main(mode: str) -> None:
    _raise_file_limit()
    server = await asyncio.start_server(
        lambda r, w: _serve(mode, r, w), "127.0.0.1", 0, backlog=4096
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.read()  # the parent closes our stdin (or dies): stop
    server.close()


@contextlib.contextmanager
def spawned(mode: str) -> Iterator[int]:
    """Run the server in a subprocess for the ``with`` block; yields its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fake_server", mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake server did not start")
        yield int(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "stream"
    if mode not in ("stream", "idle"):
        raise SystemExit("usage: python -m benchmarks.fake_server stream|idle")
    asyncio.run(_main(mode))
