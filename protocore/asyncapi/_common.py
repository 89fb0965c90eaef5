"""Pieces both documents share: the document frame and JSON Schema helpers."""

from __future__ import annotations

import enum
from typing import Any

ASYNCAPI_VERSION = "3.0.0"

#: Where a reference into the document's own components points.
SCHEMAS = "#/components/schemas/"
MESSAGES = "#/components/messages/"
SECURITY = "#/components/securitySchemes/"


def ref(target: str) -> dict[str, Any]:
    """A JSON Reference to ``target`` (a pointer inside the document)."""
    return {"$ref": target}


def enum_schema(members: type[enum.Enum], description: str) -> dict[str, Any]:
    """The known values of an enumeration, in definition order."""
    values = [member.value for member in members]
    kind = "integer" if all(isinstance(value, int) for value in values) else "string"
    return {"type": kind, "enum": values, "description": description}


def open_enum(name: str, kind: str, description: str) -> dict[str, Any]:
    """A field whose known values are the enumeration ``name``, and which keeps others.

    Decoders keep a value they do not know (a newer server may add one), so the
    field accepts any value of the enumeration's JSON type.
    """
    return {
        "description": description,
        "anyOf": [ref(SCHEMAS + name), {"type": kind, "description": "a value not known yet"}],
    }


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or an explicit JSON null (decoders read null as a missing field)."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def text_message(name: str, text: str, summary: str, description: str) -> dict[str, Any]:
    """A raw text frame that is not JSON (the PlaceOS heartbeat)."""
    return {
        "name": name,
        "title": text,
        "summary": summary,
        "description": description,
        "contentType": "text/plain",
        "payload": {"type": "string", "const": text},
        "examples": [{"name": text, "payload": text}],
    }
