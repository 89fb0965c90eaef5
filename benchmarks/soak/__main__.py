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

The soak runs in two processes. This one holds the clients under test and the
rounds; a child (`benchmarks.soak.servers`) holds the fake servers (the
blocking-socket ones, for every client transport) and the fault proxies, whose
threads would otherwise count in the memory judged here. Each round samples both;
the clients' RSS slope is judged, the servers' is reported beside it (judged only
with ``--max-server-rss-slope``), and fds and threads must stay flat in both.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

from .clients import BINDINGS, Observed, run_clients
from .proxy import FAULTS
from .sampling import Memory, Sample, Samples, take_sample
from .servers import ServerProcess, ServerProcessError

TRANSPORTS = ("trio", "asyncio", "sync")
RECOVERY_LIMIT = 30.0
JUDGED_WINDOW = 300.0  # seconds of samples after warm-up before the RSS slope is judged
SLACK = {"fds": 12, "threads": 3, "tasks": 12}


SERVER_SLACK = {"fds": 12, "threads": 3}


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
    rss_judged: bool = False  # the window after warm-up is long enough to judge a slope
    clients: Memory = attrs.field(factory=Memory)  # this process: what the soak judges
    servers: Memory = attrs.field(factory=Memory)  # the child with the servers and proxies
    violations: list[str] = attrs.field(factory=list)

    def as_json(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["faults"] = dict(self.faults)
        out["clients"] = self.clients.as_json()
        out["servers"] = self.servers.as_json()
        return out


class _Round:
    """The rounds' side of the servers: values set, events published, latest known."""

    def __init__(self, servers: ServerProcess, rng: random.Random) -> None:
        self.servers = servers
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
            self.servers.set_status(index, self.counter)
            self.publish()
            time.sleep(0.02)

    def publish(self) -> None:
        self.event += 1
        self.servers.publish(self.event)

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
    capacity = int(seconds) + 64
    report = Report(transport, clients=Memory(Samples(capacity), os.getpid()))
    warnings = _WarningCounter()
    logging.getLogger("protocore").addHandler(warnings)
    observed = Observed()
    stop = threading.Event()
    warmup = min(max(10.0, seconds * 0.2), seconds / 2)
    try:
        with ServerProcess(trim=trim) as servers:
            report.servers = Memory(Samples(capacity), servers.process.pid or 0)
            _rounds(
                report,
                servers,
                observed,
                stop,
                seconds=seconds,
                warmup=warmup,
                rng=rng,
                say=say,
                trim=trim,
            )
            counters = servers.counters()
        placeos, mews = counters["placeos"], counters["mews"]
        report.placeos_reconnects = max(0, placeos["linked"] - 1)
        report.mews_reconnects = max(0, mews["linked"] - 1)
        report.refused = placeos["accepted"] + mews["accepted"] - placeos["linked"] - mews["linked"]
        report.proxy_errors = placeos["errors"] + mews["errors"]
    except ServerProcessError as error:
        observed.violation(str(error))
    finally:
        logging.getLogger("protocore").removeHandler(warnings)
    report.execs_ok = observed.execs_ok
    report.execs_documented_errors = observed.execs_documented_errors
    report.events = observed.mews_events
    report.event_gaps = observed.mews_gaps
    window = report.clients.fit(warmup)
    report.servers.fit(warmup)
    report.rss_judged = window >= JUDGED_WINDOW
    report.violations = list(observed.violations)
    report.log_warnings = warnings.count
    return report


def _rounds(
    report: Report,
    servers: ServerProcess,
    observed: Observed,
    stop: threading.Event,
    *,
    seconds: float,
    warmup: float,
    rng: random.Random,
    say: Any,
    trim: bool,
) -> None:
    """The clients in a thread, and round after round of faults until ``seconds``."""
    transport = report.transport
    rounds = _Round(servers, rng)
    clients = threading.Thread(
        target=run_clients, args=(transport, servers.urls, observed, stop), name="soak-clients"
    )
    started = time.monotonic()
    clients.start()
    baselines: tuple[Sample, Sample] | None = None
    try:
        if not rounds.recovered(observed, time.monotonic() + RECOVERY_LIMIT):
            observed.violation("the clients never got going")
        begin = time.monotonic()
        while time.monotonic() - begin < seconds and not observed.violations:
            rounds.activity(rng.uniform(0.2, 0.8))
            fault = rng.choice((*FAULTS, "none"))
            links = rng.choice((("placeos",), ("mews",), ("placeos", "mews")))
            fault_at = time.monotonic()
            if fault != "none":
                servers.inject(fault, links)
            rounds.activity(1.0)
            ok = rounds.recovered(observed, fault_at + RECOVERY_LIMIT)
            recovery = time.monotonic() - fault_at
            report.rounds += 1
            report.faults[fault] += 1
            if not ok:
                observed.violation(f"no recovery within {RECOVERY_LIMIT:.0f} s after {fault}")
            if recovery > report.worst_recovery:
                report.worst_recovery, report.worst_recovery_fault = recovery, fault
            t = time.monotonic() - begin
            sample = take_sample(t, observed.tasks, trim=trim)
            server_sample = servers.sample(t)
            report.clients.samples.add(sample)
            report.servers.samples.add(server_sample)
            if t >= warmup:
                if baselines is None:
                    baselines = sample, server_sample
                _check_flat("clients", sample, baselines[0], SLACK, observed)
                _check_flat("servers", server_sample, baselines[1], SERVER_SLACK, observed)
            if report.rounds % 20 == 0:
                say(
                    f"  {transport}: {t:6.0f} s, {report.rounds} rounds, clients: "
                    f"rss {sample.rss / 2**20:.1f} MiB, fds {sample.fds}, "
                    f"threads {sample.threads}, tasks {sample.tasks}; servers: "
                    f"rss {server_sample.rss / 2**20:.1f} MiB, fds {server_sample.fds}, "
                    f"threads {server_sample.threads}"
                )
    finally:
        stop.set()
        clients.join(30)
        if clients.is_alive():
            observed.violation("the clients did not stop within 30 s")
        report.seconds = time.monotonic() - started


class _WarningCounter(logging.Handler):
    """Counts the transports' warnings (reconnect failures are expected here) and
    keeps them off the terminal."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _check_flat(
    process: str, sample: Sample, baseline: Sample, slack: dict[str, int], observed: Observed
) -> None:
    for name, limit in slack.items():
        now, base = getattr(sample, name), getattr(baseline, name)
        if now is not None and base is not None and now > base + limit:
            observed.violation(f"{process}' {name} grew from {base} to {now} at {sample.t:.0f} s")


def _signed(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def _slope(value: float | None, judged: bool, limit: float | None) -> str:
    text = "n/a" if value is None else f"{value:+.1f} KiB/min"
    if limit is None:
        return f"{text} (not judged)"
    if not judged:
        return f"{text} (not judged: window under 5 min; limit {limit})"
    return f"{text} (judged; limit {limit})"


def _summary(report: Report, max_slope: float, max_server_slope: float | None) -> list[str]:
    clients, servers = report.clients, report.servers
    rows = clients.samples.rows()
    since = rows[-1].t * 0.2 if rows else 0.0
    names = ("fds", "threads") if report.transport == "sync" else ("fds", "threads", "tasks")

    def ranges(memory: Memory, names: tuple[str, ...]) -> str:
        return ", ".join(f"{k} {lo}-{hi}" for k, (lo, hi) in memory.ranges(names, since).items())

    lines = [
        f"{report.transport}: {report.seconds:.0f} s, {report.rounds} rounds "
        f"({', '.join(f'{k} {v}' for k, v in sorted(report.faults.items()))})",
        f"  reconnects: PlaceOS {report.placeos_reconnects}, Mews {report.mews_reconnects} "
        f"({report.refused} attempts refused, {report.log_warnings} warnings logged)",
        f"  execs: {report.execs_ok} right, {report.execs_documented_errors} documented errors",
        f"  Mews events: {report.events} in order, {report.event_gaps} gaps (each after "
        "Reconnected)",
        "  RSS slope after warm-up, clients: "
        + _slope(clients.rss_slope_kib_per_min, report.rss_judged, max_slope),
        "  RSS slope after warm-up, servers: "
        + _slope(servers.rss_slope_kib_per_min, report.rss_judged, max_server_slope),
        f"  allocated blocks after warm-up: clients {_signed(clients.blocks_slope_per_min)}/min, "
        f"servers {_signed(servers.blocks_slope_per_min)}/min",
        "  C heap after warm-up, in use / free but held: clients "
        f"{_signed(clients.heap_used_slope_kib_per_min, 1)} / "
        f"{_signed(clients.heap_free_slope_kib_per_min, 1)} KiB/min, servers "
        f"{_signed(servers.heap_used_slope_kib_per_min, 1)} / "
        f"{_signed(servers.heap_free_slope_kib_per_min, 1)} KiB/min",
        f"  after warm-up: clients {ranges(clients, names)}; "
        f"servers {ranges(servers, ('fds', 'threads'))}",
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
        "--max-server-rss-slope",
        type=float,
        default=None,
        help="KiB/min after warm-up for the servers' process (default: reported, not judged)",
    )
    parser.add_argument(
        "--trim",
        action="store_true",
        help="malloc_trim before each sample, in both processes (live memory, not fragmentation)",
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
    try:
        for transport in transports:
            report = soak(transport, args.minutes * 60, random.Random(seed), say, trim=args.trim)
            limits = (
                ("clients", report.clients, args.max_rss_slope),
                ("servers", report.servers, args.max_server_rss_slope),
            )
            for process, memory, limit in limits:
                slope = memory.rss_slope_kib_per_min
                if limit is not None and report.rss_judged and slope is not None and slope >= limit:
                    report.violations.append(f"{process}' RSS slope {slope:.1f} KiB/min >= {limit}")
            failed = failed or bool(report.violations)
            reports.append(report)
            for line in _summary(report, args.max_rss_slope, args.max_server_rss_slope):
                say(line)
    except KeyboardInterrupt:
        say("soak: interrupted")
        return 130
    if args.json:
        args.json.write_text(json.dumps([r.as_json() for r in reports], indent=2) + "\n")
    say("soak: FAILED" if failed else "soak: OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
