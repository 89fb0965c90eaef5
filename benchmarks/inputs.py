"""The messages every case decodes, encodes, frames and sends: one set, built once.

Mews envelopes of 1, 4 and 12 events (a realistic mix: reservations with times and an
assigned resource, resource state changes, device commands, price updates) and four
PlaceOS responses (a small notify, a notify whose value is a bookings list of about
5 KB, an exec success, an error). Everything is deterministic, so two runs compare.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

__all__ = ["MEWS", "PLACEOS", "Message", "mews_envelope", "placeos_messages"]

Message = tuple[str, bytes]  # (name, compact UTF-8 JSON)


def _uuid(n: int) -> str:
    """A fixed UUID-shaped id, distinct per ``n``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"protocore-bench/{n}"))


def _event(n: int) -> dict[str, Any]:
    day = 1 + n % 27
    kind = n % 4
    if kind == 0:
        return {
            "Type": "Reservation",
            "Id": _uuid(n),
            "State": "Confirmed",
            "StartUtc": f"2026-03-{day:02d}T14:00:00Z",
            "EndUtc": f"2026-03-{day + 1:02d}T10:00:00Z",
            "AssignedResourceId": _uuid(n + 1000),
        }
    if kind == 1:
        return {"Type": "Resource", "Id": _uuid(n), "State": "Dirty"}
    if kind == 2:
        return {"Type": "DeviceCommand", "Id": _uuid(n), "State": "Pending"}
    return {
        "Type": "PriceUpdate",
        "Id": _uuid(n),
        "StartUtc": f"2026-03-{day:02d}T00:00:00Z",
        "EndUtc": f"2026-03-{day + 1:02d}T00:00:00Z",
        "RateId": _uuid(n + 2000),
        "ResourceCategoryId": _uuid(n + 3000),
    }


def mews_envelope(count: int) -> bytes:
    """``{"Events": [...]}`` with ``count`` events; the single event is a reservation."""
    events = [_event(n) for n in range(count)]
    return json.dumps({"Events": events}, separators=(",", ":")).encode()


_META = {"sys": "sys-FhAd8Gr3lo", "mod": "Bookings", "index": 1, "name": "bookings"}


def _booking(n: int) -> dict[str, Any]:
    return {
        "id": 1000 + n,
        "title": f"Team sync {n}",
        "booking_start": 1767225600 + 3600 * n,
        "booking_end": 1767229200 + 3600 * n,
        "host": f"user{n}@example.com",
        "attendees": n % 6,
        "checked_in": n % 2 == 0,
    }


def placeos_messages() -> list[Message]:
    """The four PlaceOS responses, as the current server writes them."""
    small = {
        "id": 12,
        "type": "notify",
        "value": True,
        "meta": {"sys": "sys-FhAd8Gr3lo", "mod": "Display", "index": 1, "name": "power"},
    }
    value: list[dict[str, Any]] = []
    bookings = {"id": 13, "type": "notify", "value": value, "meta": _META}
    while len(json.dumps(bookings, separators=(",", ":"))) < 5 * 1024:
        value.append(_booking(len(value)))
    success = {
        "id": 14,
        "type": "success",
        "value": {"volume": 35, "input": "hdmi_1"},
        "meta": {"sys": "sys-FhAd8Gr3lo", "mod": "Display", "index": 1, "name": "switch_to"},
    }
    error = {
        "id": 15,
        "type": "error",
        "error_code": 6,
        "code": 500,
        "msg": "module Display_2 not found in sys-FhAd8Gr3lo",
    }
    pairs = [("notify", small), ("notify_5kb", bookings), ("success", success), ("error", error)]
    return [(name, json.dumps(obj, separators=(",", ":")).encode()) for name, obj in pairs]


MEWS: list[Message] = [(f"mews_{n}", mews_envelope(n)) for n in (1, 4, 12)]
PLACEOS: list[Message] = placeos_messages()
