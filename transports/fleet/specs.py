"""Connection specs: what the fleet holds, as stored in the specs bucket.

A spec names one connection (a Mews hotel or a PlaceOS site), its URL, and where
its secrets live on the workers (``env:NAME`` or ``file:PATH``): NATS never sees a
token. PlaceOS specs also list the bindings to hold. Specs travel as JSON; every
check says which field is wrong, and `resolve_credentials` names the reference it
could not read, never a secret.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

__all__ = [
    "BindingSpec",
    "ConnectionSpec",
    "SpecError",
    "CredentialError",
    "decode_spec",
    "encode_spec",
    "resolve_credentials",
    "check_token",
]

Protocol = Literal["mews", "placeos"]

#: Names become KV keys and subject tokens: keep them to what both accept.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: A subject token: no dots, wildcards or whitespace.
_TOKEN = re.compile(r"[^.*>\s]{1,128}")
_SECRETS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # protocol: (required, allowed)
    "mews": (frozenset({"client_token", "access_token"}), frozenset()),
    "placeos": (frozenset(), frozenset({"api_key", "bearer_token"})),
}


class SpecError(ValueError):
    """A connection spec that cannot be used; the message says which field and why."""


class CredentialError(RuntimeError):
    """A credential reference that cannot be read on this worker (names it, not the secret)."""


def check_token(value: object, what: str) -> str:
    """``value`` if it can be one token of a NATS subject, else `SpecError`."""
    if not isinstance(value, str) or _TOKEN.fullmatch(value) is None:
        raise SpecError(f"{what} must be a non-empty string without '.', '*', '>' or spaces")
    return value


@attrs.frozen
class BindingSpec:
    """A PlaceOS status variable to hold: ``sys``/``mod``_``index``.``name``."""

    sys: str
    mod: str
    name: str
    index: int = 1

    @property
    def subject_tail(self) -> str:
        """``<sys>.<mod>.<index>.<name>``: where its values are published."""
        return f"{self.sys}.{self.mod}.{self.index}.{self.name}"


@attrs.frozen
class ConnectionSpec:
    """One connection of the fleet; see the module docstring."""

    name: str
    protocol: Protocol
    url: str
    #: secret name (``client_token``, ``access_token``, ``api_key``, ``bearer_token``)
    #: -> ``env:VARIABLE`` or ``file:PATH`` on the worker.
    credentials: Mapping[str, str] = attrs.field(factory=dict)
    bindings: tuple[BindingSpec, ...] = ()

    def __attrs_post_init__(self) -> None:
        _check(self)


def _check(spec: ConnectionSpec) -> None:
    if not isinstance(spec.name, str) or _NAME.fullmatch(spec.name) is None:
        raise SpecError("name must be 1-64 letters, digits, '-' or '_'")
    if spec.protocol not in _SECRETS:
        raise SpecError(f"protocol must be 'mews' or 'placeos', not {spec.protocol!r}")
    if not isinstance(spec.url, str):
        raise SpecError("url must be a string")
    parts = urlsplit(spec.url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise SpecError("url must be a ws:// or wss:// URL with a host")
    if not isinstance(spec.credentials, Mapping):
        raise SpecError("credentials must be an object of secret name -> reference")
    required, optional = _SECRETS[spec.protocol]
    names = set(spec.credentials)
    if missing := sorted(required - names):
        raise SpecError(f"credentials lack {', '.join(missing)} (needed for {spec.protocol})")
    if unknown := sorted(names - required - optional):
        raise SpecError(f"credentials: unknown secret {unknown[0]!r} for {spec.protocol}")
    if spec.protocol == "placeos" and len(names) != 1:
        raise SpecError("credentials: a PlaceOS spec takes exactly one of api_key, bearer_token")
    for key, ref in spec.credentials.items():
        if not isinstance(ref, str) or not ref.startswith(("env:", "file:")) or len(ref) < 5:
            raise SpecError(f"credentials.{key} must be 'env:VARIABLE' or 'file:PATH'")
    if spec.protocol == "mews" and spec.bindings:
        raise SpecError("bindings are for PlaceOS specs only")
    seen: set[BindingSpec] = set()
    for binding in spec.bindings:
        check_token(binding.sys, "bindings[].sys")
        check_token(binding.mod, "bindings[].mod")
        check_token(binding.name, "bindings[].name")
        if isinstance(binding.index, bool) or not isinstance(binding.index, int):
            raise SpecError("bindings[].index must be a positive integer")
        if binding.index < 1:
            raise SpecError("bindings[].index must be a positive integer")
        if binding in seen:
            raise SpecError(f"binding {binding.subject_tail} is listed twice")
        seen.add(binding)


def encode_spec(spec: ConnectionSpec) -> bytes:
    """The spec as the JSON document the specs bucket holds."""
    doc: dict[str, Any] = {
        "name": spec.name,
        "protocol": spec.protocol,
        "url": spec.url,
        "credentials": dict(spec.credentials),
    }
    if spec.bindings:
        doc["bindings"] = [attrs.asdict(b) for b in spec.bindings]
    return json.dumps(doc, sort_keys=True).encode()


def decode_spec(data: bytes | str) -> ConnectionSpec:
    """A spec from its JSON document; `SpecError` says what is wrong with it."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"not a JSON document: {exc}") from None
    if not isinstance(doc, dict):
        raise SpecError("a spec must be a JSON object")
    for key in ("name", "protocol", "url"):
        if key not in doc:
            raise SpecError(f"missing field {key!r}")
    if unknown := sorted(set(doc) - {"name", "protocol", "url", "credentials", "bindings"}):
        raise SpecError(f"unknown field {unknown[0]!r}")
    raw_bindings = doc.get("bindings", [])
    if not isinstance(raw_bindings, list):
        raise SpecError("bindings must be a list")
    bindings = []
    for item in raw_bindings:
        if not isinstance(item, dict) or not {"sys", "mod", "name"} <= set(item):
            raise SpecError("each binding must be an object with sys, mod, name (and index)")
        if extra := sorted(set(item) - {"sys", "mod", "name", "index"}):
            raise SpecError(f"bindings[]: unknown field {extra[0]!r}")
        bindings.append(BindingSpec(item["sys"], item["mod"], item["name"], item.get("index", 1)))
    return ConnectionSpec(
        name=doc["name"],
        protocol=doc["protocol"],
        url=doc["url"],
        credentials=doc.get("credentials", {}),
        bindings=tuple(bindings),
    )


def resolve_credentials(
    spec: ConnectionSpec, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Read the spec's secrets on this worker: secret name -> value.

    `CredentialError` names the variable or file that is missing or empty.
    """
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for key, ref in spec.credentials.items():
        kind, _, where = ref.partition(":")
        if kind == "env":
            value = env.get(where, "")
            if not value:
                raise CredentialError(
                    f"connection {spec.name!r}: environment variable {where} "
                    f"({key}) is not set on this worker"
                )
        else:
            try:
                value = Path(where).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
                raise CredentialError(
                    f"connection {spec.name!r}: cannot read {key} from {where}: {why}"
                ) from None
            if not value:
                raise CredentialError(f"connection {spec.name!r}: {where} ({key}) is empty")
        out[key] = value
    return out
