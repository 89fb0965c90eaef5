"""Case 4: events per second over a real socket, every client of `clients`.

One fake server (`fake_server`, in its own process) streams 4-event Mews envelopes;
each client connects, handles events until it has ``events``, and reports how many
per second arrived after the first one (the handshake is not timed), twice: over the
wall clock, and over this process's CPU time (all threads). On an idle machine the
client is the bottleneck and the two agree; on a shared one the wall clock also
measures the scheduler, so the ratios are taken from the CPU figures and the wall ones
are shown. Each run also counts the garbage collector's passes between the first and
the last event (all generations, and the full ones apart): decoded events are objects
it tracks, so a client that decodes far ahead of its handler pays for it there. The
clients run in alternating rounds (trio, asyncio, sync, the peers,
trio, ...) and the median per client is kept. A client that cannot run (a transport
without a Mews client, a peer not installed) is reported with the reason.
"""

from __future__ import annotations

import gc
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .clients import CLIENTS, Runner

__all__ = ["loopback", "measure_here"]


#: What `measure_here` reports per client (and `loopback` fills with the reason when
#: the process fails).
_FIGURES = ("wall", "cpu", "collections", "full_collections")


def _url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/ws/connector"


def _collections() -> tuple[int, int]:
    """The collector's passes so far: all generations, and the full ones."""
    stats = gc.get_stats()
    return sum(gen["collections"] for gen in stats), stats[-1]["collections"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


class _Counter:
    """The handler: counts events; the clocks run from the first to the last one (the
    handshake and the close are not measured)."""

    def __init__(self, events: int) -> None:
        self.events = events
        self.count = 0
        self.wall = 0.0
        self.cpu = 0.0
        self.collections = (0, 0)

    def __call__(self, _: str) -> bool:
        self.count += 1
        if self.count == 1:
            self.wall = time.perf_counter()
            self.cpu = _cpu()
            self.collections = _collections()
        elif self.count >= self.events:
            self.wall = time.perf_counter() - self.wall
            self.cpu = _cpu() - self.cpu
            (every, full), (every_0, full_0) = _collections(), self.collections
            self.collections = (every - every_0, full - full_0)
            return False
        return True

    def rates(self) -> tuple[float, float]:
        """Events after the first over the wall seconds and over the CPU seconds."""
        n = self.count - 1
        return n / self.wall, (n / self.cpu if self.cpu > 0 else float("nan"))


def _run(runner: Runner, port: int, events: int) -> tuple[float, float, int, int]:
    """Events per wall second and per CPU second, and the collector's passes (all,
    full) while they were handled."""
    counter = _Counter(events)
    runner(_url(port), counter)
    if counter.count < events:
        raise RuntimeError(f"the stream ended after {counter.count} events")
    return (*counter.rates(), *counter.collections)


def loopback(port: int, *, events: int, rounds: int) -> dict[str, dict[str, float | str]]:
    """`measure_here`, in a fresh interpreter: the other cases leave a heap behind, and
    the transports keep received events alive until the consumer takes them, so the
    garbage collector's full passes would cost them more than in an application."""
    args = [str(port), str(events), str(rounds)]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.loopback", *args],
        capture_output=True,
        text=True,
        timeout=60 + rounds * len(CLIENTS) * (5 + events / 5000),
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        reason = f"n/a: the loopback process failed: {tail}"
        return {key: dict.fromkeys(CLIENTS, reason) for key in _FIGURES}
    result: dict[str, dict[str, float | str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def measure_here(port: int, *, events: int, rounds: int) -> dict[str, dict[str, float | str]]:
    """Median events per second per client, over the wall clock and over the process's
    CPU time (``"wall"``, ``"cpu"``), and the median of the collector's passes per run
    (``"collections"``, ``"full_collections"``); a reason string where a client could
    not run."""
    wall: dict[str, float | str] = {}
    cpu: dict[str, float | str] = {}
    passes: dict[str, float | str] = {}
    full: dict[str, float | str] = {}
    samples: dict[str, list[tuple[float, float, int, int]]] = {name: [] for name in CLIENTS}
    for _ in range(rounds):
        for name, runner in CLIENTS.items():
            if name in wall:
                continue  # failed in an earlier round
            try:
                samples[name].append(_run(runner, port, events))
            except Exception as exc:
                reason = f"n/a: {type(exc).__name__}: {exc}"
                wall[name] = cpu[name] = passes[name] = full[name] = reason
    for name, values in samples.items():
        if name not in wall and values:
            wall[name] = statistics.median(v[0] for v in values)
            cpu[name] = statistics.median(v[1] for v in values)
            passes[name] = statistics.median(v[2] for v in values)
            full[name] = statistics.median(v[3] for v in values)
    return {
        key: {name: figures[name] for name in CLIENTS if name in figures}
        for key, figures in zip(_FIGURES, (wall, cpu, passes, full), strict=True)
    }


if __name__ == "__main__":
    port, events, rounds = (int(arg) for arg in sys.argv[1:4])
    print(json.dumps(measure_here(port, events=events, rounds=rounds)))
