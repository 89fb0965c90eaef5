"""The fleet: many Mews and PlaceOS connections shared by workers over NATS JetStream.

Connection specs live in a JetStream KV bucket; each worker takes leases on them
(KV create/update on a revision, expiring with a TTL), holds those connections with
`transports.asyncio`, and publishes what they say: Mews events into a deduplicating
stream, PlaceOS values on subjects, PlaceOS exec as a request/reply service. Needs
the ``fleet`` extra (``nats-py``); the specs and the command-line parser import
without it, the rest on first use. See docs/fleet.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .specs import (
    BindingSpec,
    ConnectionSpec,
    CredentialError,
    SpecError,
    decode_spec,
    encode_spec,
    resolve_credentials,
)

if TYPE_CHECKING:
    from . import admin
    from .exec import FLEET_ERRORS, ExecRequest
    from .leases import LeaseLost, Leases, fair_share
    from .publish import MessageIds
    from .worker import Worker

__all__ = [
    "ConnectionSpec",
    "BindingSpec",
    "SpecError",
    "CredentialError",
    "decode_spec",
    "encode_spec",
    "resolve_credentials",
    "Leases",
    "LeaseLost",
    "fair_share",
    "MessageIds",
    "ExecRequest",
    "FLEET_ERRORS",
    "Worker",
    "admin",
]

# What needs nats-py, loaded when first asked for (PEP 562).
_LAZY = {
    "Leases": "leases",
    "LeaseLost": "leases",
    "fair_share": "leases",
    "MessageIds": "publish",
    "ExecRequest": "exec",
    "FLEET_ERRORS": "exec",
    "Worker": "worker",
}


def __getattr__(name: str) -> Any:
    if name == "admin":
        return importlib.import_module(".admin", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
