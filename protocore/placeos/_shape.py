"""The ``fast`` extra's first try at a PlaceOS response: msgspec checks a notify's shape.

Notifies are most of what a client receives. msgspec parses one straight into a Struct
that admits only the common shape: ``type`` ``notify``, an id (string, or an integer
in 63 bits), a ``meta`` with string ``sys``/``mod``/``name`` and an integer or null
``index``, a scalar ``value`` (true/false/null, a string, a 63-bit integer), and no
other field. Anything else fails here, or is recognised as another response type and
skipped, and the codec decodes the message the ordinary way; so this path decides nothing, it only
skips building dicts that would be thrown away. Import fails without msgspec, which
the codec takes as "no first try".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

__all__ = ["UNSET", "Meta", "Notify", "decode"]

# orjson reads integers beyond 64 bits as floats, msgspec as ints: leave those out
# (msgspec bounds fit in an int64, so the unsigned top half goes the ordinary way too).
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class Meta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    sys: str
    mod: str
    name: str
    index: _Int | UnsetType | None = UNSET


class Notify(msgspec.Struct, tag_field="type", tag="notify", forbid_unknown_fields=True, gc=False):
    id: _Int | str
    meta: Meta
    value: bool | _Int | str | None = None


class _Other(msgspec.Struct, tag_field="type", gc=False):
    """Another response type: recognised and skipped, so that it costs no exception."""


class _Success(_Other, tag="success"):
    pass


class _Error(_Other, tag="error"):
    pass


class _Debug(_Other, tag="debug"):
    pass


#: ``decode(data)``: a `Notify` in the shape, another Struct for the other response
#: types (to decode the ordinary way); raises (anything) for everything else.
decode: Callable[[Any], Any] = msgspec.json.Decoder(Notify | _Success | _Error | _Debug).decode
