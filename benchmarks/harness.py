"""Interleaved timing: every contender of a case is measured in the same rounds.

A noisy 2-core machine drifts (frequency scaling, other tenants), so timing A for a
while and then B for a while compares two different machines. Instead each round times
every contender for one batch, in a fresh random order, and the result is the median
over rounds of each contender's time per operation; a ratio compares medians taken
from the same rounds, so drift cancels out.

The clock is the thread's CPU time, not the wall clock: on a shared machine the wall
clock also counts the time the scheduler gave to other processes, which has nothing to
do with the code measured (these cases are single-threaded and do no I/O).
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Sequence

import attrs

__all__ = ["Contender", "Result", "compare", "calibrate"]


@attrs.frozen
class Contender:
    """One way of doing the case's work: ``fn()`` does one operation."""

    name: str
    fn: Callable[[], object]


@attrs.frozen
class Result:
    """Median seconds per operation for each contender, from the same rounds."""

    case: str
    per_op: dict[str, float]
    spread: dict[str, float]  # interquartile range / median, a noise gauge
    rounds: int
    batch: int

    def ratio(self, subject: str, baseline: str) -> float:
        """``subject``'s time over ``baseline``'s: below 1 means the subject is faster."""
        return self.per_op[subject] / self.per_op[baseline]


_clock = time.thread_time


def _time_batch(fn: Callable[[], object], batch: int) -> float:
    start = _clock()
    for _ in range(batch):
        fn()
    return _clock() - start


def calibrate(contenders: Sequence[Contender], target: float) -> int:
    """A batch size that makes the slowest contender's batch last about ``target`` seconds."""
    slowest = 0.0
    for contender in contenders:
        n = 1
        while True:
            elapsed = _time_batch(contender.fn, n)
            if elapsed > 0.02 or n >= 1 << 20:
                break
            n *= 4
        slowest = max(slowest, elapsed / n)
    return max(1, int(target / slowest)) if slowest > 0 else 1


def compare(
    case: str,
    contenders: Sequence[Contender],
    *,
    rounds: int = 15,
    batch_seconds: float = 0.05,
    seed: int = 0,
) -> Result:
    """Time every contender in interleaved rounds; see the module docstring."""
    for contender in contenders:  # warm caches, lazy imports and specialisation
        _time_batch(contender.fn, 3)
    batch = calibrate(contenders, batch_seconds)
    samples: dict[str, list[float]] = {c.name: [] for c in contenders}
    order = list(contenders)
    shuffle = random.Random(seed).shuffle
    gc_was_enabled = gc.isenabled()
    try:
        for _ in range(rounds):
            shuffle(order)
            for contender in order:
                gc.collect()
                gc.disable()
                samples[contender.name].append(_time_batch(contender.fn, batch) / batch)
                if gc_was_enabled:
                    gc.enable()
    finally:
        if gc_was_enabled:
            gc.enable()
    per_op = {name: statistics.median(values) for name, values in samples.items()}
    spread = {}
    for name, values in samples.items():
        q = statistics.quantiles(values, n=4) if len(values) >= 4 else [values[0]] * 3
        spread[name] = (q[2] - q[0]) / per_op[name] if per_op[name] else 0.0
    return Result(case=case, per_op=per_op, spread=spread, rounds=rounds, batch=batch)
