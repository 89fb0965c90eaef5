"""The published example messages of both protocols, as text: one place for every user.

The Mews texts are the "Message" examples of the Connector WebSocket documentation in
its three versions (2017, with the legacy ``Space`` event; 2020, adding ``Resource``
and ``PriceUpdate``; the current one), byte for byte, plus one message from the future
(an unknown event type and a new field) that shows decoding does not break when Mews
adds things. The PlaceOS texts are the JSON examples of the real-time WebSocket
documentation, one per message, with its ``# comments`` removed so that they are valid
JSON and otherwise as published (including the ignore request's ``"index": null`` and
the stringified notify value), and the raw ``ping``/``pong`` frames.

Pure data, importable without any optional dependency: the demo pushes these, the
tests decode them, the fuzzers start from them.
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = [
    "Sample",
    "MEWS_2017",
    "MEWS_2020",
    "MEWS_CURRENT",
    "MEWS_FUTURE",
    "MEWS_MESSAGES",
    "PLACEOS_REQUESTS",
    "PLACEOS_RESPONSES",
    "PLACEOS_MESSAGES",
]


class Sample(NamedTuple):
    """One example message: a short ``name``, a ``label`` for people, the ``text``."""

    name: str
    label: str
    text: str


MEWS_2017: Final = Sample(
    "mews-2017",
    "the 2017 documentation (a legacy Space event)",
    """\
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
""",
)

MEWS_2020: Final = Sample(
    "mews-2020",
    "the 2020 documentation (Resource and PriceUpdate)",
    """\
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
""",
)

MEWS_CURRENT: Final = Sample(
    "mews-current",
    "the current documentation",
    """\
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
""",
)

MEWS_FUTURE: Final = Sample(
    "mews-future",
    "a future message (an unknown event type, a new field)",
    (
        '{"Events": ['
        '{"Type": "PriceUpdate", "Id": "bd75f159-f22a-4685-abdb-aac0008e2af3",'
        ' "RateId": "9c6c0556-42bb-409a-86ca-6ca430773b99"},'
        '{"Type": "Reservation", "Id": "6d1e3c2a-0b7f-4f7e-9a51-2f1f0c3b9e10",'
        ' "State": "Inquired", "StartUtc": "2023-02-01T10:00:00.5+01:00",'
        ' "EndUtc": "2023-02-02T10:00:00Z", "AssignedResourceId": null, "Channel": "Web"},'
        '{"Type": "Invoice", "Id": "0f6a2b1c-9d8e-4f70-8a1b-2c3d4e5f6a7b", "State": "Issued"}'
        "]}"
    ),
)

MEWS_MESSAGES: Final = (MEWS_2017, MEWS_2020, MEWS_CURRENT, MEWS_FUTURE)
"""Every Mews sample, oldest first."""


PLACEOS_REQUESTS: Final[dict[str, str]] = {
    "bind_request": """\
{
  "id": 1,
  "cmd": "bind",
  "sys": "sys-1234",
  "mod": "Bookings",
  "index": 1,
  "name": "bookings"
}
""",
    "debug_request": """\
{
    "id": 4,
    "cmd": "debug",
    "sys": "sys-Z6XXA-Kc_v",
    "mod": "Bookings",
    "index": 1,
    "name": "debug"
}
""",
    "exec_request": """\
{
  "id": 3,
  "cmd": "exec",
  "sys": "sys-1234",
  "mod": "Bookings",
  "index": 1,
  "name": "make_booking",
  "args": [1631058815]
}
""",
    "heartbeat_request": "ping",
    "ignore_request": """\
{
    "id": 5,
    "cmd": "ignore",
    "sys": "sys-Z6XXA-Kc_v",
    "mod": "mod-Z6XXB1doL4",
    "index": null,
    "name": "ignore"
}
""",
    "unbind_request": """\
{
  "id": 2,
  "cmd": "unbind",
  "sys": "sys-1234",
  "mod": "Bookings",
  "index": 1,
  "name": "bookings"
}
""",
}
"""The documented client requests, by name."""


PLACEOS_RESPONSES: Final[dict[str, str]] = {
    "bind_success": """\
{
    "id": 1,
    "type": "success",
    "meta": {
        "sys": "sys-1234",
        "mod": "Bookings",
        "index": 1,
        "name": "bookings"
    }
}
""",
    "debug_message": """\
{
    "type": "debug",
    "mod": "mod-Z6XXB1doL4",
    "klass": "::Some::Display",
    "level": "debug",
    "msg": "input changed to HDMI"
}
""",
    "debug_success": """\
{
    "id": 4,
    "type": "success",
    "mod_id": "mod-Z6XXB1doL4",
    "meta": {
        "sys": "sys-Z6XXA-Kc_v",
        "mod": "Bookings",
        "index": 1
    }
}
""",
    "exec_success": """\
{
    "id": 3,
    "type": "success",
    "meta": {
        "sys": "sys-1234",
        "mod": "Bookings",
        "index": 1,
        "name": "bookings"
    },
    "value": {}
}
""",
    "heartbeat_response": "pong",
    "ignore_success": """\
{
    "id": 5,
    "type": "success"
}
""",
    "notify": """\
{
    "id": 18,
    "type": "notify",
    "value": "[]",
    "meta": {
        "sys": "sys-1234",
        "mod": "Bookings",
        "index": 1,
        "name": "bookings"
    }
}
""",
    "unbind_success": """\
{
    "id": 2,
    "type": "success",
    "meta": {
        "sys": "sys-1234",
        "mod": "Bookings",
        "index": 1,
        "name": "bookings"
    }
}
""",
}
"""The documented server messages (replies, notifications, log lines), by name."""


PLACEOS_MESSAGES: Final[dict[str, str]] = {**PLACEOS_REQUESTS, **PLACEOS_RESPONSES}
"""Every PlaceOS sample, by name."""
