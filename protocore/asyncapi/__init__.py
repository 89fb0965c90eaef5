"""AsyncAPI 3.0 documents for both protocols, generated from protocore's models.

Neither API publishes a machine-readable description of its WebSocket, so protocore
writes one from what its codecs read and write: `document` gives the data, `render`
the text (JSON, or YAML with the ``yaml`` extra). Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from . import mews, placeos

__all__ = ["ProtocolName", "Format", "document", "render"]

ProtocolName = Literal["mews", "placeos"]
Format = Literal["json", "yaml"]

_BUILDERS = {"mews": mews.document, "placeos": placeos.document}


def document(protocol: ProtocolName) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``protocol`` as JSON-compatible data (a fresh copy)."""
    try:
        build = _BUILDERS[protocol]
    except KeyError:
        raise ValueError(
            f"unknown protocol {protocol!r}: expected one of {', '.join(_BUILDERS)}"
        ) from None
    # A JSON round trip: plain data that shares no objects (YAML would write aliases).
    copy: dict[str, Any] = json.loads(json.dumps(build()))
    return copy


def render(protocol: ProtocolName, fmt: Format = "json") -> str:
    """The document of ``protocol`` as JSON or YAML text, ending in a newline.

    YAML needs PyYAML (``pip install 'protocore-ws[yaml]'``); without it this raises
    `ImportError` saying so.
    """
    data = document(protocol)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        try:
            import yaml  # noqa: PLC0415 - optional: only YAML output needs it
        except ImportError:
            raise ImportError(
                "YAML output needs PyYAML: pip install 'protocore-ws[yaml]' (or use JSON)",
                name="yaml",
            ) from None
        text: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        return text
    raise ValueError(f"unknown format {fmt!r}: expected json or yaml")
