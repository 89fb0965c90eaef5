"""The chart of a run: one group of bars per case, protocore beside each baseline."""

from __future__ import annotations

from typing import Any

__all__ = ["plot"]

_COLOURS = {
    "protocore": "#d62728",
    "json": "#9e9e9e",
    "orjson": "#616161",
    "naive cattrs": "#ff9f40",
    "msgspec": "#1f77b4",
    "wsproto + codec": "#ff9f40",
    "websockets + msgspec": "#1f77b4",
    "websockets + json": "#9e9e9e",
    "trio": "#d62728",
    "asyncio": "#e377c2",
    "sync": "#8c564b",
    "websockets asyncio + msgspec": "#1f77b4",
    "websockets trio + msgspec": "#17becf",
    "websockets sync + msgspec": "#2ca02c",
    "picows + msgspec": "#9467bd",
    "trio-websocket + msgspec": "#bcbd22",
    "websockets asyncio": "#1f77b4",
    "websockets trio": "#17becf",
    "websockets sync": "#2ca02c",
    "picows": "#9467bd",
    "p50": "#1f77b4",
    "p99": "#d62728",
}


def _grouped(ax: Any, cases: list[str], series: dict[str, list[float | None]]) -> None:
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [c + (i - (len(series) - 1) / 2) * width for c in range(len(cases))]
        heights = [v if v is not None else 0.0 for v in values]
        ax.bar(xs, heights, width, label=name, color=_COLOURS.get(name))
    ax.set_xticks(range(len(cases)), cases, rotation=20, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(5, len(series)))


def _codec(ax: Any, results: dict[str, Any], suffix: str, title: str) -> None:
    rows = [r for r in results["codec"] if r["case"].endswith(suffix)]
    cases = [r["case"].removesuffix(suffix) for r in rows]
    names = list(rows[0]["per_op_us"]) if rows else []
    series = {n: [r["per_op_us"][n] for r in rows] for n in names}
    _grouped(ax, cases, series)
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * 8)  # room for the legend above the bars
    ax.set_ylabel("µs per message (log; lower is better)")
    ax.set_title(title)


def plot(results: dict[str, Any], path: str) -> None:
    """Write the chart of ``results`` (as `benchmarks.__main__` builds them) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(17, 14))
    if "codec" in results:
        _codec(axes[0][0], results, "_decode", "1. Decode")
        _codec(axes[0][1], results, "_encode", "2. Encode")
    if "pipeline" in results:
        _pipeline(axes[0][2], results["pipeline"])
    if "loopback" in results:
        _loopback(axes[1][0], results["loopback"]["events_per_second"])
    if "scale" in results:
        _scale(axes[1][1], axes[1][2], results["scale"]["transports"])
    if "latency" in results:
        _latency(axes[2][0], results["latency"])
    for ax in (axes[2][1], axes[2][2]):
        ax.axis("off")

    mode = "quick" if results["meta"]["quick"] else "full"
    fig.suptitle(f"protocore benchmarks ({mode} run, {results['meta']['python']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pipeline(ax: Any, pipeline: dict[str, Any]) -> None:
    names = list(pipeline["per_message_us"])
    ax.bar(
        names,
        [pipeline["per_message_us"][n] for n in names],
        color=[_COLOURS.get(n) for n in names],
    )
    ax.set_ylabel("µs per message (lower is better)")
    ax.set_title(f"3. Pipeline: {pipeline['frames']} frames, bytes to events")
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="y", alpha=0.3)


def _loopback(ax: Any, loop: dict[str, Any]) -> None:
    names = list(loop)
    values = [loop[n] / 1000 if isinstance(loop[n], float) else 0.0 for n in names]
    ax.bar(names, values, color=[_COLOURS.get(n) for n in names])
    for x, name in enumerate(names):
        if not isinstance(loop[name], float):
            ax.text(x, 0, "n/a", ha="center", va="bottom")
    ax.set_ylabel("thousand events per CPU second (higher is better)")
    ax.set_title("4. Loopback: fake server to client")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    ax.grid(axis="y", alpha=0.3)


def _latency(ax: Any, latency: dict[str, Any]) -> None:
    clients = {n: r for n, r in latency["clients"].items() if isinstance(r, dict)}
    names = list(clients)
    series: dict[str, list[float | None]] = {
        "p50": [clients[n]["p50_us"] / 1000 for n in names],
        "p99": [clients[n]["p99_us"] / 1000 for n in names],
    }
    _grouped(ax, names, series)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    ax.set_yscale("log")  # the tails are orders of magnitude above the medians
    ax.set_ylabel("ms, server send to client handler (log; lower is better)")
    ax.set_title(f"6. Latency at {latency['rate']:,} events/s")


def _scale(memory_ax: Any, cpu_ax: Any, scale: dict[str, Any]) -> None:
    names = list(scale)
    for ax, key, label in (
        (memory_ax, "kib_per_connection", "KiB RSS per connection"),
        (cpu_ax, "us_per_ping", "CPU µs per keepalive ping"),
    ):
        values = [scale[n].get(key) or 0.0 for n in names]
        ax.bar(names, values, color=[_COLOURS.get(n) for n in names])
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        for x, name in enumerate(names):
            reached = scale[name].get("reached")
            ax.text(
                x,
                values[x],
                f"{reached} conns" if reached else "n/a",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_ylabel(f"{label} (lower is better)")
        ax.set_title(f"5. Scale: idle connections, {label}")
        ax.grid(axis="y", alpha=0.3)
    memory_ax.axhline(30, color="black", linestyle="--", linewidth=0.8)  # the target
