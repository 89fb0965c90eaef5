"""Sample Mews WebSocket messages: the seed documents' examples and their meaning.

The JSON texts are copied verbatim from the specification's seeds, so tests decode
exactly what Mews documented; the expected models are written out by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime

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

#: The "Message" example of seeds/000_b9681c52b6c1ee81.txt, verbatim.
SEED_000 = """\
{
    "Events": [
        {
            "Type": "DeviceCommand",
            "Id": "2391a3df-1c61-4131-b6f8-c85b4234adcb",
            "State": "Pending"
        },
        {
            "Type": "Reservation",
            "Id": "bfee2c44-1f84-4326-a862-5289598f6e2d",
            "State": "Processed",
            "StartUtc": "2016-02-20T13:00:00Z",
            "EndUtc": "2016-02-22T11:00:00Z"
        },
        {
            "Type": "Space",
            "Id": "5ee074b1-6c86-48e8-915f-c7aa4702086f",
            "State": "Dirty"
        }
    ]
}
"""

#: The "Message" example of seeds/001_017339549bd8a99f.txt, verbatim.
SEED_001 = """\
{
    "Events": [
        {
            "Type": "DeviceCommand",
            "Id": "2391a3df-1c61-4131-b6f8-c85b4234adcb",
            "State": "Pending"
        },
        {
            "Type": "Reservation",
            "Id": "bfee2c44-1f84-4326-a862-5289598f6e2d",
            "State": "Processed",
            "StartUtc": "2016-02-20T13:00:00Z",
            "EndUtc": "2016-02-22T11:00:00Z"
        },
        {
            "Type": "Resource",
            "Id": "5ee074b1-6c86-48e8-915f-c7aa4702086f",
            "State": "Dirty"
        },
        {
            "Type": "PriceUpdate",
            "Id": "bd75f159-f22a-4685-abdb-aac0008e2af3",
            "StartUtc": "2019-09-07T22:00:00Z",
            "EndUtc": "2019-09-07T22:00:00Z",
            "RateId": "9c6c0556-42bb-409a-86ca-6ca430773b99",
            "ResourceCategoryId": null
        }
    ]
}
"""

#: The "Message" example of seeds/002_64411743438a0116.txt, verbatim.
SEED_002 = """\
{
"Events": [
{
"Type": "DeviceCommand",
"Id": "2391a3df-1c61-4131-b6f8-c85b4234adcb",
"State": "Pending"
},
{
"Type": "Reservation",
"Id": "bfee2c44-1f84-4326-a862-5289598f6e2d",
"State": "Processed",
"StartUtc": "2016-02-20T13:00:00Z",
"EndUtc": "2016-02-22T11:00:00Z"
},
{
"Type": "Resource",
"Id": "5ee074b1-6c86-48e8-915f-c7aa4702086f",
"State": "Dirty"
},
{
"Type": "PriceUpdate",
"Id": "bd75f159-f22a-4685-abdb-aac0008e2af3",
"StartUtc": "2019-09-07T22:00:00Z",
"EndUtc": "2019-09-07T22:00:00Z",
"RateId": "9c6c0556-42bb-409a-86ca-6ca430773b99",
"ResourceCategoryId": null
}
]
}
"""

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
