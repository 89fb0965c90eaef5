"""The ``fast`` extra's first try at a Mews message: msgspec checks its shape, in C.

msgspec parses the message straight into Structs that admit only the shape Mews sends
today: known ``Type``, current field names, no unknown fields, string ids (null only
where the field is optional), known enumeration values (as their members), datetimes
as strings (the codec then reads them with its canonical-only parser). Anything else
fails here, and the codec decodes the message the ordinary way; so this path decides
nothing, it only skips building dicts that would be thrown away. The same Structs carry
events the other way: msgspec writes them with their wire names, in C. Import fails
without msgspec, which the codec takes as "no first try".
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from .models import CommandState, ReservationState, ResourceState

__all__ = [
    "UNSET",
    "Command",
    "Envelope",
    "PriceUpdate",
    "Reservation",
    "Resource",
    "Space",
    "decode",
    "encode",
    "wire_object",
]


class _Event(
    msgspec.Struct, tag_field="Type", forbid_unknown_fields=True, rename="pascal", gc=False
):
    id: str

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        """Pickles as the wire object it stands for, so unpickling needs no msgspec."""
        return dict, (wire_object(self),)


class Reservation(_Event, tag="Reservation"):
    state: ReservationState
    start_utc: str
    end_utc: str
    assigned_resource_id: str | UnsetType | None = UNSET


class Resource(_Event, tag="Resource"):
    state: ResourceState


class Space(_Event, tag="Space"):
    state: ResourceState


class Command(_Event, tag="DeviceCommand"):
    state: CommandState


class PriceUpdate(_Event, tag="PriceUpdate"):
    start_utc: str | UnsetType | None = UNSET
    end_utc: str | UnsetType | None = UNSET
    rate_id: str | UnsetType | None = UNSET
    resource_category_id: str | UnsetType | None = UNSET


class Envelope(msgspec.Struct, forbid_unknown_fields=True, rename="pascal", gc=False):
    events: list[Reservation | Resource | Space | Command | PriceUpdate]


#: ``decode(data).events``: the Structs; raises (anything) when not in the shape.
decode: Callable[[Any], Envelope] = msgspec.json.Decoder(Envelope).decode

#: ``encode(Envelope(events))``: the codec's fast encoder writes these Structs (built
#: with `UNSET` for each absent field) and wire dicts it has checked; JSON bytes.
encode: Callable[[Any], bytes] = msgspec.json.Encoder().encode


def wire_object(struct: _Event) -> dict[str, Any]:
    """The wire object an event Struct stands for: what it was parsed from.

    The shape has no unknown fields or legacy names, so the wire names and the values
    (enumeration members as their strings, explicit nulls kept) give it back."""
    wire: dict[str, Any] = {"Type": struct.__struct_config__.tag}
    names = zip(struct.__struct_encode_fields__, struct.__struct_fields__, strict=True)
    for key, attr in names:
        value = getattr(struct, attr)
        if value is not UNSET:
            wire[key] = value._value_ if isinstance(value, StrEnum) else value
    return wire
