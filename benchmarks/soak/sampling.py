"""What the soak samples in each of its processes, and the slopes it fits.

Both processes (the clients', the servers') take their own samples the same way: a
collection, optionally a `malloc_trim`, then RSS, file descriptors, threads,
Python's allocated blocks and the C heap.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import sys
import threading
from array import array
from typing import Any

import attrs

__all__ = ["Memory", "Sample", "Samples", "slope_per_min", "take_sample"]


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


COLUMNS = ("t", "rss", "fds", "threads", "tasks", "blocks", "heap_used", "heap_free")


class Samples:
    """One row per round, in arrays allocated up front: keeping the samples must not
    itself grow the heap the RSS slope measures."""

    def __init__(self, capacity: int) -> None:
        self._size = 0
        self._data = {
            name: array("d" if name == "t" else "q", bytes(8 * capacity)) for name in COLUMNS
        }

    def __len__(self) -> int:
        return self._size

    def add(self, sample: Sample) -> None:
        if self._size == len(self._data["t"]):
            return  # full (a run far longer than planned): keep the first rows
        for name in COLUMNS:
            value = getattr(sample, name)
            self._data[name][self._size] = -1 if value is None else value
        self._size += 1

    def rows(self) -> list[Sample]:
        out = []
        for i in range(self._size):
            row = {name: self._data[name][i] for name in COLUMNS}
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
class Memory:
    """One process's samples and the slopes fitted to them after warm-up."""

    samples: Samples = attrs.field(factory=lambda: Samples(0))
    pid: int = 0
    rss_slope_kib_per_min: float | None = None
    blocks_slope_per_min: float | None = None
    heap_used_slope_kib_per_min: float | None = None
    heap_free_slope_kib_per_min: float | None = None

    def fit(self, warmup: float) -> float:
        """Fit the slopes over the samples from ``warmup`` on; return that window's
        length in seconds."""
        rows = [s for s in self.samples.rows() if s.t >= warmup]
        kib = slope_per_min([(s.t, s.rss) for s in rows])
        self.rss_slope_kib_per_min = None if kib is None else kib / 1024
        self.blocks_slope_per_min = slope_per_min([(s.t, s.blocks) for s in rows])
        if rows and rows[0].heap_used >= 0:
            used = slope_per_min([(s.t, s.heap_used) for s in rows])
            free = slope_per_min([(s.t, s.heap_free) for s in rows])
            self.heap_used_slope_kib_per_min = None if used is None else used / 1024
            self.heap_free_slope_kib_per_min = None if free is None else free / 1024
        return rows[-1].t - rows[0].t if rows else 0.0

    def ranges(self, names: tuple[str, ...], since: float) -> dict[str, tuple[int, int]]:
        after = [s for s in self.samples.rows() if s.t >= since]
        return {
            name: (
                min(getattr(s, name) or 0 for s in after),
                max(getattr(s, name) or 0 for s in after),
            )
            for name in names
            if after
        }

    def as_json(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["samples"] = len(self.samples)
        # One row per round, for a closer look at where memory goes (or levels off).
        out["series"] = {
            "columns": list(COLUMNS),
            "rows": [[getattr(s, name) for name in COLUMNS] for s in self.samples.rows()],
        }
        return out


def take_sample(t: float, tasks: int | None = None, *, trim: bool = False) -> Sample:
    """This process's figures now (after a collection, and a trim if asked)."""
    gc.collect()
    if trim:
        _malloc_trim()
    return Sample(
        t, _rss(), _fds(), threading.active_count(), tasks, sys.getallocatedblocks(), *_c_heap()
    )


def slope_per_min(points: list[tuple[float, int]]) -> float | None:
    """The least-squares slope of ``points`` (seconds, value), per minute."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return None
    cov = sum((t - mean_t) * (r - mean_r) for t, r in points)
    return cov / var * 60


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
