"""The NATS side of the fleet: bucket and stream names, and creating them once.

Everything lives in one JetStream domain: three KV buckets (specs, leases, live
workers) and two streams (Mews events, PlaceOS values). The first worker (or
command) creates what is missing, with the replicas it was given; a bucket that
exists is used as it is (its lease TTL included), so every worker agrees on it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

__all__ = [
    "SPECS_BUCKET",
    "LEASES_BUCKET",
    "WORKERS_BUCKET",
    "MEWS_STREAM",
    "PLACEOS_STREAM",
    "DUPLICATE_WINDOW",
    "connect",
    "specs_bucket",
    "lease_buckets",
    "ensure_streams",
]

log = logging.getLogger("protocore.fleet")

SPECS_BUCKET = "fleet-specs"
LEASES_BUCKET = "fleet-leases"
WORKERS_BUCKET = "fleet-workers"
MEWS_STREAM = "FLEET_MEWS"
PLACEOS_STREAM = "FLEET_PLACEOS"
#: How long JetStream remembers a message id (a redelivery within it is dropped).
DUPLICATE_WINDOW = 120.0

Callback = Callable[[], Awaitable[None]]


async def connect(
    servers: str | list[str],
    *,
    name: str,
    reconnected: Callback | None = None,
    disconnected: Callback | None = None,
    forever: bool = True,
) -> NATS:
    """A NATS connection that reconnects forever (a worker rides out server restarts);
    with ``forever=False`` (commands) a server that cannot be reached fails at once."""

    async def error_cb(exc: Exception) -> None:
        log.info("NATS: %s", type(exc).__name__)

    async def nothing() -> None:
        return None

    return await nats.connect(
        servers,
        name=name,
        allow_reconnect=forever,
        max_reconnect_attempts=-1 if forever else 1,
        reconnect_time_wait=0.25,
        connect_timeout=5,
        error_cb=error_cb,
        reconnected_cb=reconnected or nothing,
        disconnected_cb=disconnected or nothing,
    )


async def _bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    try:
        return await js.key_value(config.bucket)
    except BucketNotFoundError:
        log.info("creating bucket %s", config.bucket)
        return await js.create_key_value(config)


async def specs_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The bucket of connection specs (no TTL: specs stay until removed)."""
    config = KeyValueConfig(bucket=SPECS_BUCKET, storage=StorageType.FILE, replicas=replicas)
    return await _bucket(js, config)


async def lease_buckets(
    js: JetStreamContext, ttl: float, replicas: int = 1
) -> tuple[KeyValue, KeyValue, float]:
    """The leases and live-workers buckets, and the lease TTL they were created with.

    Entries expire ``ttl`` after their last write, and the expiry leaves a marker that
    watchers see, so the others learn of a dead owner at once.
    """
    buckets = []
    for bucket in (LEASES_BUCKET, WORKERS_BUCKET):
        config = KeyValueConfig(
            bucket=bucket,
            ttl=ttl,
            limit_marker_ttl=max(ttl, 1.0),
            storage=StorageType.FILE,
            replicas=replicas,
        )
        buckets.append(await _bucket(js, config))
    status = await buckets[0].status()
    actual = status.ttl if status.ttl else ttl
    if abs(actual - ttl) > 1e-3:
        log.warning("the leases bucket already exists with a TTL of %.3g s: using it", actual)
    return buckets[0], buckets[1], float(actual)


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """The Mews events stream (dedup by message id) and the PlaceOS values stream
    (the last value per binding)."""
    configs = (
        StreamConfig(
            name=MEWS_STREAM,
            subjects=["mews.>"],
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW,
            num_replicas=replicas,
        ),
        StreamConfig(
            name=PLACEOS_STREAM,
            subjects=["placeos.*.value.>"],
            storage=StorageType.FILE,
            max_msgs_per_subject=1,
            num_replicas=replicas,
        ),
    )
    for config in configs:
        assert config.name is not None
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            log.info("creating stream %s", config.name)
            await js.add_stream(config)
