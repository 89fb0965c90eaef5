"""Cases 1 and 2: decode and encode every input with protocore and four baselines.

The encode cases re-encode what was decoded; ``mews_4_built_encode`` encodes the same
events built by the application instead (nothing decoded to reuse), as a server does.

The baselines, each on the same bytes (decode) or the same message (encode):

- ``json`` / ``orjson``: the parse (or dump) alone, untyped dicts: the floor.
- ``naive cattrs``: ``json.loads`` then a default `cattrs.Converter` into attrs classes
  that mirror the wire one to one (the way most people would write it first).
- ``msgspec``: typed ``msgspec.Struct`` classes with a tagged union, decoded in C: the
  practical limit for typed decoding in Python.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import attrs
import cattrs
import msgspec
import orjson

from protocore.mews import (
    CommandState,
    Envelope,
    ReservationState,
    ResourceState,
    decode_envelope,
    encode_envelope,
)
from protocore.placeos import decode_response, encode_response

from .harness import Contender
from .inputs import MEWS, PLACEOS

__all__ = ["CONTENDERS", "codec_cases"]

CONTENDERS = ("protocore", "json", "orjson", "naive cattrs", "msgspec")

# ------------------------------------------------------------------ the naive attrs way
# Attribute names equal the wire names, so a default converter needs no configuration
# beyond datetimes (cattrs has no default datetime hook); ``Type``/``type`` literals
# let it pick the union member.


@attrs.frozen
class NaiveReservation:
    Type: Literal["Reservation"]
    Id: str
    State: ReservationState
    StartUtc: datetime
    EndUtc: datetime
    AssignedResourceId: str | None = None


@attrs.frozen
class NaiveResource:
    Type: Literal["Resource"]
    Id: str
    State: ResourceState


@attrs.frozen
class NaiveCommand:
    Type: Literal["DeviceCommand"]
    Id: str
    State: CommandState


@attrs.frozen
class NaivePriceUpdate:
    Type: Literal["PriceUpdate"]
    Id: str
    StartUtc: datetime | None = None
    EndUtc: datetime | None = None
    RateId: str | None = None
    ResourceCategoryId: str | None = None


@attrs.frozen
class NaiveEnvelope:
    Events: list[NaiveReservation | NaiveResource | NaiveCommand | NaivePriceUpdate]


@attrs.frozen
class NaiveMeta:
    sys: str
    mod: str
    index: int = 1
    name: str | None = None


@attrs.frozen
class NaiveNotify:
    id: int
    type: Literal["notify"]
    value: Any
    meta: NaiveMeta


@attrs.frozen
class NaiveSuccess:
    id: int
    type: Literal["success"]
    value: Any = None
    meta: NaiveMeta | None = None
    mod_id: str | None = None
    code: int | None = None


@attrs.frozen
class NaiveError:
    id: int | None
    type: Literal["error"]
    error_code: int
    code: int
    msg: str


NaiveResponse = NaiveNotify | NaiveSuccess | NaiveError

naive = cattrs.Converter()
naive.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
naive.register_unstructure_hook(datetime, lambda value: value.isoformat())

# --------------------------------------------------------------------- msgspec structs


class _Mews(msgspec.Struct, frozen=True, tag_field="Type", rename="pascal"):
    pass


class MsReservation(_Mews, frozen=True, tag="Reservation"):
    id: str
    state: ReservationState
    start_utc: datetime
    end_utc: datetime
    assigned_resource_id: str | None = None


class MsResource(_Mews, frozen=True, tag="Resource"):
    id: str
    state: ResourceState


class MsCommand(_Mews, frozen=True, tag="DeviceCommand"):
    id: str
    state: CommandState


class MsPriceUpdate(_Mews, frozen=True, tag="PriceUpdate"):
    id: str
    start_utc: datetime | None = None
    end_utc: datetime | None = None
    rate_id: str | None = None
    resource_category_id: str | None = None


class MsEnvelope(msgspec.Struct, frozen=True, rename="pascal"):
    events: list[MsReservation | MsResource | MsCommand | MsPriceUpdate]


class MsMeta(msgspec.Struct, frozen=True):
    sys: str
    mod: str
    index: int = 1
    name: str | None = None


class _PlaceOS(msgspec.Struct, frozen=True, tag_field="type"):
    pass


class MsNotify(_PlaceOS, frozen=True, tag="notify"):
    id: int
    value: Any
    meta: MsMeta


class MsSuccess(_PlaceOS, frozen=True, tag="success", omit_defaults=True):
    id: int
    value: Any = None
    meta: MsMeta | None = None
    mod_id: str | None = None
    code: int | None = None


class MsError(_PlaceOS, frozen=True, tag="error"):
    id: int | None
    error_code: int
    code: int
    msg: str


class _Kind(enum.Enum):
    MEWS = "mews"
    PLACEOS = "placeos"


_ms_decoders = {
    _Kind.MEWS: msgspec.json.Decoder(MsEnvelope),
    _Kind.PLACEOS: msgspec.json.Decoder(MsNotify | MsSuccess | MsError),
}
_naive_types: dict[_Kind, Any] = {_Kind.MEWS: NaiveEnvelope, _Kind.PLACEOS: NaiveResponse}
_decoders: dict[_Kind, Callable[[bytes], Any]] = {
    _Kind.MEWS: decode_envelope,
    _Kind.PLACEOS: decode_response,
}
_encoders: dict[_Kind, Callable[[Any], bytes]] = {
    _Kind.MEWS: encode_envelope,
    _Kind.PLACEOS: encode_response,
}


def _decode_contenders(kind: _Kind, data: bytes) -> list[Contender]:
    ours = _decoders[kind]
    typed = _naive_types[kind]
    ms = _ms_decoders[kind].decode
    structure = naive.structure
    loads = json.loads
    fast_loads = orjson.loads
    contenders = [
        Contender("protocore", lambda: ours(data)),
        Contender("json", lambda: loads(data)),
        Contender("orjson", lambda: fast_loads(data)),
        Contender("naive cattrs", lambda: structure(loads(data), typed)),
        Contender("msgspec", lambda: ms(data)),
    ]
    for contender in contenders:  # every contender must accept the input
        contender.fn()
    return contenders


def _encode_contenders(kind: _Kind, data: bytes) -> list[Contender]:
    ours = _encoders[kind]
    model = _decoders[kind](data)
    plain = json.loads(data)
    attrs_obj = naive.structure(plain, _naive_types[kind])
    struct = _ms_decoders[kind].decode(data)
    unstructure = naive.unstructure
    dumps = json.dumps
    fast_dumps = orjson.dumps
    ms = msgspec.json.Encoder().encode
    compact = (",", ":")
    return [
        Contender("protocore", lambda: ours(model)),
        Contender("json", lambda: dumps(plain, separators=compact).encode()),
        Contender("orjson", lambda: fast_dumps(plain)),
        Contender(
            "naive cattrs", lambda: dumps(unstructure(attrs_obj), separators=compact).encode()
        ),
        Contender("msgspec", lambda: ms(struct)),
    ]


def _built_encode_contenders(data: bytes) -> list[Contender]:
    """Encoding an envelope the application built (no wire object to reuse)."""
    decoded = decode_envelope(data)
    built = Envelope([attrs.evolve(event, _raw=None) for event in decoded.events])
    contenders = _encode_contenders(_Kind.MEWS, data)
    contenders[0] = Contender("protocore", lambda: encode_envelope(built))
    return contenders


def codec_cases() -> list[tuple[str, list[Contender]]]:
    """``(case name, contenders)`` for every input, decode then encode."""
    inputs = [(_Kind.MEWS, name, data) for name, data in MEWS]
    inputs += [(_Kind.PLACEOS, f"placeos_{name}", data) for name, data in PLACEOS]
    cases = [(f"{name}_decode", _decode_contenders(k, data)) for k, name, data in inputs]
    cases += [(f"{name}_encode", _encode_contenders(k, data)) for k, name, data in inputs]
    cases.insert(
        cases.index(next(c for c in cases if c[0] == "mews_4_encode")) + 1,
        ("mews_4_built_encode", _built_encode_contenders(MEWS[1][1])),
    )
    return cases
