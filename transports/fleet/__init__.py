"""The fleet: many Mews and PlaceOS connections shared by workers over NATS JetStream.

Connection specs live in a JetStream KV bucket; each worker takes leases on them
(KV create/update on a revision, expiring with a TTL), holds those connections with
`transports.asyncio`, and publishes what they say: Mews events into a deduplicating
stream, PlaceOS values on subjects, PlaceOS exec as a request/reply service. Needs
the ``fleet`` extra (``nats-py``). See docs/fleet.md.
"""

from .exec import FLEET_ERRORS, ExecRequest
from .leases import LeaseLost, Leases, fair_share
from .publish import MessageIds
from .specs import (
    BindingSpec,
    ConnectionSpec,
    CredentialError,
    SpecError,
    decode_spec,
    encode_spec,
    resolve_credentials,
)
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
]
