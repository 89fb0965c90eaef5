"""``python -m benchmarks [--quick] [--json FILE] [--plot FILE.png]``: run every case.

Prints one table per case; every comparison was interleaved in this one run and is
given as a ratio (protocore over the baseline: below 1 is faster for times, above 1
is better for events per second). ``--quick`` (CI's smoke run) uses fewer rounds,
shorter batches, fewer events and 200 idle connections instead of 10,000 (50 instead
of 1,000 for the blocking clients).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from typing import Any

from protocore import _json

from . import codec_cases, latency, loopback, pipeline, scale
from .fake_server import spawned
from .harness import compare

#: The headline ratios, the target each should meet, and which way is better.
TARGETS: dict[str, tuple[str, float]] = {
    "mews_decode_vs_msgspec": ("<=", 2.5),
    "mews_encode_vs_msgspec": ("<=", 3.0),
    "placeos_notify_decode_vs_msgspec": ("<=", 2.5),
    "placeos_notify_encode_vs_msgspec": ("<=", 3.0),
    "mews_decode_vs_naive_cattrs": ("<=", 0.25),
    "placeos_notify_decode_vs_naive_cattrs": ("<=", 0.25),
    "pipeline_vs_wsproto_plus_codec": ("<=", 1.10),
    "loopback_asyncio_vs_websockets_msgspec": (">=", 1.0),
    "loopback_trio_vs_websockets_msgspec": (">=", 1.0),
    "loopback_sync_vs_websockets_msgspec": (">=", 1.0),
    "loopback_asyncio_vs_picows_msgspec": (">=", 0.5),  # the moonshot
    "idle_memory_asyncio_vs_websockets": ("<=", 1.0),
    "idle_memory_trio_vs_websockets": ("<=", 1.0),
    "idle_memory_sync_vs_websockets": ("<=", 1.0),
    "idle_ping_cpu_asyncio_vs_websockets": ("<=", 1.0),
    "idle_ping_cpu_trio_vs_websockets": ("<=", 1.0),
    "idle_ping_cpu_sync_vs_websockets": ("<=", 1.0),
    "latency_p99_asyncio_vs_websockets_msgspec": ("<=", 1.0),
    "latency_p99_trio_vs_websockets_msgspec": ("<=", 1.0),
    "latency_p99_sync_vs_websockets_msgspec": ("<=", 1.0),
    "memory_per_connection_kib": ("<=", 30.0),
}

#: Each protocore transport and its closest peer (same event loop, typed decoding).
PEERS = {
    "asyncio": "websockets asyncio + msgspec",
    "trio": "websockets trio + msgspec",
    "sync": "websockets sync + msgspec",
}
#: The transport each client runs on, for the "vs protocore" column.
_LOOP = {
    "websockets asyncio + msgspec": "asyncio",
    "picows + msgspec": "asyncio",
    "websockets + json": "asyncio",
    "websockets trio + msgspec": "trio",
    "trio-websocket + msgspec": "trio",
    "websockets sync + msgspec": "sync",
}


class _Settings:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.rounds = 5 if quick else 21
        self.batch_seconds = 0.005 if quick else 0.04
        self.loopback_events = 10_000 if quick else 100_000
        self.loopback_rounds = 1 if quick else 7
        self.latency_events = 2_500 if quick else 20_000
        self.connections = 200 if quick else 10_000
        self.blocking_connections = 50 if quick else 1_000
        self.keepalive_interval = 0.5 if quick else 20.0
        self.idle_window = 1.5 if quick else 40.0


def _say(text: str = "") -> None:
    print(text, flush=True)


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w)
        for i, (h, w) in enumerate(zip(header, widths, strict=True))
    )
    _say(line)
    _say("-" * len(line))
    for row in rows:
        _say(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    _say()


def _run_codec(settings: _Settings) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for case, contenders in codec_cases.codec_cases():
        result = compare(
            case, contenders, rounds=settings.rounds, batch_seconds=settings.batch_seconds
        )
        out.append(
            {
                "case": case,
                "per_op_us": {k: v * 1e6 for k, v in result.per_op.items()},
                "spread": result.spread,
                "rounds": result.rounds,
                "batch": result.batch,
            }
        )
    header = ["case (µs per message)", *codec_cases.CONTENDERS, "/msgspec", "/naive"]
    rows: list[list[str]] = []
    for row in out:
        t = row["per_op_us"]
        vs_msgspec = t["protocore"] / t["msgspec"]
        vs_naive = t["protocore"] / t["naive cattrs"]
        times = [f"{t[n]:.2f}" for n in codec_cases.CONTENDERS]
        rows.append([row["case"], *times, f"{vs_msgspec:.2f}x", f"{vs_naive:.2f}x"])
    _say("1-2. Codec: decode and encode (median of interleaved rounds)")
    _table(header, rows)
    return out


def _run_pipeline(settings: _Settings) -> dict[str, Any]:
    result = compare(
        "pipeline",
        pipeline.pipeline_contenders(),
        rounds=settings.rounds,
        batch_seconds=settings.batch_seconds * 2,
    )
    per_message = {k: v * 1e6 / pipeline.FRAMES for k, v in result.per_op.items()}
    _say(f"3. Pipeline: {pipeline.FRAMES} frames of a 4-event Mews envelope, bytes to events")
    _table(
        ["contender", "µs/message", "protocore/this"],
        [[k, f"{v:.2f}", f"{per_message['protocore'] / v:.2f}x"] for k, v in per_message.items()],
    )
    return {"frames": pipeline.FRAMES, "per_message_us": per_message, "spread": result.spread}


def _run_loopback(settings: _Settings) -> dict[str, Any]:
    with spawned("stream") as port:
        results = loopback.loopback(
            port, events=settings.loopback_events, rounds=settings.loopback_rounds
        )
    wall, cpu = results["wall"], results["cpu"]
    passes, full = results.get("collections", {}), results.get("full_collections", {})
    rows = []
    for name, value in cpu.items():
        ours = cpu.get(_LOOP.get(name, name))
        if isinstance(value, float):
            ratio = f"{ours / value:.2f}x" if isinstance(ours, float) else "n/a"
            gc_runs = f"{passes.get(name, 'n/a')} ({full.get(name, 'n/a')})"
            rows.append([name, f"{value:,.0f}", ratio, f"{wall[name]:,.0f}", gc_runs])
        else:
            rows.append([name, value, "n/a", "", ""])
    _say(
        f"4. Loopback: {settings.loopback_events:,} events per client, "
        f"median of {settings.loopback_rounds} interleaved rounds"
    )
    _table(
        ["client", "events/CPU-s", "protocore/this", "events/s (wall)", "GC passes (full)"],
        rows,
    )
    return {
        "events": settings.loopback_events,
        "rounds": settings.loopback_rounds,
        "events_per_second": cpu,
        "events_per_second_wall": wall,
        "gc_passes": passes,
        "gc_full_passes": full,
    }


def _run_latency(settings: _Settings) -> dict[str, Any]:
    with spawned(f"paced {latency.RATE}") as port:
        results = latency.latency(port, events=settings.latency_events)
    rows = []
    for name, r in results.items():
        if isinstance(r, str):
            rows.append([name, r, "", "", ""])
        else:
            figures = (r["p50_us"], r["p99_us"], r["p99_pooled_us"], r["max_us"])
            rows.append([name, *(f"{value:,.0f}" for value in figures)])
    _say(
        f"6. Latency: {latency.RATE:,} events/s, server send to client handler, "
        f"{settings.latency_events:,} events per client"
    )
    _table(["client", "p50 µs", "p99 µs (median of rounds)", "p99 µs (pooled)", "max µs"], rows)
    return {"rate": latency.RATE, "events": settings.latency_events, "clients": results}


def _run_scale(settings: _Settings) -> dict[str, Any]:
    per_transport = {}
    with spawned("idle") as port:
        for name in scale.TRANSPORTS:
            blocking = name in scale.BLOCKING
            per_transport[name] = scale.measure(
                name,
                port,
                settings.blocking_connections if blocking else settings.connections,
                interval=settings.keepalive_interval,
                window=settings.idle_window,
            )
    note = " (--quick)" if settings.quick else ""
    _say(
        f"5. Scale: {settings.connections:,} idle connections{note} "
        f"({settings.blocking_connections:,} for the blocking clients), keepalive every "
        f"{settings.keepalive_interval:g} s, CPU over {settings.idle_window:g} s"
    )
    rows = []
    for name, r in per_transport.items():
        if "reached" not in r:
            rows.append([name, r.get("error", "n/a"), "", "", ""])
            continue
        kib = r["kib_per_connection"]
        rows.append(
            [
                name,
                f"{r['reached']:,}"
                + (f" ({r['error']})" if r["failed"] or r.get("skipped") else ""),
                "n/a" if kib is None else f"{kib:.1f}",
                f"{r['cpu_percent']:.1f}",
                "n/a" if r["us_per_ping"] is None else f"{r['us_per_ping']:.0f}",
            ]
        )
    _table(["transport", "connections", "KiB/conn", "CPU %", "µs/ping"], rows)
    return {
        "connections": settings.connections,
        "blocking_connections": settings.blocking_connections,
        "keepalive_interval_s": settings.keepalive_interval,
        "transports": per_transport,
    }


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return float(a) / float(b)
    return None


def _ratios(results: dict[str, Any]) -> dict[str, float | None]:
    codec = {row["case"]: row["per_op_us"] for row in results.get("codec", [])}
    ratios: dict[str, float | None] = dict.fromkeys(TARGETS)

    def codec_ratio(case: str, baseline: str) -> float | None:
        times = codec.get(case)
        return None if times is None else _ratio(times["protocore"], times[baseline])

    ratios["mews_decode_vs_msgspec"] = codec_ratio("mews_4_decode", "msgspec")
    ratios["mews_encode_vs_msgspec"] = codec_ratio("mews_4_encode", "msgspec")
    ratios["mews_built_encode_vs_msgspec"] = codec_ratio("mews_4_built_encode", "msgspec")
    ratios["mews_decode_vs_naive_cattrs"] = codec_ratio("mews_4_decode", "naive cattrs")
    ratios["placeos_notify_decode_vs_msgspec"] = codec_ratio("placeos_notify_decode", "msgspec")
    ratios["placeos_notify_encode_vs_msgspec"] = codec_ratio("placeos_notify_encode", "msgspec")
    ratios["placeos_notify_decode_vs_naive_cattrs"] = codec_ratio(
        "placeos_notify_decode", "naive cattrs"
    )
    if "pipeline" in results:
        times = results["pipeline"]["per_message_us"]
        ratios["pipeline_vs_wsproto_plus_codec"] = _ratio(
            times["protocore"], times["wsproto + codec"]
        )
        ratios["pipeline_vs_websockets_plus_msgspec"] = _ratio(
            times["protocore"], times["websockets + msgspec"]
        )
        ratios["pipeline_vs_websockets_plus_json"] = _ratio(
            times["protocore"], times["websockets + json"]
        )
    if "loopback" in results:
        rates = results["loopback"]["events_per_second"]
        walls = results["loopback"]["events_per_second_wall"]
        for name, peer in PEERS.items():
            ratios[f"loopback_{name}_vs_websockets_msgspec"] = _ratio(
                rates.get(name), rates.get(peer)
            )
            ratios[f"loopback_{name}_vs_websockets_msgspec_wall"] = _ratio(
                walls.get(name), walls.get(peer)
            )
        ratios["loopback_asyncio_vs_picows_msgspec"] = _ratio(
            rates.get("asyncio"), rates.get("picows + msgspec")
        )
        ratios["loopback_trio_vs_trio_websocket_msgspec"] = _ratio(
            rates.get("trio"), rates.get("trio-websocket + msgspec")
        )
        ratios["loopback_asyncio_vs_websockets_json"] = _ratio(
            rates.get("asyncio"), rates.get("websockets + json")
        )
    if "latency" in results:
        clients = results["latency"]["clients"]

        def p99(name: str) -> Any:
            r = clients.get(name)
            return r.get("p99_us") if isinstance(r, dict) else None

        for name, peer in PEERS.items():
            ratios[f"latency_p99_{name}_vs_websockets_msgspec"] = _ratio(p99(name), p99(peer))
    if "scale" in results:
        idle = results["scale"]["transports"]
        for name in PEERS:
            ours, theirs = idle.get(name, {}), idle.get(f"websockets {name}", {})
            for key, label in (("kib_per_connection", "memory"), ("us_per_ping", "ping_cpu")):
                ratios[f"idle_{label}_{name}_vs_websockets"] = _ratio(
                    ours.get(key), theirs.get(key)
                )
    if "scale" in results:
        per = {name: idle[name].get("kib_per_connection") for name in PEERS if name in idle}
        for name, kib in per.items():
            ratios[f"memory_per_connection_kib_{name}"] = kib
        known = [v for v in per.values() if isinstance(v, int | float)]
        ratios["memory_per_connection_kib"] = max(known) if known else None  # the worst
    for case, times in codec.items():  # every codec comparison, for the record
        for baseline in codec_cases.CONTENDERS[1:]:
            key = f"{case}_vs_{baseline.replace(' ', '_')}"
            ratios.setdefault(key, _ratio(times["protocore"], times[baseline]))
    return ratios


def _report_targets(ratios: dict[str, float | None]) -> dict[str, Any]:
    rows = []
    verdicts: dict[str, Any] = {}
    for key, (way, target) in TARGETS.items():
        value = ratios.get(key)
        met = None if value is None else (value <= target if way == "<=" else value >= target)
        verdicts[key] = {"value": value, "target": f"{way} {target:g}", "met": met}
        shown = "n/a" if value is None else f"{value:.2f}"
        rows.append([key, shown, f"{way} {target:g}", {None: "n/a", True: "yes", False: "NO"}[met]])
    _say(
        "Targets (codec, pipeline, idle, latency: protocore/peer, lower is better; "
        "loopback: events/s ratio, higher is better; memory: KiB)"
    )
    _table(["ratio", "value", "target", "met"], rows)
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run, under 60 s")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the chart")
    parser.add_argument(
        "--only",
        action="append",
        choices=("codec", "pipeline", "loopback", "latency", "scale"),
        help="run only these cases (repeatable)",
    )
    args = parser.parse_args(argv)
    settings = _Settings(args.quick)
    only = set(args.only or ("codec", "pipeline", "loopback", "latency", "scale"))
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "quick": args.quick,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "json_backend": _json.BACKEND,
        }
    }
    mode = "quick" if args.quick else "full"
    _say(
        f"protocore benchmarks ({mode} run), {results['meta']['python']}, "
        f"{os.cpu_count()} CPUs, JSON backend {_json.BACKEND}\n"
    )
    steps = (
        ("codec", _run_codec),
        ("pipeline", _run_pipeline),
        ("loopback", _run_loopback),
        ("latency", _run_latency),
        ("scale", _run_scale),
    )
    for name, step in steps:
        if name in only:
            begun = time.perf_counter()
            results[name] = step(settings)
            _say(f"({name}: {time.perf_counter() - begun:.1f} s)\n")
    results["ratios"] = _ratios(results)
    results["targets"] = _report_targets(results["ratios"])
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    _say(f"done in {results['meta']['seconds']} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2, sort_keys=False)
            out.write("\n")
    if args.plot:
        from .plot import plot

        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
