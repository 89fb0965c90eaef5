"""What `protocore demo` and `protocore serve` show without any file: seed messages, systems.

The Mews messages are the example messages of the specification's seed documents
(000: 2017, with a legacy ``Space`` event; 001: 2020, ``Resource`` and
``PriceUpdate``; 002: the current documentation), byte for byte, plus one message
from the future (an unknown event type and a new field) to show that decoding does
not break when Mews adds things. They are embedded so the demo never reads files
outside the package.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["MEWS_SEED_MESSAGES", "DEMO_SYSTEMS", "DEMO_SYSTEM", "DEMO_DISPLAY_ID"]

_SEED_000 = """\
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

_SEED_001 = """\
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

_SEED_002 = """\
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

_FUTURE = (
    '{"Events": ['
    '{"Type": "PriceUpdate", "Id": "bd75f159-f22a-4685-abdb-aac0008e2af3",'
    ' "RateId": "9c6c0556-42bb-409a-86ca-6ca430773b99"},'
    '{"Type": "Reservation", "Id": "6d1e3c2a-0b7f-4f7e-9a51-2f1f0c3b9e10",'
    ' "State": "Inquired", "StartUtc": "2023-02-01T10:00:00.5+01:00",'
    ' "EndUtc": "2023-02-02T10:00:00Z", "AssignedResourceId": null, "Channel": "Web"},'
    '{"Type": "Invoice", "Id": "0f6a2b1c-9d8e-4f70-8a1b-2c3d4e5f6a7b", "State": "Issued"}'
    "]}"
)

MEWS_SEED_MESSAGES: Final[tuple[tuple[str, str], ...]] = (
    ("seed 000 (2017: a legacy Space event)", _SEED_000),
    ("seed 001 (2020: Resource and PriceUpdate)", _SEED_001),
    ("seed 002 (current documentation)", _SEED_002),
    ("a future message (an unknown event type, a new field)", _FUTURE),
)
"""(label, message text) pairs: what the demo's fake Mews server pushes."""

DEMO_SYSTEM: Final = "sys-room-1"
DEMO_DISPLAY_ID: Final = "mod-room1-display"

DEMO_SYSTEMS: Final[dict[str, Any]] = {
    "description": "Built-in demo systems (the same format as examples/systems.json).",
    "systems": {
        DEMO_SYSTEM: {
            "name": "Level 3 Meeting Room 1",
            "modules": [
                {
                    "name": "Display",
                    "id": DEMO_DISPLAY_ID,
                    "klass": "::Place::Display::Samsung",
                    "status": {"power": False, "input": "hdmi1", "volume": 30},
                    "methods": {
                        "power": {
                            "params": ["state"],
                            "log": {"level": "info", "message": "power requested: $state"},
                            "sets": {"power": "$state"},
                            "returns": "$state",
                        },
                        "switch_to": {
                            "params": ["input"],
                            "log": "switching input to $input",
                            "sets": {"input": "$input"},
                            "returns": {"input": "$input"},
                        },
                        "volume": {
                            "params": ["level"],
                            "sets": {"volume": "$level"},
                            "returns": "$level",
                        },
                        "firmware_update": {
                            "log": {"level": "error", "message": "firmware update refused"},
                            "raises": "display is in use",
                        },
                    },
                },
                {
                    "name": "Lighting",
                    "id": "mod-room1-lighting",
                    "status": {"level": 80, "scene": "presentation"},
                    "methods": {
                        "trigger": {
                            "params": ["scene"],
                            "sets": {"scene": "$scene"},
                            "returns": "scene $scene",
                        }
                    },
                },
            ],
        }
    },
}
"""The systems `protocore demo` and a `protocore serve placeos` without ``--systems`` serve."""
