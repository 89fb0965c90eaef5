"""The systems the fake PlaceOS engine serves: built in, or read from a file.

`DEMO_SYSTEMS` is what `protocore demo` and a `protocore serve placeos` without
``--systems`` serve (the same format as ``examples/systems.json``); `load_systems`
reads a JSON or TOML (``.toml``) systems file and names the place of any mistake.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Final

from protocore import ProtocolError
from protocore.placeos import MockEngine

__all__ = ["DEMO_SYSTEMS", "DEMO_SYSTEM", "DEMO_DISPLAY_ID", "BadSystems", "load_systems"]


class BadSystems(Exception):
    """A systems file that cannot be read or served: says which file and why."""


DEMO_SYSTEM: Final = "sys-room-1"
DEMO_DISPLAY_ID: Final = "mod-room1-display"

DEMO_SYSTEMS: Final[dict[str, Any]] = {
    "description": "Built-in demo systems (the same format as examples/systems.json).",
    "systems": {
        DEMO_SYSTEM: {
            "name": "Level 3 Meeting Room 1",
            "modules": [
                {
                    "name": "Display",
                    "id": DEMO_DISPLAY_ID,
                    "klass": "::Place::Display::Samsung",
                    "status": {"power": False, "input": "hdmi1", "volume": 30},
                    "methods": {
                        "power": {
                            "params": ["state"],
                            "log": {"level": "info", "message": "power requested: $state"},
                            "sets": {"power": "$state"},
                            "returns": "$state",
                        },
                        "switch_to": {
                            "params": ["input"],
                            "log": "switching input to $input",
                            "sets": {"input": "$input"},
                            "returns": {"input": "$input"},
                        },
                        "volume": {
                            "params": ["level"],
                            "sets": {"volume": "$level"},
                            "returns": "$level",
                        },
                        "firmware_update": {
                            "log": {"level": "error", "message": "firmware update refused"},
                            "raises": "display is in use",
                        },
                    },
                },
                {
                    "name": "Lighting",
                    "id": "mod-room1-lighting",
                    "status": {"level": 80, "scene": "presentation"},
                    "methods": {
                        "trigger": {
                            "params": ["scene"],
                            "sets": {"scene": "$scene"},
                            "returns": "scene $scene",
                        }
                    },
                },
            ],
        }
    },
}
"""The systems `protocore demo` and a `protocore serve placeos` without ``--systems`` serve."""


def load_systems(path: Path | None) -> MockEngine:
    """The engine for the systems of ``path`` (None: `DEMO_SYSTEMS`)."""
    if path is None:
        return MockEngine.from_config(DEMO_SYSTEMS)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadSystems(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BadSystems(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None
    try:
        config = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadSystems(f"{path}: not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadSystems(f"{path}: not valid JSON: line {exc.lineno}: {exc.msg}") from None
    try:
        return MockEngine.from_config(config)
    except ProtocolError as exc:
        raise BadSystems(f"{path}: {exc}") from None
