"""``protocore --version``: the installed distribution's name and version.

The distribution is found by what it installs, not by a name written here: the one
whose ``protocore`` console script runs this command line (the distribution may be
renamed; the import packages stay). Looked up only when asked, since reading the
installed metadata costs time every other command does not need to spend.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import metadata
from typing import Any, Final

__all__ = ["ENTRY_POINT", "distribution", "version_line", "VersionAction"]

ENTRY_POINT: Final = "transports.cli:main"


def distribution() -> metadata.Distribution | None:
    """The installed distribution that provides this command line; None if none does
    (run from a source tree that was never installed)."""
    for entry in metadata.entry_points(group="console_scripts", name="protocore"):
        if entry.value == ENTRY_POINT and entry.dist is not None:
            return entry.dist
    for name in metadata.packages_distributions().get("transports", []):
        try:
            return metadata.distribution(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - listed, then gone
            continue
    return None


def version_line() -> str:
    """``protocore 0.1.0 (distribution protocore-ws)``, or the source tree's version."""
    dist = distribution()
    if dist is None:
        from protocore import __version__  # noqa: PLC0415 - only when asked

        return f"protocore {__version__} (not installed: run from a source tree)"
    return f"protocore {dist.version} (distribution {dist.metadata['Name']})"


class VersionAction(argparse.Action):
    """``--version``: print `version_line` and exit 0 (argparse's own needs the text up front)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print the installed version and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(version_line(), flush=True)
        parser.exit(0)
