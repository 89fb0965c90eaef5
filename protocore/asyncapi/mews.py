"""The Mews Connector WebSocket as an AsyncAPI 3.0 document, built from the codec's tables.

Event schemas come from the codec's field table (wire names, legacy names, which are
required) and the models' annotations (enumerations, datetimes), so a field the codec
learns appears here by itself.
"""

from __future__ import annotations

import enum
import re
import typing
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from protocore import __version__
from protocore.mews import (
    DEMO_URL,
    PRODUCTION_URL,
    CommandState,
    Envelope,
    ReservationState,
    ResourceState,
    legacy_url,
)
from protocore.mews._datetimes import _DATETIME
from protocore.mews.codec import _SCHEMAS, _Field, _Schema

from ._common import ASYNCAPI_VERSION, MESSAGES, SCHEMAS, SECURITY, enum_schema, nullable, ref
from ._common import open_enum as _open_enum

__all__ = ["document"]

_ENUMS: dict[type[enum.StrEnum], str] = {
    CommandState: "Device command state (Cancelled with two Ls).",
    ReservationState: (
        "Reservation state (Canceled with one L). Enquired is the older spelling of"
        " Inquired; both are kept as they arrived."
    ),
    ResourceState: "Resource (and legacy Space) state.",
}

#: Component names of the event schemas, by wire ``Type``.
_EVENT_NAMES = {
    "DeviceCommand": "DeviceCommandEvent",
    "Reservation": "ReservationEvent",
    "Resource": "ResourceEvent",
    "Space": "SpaceEvent",
    "PriceUpdate": "PriceUpdateEvent",
}

_LEGACY_NOTE = "Deprecated 2020-09 (Space was renamed Resource): still sent and accepted."


def _datetime_pattern() -> str:
    """The decoder's datetime syntax as a JSON Schema pattern (ECMA-262, anchored).

    The decoder's regex is verbose: drop its layout whitespace (not the space inside a
    character class) and its group names, which ECMA-262 spells differently.
    """
    kept: list[str] = []
    in_class = False
    for char in _DATETIME.pattern:
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char.isspace() and not in_class:
            continue
        kept.append(char)
    return "^" + re.sub(r"\(\?P<\w+>", "(", "".join(kept)) + "$"


def _field_schema(schema: _Schema, field: _Field) -> dict[str, Any]:
    hint = typing.get_type_hints(schema.cls)[field.attr]
    args = set(typing.get_args(hint)) or {hint}
    nullable_field = type(None) in args
    enums = [arg for arg in args if isinstance(arg, type) and issubclass(arg, enum.StrEnum)]
    doc = f"Model attribute `{schema.cls.__name__}.{field.attr}`."
    if enums:
        out = _open_enum(enums[0].__name__, "string", doc)
    elif datetime in args:
        out = {
            "type": "string",
            "pattern": _datetime_pattern(),
            "description": (
                f"{doc} ISO 8601; read in any offset and kept in UTC, written as"
                " YYYY-MM-DDThh:mm:ssZ (with .ffffff only when needed)."
            ),
        }
    else:
        out = {"type": "string", "description": doc}
    if nullable_field and not field.required:
        out = nullable(out)
    return out


def _event_schema(kind: str, schema: _Schema) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "Type": {"type": "string", "const": kind, "description": "The event type."}
    }
    required = ["Type"]
    alternatives: list[dict[str, Any]] = []
    for field in schema.fields:
        properties[field.wire] = _field_schema(schema, field)
        if field.legacy is not None:
            # Read only without the current name; beside it, it is an unknown field,
            # kept as it is in `extra`, so its type is checked only when it is read.
            properties[field.legacy] = {
                "description": (
                    f"The name of {field.wire} before 2020-09; read into the same attribute"
                    f" (when {field.wire} is absent) and written back under the name it"
                    f" arrived with. Beside {field.wire} it is kept as an unknown field."
                ),
                "deprecated": True,
            }
            alternatives.append(
                {
                    "if": {"not": {"required": [field.wire]}},
                    "then": {"properties": {field.legacy: _field_schema(schema, field)}},
                }
            )
            if field.required:
                alternatives.append(
                    {"oneOf": [{"required": [field.wire]}, {"required": [field.legacy]}]}
                )
                continue
        if field.required:
            required.append(field.wire)
    doc = (schema.cls.__doc__ or "").strip().splitlines()[0]
    out: dict[str, Any] = {
        "type": "object",
        "title": _EVENT_NAMES[kind],
        "description": (
            f"{doc} Decodes to `protocore.mews.{schema.cls.__name__}`; unknown fields are"
            " kept in its `extra`."
        ),
        "required": required,
        "properties": properties,
    }
    if alternatives:
        out["allOf"] = alternatives
    if kind == "Space":
        out["deprecated"] = True
        out["description"] = (
            "The legacy name of the Resource event. " + _LEGACY_NOTE + " Decodes to"
            " `protocore.mews.ResourceEvent` with `legacy_space=True`."
        )
    return out


def _schemas() -> dict[str, Any]:
    known = sorted(_SCHEMAS)
    schemas: dict[str, Any] = {
        "Envelope": {
            "type": "object",
            "title": "Envelope",
            "description": (
                f"{(Envelope.__doc__ or '').strip()} Decodes to `protocore.mews.Envelope`;"
                " other top-level fields are kept in its `extra`."
            ),
            "required": ["Events"],
            "properties": {
                "Events": {
                    "type": "array",
                    "description": "The events, in the order they happened.",
                    "items": ref(SCHEMAS + "Event"),
                }
            },
        },
        "Event": {
            "description": (
                "One event, by its Type. Mews says the list of types may be extended, so"
                " an event of another Type is kept too (`protocore.mews.UnknownEvent`)."
            ),
            "oneOf": [ref(SCHEMAS + _EVENT_NAMES[kind]) for kind in _EVENT_NAMES]
            + [ref(SCHEMAS + "OtherEvent")],
        },
        "OtherEvent": {
            "type": "object",
            "title": "OtherEvent",
            "description": (
                "An event of a Type this version does not know: decoded as"
                " `protocore.mews.UnknownEvent`, every field kept as it arrived."
            ),
            "required": ["Type"],
            "properties": {"Type": {"type": "string", "not": {"enum": known}}},
        },
    }
    for kind, name in _EVENT_NAMES.items():
        schemas[name] = _event_schema(kind, _SCHEMAS[kind])
    for members, description in _ENUMS.items():
        schemas[members.__name__] = enum_schema(members, description)
    return schemas


_CURRENT_EXAMPLE = {
    "Events": [
        {"Type": "DeviceCommand", "Id": "2391a3df-1c61-4131-b6f8-c85b4234adcb", "State": "Pending"},
        {
            "Type": "Reservation",
            "Id": "bfee2c44-1f84-4326-a862-5289598f6e2d",
            "State": "Inquired",
            "StartUtc": "2016-02-20T13:00:00Z",
            "EndUtc": "2016-02-22T11:00:00Z",
            "AssignedResourceId": "5ee074b1-6c86-48e8-915f-c7aa4702086f",
        },
        {"Type": "Resource", "Id": "5ee074b1-6c86-48e8-915f-c7aa4702086f", "State": "Dirty"},
        {
            "Type": "PriceUpdate",
            "Id": "bd75f159-f22a-4685-abdb-aac0008e2af3",
            "RateId": "9c6c0556-42bb-409a-86ca-6ca430773b99",
            "ResourceCategoryId": None,
        },
    ]
}

_LEGACY_EXAMPLE = {
    "Events": [
        {
            "Type": "Reservation",
            "Id": "bfee2c44-1f84-4326-a862-5289598f6e2d",
            "State": "Enquired",
            "StartUtc": "2016-02-20T13:00:00Z",
            "EndUtc": "2016-02-22T11:00:00Z",
            "AssignedSpaceId": "5ee074b1-6c86-48e8-915f-c7aa4702086f",
        },
        {"Type": "Space", "Id": "5ee074b1-6c86-48e8-915f-c7aa4702086f", "State": "Dirty"},
        {
            "Type": "PriceUpdate",
            "Id": "bd75f159-f22a-4685-abdb-aac0008e2af3",
            "StartUtc": "2019-09-01T00:00:00Z",
            "EndUtc": "2019-09-02T00:00:00Z",
            "SpaceCategoryId": "0c5a1b8c-4c1a-4b9e-9a53-8f0c2e8a1d11",
        },
    ]
}

_SECURITY_SCHEMES = {
    f"{token[0].lower()}{token[1:]}{place.title()}": {
        "type": "httpApiKey",
        "name": token,
        "in": place,
        "description": (
            f"The {token} in the {'Cookie header' if place == 'cookie' else 'query string'}"
            f" ({'current endpoint' if place == 'cookie' else 'legacy endpoint'}). Both"
            " ClientToken and AccessToken are required; they are the same tokens as for the"
            " Connector REST API."
        ),
    }
    for place in ("cookie", "query")
    for token in ("ClientToken", "AccessToken")
}


def _server(url: str, title: str, description: str, place: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.netloc,
        "protocol": parts.scheme,
        "title": title,
        "description": description,
        "security": [
            ref(SECURITY + name) for name, s in _SECURITY_SCHEMES.items() if s["in"] == place
        ],
    }


def document() -> dict[str, Any]:
    """The whole AsyncAPI 3.0 document, as JSON-compatible data."""
    path = urlsplit(PRODUCTION_URL).path
    current = "Current endpoint (documented since 2021-01): the tokens go in the Cookie header."
    legacy = (
        "Legacy endpoint on the platform address (documented until 2021-01, deprecated"
        " but not discontinued): the tokens go in the query string."
    )
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Mews Connector API WebSocket",
            "version": __version__,
            "description": (
                "Events Mews pushes to a Connector integration as they happen (device commands,"
                " reservations, resources, price updates). The client sends nothing but"
                " WebSocket pings (Mews recommends pinging regularly and reconnecting when a"
                " ping fails); events missed while disconnected are not replayed, so resync"
                " through the REST API after a reconnect.\n\nGenerated by protocore"
                " (protocore.asyncapi) from its models: every message version since 2017"
                " decodes, including the legacy Space event and the pre-2020-09 field names."
                " Encoders write the current names for values an application sets."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": _server(PRODUCTION_URL, "Production", current, "cookie"),
            "demo": _server(DEMO_URL, "Demo", current + " Needs Mews' demo tokens.", "cookie"),
            "legacyProduction": _server(
                legacy_url("https://api.mews.com"), "Production (legacy)", legacy, "query"
            ),
            "legacyDemo": _server(
                legacy_url("https://api.mews-demo.com"), "Demo (legacy)", legacy, "query"
            ),
        },
        "channels": {
            "connector": {
                "address": path,
                "title": "Connector events",
                "description": "One WebSocket per integration; every message is an Envelope.",
                "messages": {"events": ref(MESSAGES + "Events")},
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "headers": {
                            "type": "object",
                            "properties": {
                                "Cookie": {
                                    "type": "string",
                                    "pattern": "^ClientToken=[^;\\s]+; AccessToken=[^;\\s]+$",
                                    "description": (
                                        "Current endpoint: `ClientToken=<t>; AccessToken=<t>`,"
                                        " no spaces around `=`."
                                    ),
                                }
                            },
                        },
                        "query": {
                            "type": "object",
                            "properties": {
                                "ClientToken": {"type": "string", "description": "Legacy only."},
                                "AccessToken": {"type": "string", "description": "Legacy only."},
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
            }
        },
        "operations": {
            "receiveEvents": {
                "action": "receive",
                "channel": ref("#/channels/connector"),
                "title": "Receive events",
                "summary": "Mews pushes one Envelope per message.",
                "messages": [ref("#/channels/connector/messages/events")],
            }
        },
        "components": {
            "messages": {
                "Events": {
                    "name": "Events",
                    "title": "Events",
                    "summary": "A batch of events, current and legacy names alike.",
                    "contentType": "application/json",
                    "payload": ref(SCHEMAS + "Envelope"),
                    "examples": [
                        {
                            "name": "current",
                            "summary": "Since 2023-02",
                            "payload": _CURRENT_EXAMPLE,
                        },
                        {
                            "name": "legacy",
                            "summary": "Before 2020-09 (Space, AssignedSpaceId, SpaceCategoryId)",
                            "payload": _LEGACY_EXAMPLE,
                        },
                    ],
                }
            },
            "schemas": _schemas(),
            "securitySchemes": _SECURITY_SCHEMES,
        },
    }
