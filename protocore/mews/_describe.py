"""How error messages show a wire value: JSON spelling, bounded length."""

from __future__ import annotations

from protocore.errors import describe_value

__all__ = ["describe"]

_SHOWN = 40


def describe(value: object) -> str:
    """``null``/``true``/``false`` as on the wire, containers by kind, long strings cut.

    The message must stay small even for a 50 MB value, so nothing here calls
    ``repr`` on a whole container or a whole long string.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str) and len(value) > _SHOWN:
        return f"{value[:_SHOWN]!r}... (a string of {len(value)} characters)"
    return describe_value(value)
