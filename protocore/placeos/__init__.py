"""The PlaceOS real-time WebSocket: models and codec (sessions build on these).

Wire reference: ``wss://<domain>/api/engine/v2/systems/control``. Requests are JSON
objects with a ``cmd``; responses JSON objects with a ``type``; the heartbeat is the
raw text ``ping`` answered by ``pong``. Two server dialects exist (`Dialect`): the
decoders accept both, the encoders write the current server's unless told otherwise.
"""

from .client import AuthPlacement, PlaceOSClient
from .codec import (
    RequestError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from .engine import ConfigError, MockEngine
from .events import (
    AbortReason,
    BindingLost,
    DebugLog,
    HeartbeatLost,
    RequestAborted,
    RequestFailed,
    RequestSucceeded,
    RequestTimedOut,
    UnexpectedResponse,
    ValueChanged,
)
from .models import (
    Bind,
    Binding,
    Command,
    Debug,
    DebugMessage,
    Dialect,
    ErrorCode,
    ErrorResponse,
    Exec,
    Ignore,
    LogLevel,
    Meta,
    ModuleMeta,
    Notification,
    Ping,
    Pong,
    Request,
    RequestId,
    Response,
    SuccessResponse,
    Unbind,
    ValueFormat,
)
from .server import (
    DebugStream,
    HandlerFailed,
    PlaceOSServer,
    RequestHandler,
    RequestReceived,
)

__all__ = [
    # requests
    "Request",
    "Command",
    "Bind",
    "Unbind",
    "Exec",
    "Debug",
    "Ignore",
    "Ping",
    "RequestId",
    # responses
    "Response",
    "SuccessResponse",
    "ErrorResponse",
    "Notification",
    "DebugMessage",
    "Pong",
    "Binding",
    "ModuleMeta",
    "Meta",
    # enumerations
    "ErrorCode",
    "LogLevel",
    "Dialect",
    "ValueFormat",
    # codec
    "encode_request",
    "decode_request",
    "encode_response",
    "decode_response",
    "RequestError",
    # server
    "PlaceOSServer",
    "RequestHandler",
    "RequestReceived",
    "HandlerFailed",
    "DebugStream",
    "MockEngine",
    "ConfigError",
    # client
    "PlaceOSClient",
    "AuthPlacement",
    "RequestSucceeded",
    "RequestFailed",
    "RequestTimedOut",
    "RequestAborted",
    "AbortReason",
    "ValueChanged",
    "DebugLog",
    "BindingLost",
    "HeartbeatLost",
    "UnexpectedResponse",
]
