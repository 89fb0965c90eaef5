"""Hypothesis strategies for JSON values, the building block of both protocols' messages."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = ["INT64_MAX", "INT64_MIN", "int64s", "json_scalars", "json_values", "texts"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def int64s() -> st.SearchStrategy[int]:
    """Integers that fit in 64 bits: beyond that the two JSON backends disagree (orjson
    reads them as floats), so protocore's wire integers stay in this range."""
    return st.integers(min_value=INT64_MIN, max_value=INT64_MAX)


def texts(max_size: int = 20) -> st.SearchStrategy[str]:
    """Strings JSON can carry: any code point but a lone surrogate."""
    return st.text(st.characters(exclude_categories=["Cs"]), max_size=max_size)


def json_scalars(max_size: int = 20) -> st.SearchStrategy[Any]:
    """null, booleans, 64-bit integers, finite floats and strings."""
    return st.one_of(
        st.none(),
        st.booleans(),
        int64s(),
        st.floats(allow_nan=False, allow_infinity=False),
        texts(max_size),
    )


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON document (as Python values): scalars, lists and string-keyed objects,
    small enough to keep examples fast. Every value survives ``dumps``/``loads``."""
    return st.recursive(
        json_scalars(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts(8), inner, max_size=4),
        max_leaves=max_leaves,
    )
