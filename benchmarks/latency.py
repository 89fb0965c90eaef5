"""Case 6: end-to-end latency at a steady rate, every client of `clients`.

The fake server (``paced RATE``, its own process) sends 4-event envelopes at a steady
``RATE`` events per second, every event's ``Id`` the ``time.monotonic()`` of its
sending; the client's handler subtracts that from its own ``time.monotonic()`` (the
same clock: one machine). So the figure is everything in between: the server's
framing and write, the kernel's loopback, the client's read, framing, decoding and
whatever queueing the transport does before the handler sees the event. Reported:
the 50th and 99th percentiles and the maximum, in microseconds, per client.

Every client is measured the same way, in one fresh interpreter: in ``_ROUNDS``
rounds, each client in a fresh random order connects, drops its first ``_WARMUP``
events (set-up, first-use costs) and keeps the next share of the samples; a full
garbage collection runs before each connection, so no client inherits another's (or
the imports') garbage. Interleaving matters for the tail: run one after another, a
client that met a busy spell of the machine, or the first full collection after the
imports (tens of milliseconds, always the first client's), carried it alone.

On a busy machine the tail mostly measures the scheduler (a client not given the
CPU for a few milliseconds), so compare p99s of the same run only. Even interleaved,
one busy spell of a few hundred milliseconds lands in one client's round and moves
that client's pooled p99 alone. So each client's p99 is also taken per round, and
``p99_us`` is the median of those (the tail a client shows in a typical round; a
round the machine disturbed is outvoted by the others), beside the pooled
``p99_pooled_us`` over all its samples.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .clients import CLIENTS, Runner

__all__ = ["RATE", "latency", "measure_here"]

RATE = 5000  # events per second
_WARMUP = 500
_ROUNDS = 9  # odd: the median of the rounds' p99s is one of them


class _Stopwatch:
    """The handler: one latency sample per event, until ``events`` were seen."""

    def __init__(self, events: int) -> None:
        self.events = events + _WARMUP
        self.seen = 0
        self.samples: list[float] = []
        self.clock = time.monotonic

    def __call__(self, stamp: str) -> bool:
        delay = self.clock() - float(stamp)
        self.seen += 1
        if self.seen > _WARMUP:
            self.samples.append(delay)
        return self.seen < self.events


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def _figures(rounds: list[list[float]]) -> dict[str, float]:
    """One client's figures from its rounds' samples (see the module doc)."""
    ordered = sorted(sample for samples in rounds for sample in samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_us": cuts[49] * 1e6,
        "p99_us": statistics.median(_p99(samples) for samples in rounds) * 1e6,
        "p99_pooled_us": cuts[98] * 1e6,
        "max_us": ordered[-1] * 1e6,
        "samples": len(ordered),
        "rounds": len(rounds),
    }


def _run(runner: Runner, port: int, events: int) -> list[float]:
    watch = _Stopwatch(events)
    gc.collect()
    runner(f"ws://127.0.0.1:{port}/ws/connector", watch)
    if len(watch.samples) < events:
        raise RuntimeError(f"the stream ended after {watch.seen} events")
    return watch.samples


def measure_here(port: int, *, events: int) -> dict[str, dict[str, float] | str]:
    """Each client's figures, or the reason it could not run (see the module doc)."""
    samples: dict[str, list[list[float]]] = {name: [] for name in CLIENTS}
    failed: dict[str, str] = {}
    order = list(CLIENTS)
    shuffle = random.Random(0).shuffle
    share = -(-events // _ROUNDS)
    for _ in range(_ROUNDS):
        shuffle(order)
        for name in order:
            if name in failed:
                continue
            try:
                samples[name].append(_run(CLIENTS[name], port, share))
            except Exception as exc:
                failed[name] = f"n/a: {type(exc).__name__}: {exc}"
    return {name: failed.get(name) or _figures(samples[name]) for name in CLIENTS}


def latency(port: int, *, events: int) -> dict[str, dict[str, float] | str]:
    """`measure_here` in a fresh interpreter (as for the loopback case)."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.latency", str(port), str(events)],
        capture_output=True,
        text=True,
        timeout=60 + len(CLIENTS) * _ROUNDS * (5 + (events / _ROUNDS + _WARMUP) / RATE),
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return dict.fromkeys(CLIENTS, f"n/a: the latency process failed: {tail}")
    result: dict[str, dict[str, float] | str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    port, events = (int(arg) for arg in sys.argv[1:3])
    print(json.dumps(measure_here(port, events=events)))
