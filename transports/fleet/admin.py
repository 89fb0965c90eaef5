"""Reading and editing the fleet from anywhere: specs, owners, live workers.

What ``fleet add|remove|list`` do, as functions of a JetStream context, for programs
(and tests) that manage the fleet themselves.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from .jetstream import LEASES_BUCKET, WORKERS_BUCKET, specs_bucket
from .specs import ConnectionSpec, SpecError, decode_spec, encode_spec

__all__ = [
    "SpecExists",
    "NoSuchSpec",
    "put_spec",
    "remove_spec",
    "list_specs",
    "owners",
    "live_workers",
]


class SpecExists(Exception):
    """`put_spec` without ``replace`` found a spec of that name."""


class NoSuchSpec(Exception):
    """`remove_spec` found no spec of that name."""


async def put_spec(
    js: JetStreamContext, spec: ConnectionSpec, *, replace: bool = False, replicas: int = 1
) -> None:
    """Store ``spec`` (the workers pick it up at once); `SpecExists` unless ``replace``.

    ``replicas``: for the specs bucket, if this creates it.
    """
    kv = await specs_bucket(js, replicas)
    if replace:
        await kv.put(spec.name, encode_spec(spec))
        return
    try:
        await kv.create(spec.name, encode_spec(spec))
    except KeyWrongLastSequenceError:
        raise SpecExists(f"{spec.name!r} exists already") from None


async def remove_spec(js: JetStreamContext, name: str) -> None:
    """Remove a spec; its owner closes the connection and hands the lease back."""
    kv = await specs_bucket(js)
    try:
        await kv.get(name)
    except KeyNotFoundError:
        raise NoSuchSpec(f"no spec named {name!r}") from None
    await kv.delete(name)


async def list_specs(js: JetStreamContext) -> dict[str, ConnectionSpec | SpecError]:
    """Every spec by name (a `SpecError` in place of one that cannot be used)."""
    out: dict[str, ConnectionSpec | SpecError] = {}
    for name, data in (await _contents(await specs_bucket(js))).items():
        try:
            out[name] = decode_spec(data)
        except SpecError as exc:
            out[name] = exc
    return dict(sorted(out.items()))


async def owners(js: JetStreamContext) -> dict[str, str]:
    """Connection name -> the id of the worker holding its lease."""
    return {k: v.decode(errors="replace") for k, v in (await _bucket(js, LEASES_BUCKET)).items()}


async def live_workers(js: JetStreamContext) -> set[str]:
    """The ids of the workers that announced themselves within the lease TTL."""
    return set(await _bucket(js, WORKERS_BUCKET))


async def _bucket(js: JetStreamContext, bucket: str) -> dict[str, bytes]:
    try:
        kv = await js.key_value(bucket)
    except BucketNotFoundError:
        return {}
    return await _contents(kv)


async def _contents(kv: KeyValue) -> dict[str, bytes]:
    """A bucket's current keys and values, read through one watch."""
    out: dict[str, bytes] = {}
    watcher = await kv.watchall()
    try:
        async for entry in watcher:
            if entry is None:
                break
            if entry.operation is None:
                out[entry.key] = entry.value or b""
            else:
                out.pop(entry.key, None)
            if not entry.delta:
                break
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return out
