"""``python -m benchmarks.soak --minutes M --transport trio|asyncio|sync|all [--json FILE]``

Chaos for as long as you set: each transport's PlaceOS and Mews clients (public API
only, see `benchmarks.soak.clients`) against the project's fake servers, through a
fault proxy (`benchmarks.soak.proxy`) that keeps breaking their connections.

The run is a loop of rounds. Each round sets status values and publishes numbered
Mews events for a while, injects one random fault (or none) into one or both
links, keeps going for a second, then stops and waits until everything has
recovered: every binding holds the server's latest value, and a fresh Mews event
arrives. The time from the fault to full recovery is the round's recovery time
(over 30 s is a violation). At the end of each round it samples file descriptors,
threads, tasks (trio and asyncio) and RSS.

Invariants (a violation makes the exit status 1):

- every exec ends with the right value, or `ConnectionLost` / `RequestTimeout`,
  within its timeout (plus a little slack);
- after each fault, all bindings deliver the latest value; values never go back;
- Mews events arrive in order and never twice; each gap follows a `Reconnected`;
- file descriptors, threads and tasks stay flat after warm-up (within a few);
- RSS grows by less than ``--max-rss-slope`` KiB/min, from a least-squares fit over
  every sample after warm-up (judged only when that window is at least 5 minutes:
  over a shorter one, allocator steps of a page or an arena swamp the slope, so it
  is reported but not judged).

The servers are the blocking-socket ones (`transports.sync`) for every client
transport: their handle methods are plain thread-safe calls the rounds can make.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import gc
import json
import logging
import os
import random
import sys
import threading
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from protocore.mews import CommandState, DeviceCommandEvent
from protocore.placeos import MockEngine

from .clients import (
    ACCESS_TOKEN,
    API_KEY,
    BINDINGS,
    CLIENT_TOKEN,
    MOD,
    SYS,
    Observed,
    Urls,
    run_clients,
)
from .proxy import FAULTS, FaultProxy

TRANSPORTS = ("trio", "asyncio", "sync")
RECOVERY_LIMIT = 30.0
JUDGED_WINDOW = 300.0  # seconds of samples after warm-up before the RSS slope is judged
SLACK = {"fds": 12, "threads": 3, "tasks": 12}


@attrs.define
class Sample:
    t: float
    rss: int
    fds: int
    threads: int
    tasks: int | None
    blocks: int  # sys.getallocatedblocks(): a leak shows here long before it shows in RSS
    heap_used: int = -1  # the C heap (glibc malloc): bytes handed out, -1 when unknown
    heap_free: int = -1  # ... and bytes free but still held (fragmentation, arenas)


class Samples:
    """One row per round, in arrays allocated up front: keeping the samples must not
    itself grow the heap the RSS slope measures."""

    _COLUMNS = ("t", "rss", "fds", "threads", "tasks", "blocks", "heap_used", "heap_free")

    def __init__(self, capacity: int) -> None:
        self._size = 0
        self._data = {
            name: array("d" if name == "t" else "q", bytes(8 * capacity)) for name in self._COLUMNS
        }

    def __len__(self) -> int:
        return self._size

    def add(self, sample: Sample) -> None:
        if self._size == len(self._data["t"]):
            return  # full (a run far longer than planned): keep the first rows
        for name in self._COLUMNS:
            value = getattr(sample, name)
            self._data[name][self._size] = -1 if value is None else value
        self._size += 1

    def rows(self) -> list[Sample]:
        out = []
        for i in range(self._size):
            row = {name: self._data[name][i] for name in self._COLUMNS}
            tasks = int(row["tasks"])
            out.append(
                Sample(
                    row["t"],
                    int(row["rss"]),
                    int(row["fds"]),
                    int(row["threads"]),
                    None if tasks < 0 else tasks,
                    int(row["blocks"]),
                    int(row["heap_used"]),
                    int(row["heap_free"]),
                )
            )
        return out


@attrs.define
class Report:
    transport: str
    seconds: float = 0.0
    rounds: int = 0
    faults: Counter[str] = attrs.field(factory=Counter)
    placeos_reconnects: int = 0
    mews_reconnects: int = 0
    refused: int = 0  # connection attempts the proxy refused
    log_warnings: int = 0  # the transports' warnings (reconnect failures...)
    proxy_errors: list[str] = attrs.field(factory=list)  # the proxy's own, not a finding
    execs_ok: int = 0
    execs_documented_errors: int = 0
    events: int = 0
    event_gaps: int = 0
    worst_recovery: float = 0.0
    worst_recovery_fault: str = ""
    rss_slope_kib_per_min: float | None = None
    rss_judged: bool = False
    samples: Samples = attrs.field(factory=lambda: Samples(0))
    blocks_slope_per_min: float | None = None
    heap_used_slope_kib_per_min: float | None = None
    heap_free_slope_kib_per_min: float | None = None
    violations: list[str] = attrs.field(factory=list)

    def as_json(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=True)
        out["faults"] = dict(self.faults)
        out["samples"] = len(self.samples)
        # One row per round, for a closer look at where memory goes (or levels off).
        out["series"] = {
            "columns": list(Samples._COLUMNS),
            "rows": [[getattr(s, name) for name in Samples._COLUMNS] for s in self.samples.rows()],
        }
        return out


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            *("arena", "ordblks", "smblks", "hblks", "hblkhd"),
            *("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
        )
    ]


@functools.cache
def _libc() -> Any:
    """glibc, or None (another C library: no trim, no C heap figures)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
    except (OSError, AttributeError):
        return None
    return libc


def _malloc_trim() -> None:
    """Hand the C heap's free pages back to the system (glibc), so RSS shows what is
    live rather than what fragmentation keeps: ``--trim`` tells the two apart."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def _c_heap() -> tuple[int, int]:
    """The C heap's bytes in use and bytes free but held, over every malloc arena
    (each thread may get its own); (-1, -1) without glibc. Python's small objects live
    in its own arenas beside it, which `sys.getallocatedblocks` follows instead."""
    libc = _libc()
    if libc is None:
        return -1, -1
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd), int(info.fordblks)


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _slope_kib_per_min(points: list[tuple[float, int]]) -> float | None:
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return None
    cov = sum((t - mean_t) * (r - mean_r) for t, r in points)
    return cov / var * 60 / 1024


class _Round:
    """The server side of the rounds: values set, events published, latest known."""

    def __init__(self, placeos: Any, mews: Any, rng: random.Random) -> None:
        self.placeos = placeos
        self.mews = mews
        self.rng = rng
        self.values = [0] * BINDINGS
        self.counter = 0
        self.event = -1

    def activity(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            index = self.rng.randrange(BINDINGS)
            self.counter += 1
            self.values[index] = self.counter
            self.placeos.set_status(SYS, MOD, f"v{index}", self.counter)
            self.publish()
            time.sleep(0.02)

    def publish(self) -> int:
        self.event += 1
        event = DeviceCommandEvent(id=f"evt-{self.event}", state=CommandState.PENDING)
        return int(self.mews.publish([event]))

    def recovered(self, observed: Observed, deadline: float) -> bool:
        """Wait until every binding holds its latest value and a new event arrives."""
        while time.monotonic() < deadline:
            if observed.latest == self.values:
                break
            time.sleep(0.02)
        else:
            return False
        while time.monotonic() < deadline:
            self.publish()
            wait = time.monotonic() + 0.3
            while time.monotonic() < min(wait, deadline):
                if observed.mews_last >= self.event:
                    return True
                time.sleep(0.01)
        return False


def soak(
    transport: str, seconds: float, rng: random.Random, say: Any, *, trim: bool = False
) -> Report:
    from transports import sync

    report = Report(transport, samples=Samples(int(seconds) + 64))
    warnings = _WarningCounter()
    logging.getLogger("protocore").addHandler(warnings)
    engine = MockEngine()
    engine.add_system(SYS)
    engine.add_module(
        SYS,
        MOD,
        status={f"v{i}": 0 for i in range(BINDINGS)},
        methods={"add": lambda a, b: a + b},
    )
    server_options = {"keepalive_interval": 1.0, "keepalive_timeout": 2.0, "close_timeout": 1.0}
    observed = Observed()
    stop = threading.Event()
    with (
        sync.serve_placeos(engine, api_keys=[API_KEY], **server_options) as placeos,
        sync.serve_mews(
            client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN, **server_options
        ) as mews,
        FaultProxy(placeos.port).running() as placeos_proxy,
        FaultProxy(mews.port).running() as mews_proxy,
    ):
        urls = Urls(_via(placeos.url, placeos_proxy), _via(mews.url, mews_proxy))
        rounds = _Round(placeos, mews, rng)
        clients = threading.Thread(
            target=run_clients, args=(transport, urls, observed, stop), name="soak-clients"
        )
        started = time.monotonic()
        clients.start()
        if not rounds.recovered(observed, time.monotonic() + RECOVERY_LIMIT):
            observed.violation("the clients never got going")
        begin = time.monotonic()
        warmup = min(max(10.0, seconds * 0.2), seconds / 2)
        baseline: Sample | None = None
        try:
            while time.monotonic() - begin < seconds and not observed.violations:
                rounds.activity(rng.uniform(0.2, 0.8))
                fault = rng.choice((*FAULTS, "none"))
                links = rng.choice(((placeos_proxy,), (mews_proxy,), (placeos_proxy, mews_proxy)))
                fault_at = time.monotonic()
                if fault != "none":
                    for proxy in links:
                        proxy.inject(fault)
                rounds.activity(1.0)
                ok = rounds.recovered(observed, fault_at + RECOVERY_LIMIT)
                recovery = time.monotonic() - fault_at
                report.rounds += 1
                report.faults[fault] += 1
                if not ok:
                    observed.violation(f"no recovery within {RECOVERY_LIMIT:.0f} s after {fault}")
                if recovery > report.worst_recovery:
                    report.worst_recovery, report.worst_recovery_fault = recovery, fault
                gc.collect()
                if trim:
                    _malloc_trim()
                sample = Sample(
                    time.monotonic() - begin,
                    _rss(),
                    _fds(),
                    threading.active_count(),
                    observed.tasks,
                    sys.getallocatedblocks(),
                    *_c_heap(),
                )
                report.samples.add(sample)
                if sample.t >= warmup:
                    if baseline is None:
                        baseline = sample
                    _check_flat(sample, baseline, observed)
                if report.rounds % 20 == 0:
                    say(
                        f"  {transport}: {sample.t:6.0f} s, {report.rounds} rounds, "
                        f"rss {sample.rss / 2**20:.1f} MiB, fds {sample.fds}, "
                        f"threads {sample.threads}, tasks {sample.tasks}"
                    )
        finally:
            stop.set()
            clients.join(30)
            if clients.is_alive():
                observed.violation("the clients did not stop within 30 s")
        report.seconds = time.monotonic() - started
        report.placeos_reconnects = max(0, placeos_proxy.linked - 1)
        report.mews_reconnects = max(0, mews_proxy.linked - 1)
        report.refused = placeos_proxy.accepted + mews_proxy.accepted
        report.refused -= placeos_proxy.linked + mews_proxy.linked
        report.proxy_errors = placeos_proxy.errors + mews_proxy.errors
    report.execs_ok = observed.execs_ok
    report.execs_documented_errors = observed.execs_documented_errors
    report.events = observed.mews_events
    report.event_gaps = observed.mews_gaps
    rows = [s for s in report.samples.rows() if s.t >= warmup]
    points = [(s.t, s.rss) for s in rows]
    report.rss_slope_kib_per_min = _slope_kib_per_min(points)
    blocks = _slope_kib_per_min([(s.t, s.blocks) for s in rows])
    report.blocks_slope_per_min = None if blocks is None else blocks * 1024
    if rows and rows[0].heap_used >= 0:
        report.heap_used_slope_kib_per_min = _slope_kib_per_min([(s.t, s.heap_used) for s in rows])
        report.heap_free_slope_kib_per_min = _slope_kib_per_min([(s.t, s.heap_free) for s in rows])
    window = points[-1][0] - points[0][0] if points else 0.0
    report.rss_judged = window >= JUDGED_WINDOW
    report.violations = list(observed.violations)
    logging.getLogger("protocore").removeHandler(warnings)
    report.log_warnings = warnings.count
    return report


class _WarningCounter(logging.Handler):
    """Counts the transports' warnings (reconnect failures are expected here) and
    keeps them off the terminal."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _via(url: str, proxy: FaultProxy) -> str:
    """``url`` with the proxy's port in place of the server's."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()


def _check_flat(sample: Sample, baseline: Sample, observed: Observed) -> None:
    for name, limit in SLACK.items():
        now, base = getattr(sample, name), getattr(baseline, name)
        if now is not None and base is not None and now > base + limit:
            observed.violation(f"{name} grew from {base} to {now} at {sample.t:.0f} s")


def _signed(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def _summary(report: Report, max_slope: float) -> list[str]:
    slope = report.rss_slope_kib_per_min
    slope_text = "n/a" if slope is None else f"{slope:+.1f} KiB/min"
    judged = "judged" if report.rss_judged else "not judged: window under 5 min"
    rows = report.samples.rows()
    after = [s for s in rows if s.t >= rows[-1].t * 0.2] if rows else []
    ranges = {
        name: (min(getattr(s, name) or 0 for s in after), max(getattr(s, name) or 0 for s in after))
        for name in ("fds", "threads", "tasks")
        if report.transport != "sync" or name != "tasks"
    }
    lines = [
        f"{report.transport}: {report.seconds:.0f} s, {report.rounds} rounds "
        f"({', '.join(f'{k} {v}' for k, v in sorted(report.faults.items()))})",
        f"  reconnects: PlaceOS {report.placeos_reconnects}, Mews {report.mews_reconnects} "
        f"({report.refused} attempts refused, {report.log_warnings} warnings logged)",
        f"  execs: {report.execs_ok} right, {report.execs_documented_errors} documented errors",
        f"  Mews events: {report.events} in order, {report.event_gaps} gaps (each after "
        "Reconnected)",
        f"  RSS slope after warm-up: {slope_text} ({judged}; limit {max_slope} KiB/min); "
        f"allocated blocks: {_signed(report.blocks_slope_per_min)}/min",
        f"  C heap after warm-up: in use {_signed(report.heap_used_slope_kib_per_min, 1)} KiB/min, "
        f"free but held {_signed(report.heap_free_slope_kib_per_min, 1)} KiB/min",
        "  after warm-up: " + ", ".join(f"{k} {lo}-{hi}" for k, (lo, hi) in ranges.items()),
        f"  worst recovery: {report.worst_recovery:.1f} s (after {report.worst_recovery_fault})",
    ]
    lines += [f"  proxy error (not a finding): {e}" for e in report.proxy_errors[:5]]
    lines += [f"  VIOLATION: {v}" for v in report.violations]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description="Chaos soak of every transport's clients."
    )
    parser.add_argument("--minutes", type=float, default=1.0, help="per transport (default 1)")
    parser.add_argument("--transport", choices=[*TRANSPORTS, "all"], default="all")
    parser.add_argument("--json", type=Path, help="write the reports here")
    parser.add_argument("--seed", type=int, default=None, help="for the fault schedule")
    parser.add_argument(
        "--max-rss-slope", type=float, default=1.0, help="KiB/min after warm-up (default 1)"
    )
    parser.add_argument(
        "--trim",
        action="store_true",
        help="malloc_trim before each RSS sample (live memory, not fragmentation)",
    )
    args = parser.parse_args(argv)
    if not args.minutes > 0:
        parser.error("--minutes must be positive")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    transports = TRANSPORTS if args.transport == "all" else (args.transport,)

    def say(text: str) -> None:
        print(text, flush=True)

    say(f"soak: {args.minutes:g} min per transport, seed {seed}")
    reports = []
    failed = False
    for transport in transports:
        report = soak(transport, args.minutes * 60, random.Random(seed), say, trim=args.trim)
        slope = report.rss_slope_kib_per_min
        if report.rss_judged and slope is not None and slope >= args.max_rss_slope:
            report.violations.append(f"RSS slope {slope:.1f} KiB/min >= {args.max_rss_slope}")
        failed = failed or bool(report.violations)
        reports.append(report)
        for line in _summary(report, args.max_rss_slope):
            say(line)
    if args.json:
        args.json.write_text(json.dumps([r.as_json() for r in reports], indent=2) + "\n")
    say("soak: FAILED" if failed else "soak: OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
