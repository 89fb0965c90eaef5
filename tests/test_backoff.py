"""The reconnect policy: window growth, cap, full jitter, attempt limit, reset."""

from __future__ import annotations

import random

import pytest

from protocore import LocalProtocolError
from protocore.backoff import Backoff


def test_without_jitter_the_window_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base=0.5, factor=2.0, cap=5.0, jitter=False)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_stays_inside_the_window() -> None:
    backoff = Backoff(base=1.0, factor=2.0, cap=8.0, rng=random.Random(7).random)
    windows = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    delays = [backoff.next_delay() for _ in windows]
    assert all(d is not None and 0.0 <= d < w for d, w in zip(delays, windows, strict=True))
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule


def test_jitter_uses_the_injected_source() -> None:
    backoff = Backoff(base=2.0, cap=10.0, rng=lambda: 0.25)
    assert backoff.next_delay() == 0.5
    assert backoff.next_delay() == 1.0


def test_attempts_run_out_and_reset_starts_over() -> None:
    backoff = Backoff(base=1.0, max_attempts=2, jitter=False)
    assert backoff.next_delay() == 1.0
    assert backoff.next_delay() == 2.0
    assert backoff.next_delay() is None
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_many_attempts_do_not_overflow() -> None:
    backoff = Backoff(cap=30.0, jitter=False)
    backoff.attempts = 10_000
    assert backoff.next_delay() == 30.0


@pytest.mark.parametrize("field", ["base", "factor", "cap"])
def test_non_positive_settings_are_refused(field: str) -> None:
    with pytest.raises(LocalProtocolError, match=field):
        Backoff(**{field: 0.0})  # type: ignore[arg-type]
