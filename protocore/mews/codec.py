"""Mews codec: wire JSON to `Envelope` and back.

Decoding has two paths over the same parsed JSON:

- The **fast path** handles the shape Mews sends today (known ``Type``, current field
  names, no unknown fields, canonical ``...Z`` datetimes, known enumeration values). It
  does cheap type checks only, builds no messages and may fail with any exception.
  Instances are built through "twin" classes (same slots, plain ``__init__``) whose
  objects are then re-classed as the attrs model: attrs' frozen ``__init__`` costs
  about four times as much, and it dominated the decode time.
- The **precise path** runs for an event only when the fast path gave up on it. It is
  table-driven, handles every dialect (legacy names, offsets, unknown fields and
  values) and is the only source of errors: a `DecodeError` whose path is spelled as
  on the wire (``Events[2].StartUtc``). Wherever the fast path succeeds, the precise
  path gives an equal result (a property test checks this).

Both paths store the wire object in the event's private ``_raw`` field; the encoder
reads it back to reproduce legacy names, explicit nulls and unchanged datetime texts.
With the ``fast`` extra, a **shaped path** runs first: msgspec parses the message into
Structs that admit only the fast path's shape, and the models are built from those
(see `_shape`), each keeping its Struct as its wire object; anything else goes the two
ways above, so it decides nothing.

Encoding mirrors decoding: a fast encoder per event class (an unchanged decoded event
gives back its wire object; a built one is written directly), and the precise,
schema-driven one for everything else and for every error.

The hooks are registered in two cattrs converters, `decoder` and `encoder` (one per
direction, as for every protocol here), so single events can be converted with
``decoder.structure(obj, ReservationEvent)`` or ``encoder.unstructure(event)``.
`decode_envelope` and `encode_envelope` call the same hooks without the dispatch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

import cattrs

from protocore import _json
from protocore.errors import DecodeError, EncodeError

from ._datetimes import format_datetime, parse_datetime
from ._describe import describe
from .models import (
    EMPTY,
    CommandState,
    DeviceCommandEvent,
    Envelope,
    InvalidEvent,
    MewsEvent,
    PriceUpdateEvent,
    ReservationEvent,
    ReservationState,
    ResourceEvent,
    ResourceState,
    UnknownEvent,
)

__all__ = ["decode_envelope", "encode_envelope", "decoder", "encoder"]

_MISSING: Any = object()

_DATA_TYPES = (bytes, str, bytearray, memoryview)

#: Prefix of the reason when the decoder itself failed; tests assert it never shows.
DECODER_BUG = "internal decoder error"


# --------------------------------------------------------------------------- decoding


def decode_envelope(
    data: bytes | bytearray | memoryview | str,
    *,
    max_size: int | None = None,
    lenient: bool = False,
) -> Envelope:
    """Decode one WebSocket message into an `Envelope`.

    Every failure is a `DecodeError` naming where (``Events[2].StartUtc``) and what was
    expected. With ``lenient=True``, an event object that fails its type's schema
    becomes an `InvalidEvent` in place (so one bad event does not cost the good ones);
    a message that is not JSON, not an object, lacks ``Events`` or holds a non-object
    event still raises. ``max_size`` bounds the message length before parsing.
    """
    if not isinstance(data, _DATA_TYPES):
        raise DecodeError(f"expected a message as bytes or str, got {type(data).__name__}")
    if (
        _shape is not None
        and _json.BACKEND == "orjson"
        and (max_size is None or len(data) <= max_size)
    ):
        try:  # the fast extra's first try; on any doubt the ordinary way decides
            return _from_shape(_shape.decode(data).events)
        except Exception:  # noqa: S110 - not in the shape: decode it the ordinary way
            pass
    obj = _json.loads(data, max_size=max_size)
    try:
        return _structure_envelope(obj, lenient)
    except DecodeError:
        raise
    except Exception as exc:  # a bug here must still reach the caller as a DecodeError
        raise DecodeError(f"{DECODER_BUG}: {type(exc).__name__}") from exc


def _structure_envelope(obj: Any, lenient: bool) -> Envelope:
    if type(obj) is not dict:
        raise DecodeError(f"expected an object with an Events array, got {describe(obj)}")
    events = obj.get("Events", _MISSING)
    if type(events) is not list:
        if events is _MISSING:
            raise DecodeError("missing required field", "Events")
        raise DecodeError(f"expected an array of events, got {describe(events)}", "Events")
    decoded: list[MewsEvent] = []
    append = decoded.append
    fast = _FAST
    for raw in events:
        try:
            append(fast[raw["Type"]](raw))
        except Exception:  # any failure: ask the precise path
            append(_slow_event(raw, len(decoded), lenient))
    if len(obj) == 1:
        envelope = _EnvelopeTwin()
        envelope.events = tuple(decoded)
        envelope.extra = EMPTY
        envelope.__class__ = Envelope  # type: ignore[assignment]
        return envelope  # type: ignore[return-value]
    extra = {key: value for key, value in obj.items() if key != "Events"}
    return Envelope(decoded, extra=extra)


def _slow_event(raw: Any, index: int, lenient: bool) -> MewsEvent:
    try:
        return _decode_event(raw, f"Events[{index}]")
    except DecodeError as error:
        if not lenient or type(raw) is not dict:
            raise
        kind = raw.get("Type")
        return InvalidEvent(kind if type(kind) is str else None, raw, error)


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _decode_event(raw: Any, path: str) -> MewsEvent:
    """The precise path for one event: every dialect, every error with its path."""
    if type(raw) is not dict:
        raise DecodeError(f"expected an event object, got {describe(raw)}", path)
    kind = raw.get("Type", _MISSING)
    if kind is _MISSING:
        raise DecodeError("missing required field", _at(path, "Type"))
    if type(kind) is not str:
        raise DecodeError(
            f"expected a string naming the event type, got {describe(kind)}", _at(path, "Type")
        )
    schema = _SCHEMAS.get(kind)
    if schema is None:
        return UnknownEvent(kind, {key: value for key, value in raw.items() if key != "Type"})
    values: dict[str, Any] = dict(schema.fixed)
    used = {"Type"}
    for field in schema.fields:
        key = field.wire
        if key not in raw:
            if field.legacy is not None and field.legacy in raw:
                key = field.legacy
            elif field.required:
                raise DecodeError("missing required field", _at(path, key))
            else:
                continue
        used.add(key)
        value = raw[key]
        if value is None and not field.required:
            continue  # an explicit null equals a missing optional field
        try:
            values[field.attr] = field.parse(value)
        except DecodeError as error:
            raise error.under(_at(path, key)) from None
    if len(used) != len(raw):
        values["extra"] = {key: value for key, value in raw.items() if key not in used}
    return schema.cls(**values, _raw=raw)  # type: ignore[call-arg]


def _string(value: object) -> str:
    if isinstance(value, str):
        return value
    raise DecodeError(f"expected a string, got {describe(value)}")


def _enum_parser(enum: type[StrEnum]) -> Callable[[object], str]:
    members: dict[str, str] = {member.value: member for member in enum}
    known = ", ".join(members)

    def parse(value: object) -> str:
        if isinstance(value, str):
            return members.get(value, value)  # unknown values stay plain strings
        raise DecodeError(f"expected a {enum.__name__} string ({known}), got {describe(value)}")

    return parse


# ----------------------------------------------------------------------------- schemas


class _Field(NamedTuple):
    """One wire field: its names (current and pre-2020 legacy), attribute and codecs."""

    wire: str
    attr: str
    parse: Callable[[object], Any]
    encode: Callable[[Any, object], Any]
    required: bool = True
    legacy: str | None = None


class _Schema(NamedTuple):
    cls: type[MewsEvent]
    fields: tuple[_Field, ...]
    fixed: Mapping[str, Any] = EMPTY


def _encode_string(value: Any, wire: object) -> str:
    if isinstance(value, str):
        return value
    raise EncodeError(f"expected a string, got {type(value).__name__}")


def _encode_datetime(value: Any, wire: object) -> str:
    """Canonical text, unless the wire text it was decoded from still means the same."""
    if type(wire) is str and _TIMES.get(wire) == value:
        return wire  # decoded by the fast path and unchanged: no need to format it
    text = format_datetime(value)
    if type(wire) is str and wire != text:
        try:
            if parse_datetime(wire) == value:
                return wire
        except DecodeError:
            pass
    return text


def _id() -> _Field:
    return _Field("Id", "id", _string, _encode_string)


def _state(enum: type[StrEnum]) -> _Field:
    return _Field("State", "state", _enum_parser(enum), _encode_string)


def _time(wire: str, attr: str, *, required: bool) -> _Field:
    return _Field(wire, attr, parse_datetime, _encode_datetime, required)


def _optional_id(wire: str, attr: str, legacy: str) -> _Field:
    return _Field(wire, attr, _string, _encode_string, required=False, legacy=legacy)


_COMMAND_SCHEMA = _Schema(DeviceCommandEvent, (_id(), _state(CommandState)))
_RESERVATION_SCHEMA = _Schema(
    ReservationEvent,
    (
        _id(),
        _state(ReservationState),
        _time("StartUtc", "start_utc", required=True),
        _time("EndUtc", "end_utc", required=True),
        _optional_id("AssignedResourceId", "assigned_resource_id", "AssignedSpaceId"),
    ),
)
_RESOURCE_SCHEMA = _Schema(ResourceEvent, (_id(), _state(ResourceState)))
_SPACE_SCHEMA = _RESOURCE_SCHEMA._replace(fixed={"legacy_space": True})
_PRICE_SCHEMA = _Schema(
    PriceUpdateEvent,
    (
        _id(),
        _time("StartUtc", "start_utc", required=False),
        _time("EndUtc", "end_utc", required=False),
        _Field("RateId", "rate_id", _string, _encode_string, required=False),
        _optional_id("ResourceCategoryId", "resource_category_id", "SpaceCategoryId"),
    ),
)

_SCHEMAS: dict[str, _Schema] = {
    "DeviceCommand": _COMMAND_SCHEMA,
    "Reservation": _RESERVATION_SCHEMA,
    "Resource": _RESOURCE_SCHEMA,
    "Space": _SPACE_SCHEMA,
    "PriceUpdate": _PRICE_SCHEMA,
}


# --------------------------------------------------------------------------- fast path
#
# Each twin has exactly its model's slots. The fast functions fill every slot of a
# twin, then turn it into the model (``__class__`` assignment is allowed between
# classes of identical layout; the models have no ``__weakref__`` slot for that
# reason). The result is indistinguishable from one made by the model's ``__init__``;
# a test checks every slot is filled. Everything is inlined: on this path a function
# call costs as much as a datetime parse.


class _Slow(Exception):
    """The fast path declines this event; the precise path takes it."""


class _CommandTwin(MewsEvent):
    __slots__ = DeviceCommandEvent.__slots__
    id: str
    state: str
    extra: Mapping[str, Any]
    _raw: object


class _ReservationTwin(MewsEvent):
    __slots__ = ReservationEvent.__slots__
    id: str
    state: str
    start_utc: datetime
    end_utc: datetime
    assigned_resource_id: str | None
    extra: Mapping[str, Any]
    _raw: object


class _ResourceTwin(MewsEvent):
    __slots__ = ResourceEvent.__slots__
    id: str
    state: str
    legacy_space: bool
    extra: Mapping[str, Any]
    _raw: object


class _PriceUpdateTwin(MewsEvent):
    __slots__ = PriceUpdateEvent.__slots__
    id: str
    start_utc: datetime | None
    end_utc: datetime | None
    rate_id: str | None
    resource_category_id: str | None
    extra: Mapping[str, Any]
    _raw: object


class _EnvelopeTwin:
    __slots__ = Envelope.__slots__
    events: tuple[MewsEvent, ...]
    extra: Mapping[str, Any]


_COMMAND_STATES: dict[str, str] = {member.value: member for member in CommandState}
_RESERVATION_STATES: dict[str, str] = {member.value: member for member in ReservationState}
_RESOURCE_STATES: dict[str, str] = {member.value: member for member in ResourceState}

# Canonical datetimes (``2016-02-20T13:00:00Z``) are memoised: Mews times cluster
# (arrivals and departures on the hour, price updates on day boundaries), so a burst
# of events repeats a few texts, and a dict lookup costs a fifth of a parse. Values
# are immutable; the table is emptied when full, so it stays small.
_TIMES: dict[str, datetime] = {}
_TIMES_MAX = 1024
_fromisoformat = datetime.fromisoformat


def _canonical_time(text: str) -> datetime:
    """Parse and remember a canonical datetime; raise on anything else.

    The checks pin the length and every separator, which tells the canonical form from
    the others fromisoformat would take (week dates, basic format, any separator,
    ``hh:mm.ff``); it then checks the digits and ranges. Offsets, fractions, lower
    case: the precise path.
    """
    if (
        len(text) != 20
        or text[19] != "Z"
        or text[10] != "T"
        or text[16] != ":"
        or text[13] != ":"
        or text[7] != "-"
        or text[4] != "-"
    ):
        raise _Slow
    value = _fromisoformat(text)
    if len(_TIMES) >= _TIMES_MAX:
        _TIMES.clear()
    _TIMES[text] = value
    return value


def _fast_command(raw: dict[str, Any]) -> MewsEvent:
    id_ = raw["Id"]
    if type(id_) is not str or len(raw) != 3:
        raise _Slow
    event = _CommandTwin()
    event.id = id_
    event.state = _COMMAND_STATES[raw["State"]]
    event.extra = EMPTY
    event._raw = raw
    event.__class__ = DeviceCommandEvent  # type: ignore[assignment]
    return event


def _fast_reservation(raw: dict[str, Any]) -> MewsEvent:
    id_ = raw["Id"]
    start = raw["StartUtc"]
    end = raw["EndUtc"]
    size = len(raw)
    if size == 5:
        assigned = None
    elif size == 6:
        assigned = raw["AssignedResourceId"]
        if assigned is not None and type(assigned) is not str:
            raise _Slow
    else:
        raise _Slow
    if type(id_) is not str:
        raise _Slow
    event = _ReservationTwin()
    event.id = id_
    event.state = _RESERVATION_STATES[raw["State"]]
    event.start_utc = _TIMES.get(start) or _canonical_time(start)
    event.end_utc = _TIMES.get(end) or _canonical_time(end)
    event.assigned_resource_id = assigned
    event.extra = EMPTY
    event._raw = raw
    event.__class__ = ReservationEvent  # type: ignore[assignment]
    return event


def _fast_resource(raw: dict[str, Any]) -> MewsEvent:
    id_ = raw["Id"]
    if type(id_) is not str or len(raw) != 3:
        raise _Slow
    event = _ResourceTwin()
    event.id = id_
    event.state = _RESOURCE_STATES[raw["State"]]
    event.legacy_space = raw["Type"] == "Space"
    event.extra = EMPTY
    event._raw = raw
    event.__class__ = ResourceEvent  # type: ignore[assignment]
    return event


def _fast_price_update(raw: dict[str, Any]) -> MewsEvent:
    id_ = raw["Id"]
    if type(id_) is not str:
        raise _Slow
    event = _PriceUpdateTwin()
    size = 2
    start = raw.get("StartUtc", _MISSING)
    if start is _MISSING or start is None:
        event.start_utc = None
    else:
        event.start_utc = _TIMES.get(start) or _canonical_time(start)
    if start is not _MISSING:
        size += 1
    end = raw.get("EndUtc", _MISSING)
    if end is _MISSING or end is None:
        event.end_utc = None
    else:
        event.end_utc = _TIMES.get(end) or _canonical_time(end)
    if end is not _MISSING:
        size += 1
    rate = raw.get("RateId", _MISSING)
    if rate is not _MISSING:
        size += 1
        if rate is not None and type(rate) is not str:
            raise _Slow
    category = raw.get("ResourceCategoryId", _MISSING)
    if category is not _MISSING:
        size += 1
        if category is not None and type(category) is not str:
            raise _Slow
    if size != len(raw):
        raise _Slow
    event.id = id_
    event.rate_id = None if rate is _MISSING else rate
    event.resource_category_id = None if category is _MISSING else category
    event.extra = EMPTY
    event._raw = raw
    event.__class__ = PriceUpdateEvent  # type: ignore[assignment]
    return event


_FAST: dict[str, Callable[[dict[str, Any]], MewsEvent]] = {
    "DeviceCommand": _fast_command,
    "Reservation": _fast_reservation,
    "Resource": _fast_resource,
    "Space": _fast_resource,
    "PriceUpdate": _fast_price_update,
}


# ------------------------------------------------------------------ the shaped path
#
# With the fast extra (msgspec, and orjson as the backend), `_shape` first parses the
# message into Structs that admit only the fast path's shape (see there). They become
# models through the same twins; datetimes through the same canonical-only reader,
# which declines (and so sends the message the ordinary way) on any other form. Such
# an event keeps its Struct as its wire object (``_raw``): while the event is unchanged,
# the encoder hands msgspec that Struct again, explicit nulls included, instead of
# building a new one; the precise encoder reads it as the dict it stands for
# (`_shape.wire_object`).

_shape: Any
try:
    from . import _shape
except ImportError:  # pragma: no cover - the fast extra is not installed
    _shape = None


def _from_shape(structs: list[Any]) -> Envelope:
    """The envelope of `_shape`'s Structs; raises `_Slow` for a non-canonical datetime.

    One loop, inlined (a call per event costs as much as building the event)."""
    decoded: list[MewsEvent] = []
    append = decoded.append
    times = _TIMES
    unset = _UNSET
    for s in structs:
        cls = s.__class__
        if cls is _Reservation:
            start = s.start_utc
            end = s.end_utc
            assigned = s.assigned_resource_id
            event: Any = _ReservationTwin()
            event.id = s.id
            event.state = s.state
            event.start_utc = times.get(start) or _canonical_time(start)
            event.end_utc = times.get(end) or _canonical_time(end)
            event.assigned_resource_id = None if assigned is unset else assigned
            event.extra = EMPTY
            event._raw = s
            event.__class__ = ReservationEvent
        elif cls is _Resource or cls is _Space:
            event = _ResourceTwin()
            event.id = s.id
            event.state = s.state
            event.legacy_space = cls is _Space
            event.extra = EMPTY
            event._raw = s
            event.__class__ = ResourceEvent
        elif cls is _Command:
            event = _CommandTwin()
            event.id = s.id
            event.state = s.state
            event.extra = EMPTY
            event._raw = s
            event.__class__ = DeviceCommandEvent
        else:
            start = s.start_utc
            end = s.end_utc
            rate = s.rate_id
            category = s.resource_category_id
            event = _PriceUpdateTwin()
            event.id = s.id
            # absent and null alike are None: neither is in `times`
            event.start_utc = times.get(start) or (
                None if start is unset or start is None else _canonical_time(start)
            )
            event.end_utc = times.get(end) or (
                None if end is unset or end is None else _canonical_time(end)
            )
            event.rate_id = None if rate is unset else rate
            event.resource_category_id = None if category is unset else category
            event.extra = EMPTY
            event._raw = s
            event.__class__ = PriceUpdateEvent
        append(event)
    envelope: Any = _EnvelopeTwin()
    envelope.events = tuple(decoded)
    envelope.extra = EMPTY
    envelope.__class__ = Envelope
    return envelope  # type: ignore[no-any-return]


_UNSET: Any = object()
_Reservation: Any = _UNSET
_Resource: Any = _UNSET
_Space: Any = _UNSET
_Command: Any = _UNSET
_PriceUpdate: Any = _UNSET
if _shape is not None:
    _UNSET = _shape.UNSET
    _Reservation = _shape.Reservation
    _Resource = _shape.Resource
    _Space = _shape.Space
    _Command = _shape.Command
    _PriceUpdate = _shape.PriceUpdate
_SHAPE_EVENTS = frozenset((_Reservation, _Resource, _Space, _Command, _PriceUpdate))


# --------------------------------------------------------------------------- encoding


def encode_envelope(envelope: Envelope) -> bytes:
    """Encode an `Envelope` as one JSON message (UTF-8 bytes).

    A decoded envelope re-encodes to the same JSON document it came from: legacy names,
    explicit nulls, datetime texts and unknown fields included. Values set by the
    application are written in the current dialect (``Resource``, ``AssignedResourceId``,
    ``YYYY-MM-DDThh:mm:ssZ``). Values that cannot be put on the wire (a naive datetime,
    a number as an id) raise `EncodeError`.
    """
    try:  # every event in the fast encoder's shape: one loop
        if type(envelope) is not Envelope or envelope.extra is not EMPTY:
            raise _Slow
        if _STRUCT_WRITERS is not None and _json.BACKEND == "orjson":
            out: bytes = _shape.encode(
                _shape.Envelope(_fast_wire(envelope.events, _STRUCT_WRITERS))
            )
            return out
        wire = {"Events": _fast_wire(envelope.events, _DICT_WRITERS)}
    except Exception:  # anything else: event by event, with the precise errors
        return _json.dumps(_unstructure_envelope(envelope, share=True))
    return _json.dumps_floatless(wire)  # the fast encoders write strings and nulls only


def _unstructure_envelope(envelope: Envelope, share: bool = False) -> dict[str, Any]:
    if not isinstance(envelope, Envelope):
        raise EncodeError(f"expected an Envelope, got {type(envelope).__name__}")
    wire: dict[str, Any] = {
        "Events": [_wire_event(event, i, share) for i, event in enumerate(envelope.events)]
    }
    for key, value in envelope.extra.items():
        wire.setdefault(key, value)
    return wire


def _wire_event(event: MewsEvent, index: int | None, share: bool) -> dict[str, Any]:
    """The fast encoder where it accepts the event, the precise one otherwise.

    A fast encoder may hand back the event's own wire object: ``share`` says the
    caller only serialises the result, so it need not be copied."""
    try:
        wire: dict[str, Any] = _fast_wire((event,), _DICT_WRITERS)[0]
    except Exception:  # any doubt: the precise encoder decides, and names the field
        return _unstructure_at(event, "" if index is None else f"Events[{index}]")
    if not share and wire is event._raw:  # type: ignore[attr-defined]
        return dict(wire)
    return wire


def _unstructure_event(event: MewsEvent) -> dict[str, Any]:
    return _wire_event(event, None, share=False)


def _unstructure_at(event: MewsEvent, path: str) -> dict[str, Any]:
    if isinstance(event, UnknownEvent):
        wire = {"Type": _encoded(_encode_string, event.type, None, _at(path, "Type"))}
        wire.update((key, value) for key, value in event.fields.items() if key != "Type")
        return wire
    if isinstance(event, InvalidEvent):
        return dict(event.fields)
    schema = _ENCODE_SCHEMAS.get(type(event))
    if schema is None:
        schema = next((s for c, s in _ENCODE_SCHEMAS.items() if isinstance(event, c)), None)
        if schema is None:
            where = f"{path}: " if path else ""
            raise EncodeError(f"{where}expected a MewsEvent, got {type(event).__name__}")
    kind = schema.cls.TYPE
    if isinstance(event, ResourceEvent) and event.legacy_space:
        kind = "Space"
    raw = _raw_mapping(event)
    wire = {"Type": kind}
    for field in schema.fields:
        key = field.wire
        if field.legacy is not None and key not in raw and field.legacy in raw:
            key = field.legacy  # it arrived under its legacy name: keep that name
        value = getattr(event, field.attr)
        if value is None:
            if field.required:
                raise EncodeError(f"{_at(path, key)}: required, got None")
            if key in raw and raw[key] is None:
                wire[key] = None  # it arrived as an explicit null
            continue
        try:
            wire[key] = field.encode(value, raw.get(key))
        except EncodeError as error:  # _encoded, inlined: the path is built only here
            raise EncodeError(f"{_at(path, key)}: {error}") from None
    extra = event.extra  # type: ignore[attr-defined]
    if extra is not EMPTY:
        for key, value in extra.items():
            wire.setdefault(key, value)  # an unknown field never overrides a known one
    return wire


def _raw_mapping(event: MewsEvent) -> Mapping[str, Any]:
    """The wire object the event was decoded from, as a mapping (empty if none)."""
    raw = getattr(event, "_raw", None)
    if isinstance(raw, Mapping):
        return raw
    if raw is not None and raw.__class__ in _SHAPE_EVENTS:
        wire: dict[str, Any] = _shape.wire_object(raw)
        return wire
    return EMPTY


def _encoded(encode: Callable[[Any, object], Any], value: Any, wire: object, path: str) -> Any:
    try:
        return encode(value, wire)
    except EncodeError as error:
        raise EncodeError(f"{path}: {error}") from None


_ENCODE_SCHEMAS: dict[type[MewsEvent], _Schema] = {
    DeviceCommandEvent: _COMMAND_SCHEMA,
    ReservationEvent: _RESERVATION_SCHEMA,
    ResourceEvent: _RESOURCE_SCHEMA,
    PriceUpdateEvent: _PRICE_SCHEMA,
}


# ---------------------------------------------------------------------- fast encoding
#
# One loop over the events, the mirror of the fast decoders: plain attribute reads and
# exact ``type() is`` checks, giving up (by any exception) on anything unusual, which
# `_unstructure_at` then encodes or refuses with its path. Two cases are fast:
#
# - a decoded event still equal to the wire object it came from, in the fast path's
#   shape: the wire object itself is the answer (identity checks prove it unchanged:
#   the fast decoders stored the very strings, enumeration members and memoised
#   datetimes they read). The shaped path's wire object is its Struct, which goes to
#   msgspec again as it is (or, when the writers make dicts, as the dict it stands
#   for);
# - an event without a wire object (built by the application) and without ``extra``:
#   its fields go to a writer (`_Writers`), datetimes through a memo of their
#   canonical texts.
#
# The writers make dicts; with the fast extra and orjson as the backend, they are
# `_shape`'s Structs instead, which msgspec writes in C with their wire names (about
# half the cost of building dicts and writing those). Either way the result holds
# strings and nulls only, so it needs no scan for NaN. Tests check that both give,
# byte for byte, what the precise encoder gives.

# The canonical text of each UTC datetime encoded lately; bounded like _TIMES. Only
# `_utc_text` adds to it, and only UTC datetimes of the exact class, so a hit is the
# text the precise encoder writes (equal datetimes are the same instant).
_TEXTS: dict[datetime, str] = {}


def _utc_text(value: datetime) -> str:
    if value.__class__ is not datetime or value.tzinfo is not UTC:
        raise _Slow  # naive, another zone or a subclass: the precise encoder decides
    text = _TEXTS.get(value)
    if text is None:
        text = format_datetime(value)
        if len(_TEXTS) >= _TIMES_MAX:
            _TEXTS.clear()
        _TEXTS[value] = text
    return text


class _Writers(NamedTuple):
    """How `_fast_wire` writes an event built without a wire object: one callable per
    wire type, taking the wire fields in order (`_OMIT` for an absent one)."""

    reservation: Callable[[str, str, str, str, Any], Any]
    resource: Callable[[str, str], Any]
    space: Callable[[str, str], Any]
    command: Callable[[str, str], Any]
    price_update: Callable[[str, Any, Any, Any, Any], Any]


_OMIT: Any = _UNSET  # msgspec's UNSET when installed: a Struct field it leaves out


def _reservation_dict(id_: str, state: str, start: str, end: str, assigned: Any) -> Any:
    wire = {"Type": "Reservation", "Id": id_, "State": state, "StartUtc": start, "EndUtc": end}
    if assigned is not _OMIT:
        wire["AssignedResourceId"] = assigned
    return wire


def _price_update_dict(id_: str, start: Any, end: Any, rate: Any, category: Any) -> Any:
    wire = {"Type": "PriceUpdate", "Id": id_}
    if start is not _OMIT:
        wire["StartUtc"] = start
    if end is not _OMIT:
        wire["EndUtc"] = end
    if rate is not _OMIT:
        wire["RateId"] = rate
    if category is not _OMIT:
        wire["ResourceCategoryId"] = category
    return wire


_DICT_WRITERS = _Writers(
    _reservation_dict,
    lambda id_, state: {"Type": "Resource", "Id": id_, "State": state},
    lambda id_, state: {"Type": "Space", "Id": id_, "State": state},
    lambda id_, state: {"Type": "DeviceCommand", "Id": id_, "State": state},
    _price_update_dict,
)
_STRUCT_WRITERS: _Writers | None = None
if _shape is not None:
    _STRUCT_WRITERS = _Writers(
        _shape.Reservation, _shape.Resource, _shape.Space, _shape.Command, _shape.PriceUpdate
    )


def _fast_wire(events: Iterable[MewsEvent], writers: _Writers) -> list[Any]:
    """The wire object of each event; raises (anything) where one is not in the shape."""
    write_reservation, write_resource, write_space, write_command, write_price = writers
    structs = writers is not _DICT_WRITERS  # a `_shape` Struct may go out as it is
    omit = _OMIT
    out: list[Any] = []
    append = out.append
    texts = _TEXTS
    times = _TIMES
    e: Any
    for e in events:
        # Each class reads its own slots, so that every attribute read stays specialised
        # to one class (a read shared by all four falls back to the generic lookup).
        cls = type(e)
        if cls is ReservationEvent:
            raw = e._raw
            if e.extra is not EMPTY:
                raise _Slow
            id_ = e.id
            state = e.state
            start = e.start_utc
            end = e.end_utc
            assigned = e.assigned_resource_id
            if raw is None:
                if (
                    type(id_) is not str
                    or not (type(state) is ReservationState or type(state) is str)
                    or not (assigned is None or type(assigned) is str)
                ):
                    raise _Slow
                append(
                    write_reservation(
                        id_,
                        state,
                        texts.get(start) or _utc_text(start),
                        texts.get(end) or _utc_text(end),
                        omit if assigned is None else assigned,
                    )
                )
            elif raw.__class__ is _Reservation:
                wired = raw.assigned_resource_id
                if not (
                    raw.id is id_
                    and raw.state is state
                    and times.get(raw.start_utc) is start
                    and times.get(raw.end_utc) is end
                    and (wired is assigned or (wired is omit and assigned is None))
                ):
                    raise _Slow
                append(raw if structs else _shape.wire_object(raw))
            elif (
                raw["Id"] is id_
                and _RESERVATION_STATES.get(raw["State"]) is state
                and times.get(raw["StartUtc"]) is start
                and times.get(raw["EndUtc"]) is end
                and raw.get("AssignedResourceId") is assigned
                and len(raw) == (6 if "AssignedResourceId" in raw else 5)
                and raw["Type"] == "Reservation"
            ):
                append(raw)
            else:
                raise _Slow
        elif cls is ResourceEvent:
            raw = e._raw
            if e.extra is not EMPTY:
                raise _Slow
            id_ = e.id
            state = e.state
            space = e.legacy_space
            if raw is None:
                if type(id_) is not str or not (type(state) is ResourceState or type(state) is str):
                    raise _Slow
                append(write_space(id_, state) if space else write_resource(id_, state))
            elif raw.__class__ is (_Space if space else _Resource):
                if raw.id is not id_ or raw.state is not state:
                    raise _Slow
                append(raw if structs else _shape.wire_object(raw))
            elif (
                raw["Id"] is id_
                and _RESOURCE_STATES.get(raw["State"]) is state
                and len(raw) == 3
                and raw["Type"] == ("Space" if space else "Resource")
            ):
                append(raw)
            else:
                raise _Slow
        elif cls is DeviceCommandEvent:
            raw = e._raw
            if e.extra is not EMPTY:
                raise _Slow
            id_ = e.id
            state = e.state
            if raw is None:
                if type(id_) is not str or not (type(state) is CommandState or type(state) is str):
                    raise _Slow
                append(write_command(id_, state))
            elif raw.__class__ is _Command:
                if raw.id is not id_ or raw.state is not state:
                    raise _Slow
                append(raw if structs else _shape.wire_object(raw))
            elif (
                raw["Id"] is id_
                and _COMMAND_STATES.get(raw["State"]) is state
                and len(raw) == 3
                and raw["Type"] == "DeviceCommand"
            ):
                append(raw)
            else:
                raise _Slow
        elif cls is PriceUpdateEvent:
            raw = e._raw
            if e.extra is not EMPTY:
                raise _Slow
            id_ = e.id
            start = e.start_utc
            end = e.end_utc
            rate = e.rate_id
            category = e.resource_category_id
            if raw is None:
                if (
                    type(id_) is not str
                    or not (rate is None or type(rate) is str)
                    or not (category is None or type(category) is str)
                ):
                    raise _Slow
                append(
                    write_price(
                        id_,
                        omit if start is None else (texts.get(start) or _utc_text(start)),
                        omit if end is None else (texts.get(end) or _utc_text(end)),
                        omit if rate is None else rate,
                        omit if category is None else category,
                    )
                )
            elif raw.__class__ is _PriceUpdate:
                # Each optional field: absent or null for None, else the same value. A
                # datetime's text maps to the very datetime decoded from it (`times`);
                # a text no longer there stays a text, which is never the value.
                got = times.get(raw.start_utc, raw.start_utc)
                if got is not start and (start is not None or got is not omit):
                    raise _Slow
                got = times.get(raw.end_utc, raw.end_utc)
                if got is not end and (end is not None or got is not omit):
                    raise _Slow
                wired = raw.rate_id
                if not (wired is rate or (wired is omit and rate is None)):
                    raise _Slow
                wired = raw.resource_category_id
                if not (
                    raw.id is id_ and (wired is category or (wired is omit and category is None))
                ):
                    raise _Slow
                append(raw if structs else _shape.wire_object(raw))
            else:
                # Each optional field: absent, null or the same value; then no other key.
                text = raw.get("StartUtc")
                if (start is not None or text is not None) and times.get(text) is not start:
                    raise _Slow
                text = raw.get("EndUtc")
                if (end is not None or text is not None) and times.get(text) is not end:
                    raise _Slow
                if not (
                    raw["Id"] is id_
                    and raw.get("RateId") is rate
                    and raw.get("ResourceCategoryId") is category
                    and len(raw)
                    == 2
                    + ("StartUtc" in raw)
                    + ("EndUtc" in raw)
                    + ("RateId" in raw)
                    + ("ResourceCategoryId" in raw)
                    and raw["Type"] == "PriceUpdate"
                ):
                    raise _Slow
                append(raw)
        else:
            raise _Slow
    return out


# --------------------------------------------------------------------- cattrs converters


def _event_hook(cls: type[MewsEvent]) -> Callable[[Any, Any], MewsEvent]:
    """A structure hook for one event class (or any event, for `MewsEvent`)."""

    def structure(obj: Any, _: Any) -> MewsEvent:
        event = _decode_event(dict(obj) if type(obj) is dict else obj, "")
        if cls is MewsEvent or type(event) is cls:
            return event
        kind = obj.get("Type")  # obj is an object: _decode_event checked
        raise DecodeError(f"expected a {cls.TYPE} event, got Type {describe(kind)}", "Type")

    return structure


#: Wire objects to models. Strict; register your own hooks on a copy, not on this one.
decoder = cattrs.Converter()
decoder.register_structure_hook(Envelope, lambda obj, _: _structure_envelope(obj, False))
for _cls in (MewsEvent, DeviceCommandEvent, ReservationEvent, ResourceEvent, PriceUpdateEvent):
    decoder.register_structure_hook(_cls, _event_hook(_cls))
decoder.register_structure_hook(datetime, lambda obj, _: parse_datetime(obj))

#: Models to wire objects (``dict``/``list``/``str``), ready for any JSON encoder.
encoder = cattrs.Converter()
encoder.register_unstructure_hook(Envelope, _unstructure_envelope)
for _cls in (DeviceCommandEvent, ReservationEvent, ResourceEvent, PriceUpdateEvent):
    encoder.register_unstructure_hook(_cls, _unstructure_event)
encoder.register_unstructure_hook(UnknownEvent, _unstructure_event)
encoder.register_unstructure_hook(InvalidEvent, _unstructure_event)
encoder.register_unstructure_hook(datetime, format_datetime)
del _cls
