"""What `protocore serve mews` pushes: messages replayed from a file, or made up.

A replay file holds one Mews message (``{"Events": [...]}``) per line, as
`protocore mews listen` or a capture would give; every line is decoded (strictly)
before the server starts, so a bad file fails at once with the line's number.
Without a file, `generated` makes plausible traffic: reservations moving through
their states, rooms getting dirty and clean, device commands, price updates.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from protocore import DecodeError
from protocore.mews import (
    CommandState,
    DeviceCommandEvent,
    Envelope,
    MewsEvent,
    PriceUpdateEvent,
    ReservationEvent,
    ReservationState,
    ResourceEvent,
    ResourceState,
    decode_envelope,
)

__all__ = ["BadLine", "read_lines", "load_envelopes", "generated"]


class BadLine(Exception):
    """A line of an input file that does not decode: says which line and why."""

    def __init__(self, source: str, number: int, error: DecodeError) -> None:
        super().__init__(f"{source}, line {number}: {error}")
        self.number = number
        self.error = error


def read_lines(data: bytes, source: str) -> Iterator[tuple[int, str | BadLine]]:
    """(line number, text) for every line that is not blank, numbered from 1; a line
    that is not UTF-8 comes as a `BadLine` in place of its text."""
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield (
                number,
                BadLine(source, number, DecodeError(f"not UTF-8 text (byte {exc.start + 1})")),
            )
            continue
        if line.strip():
            yield number, line


def load_envelopes(path: Path) -> list[Envelope]:
    """Every message of a JSON-lines file; `BadLine` at the first that does not decode."""
    envelopes = []
    for number, line in read_lines(path.read_bytes(), str(path)):
        if isinstance(line, BadLine):
            raise line
        try:
            envelopes.append(decode_envelope(line))
        except DecodeError as exc:
            raise BadLine(str(path), number, exc) from None
    if not envelopes:
        raise ValueError(f"{path} holds no messages")
    return envelopes


def _new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class _Hotel:
    """A little state, so that generated events tell a consistent story."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rooms = [_new_id(rng) for _ in range(12)]
        self.rates = [_new_id(rng) for _ in range(3)]
        self.stays: dict[str, tuple[ReservationState, datetime, datetime, str]] = {}
        self.today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def reservation(self) -> ReservationEvent:
        rng = self.rng
        moving = [rid for rid, stay in self.stays.items() if stay[0] in _NEXT_STATE]
        if moving and rng.random() < 0.6:
            rid = rng.choice(moving)
            state, start, end, room = self.stays[rid]
            state = _NEXT_STATE[state]
        else:
            rid = _new_id(rng)
            start = self.today + timedelta(days=rng.randint(0, 30), hours=14)
            end = start + timedelta(days=rng.randint(1, 5), hours=-3)
            room = rng.choice(self.rooms)
            state = ReservationState.CONFIRMED
        if state in {ReservationState.PROCESSED, ReservationState.CANCELED}:
            self.stays.pop(rid, None)
        else:
            self.stays[rid] = (state, start, end, room)
        return ReservationEvent(rid, state, start, end, assigned_resource_id=room)

    def event(self) -> MewsEvent:
        rng = self.rng
        kind = rng.random()
        if kind < 0.45:
            return self.reservation()
        if kind < 0.75:
            state = rng.choice([ResourceState.DIRTY, ResourceState.CLEAN, ResourceState.INSPECTED])
            return ResourceEvent(rng.choice(self.rooms), state)
        if kind < 0.9:
            return DeviceCommandEvent(_new_id(rng), rng.choice(list(CommandState)))
        start = self.today + timedelta(days=rng.randint(0, 60))
        return PriceUpdateEvent(
            _new_id(rng), start, start + timedelta(days=1), rate_id=rng.choice(self.rates)
        )


_NEXT_STATE = {
    ReservationState.CONFIRMED: ReservationState.STARTED,
    ReservationState.STARTED: ReservationState.PROCESSED,
}


def generated(seed: int | None = None) -> Iterator[Envelope]:
    """Endless made-up messages of one to three events (``seed`` for repeatable runs)."""
    hotel = _Hotel(random.Random(seed))  # noqa: S311 - made-up traffic, not secrets
    while True:
        yield Envelope(tuple(hotel.event() for _ in range(hotel.rng.randint(1, 3))))
