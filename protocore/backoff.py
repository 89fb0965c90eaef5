"""When to reconnect: exponential backoff with full jitter, as a pure policy.

Reconnection is not I/O, so the policy lives in the core and every transport shares
it. Randomness is injected (any ``random.Random``-like object, or a function giving
floats in [0, 1)), so tests are deterministic and no global state is touched.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from .errors import LocalProtocolError

__all__ = ["Backoff"]

_JITTER = random.Random()  # noqa: S311 - jitter, not cryptography
"""The default source of jitter, one for every `Backoff`: a generator's state is
2.5 KiB, which a fleet of idle clients would otherwise pay once each. Not the
`random` module's own state, which the application may have seeded."""


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise LocalProtocolError(f"{attribute.name} must be positive, got {value!r}")


@attrs.define(slots=True)
class Backoff:
    """Delays between reconnection attempts: ``uniform(0, min(cap, base * factor**n))``.

    "Full jitter" (every client picks anywhere in the window) spreads a herd of
    clients that lost the same server, which plain exponential backoff does not.
    ``max_attempts`` (None: forever) bounds how many times `next_delay` answers
    before it returns None, meaning give up. `reset` after a connection that worked.
    """

    base: float = attrs.field(default=0.5, validator=_positive)
    factor: float = attrs.field(default=2.0, validator=_positive)
    cap: float = attrs.field(default=30.0, validator=_positive)
    max_attempts: int | None = None
    jitter: bool = True
    rng: Callable[[], float] = attrs.field(
        default=_JITTER.random,
        repr=False,
    )
    attempts: int = attrs.field(default=0, init=False)

    def next_delay(self) -> float | None:
        """Seconds to wait before the next attempt, or None when attempts are exhausted."""
        if self.max_attempts is not None and self.attempts >= self.max_attempts:
            return None
        # Cap the exponent as well as the result: factor**n overflows a float long
        # before a client gives up trying.
        window = min(self.cap, self.base * self.factor ** min(self.attempts, 64))
        self.attempts += 1
        return window * self.rng() if self.jitter else window

    def reset(self) -> None:
        """Start again from the smallest window (call after a successful connection)."""
        self.attempts = 0
