"""Mews Connector WebSocket models: the envelope, its events, their enumerations.

Every class is a frozen, slotted attrs class with snake_case fields; the codec
(`protocore.mews.codec`) maps them to the wire's PascalCase. Three rules shape them:

- Code written for the current API must see old messages too: a legacy ``Space``
  event is a `ResourceEvent` (with ``legacy_space=True``, which equality ignores),
  and ``AssignedSpaceId``/``SpaceCategoryId`` fill the current fields.
- Nothing is lost: unknown fields land in ``extra`` (a read-only mapping), unknown
  event types become `UnknownEvent`, unknown enumeration values stay plain ``str``.
- Re-encoding a decoded message gives back the same JSON document. Each decoded event
  remembers the wire object it came from in a private ``_raw`` field, ignored by
  equality, hashing and repr; the encoder consults it for spellings the model does not
  carry (legacy names, explicit nulls, the exact text of an unchanged datetime). With
  the ``fast`` extra it may be the msgspec Struct the event was parsed into, which an
  unchanged event writes out again as it is; it pickles as the plain dict it stands
  for, so unpickling never needs msgspec.

Hashing: ``extra`` (and the raw ``fields`` of the unknown/invalid events) take part in
equality but not in the hash, since JSON values such as lists are unhashable. Equal
objects still hash equal, because the hash covers a subset of what equality compares.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

from protocore.errors import DecodeError

__all__ = [
    "CommandState",
    "ReservationState",
    "ResourceState",
    "MewsEvent",
    "DeviceCommandEvent",
    "ReservationEvent",
    "ResourceEvent",
    "PriceUpdateEvent",
    "UnknownEvent",
    "InvalidEvent",
    "Envelope",
    "FrozenMapping",
]


class CommandState(enum.StrEnum):
    """State of a device command (``Cancelled`` with two Ls, unlike reservations)."""

    PENDING = "Pending"
    RECEIVED = "Received"
    PROCESSING = "Processing"
    PROCESSED = "Processed"
    CANCELLED = "Cancelled"
    ERROR = "Error"


class ReservationState(enum.StrEnum):
    """State of a reservation.

    ``Enquired`` is the older spelling of ``Inquired``; both are kept as distinct
    members so that a message re-encodes with the spelling it arrived with.
    ``Canceled`` has one L, unlike `CommandState.CANCELLED`.
    """

    ENQUIRED = "Enquired"
    INQUIRED = "Inquired"
    REQUESTED = "Requested"
    OPTIONAL = "Optional"
    CONFIRMED = "Confirmed"
    STARTED = "Started"
    PROCESSED = "Processed"
    CANCELED = "Canceled"


class ResourceState(enum.StrEnum):
    """State of a resource (and of the legacy space)."""

    DIRTY = "Dirty"
    CLEAN = "Clean"
    INSPECTED = "Inspected"
    OUT_OF_SERVICE = "OutOfService"
    OUT_OF_ORDER = "OutOfOrder"


class FrozenMapping(Mapping[str, Any]):
    """A read-only mapping over a private dict: what ``extra`` and ``fields`` hold.

    Unlike `types.MappingProxyType` it pickles, and unlike a tuple of pairs it reads
    like the JSON object it came from. It compares equal to any mapping with the same
    items (a plain ``dict`` included) and is unhashable, as its values may be lists.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data) if data else {}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMapping):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FrozenMapping({self._data!r})"

    def __reduce__(self) -> tuple[type[FrozenMapping], tuple[dict[str, Any]]]:
        return (FrozenMapping, (self._data,))


EMPTY: Mapping[str, Any] = FrozenMapping()


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy, so a frozen model cannot be changed through its mapping."""
    if type(value) is FrozenMapping:
        return value
    if not value:
        return EMPTY
    return FrozenMapping(value)


def _mapping_repr(value: Mapping[str, Any]) -> str:
    return repr(dict(value))


def _extra() -> Any:
    """The ``extra`` field: wire fields this version of the model does not know."""
    return attrs.field(
        default=EMPTY, converter=_frozen_mapping, hash=False, kw_only=True, repr=_mapping_repr
    )


def _raw() -> Any:
    """The wire object a decoded event came from; see the module docstring."""
    return attrs.field(default=None, eq=False, hash=False, repr=False, kw_only=True, alias="_raw")


class MewsEvent:
    """Base class of everything an `Envelope` holds, for ``isinstance`` checks."""

    __slots__ = ()

    #: The wire ``Type`` of the event class (None where it varies per instance).
    TYPE: ClassVar[str | None] = None


@attrs.frozen(slots=True, weakref_slot=False)
class DeviceCommandEvent(MewsEvent):
    """A device command was created or updated (wire ``Type`` ``DeviceCommand``)."""

    TYPE: ClassVar[str | None] = "DeviceCommand"

    id: str
    state: CommandState | str
    extra: Mapping[str, Any] = _extra()
    _raw: object = _raw()


@attrs.frozen(slots=True, weakref_slot=False)
class ReservationEvent(MewsEvent):
    """A reservation was created, updated or canceled (wire ``Type`` ``Reservation``).

    ``assigned_resource_id`` is read from ``AssignedResourceId`` or, in messages from
    before 2020-09, from ``AssignedSpaceId``.
    """

    TYPE: ClassVar[str | None] = "Reservation"

    id: str
    state: ReservationState | str
    start_utc: datetime
    end_utc: datetime
    assigned_resource_id: str | None = None
    extra: Mapping[str, Any] = _extra()
    _raw: object = _raw()


@attrs.frozen(slots=True, weakref_slot=False)
class ResourceEvent(MewsEvent):
    """A resource was created, renamed or changed state (wire ``Type`` ``Resource``).

    The deprecated ``Space`` event decodes to this class too, with ``legacy_space``
    set, so code written for the current API sees it; equality ignores the flag, and
    the encoder writes ``Space`` back when it is set.
    """

    TYPE: ClassVar[str | None] = "Resource"

    id: str
    state: ResourceState | str
    legacy_space: bool = attrs.field(default=False, eq=False, kw_only=True)
    extra: Mapping[str, Any] = _extra()
    _raw: object = _raw()


@attrs.frozen(slots=True, weakref_slot=False)
class PriceUpdateEvent(MewsEvent):
    """A rate price was created or updated (wire ``Type`` ``PriceUpdate``).

    Every field but ``id`` is optional since 2023-02. ``resource_category_id`` is read
    from ``ResourceCategoryId`` or, before 2020-09, ``SpaceCategoryId``.
    """

    TYPE: ClassVar[str | None] = "PriceUpdate"

    id: str
    start_utc: datetime | None = None
    end_utc: datetime | None = None
    rate_id: str | None = None
    resource_category_id: str | None = None
    extra: Mapping[str, Any] = _extra()
    _raw: object = _raw()


@attrs.frozen(slots=True, weakref_slot=False)
class UnknownEvent(MewsEvent):
    """An event of a ``Type`` this library does not know (Mews may add types).

    ``fields`` holds every wire field except ``Type``, untouched, so the event
    re-encodes exactly and the application can still read it.
    """

    type: str
    fields: Mapping[str, Any] = attrs.field(
        default=EMPTY, converter=_frozen_mapping, hash=False, repr=_mapping_repr
    )

    @property
    def id(self) -> str | None:
        """The event's ``Id`` when it has a string one."""
        value = self.fields.get("Id")
        return value if isinstance(value, str) else None


@attrs.frozen(slots=True, weakref_slot=False)
class InvalidEvent(MewsEvent):
    """An event that failed its type's schema, kept in place by lenient decoding.

    ``fields`` is the whole wire object (``Type`` included, whatever it was), so it
    re-encodes exactly; ``type`` is its ``Type`` when that was a string; ``error`` says
    what was wrong, with a path from the envelope (``Events[2].StartUtc``). Equality
    ignores ``error``: it follows from ``fields``.
    """

    type: str | None
    fields: Mapping[str, Any] = attrs.field(
        converter=_frozen_mapping, hash=False, repr=_mapping_repr
    )
    error: DecodeError = attrs.field(eq=False)


def _event_tuple(events: Iterable[MewsEvent]) -> tuple[MewsEvent, ...]:
    return events if type(events) is tuple else tuple(events)


@attrs.frozen(slots=True, weakref_slot=False)
class Envelope:
    """One WebSocket message: ``{"Events": [...]}``. ``events`` is always a tuple."""

    events: tuple[MewsEvent, ...] = attrs.field(converter=_event_tuple)
    extra: Mapping[str, Any] = _extra()
