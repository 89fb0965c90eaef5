"""Where the command line's secrets come from, and the documented defaults for local use.

A secret comes from its option, else its environment variable. The clients need
theirs, except that Mews' published demo credentials (the tokens of the example cookie
in Mews' Connector WebSocket documentation, meant for the demo environment) stand in
for the Mews tokens everywhere but ``--environment production``; the fake Mews server
accepts them too when given none. Values are never printed: notes say where a
secret came from, not what it is.
"""

from __future__ import annotations

import argparse
import os
from typing import Final

import attrs

__all__ = [
    "PLACEOS_KEY_ENV",
    "MEWS_CLIENT_ENV",
    "MEWS_ACCESS_ENV",
    "MEWS_DEMO_CLIENT_TOKEN",
    "MEWS_DEMO_ACCESS_TOKEN",
    "MissingSecret",
    "MewsTokens",
    "secret",
    "mews_tokens",
]

PLACEOS_KEY_ENV: Final = "PLACEOS_API_KEY"
MEWS_CLIENT_ENV: Final = "MEWS_CLIENT_TOKEN"
MEWS_ACCESS_ENV: Final = "MEWS_ACCESS_TOKEN"

# Published by Mews for its demo environment: public, not secrets.
MEWS_DEMO_CLIENT_TOKEN: Final = "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D"  # noqa: S105
MEWS_DEMO_ACCESS_TOKEN: Final = "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D"  # noqa: S105


class MissingSecret(Exception):
    """A secret neither given as an option nor set in the environment."""


def secret(given: str | None, env: str) -> str | None:
    """``given``, else ``$env``; None when neither (or empty)."""
    value = given if given is not None else os.environ.get(env)
    return value or None


def required(given: str | None, env: str, option: str, what: str) -> str:
    """`secret`, or `MissingSecret` saying how to give it (flags, never parameter names)."""
    value = secret(given, env)
    if value is None:
        raise MissingSecret(f"no {what}: give {option} or set {env}")
    return value


@attrs.frozen(repr=False)
class MewsTokens:
    """The two Mews tokens and where they came from; a repr that shows neither."""

    client_token: str
    access_token: str
    demo: bool = False
    """True when they are Mews' published demo tokens (nothing given)."""

    def __repr__(self) -> str:
        return "MewsTokens(<hidden>)"


def mews_tokens(args: argparse.Namespace, *, demo_allowed: bool = True) -> MewsTokens:
    """The tokens of ``--client-token``/``--access-token`` or the environment; with
    neither given, the published demo tokens (unless ``demo_allowed`` is false)."""
    client = secret(args.client_token, MEWS_CLIENT_ENV)
    access = secret(args.access_token, MEWS_ACCESS_ENV)
    if client is None and access is None and demo_allowed:
        return MewsTokens(MEWS_DEMO_CLIENT_TOKEN, MEWS_DEMO_ACCESS_TOKEN, demo=True)
    return MewsTokens(
        required(client, MEWS_CLIENT_ENV, "--client-token", "client token"),
        required(access, MEWS_ACCESS_ENV, "--access-token", "access token"),
    )
