"""The PlaceOS real-time WebSocket as an AsyncAPI 3.0 document, built from the models.

Each message schema lists the wire field of every attribute of its model (the tables
below map attribute to wire name; a model attribute missing from them is an error at
build time), the commands come from the codec, the enumerations from the models.
Both server dialects are described: the current server's error replies carry the
error number in ``error_code`` and an HTTP-like status in ``code``; the published
document's carry the number in ``code``.
"""

from __future__ import annotations

from typing import Any

import attrs

from protocore import __version__
from protocore.placeos import (
    Bind,
    Debug,
    DebugMessage,
    ErrorCode,
    ErrorResponse,
    Exec,
    Ignore,
    LogLevel,
    Notification,
    SuccessResponse,
    Unbind,
)
from protocore.placeos.codec import _COMMANDS

from ._common import (
    ASYNCAPI_VERSION,
    MESSAGES,
    SCHEMAS,
    SECURITY,
    enum_schema,
    nullable,
    open_enum,
    ref,
    text_message,
)

__all__ = ["document"]

PATH = "/api/engine/v2/systems/control"

_ID = {
    "description": (
        "The request id: the published document allows a number or a string; the current"
        " server wants an integer. Replies carry the id of the request they answer."
    ),
    "type": ["integer", "string"],
}
_INDEX = {
    "description": "1-based index of the module among those of that name; missing or null is 1.",
    "type": ["integer", "null"],
    "minimum": 1,
    "default": 1,
}
_SYS = {"type": "string", "description": "The system id (sys-...)."}
_MOD = {
    "type": "string",
    "description": "The module name (Display), or for debug and ignore the module id (mod-...).",
}
_NAME = {"type": "string", "description": "The status variable (bind) or method (exec) name."}
_ARGS = {
    "description": "exec only: the method's arguments, in order (missing or null: none).",
    "type": ["array", "null"],
}
_META = {
    "type": "object",
    "description": "Where a reply or notify comes from; `name` is absent in debug answers.",
    "required": ["sys", "mod"],
    "properties": {"sys": _SYS, "mod": _MOD, "index": _INDEX, "name": _NAME},
}
_BINDING = {**_META, "required": ["sys", "mod", "name"], "description": "The binding notified."}
_STATUS = {
    "type": ["integer", "null"],
    "description": "Current server only: an HTTP-like status (200 on success, 500 on error).",
}
_MESSAGE = {"type": "string", "description": "A human-readable message."}
_ANY = {"description": "Any JSON value (the method's result, or the status value)."}
_NUMBER_SCHEMA = open_enum(
    "ErrorCode", "integer", "The error number (ErrorCode; other numbers are kept)."
)

#: Model attribute -> (wire name, schema), for the request models.
_REQUEST_FIELDS: dict[str, tuple[str, dict[str, Any]]] = {
    "id": ("id", _ID),
    "sys": ("sys", _SYS),
    "mod": ("mod", _MOD),
    "name": ("name", _NAME),
    "index": ("index", _INDEX),
    "args": ("args", _ARGS),
}
_REQUEST_REQUIRED = ("id", "cmd", "sys", "mod", "name")

_REQUEST_DOCS = {
    Bind: "Subscribe to a status variable: a success, then a notify per change.",
    Unbind: "End a subscription; answered with a bare success even when nothing was bound.",
    Exec: "Call a method on a module; the success carries its result as `value`.",
    Debug: "Forward a module's log lines to this connection, as debug messages.",
    Ignore: "Stop forwarding a module's log lines.",
}


def _request_schema(cmd: str, cls: type[Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {"cmd": {"type": "string", "const": cmd}}
    for field in attrs.fields(cls):
        wire, schema = _REQUEST_FIELDS[field.name]
        properties[wire] = schema
    return {
        "type": "object",
        "title": f"{cmd} request",
        "description": f"{_REQUEST_DOCS[cls]} Decodes to `protocore.placeos.{cls.__name__}`.",
        "required": list(_REQUEST_REQUIRED),
        "properties": properties,
    }


#: Model attribute -> wire name (schema), for each response model, in the current
#: server's form. ErrorResponse's two dialects are spelled out in `_error_schemas`.
_RESPONSE_FIELDS: dict[type[Any], dict[str, tuple[str, dict[str, Any]]]] = {
    SuccessResponse: {
        "id": ("id", _ID),
        "value": ("value", _ANY),
        "meta": ("meta", nullable(_META)),
        "mod_id": ("mod_id", {"type": ["string", "null"], "description": "debug: the module id"}),
        "http_status": ("code", _STATUS),
    },
    Notification: {
        "id": ("id", {**_ID, "description": "The id of the first bind of this binding."}),
        "binding": ("meta", _BINDING),
        "value": (
            "value",
            {
                "description": (
                    "The new value. The current server sends it as raw JSON; the published"
                    " document says a string holding JSON (stringified)."
                )
            },
        ),
    },
    DebugMessage: {
        "mod": ("mod", {"type": "string", "description": "The module id (mod-...)."}),
        "klass": (
            "klass",
            {"type": ["string", "null"], "description": "The driver class (published form only)."},
        ),
        "level": ("level", open_enum("LogLevel", "string", "The log level (LogLevel).")),
        "message": ("msg", _MESSAGE),
        "meta": ("meta", nullable(_META)),
        "id": ("id", {**_ID, "type": ["integer", "string", "null"]}),
    },
    ErrorResponse: {
        "id": ("id", {**_ID, "type": ["integer", "string", "null"]}),
        "code": ("error_code", _NUMBER_SCHEMA),
        "message": ("msg", {**_MESSAGE, "type": ["string", "null"]}),
        "http_status": ("code", _STATUS),
    },
}
_RESPONSE_REQUIRED: dict[type[Any], tuple[str, ...]] = {
    SuccessResponse: ("id", "type"),
    Notification: ("id", "type", "meta"),
    DebugMessage: ("type", "mod", "level", "msg"),
}


def _properties(cls: type[Any], kind: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"type": {"type": "string", "const": kind}}
    wire = _RESPONSE_FIELDS[cls]
    for field in attrs.fields(cls):
        name, schema = wire[field.name]
        properties[name] = schema
    return properties


def _response_schema(cls: type[Any], kind: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "title": f"{kind} response",
        "description": f"{description} Decodes to `protocore.placeos.{cls.__name__}`.",
        "required": list(_RESPONSE_REQUIRED[cls]),
        "properties": _properties(cls, kind),
    }


def _error_schemas() -> dict[str, Any]:
    current = _properties(ErrorResponse, "error")
    seed = {
        "type": current["type"],
        "id": current["id"],
        "code": _NUMBER_SCHEMA,
        "msg": current["msg"],
    }
    return {
        "ErrorResponse": {
            "title": "error response",
            "description": (
                "A request failed. Decoders take both forms (when `error_code` is present it"
                " is the error number, otherwise `code` is); encoders write the current one"
                " unless told `Dialect.SEED`. Decodes to `protocore.placeos.ErrorResponse`."
            ),
            "oneOf": [ref(SCHEMAS + "ErrorResponseCurrent"), ref(SCHEMAS + "ErrorResponseSeed")],
        },
        "ErrorResponseCurrent": {
            "type": "object",
            "title": "error response (current server)",
            "description": "The error number in `error_code`, an HTTP-like status in `code`.",
            "required": ["type", "error_code"],
            "properties": current,
        },
        "ErrorResponseSeed": {
            "type": "object",
            "title": "error response (published document)",
            "description": "The error number in `code`, no `error_code`.",
            "required": ["type", "code"],
            "properties": seed,
            # an error_code that is null counts as absent, as in the decoder
            "not": {
                "required": ["error_code"],
                "properties": {"error_code": {"not": {"type": "null"}}},
            },
        },
    }


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for cmd, cls in _COMMANDS.items():
        schemas[f"{cls.__name__}Request"] = _request_schema(cmd, cls)
    schemas["SuccessResponse"] = _response_schema(
        SuccessResponse,
        "success",
        "A request succeeded; `value` is an exec's result (raw JSON in both forms).",
    )
    schemas.update(_error_schemas())
    schemas["NotifyResponse"] = _response_schema(
        Notification,
        "notify",
        "A bound status variable changed (or its first value, perhaps before the bind's"
        " success). Match notifies by `meta`, never by `id`.",
    )
    schemas["DebugResponse"] = _response_schema(
        DebugMessage, "debug", "A log line of a module being debugged."
    )
    schemas["ErrorCode"] = enum_schema(
        ErrorCode,
        "Error numbers: "
        + ", ".join(
            f"{member.value} {member.name.lower().replace('_', ' ')}" for member in ErrorCode
        )
        + ".",
    )
    schemas["LogLevel"] = enum_schema(LogLevel, "Log levels, lowest first.")
    return schemas


def _json_message(name: str, title: str, summary: str, schema: str, examples: list[Any]) -> Any:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": ref(SCHEMAS + schema),
        "examples": [
            {"name": example_name, "payload": payload} for example_name, payload in examples
        ],
    }


_META_EXAMPLE = {"sys": "sys-room-1", "mod": "Display", "index": 1, "name": "power"}


def _messages() -> dict[str, Any]:
    request = {"id": 1, "sys": "sys-room-1", "mod": "Display", "index": 1, "name": "power"}
    messages: dict[str, Any] = {
        "bind": _json_message(
            "bind", "bind", "Subscribe", "BindRequest", [("bind", {**request, "cmd": "bind"})]
        ),
        "unbind": _json_message(
            "unbind",
            "unbind",
            "Unsubscribe",
            "UnbindRequest",
            [("unbind", {**request, "cmd": "unbind"})],
        ),
        "exec": _json_message(
            "exec",
            "exec",
            "Call a method",
            "ExecRequest",
            [("exec", {**request, "cmd": "exec", "args": [True]})],
        ),
        "debug": _json_message(
            "debug",
            "debug",
            "Stream a module's log",
            "DebugRequest",
            [("debug", {**request, "cmd": "debug", "mod": "mod-room1-display"})],
        ),
        "ignore": _json_message(
            "ignore",
            "ignore",
            "Stop a module's log",
            "IgnoreRequest",
            [("ignore", {**request, "cmd": "ignore", "mod": "mod-room1-display", "index": None})],
        ),
        "success": _json_message(
            "success",
            "success",
            "A request succeeded",
            "SuccessResponse",
            [
                ("bind", {"id": 1, "type": "success", "meta": _META_EXAMPLE}),
                ("exec", {"id": 2, "type": "success", "value": True, "code": 200}),
                ("unbind", {"id": 3, "type": "success"}),
            ],
        ),
        "error": _json_message(
            "error",
            "error",
            "A request failed",
            "ErrorResponse",
            [
                (
                    "current",
                    {
                        "id": 4,
                        "type": "error",
                        "error_code": 6,
                        "code": 500,
                        "msg": "module not found",
                    },
                ),
                ("published", {"id": 4, "type": "error", "code": 6, "msg": "module not found"}),
            ],
        ),
        "notify": _json_message(
            "notify",
            "notify",
            "A bound value changed",
            "NotifyResponse",
            [
                ("current", {"id": 1, "type": "notify", "value": True, "meta": _META_EXAMPLE}),
                ("published", {"id": 1, "type": "notify", "value": "true", "meta": _META_EXAMPLE}),
            ],
        ),
        "debugMessage": _json_message(
            "debugMessage",
            "debug",
            "A module's log line",
            "DebugResponse",
            [
                (
                    "debug",
                    {
                        "type": "debug",
                        "mod": "mod-room1-display",
                        "klass": "::Place::Display",
                        "level": "info",
                        "msg": "power on",
                    },
                ),
            ],
        ),
        "ping": text_message(
            "ping",
            "ping",
            "Heartbeat",
            "The client's heartbeat, the raw text `ping` (not JSON). protocore sends one on"
            " connect and every 15 s, and reconnects when no pong came for 60 s.",
        ),
        "pong": text_message(
            "pong",
            "pong",
            "Heartbeat answer",
            "The raw text `pong`: the answer to a ping; the server also sends one unasked"
            " every 80 s.",
        ),
    }
    return messages


_AUTH = [
    ("apiKeyHeader", "httpApiKey", "X-API-Key", "header", "An API key in the X-API-Key header."),
    ("apiKeyQuery", "httpApiKey", "api-key", "query", "An API key in the query (`api-key`)."),
    ("apiKeyCookie", "httpApiKey", "api-key", "cookie", "An API key in the `api-key` cookie."),
    ("bearerHeader", "http", "", "", "A JWT in `Authorization: Bearer <jwt>`."),
    ("bearerQuery", "httpApiKey", "bearer_token", "query", "A JWT in the query (`bearer_token`)."),
    (
        "bearerCookie",
        "httpApiKey",
        "bearer_token",
        "cookie",
        "A JWT in the `bearer_token` cookie.",
    ),
]


def _security_schemes() -> dict[str, Any]:
    schemes: dict[str, Any] = {}
    for key, kind, name, place, description in _AUTH:
        if kind == "http":
            schemes[key] = {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": description,
            }
        else:
            schemes[key] = {"type": kind, "name": name, "in": place, "description": description}
    return schemes


def _operation(action: str, title: str, messages: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "action": action,
        "channel": ref("#/channels/control"),
        "title": title,
        "messages": [ref(f"#/channels/control/messages/{name}") for name in messages],
        **extra,
    }


def document() -> dict[str, Any]:
    """The whole AsyncAPI 3.0 document, as JSON-compatible data."""
    messages = _messages()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "PlaceOS real-time WebSocket",
            "version": __version__,
            "description": (
                "Bind to status variables, execute driver methods and stream module logs on a"
                " PlaceOS engine.\n\nGenerated by protocore (protocore.asyncapi) from its models."
                " Both server dialects are described: the current server (error number in"
                " `error_code`, raw JSON notify values) and the published document (error number"
                " in `code`, stringified notify values). Requests that cannot be parsed may be"
                " dropped without a reply, so a client times out every request. The server"
                " remembers nothing across connections: bind again after a reconnect."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "engine": {
                "host": "{domain}",
                "protocol": "wss",
                "title": "A PlaceOS instance",
                "description": (
                    "Authentication fails with HTTP 401 or 403 before the upgrade; the server"
                    " looks for credentials in the order listed."
                ),
                "variables": {"domain": {"description": "The PlaceOS instance's domain name."}},
                "security": [ref(SECURITY + key) for key, *_ in _AUTH],
            }
        },
        "channels": {
            "control": {
                "address": PATH,
                "title": "Control",
                "description": (
                    "One WebSocket carries every request and response; replies may come out of"
                    " order and are matched by `id`."
                ),
                "messages": {name: ref(MESSAGES + name) for name in messages},
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "fixed_device": {
                                    "type": "string",
                                    "enum": ["true"],
                                    "description": "Optional: connect as a fixed device.",
                                },
                                "api-key": {"type": "string"},
                                "bearer_token": {"type": "string"},
                            },
                        },
                        "headers": {
                            "type": "object",
                            "properties": {
                                "X-API-Key": {"type": "string"},
                                "Authorization": {"type": "string", "pattern": "^Bearer .+$"},
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
            }
        },
        "operations": {
            "sendRequest": _operation(
                "send",
                "Send a request",
                list(_COMMANDS),
                reply={
                    "channel": ref("#/channels/control"),
                    "messages": [
                        ref("#/channels/control/messages/success"),
                        ref("#/channels/control/messages/error"),
                    ],
                },
            ),
            "receiveNotify": _operation("receive", "Receive binding values", ["notify"]),
            "receiveDebug": _operation("receive", "Receive log lines", ["debugMessage"]),
            "sendPing": _operation(
                "send",
                "Heartbeat",
                ["ping"],
                reply={
                    "channel": ref("#/channels/control"),
                    "messages": [ref("#/channels/control/messages/pong")],
                },
            ),
            "receivePong": _operation("receive", "Unasked heartbeat answers", ["pong"]),
        },
        "components": {
            "messages": messages,
            "schemas": _schemas(),
            "securitySchemes": _security_schemes(),
        },
    }
