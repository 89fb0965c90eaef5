"""Hypothesis strategies for the Mews Connector WebSocket: models, wire messages, near misses.

Three layers, from valid to broken:

- `mews_events` / `envelopes`: model objects as an application builds them (they
  encode, and decode back equal).
- `wire_events` / `mews_messages`: wire documents as a server sends them, in the
  current dialect, the legacy one (``Space``, ``AssignedSpaceId``...) or a mix, with
  explicit nulls, offset datetimes and unknown fields; all decode strictly.
- `event_mutations` / `near_mews_messages` / `garbage_mews_messages`: one field off,
  then anything JSON; these decode to an `Envelope` or raise `DecodeError`, never more.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from hypothesis import strategies as st

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
    UnknownEvent,
)

from .values import json_values

__all__ = [
    "MewsDialect",
    "KNOWN_TYPES",
    "KNOWN_FIELDS",
    "utc_datetimes",
    "states",
    "mews_events",
    "envelopes",
    "datetime_texts",
    "wire_events",
    "mews_messages",
    "event_mutations",
    "near_mews_messages",
    "garbage_mews_messages",
]

MewsDialect = Literal["current", "legacy"]
"""``current``: ``Resource``, ``AssignedResourceId``, ``ResourceCategoryId``;
``legacy`` (before 2020-09): ``Space``, ``AssignedSpaceId``, ``SpaceCategoryId``."""

#: Every event ``Type`` the codec knows (others decode to `UnknownEvent`).
KNOWN_TYPES = ("DeviceCommand", "Reservation", "Resource", "Space", "PriceUpdate")
#: Every wire field name the codec reads, in both dialects.
KNOWN_FIELDS = (
    "Type",
    "Id",
    "State",
    "StartUtc",
    "EndUtc",
    "AssignedResourceId",
    "AssignedSpaceId",
    "RateId",
    "ResourceCategoryId",
    "SpaceCategoryId",
)


def _ids() -> st.SearchStrategy[str]:
    return st.text(max_size=40)


def _extras() -> st.SearchStrategy[dict[str, Any]]:
    """Unknown fields, which land in ``extra`` and go back on the wire unchanged."""
    return st.dictionaries(
        st.text(max_size=12).filter(lambda k: k not in KNOWN_FIELDS), json_values(), max_size=3
    )


def utc_datetimes() -> st.SearchStrategy[datetime]:
    """Aware UTC datetimes in the range the wire format can write (years 2-9998)."""
    return st.datetimes(
        min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
    )


def states(enum: type[StrEnum]) -> st.SearchStrategy[str]:
    """A member of ``enum``, or any other string (unknown values are kept as ``str``)."""
    return st.sampled_from(list(enum)) | st.text(max_size=12)


def mews_events() -> st.SearchStrategy[MewsEvent]:
    """Any event model an application can build: each known type (with unknown
    enumeration values and ``extra`` fields) and `UnknownEvent`."""
    optional_ids = st.none() | _ids()
    return st.one_of(
        st.builds(DeviceCommandEvent, _ids(), states(CommandState), extra=_extras()),
        st.builds(
            ReservationEvent,
            _ids(),
            states(ReservationState),
            utc_datetimes(),
            utc_datetimes(),
            optional_ids,
            extra=_extras(),
        ),
        st.builds(
            ResourceEvent,
            _ids(),
            states(ResourceState),
            legacy_space=st.booleans(),
            extra=_extras(),
        ),
        st.builds(
            PriceUpdateEvent,
            _ids(),
            st.none() | utc_datetimes(),
            st.none() | utc_datetimes(),
            optional_ids,
            optional_ids,
            extra=_extras(),
        ),
        st.builds(
            UnknownEvent,
            st.text(max_size=12).filter(lambda t: t not in KNOWN_TYPES),
            st.dictionaries(
                st.text(max_size=8).filter(lambda k: k != "Type"), json_values(), max_size=4
            ),
        ),
    )


def envelopes(max_events: int = 5) -> st.SearchStrategy[Envelope]:
    """Whole messages as models: up to ``max_events`` events and unknown top-level keys."""
    return st.builds(
        Envelope,
        st.lists(mews_events(), max_size=max_events),
        extra=st.dictionaries(
            st.text(max_size=8).filter(lambda k: k != "Events"), json_values(), max_size=2
        ),
    )


@st.composite
def datetime_texts(draw: st.DrawFn) -> str:
    """Every datetime spelling the decoder accepts: ``T``/``t``/space, with or without
    seconds and a 1-9 digit fraction, ``Z``/``z``, no zone, or an offset in three styles."""
    value = draw(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30)))
    sep = draw(st.sampled_from(["T", "t", " "]))
    text = f"{value.year:04d}-{value:%m-%d}{sep}{value:%H:%M}"
    if draw(st.booleans()):
        text += f":{value:%S}"
        if draw(st.booleans()):
            text += draw(st.sampled_from([".", ","])) + draw(
                st.from_regex(r"[0-9]{1,9}", fullmatch=True)
            )
    zone = draw(st.sampled_from(["Z", "z", "", "offset"]))
    if zone == "offset":
        hours, minutes = draw(st.integers(0, 23)), draw(st.integers(0, 59))
        style = draw(st.sampled_from(["{:02d}:{:02d}", "{:02d}{:02d}", "{:02d}"]))
        zone = draw(st.sampled_from("+-")) + style.format(hours, minutes)
    return text + zone


_TYPES: dict[MewsDialect | None, list[str]] = {
    "current": ["DeviceCommand", "Reservation", "Resource", "PriceUpdate", "Other"],
    "legacy": ["DeviceCommand", "Reservation", "Space", "PriceUpdate", "Other"],
    None: ["DeviceCommand", "Reservation", "Resource", "Space", "PriceUpdate", "Other"],
}


@st.composite
def wire_events(draw: st.DrawFn, dialect: MewsDialect | None = None) -> dict[str, Any]:
    """One wire event object (a dict, before JSON) that decodes strictly: a known type
    with every optional field absent, null or set, under the names of ``dialect``
    (None: either, mixed), odd datetimes, unknown fields; or an unknown type."""

    def names(current: str, legacy: str) -> list[str]:
        if dialect is None:
            return [current, legacy]
        return [current if dialect == "current" else legacy]

    def optional(event: dict[str, Any], choices: list[str], values: st.SearchStrategy[Any]) -> None:
        choice = draw(st.sampled_from(["absent", "null", "value"]))
        name = draw(st.sampled_from(choices))
        if choice != "absent":
            event[name] = None if choice == "null" else draw(values)

    kind = draw(st.sampled_from(_TYPES[dialect]))
    event: dict[str, Any] = {
        "Type": kind if kind != "Other" else draw(st.sampled_from(["Bill", "Customer"]))
    }
    event["Id"] = draw(_ids())
    times = datetime_texts()
    if kind == "DeviceCommand":
        event["State"] = draw(states(CommandState))
    elif kind == "Reservation":
        event["State"] = draw(states(ReservationState))
        event["StartUtc"], event["EndUtc"] = draw(times), draw(times)
        optional(event, names("AssignedResourceId", "AssignedSpaceId"), _ids())
    elif kind in ("Resource", "Space"):
        event["State"] = draw(states(ResourceState))
    elif kind == "PriceUpdate":
        optional(event, ["StartUtc"], times)
        optional(event, ["EndUtc"], times)
        optional(event, ["RateId"], _ids())
        optional(event, names("ResourceCategoryId", "SpaceCategoryId"), _ids())
    event.update(draw(_extras()))
    return event


def _document(events: list[Any], extra: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"Events": events, **(extra or {})}, ensure_ascii=False).encode("utf-8")


def mews_messages(
    dialect: MewsDialect | None = None, max_events: int = 6
) -> st.SearchStrategy[bytes]:
    """Whole valid messages as UTF-8 JSON bytes, as a Mews server sends them in
    ``dialect`` (None: both, mixed); each decodes strictly and re-encodes to the same
    JSON document."""
    return st.lists(wire_events(dialect), max_size=max_events).map(_document)


@st.composite
def event_mutations(draw: st.DrawFn) -> dict[str, Any]:
    """A wire event with one known field replaced by anything, dropped, or added: the
    near misses that exercise every check of the decoder."""
    event = draw(wire_events())
    action = draw(st.sampled_from(["none", "replace", "drop", "add"]))
    key = draw(st.sampled_from(KNOWN_FIELDS))
    if action == "replace":
        event[key] = draw(json_values() | datetime_texts() | st.sampled_from(["Pending", "Dirty"]))
    elif action == "drop":
        event.pop(key, None)
    elif action == "add":
        event[key] = draw(json_values() | datetime_texts())
    return event


def near_mews_messages(max_events: int = 4) -> st.SearchStrategy[bytes]:
    """Messages whose envelope is right and whose events are mutated: strict decoding
    raises `DecodeError`, lenient decoding keeps the bad events as `InvalidEvent`."""
    return st.lists(event_mutations() | wire_events(), max_size=max_events).map(_document)


def garbage_mews_messages() -> st.SearchStrategy[bytes]:
    """JSON that is not a Mews message, or barely: any value, objects with or without
    ``Events``, ``Events`` holding anything; decoding gives an `Envelope` or a
    `DecodeError`."""
    return st.one_of(
        json_values(),
        st.dictionaries(st.sampled_from(["Events", "X"]), json_values()),
        st.builds(
            lambda events: {"Events": events},
            st.lists(
                json_values()
                | st.dictionaries(st.sampled_from(KNOWN_FIELDS), json_values() | datetime_texts())
                | event_mutations(),
                max_size=4,
            ),
        ),
    ).map(lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8"))
