"""The documented Mews example messages (`protocore.samples`) and what they mean.

The texts come from `protocore.samples`, the one copy the demo and the fuzzers use too;
the expected models are written out by hand here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from protocore import samples
from protocore.mews import (
    CommandState,
    DeviceCommandEvent,
    MewsEvent,
    PriceUpdateEvent,
    ReservationEvent,
    ReservationState,
    ResourceEvent,
    ResourceState,
)

COMMAND_ID = "2391a3df-1c61-4131-b6f8-c85b4234adcb"
RESERVATION_ID = "bfee2c44-1f84-4326-a862-5289598f6e2d"
RESOURCE_ID = "5ee074b1-6c86-48e8-915f-c7aa4702086f"
PRICE_UPDATE_ID = "bd75f159-f22a-4685-abdb-aac0008e2af3"
RATE_ID = "9c6c0556-42bb-409a-86ca-6ca430773b99"

#: The documented example messages (2017, 2020, current), as published.
SEED_000 = samples.MEWS_2017.text
SEED_001 = samples.MEWS_2020.text
SEED_002 = samples.MEWS_CURRENT.text

COMMAND = DeviceCommandEvent(COMMAND_ID, CommandState.PENDING)
RESERVATION = ReservationEvent(
    RESERVATION_ID,
    ReservationState.PROCESSED,
    datetime(2016, 2, 20, 13, 0, tzinfo=UTC),
    datetime(2016, 2, 22, 11, 0, tzinfo=UTC),
)
RESOURCE = ResourceEvent(RESOURCE_ID, ResourceState.DIRTY)
LEGACY_SPACE = ResourceEvent(RESOURCE_ID, ResourceState.DIRTY, legacy_space=True)
PRICE_UPDATE = PriceUpdateEvent(
    PRICE_UPDATE_ID,
    start_utc=datetime(2019, 9, 7, 22, 0, tzinfo=UTC),
    end_utc=datetime(2019, 9, 7, 22, 0, tzinfo=UTC),
    rate_id=RATE_ID,
    resource_category_id=None,
)

#: (name, message text, the events it means)
SEEDS: list[tuple[str, str, tuple[MewsEvent, ...]]] = [
    ("000", SEED_000, (COMMAND, RESERVATION, LEGACY_SPACE)),
    ("001", SEED_001, (COMMAND, RESERVATION, RESOURCE, PRICE_UPDATE)),
    ("002", SEED_002, (COMMAND, RESERVATION, RESOURCE, PRICE_UPDATE)),
]
