"""The one fake Mews server every client is measured against, run as a subprocess.

``python -m benchmarks.fake_server stream`` answers any WebSocket handshake (wsproto's
server side; tokens are not checked) and then writes the same pre-framed 4-event
envelope as fast as the client reads it, until the client leaves. ``paced RATE``
sends the same envelope at a steady RATE events per second, every event's ``Id``
replaced by the ``time.monotonic()`` of its sending (the latency case: the clock is
the machine's, shared by both processes). ``idle`` sends nothing and only answers
pings (the scale case). Either prints its port on the first
line of stdout. It runs in its own process so that its work never shares the
measured client's interpreter, and every client kind meets exactly the same server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request, TextMessage

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
    """Read what the client sends: answer pings and its close; stop at EOF or a reset
    (a client that leaves mid-stream resets the connection; that is not an error)."""
    while True:
        try:
            data = await reader.read(65536)
        except ConnectionError:
            return
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


async def _paced(
    rate: float, writer: asyncio.StreamWriter, ws: WSConnection, reading: asyncio.Future[None]
) -> None:
    """Send stamped envelopes at ``rate`` events per second until the client leaves.

    Sends are scheduled on a fixed grid, so one late wake-up (the event loop sleeps in
    whole milliseconds) is followed by an immediate send and the rate holds."""
    document = json.loads(MEWS[1][1])
    events = document["Events"]
    interval = len(events) / rate
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        due += interval
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if reading.done() or ws.state is not ConnectionState.OPEN:
            return
        stamp = f"{time.monotonic():.9f}"
        for event in events:
            event["Id"] = stamp
        writer.write(ws.send(TextMessage(json.dumps(document, separators=(",", ":")))))
        await writer.drain()


async def _serve(mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    ws = WSConnection(ConnectionType.SERVER)
    reading: asyncio.Future[None] | None = None
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
        elif mode.startswith("paced"):
            await _paced(float(mode.split()[1]), writer, ws, reading)
        await reading
    except (ConnectionError, OSError):
        pass
    finally:
        if reading is not None and reading.done() and not reading.cancelled():
            reading.exception()  # a reset while the stream was being written: expected
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
        [sys.executable, "-m", "benchmarks.fake_server", *mode.split()],
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
    mode = " ".join(sys.argv[1:]) or "stream"
    if mode not in ("stream", "idle") and not (mode.startswith("paced ") and len(sys.argv) == 3):
        raise SystemExit("usage: python -m benchmarks.fake_server stream|idle|paced RATE")
    asyncio.run(_main(mode))
