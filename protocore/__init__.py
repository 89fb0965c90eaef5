"""protocore: a sans-IO core for the Mews Connector and PlaceOS real-time WebSockets.

Bytes and ``now`` go in, events and bytes come out; nothing here touches a socket,
a clock, a thread or an event loop. The I/O lives in the `transports` package.
"""

from .connection import (
    ClientConnection,
    ConnectionState,
    KeepaliveTimeout,
    ServerConnection,
    WebSocketURL,
    parse_ws_url,
)
from .errors import (
    ConnectionLost,
    DecodeError,
    EncodeError,
    HandshakeFailed,
    LocalProtocolError,
    ProtocolError,
    ProxyError,
    RemoteProtocolError,
)
from .events import (
    BadMessage,
    Connected,
    ConnectionClosed,
    Event,
    HandshakeRejected,
    LivenessLost,
)
from .proxy import Proxy
from .session import ClientHandshake, ClientSession, Rejection, ServerSession, Session

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "DecodeError",
    "EncodeError",
    "ConnectionLost",
    "HandshakeFailed",
    "ProxyError",
    "Proxy",
    "Event",
    "BadMessage",
    "LivenessLost",
    "Connected",
    "HandshakeRejected",
    "ConnectionClosed",
    "ClientConnection",
    "ServerConnection",
    "ConnectionState",
    "KeepaliveTimeout",
    "WebSocketURL",
    "parse_ws_url",
    "Session",
    "ClientSession",
    "ServerSession",
    "ClientHandshake",
    "Rejection",
]
