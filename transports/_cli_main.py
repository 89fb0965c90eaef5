"""The ``protocore`` commands: each a small function of the parsed arguments.

`transports.cli` calls `run`; the arguments are defined in `transports._cli_parser`.
A command returns the exit status; the failures it expects become `CliError` (one
line on stderr, status 1). The network work is in `transports._cli_commands`, the
decoder in `transports._cli_decode`, the demo in `transports._demo`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import ssl
import sys
import tomllib
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from protocore.errors import ConnectionLost, HandshakeFailed, ProtocolError
from protocore.mews import Envelope
from protocore.placeos import MockEngine
from protocore.placeos.exceptions import PlaceOSError

from . import _cli_commands as commands
from ._cli_adapters import Adapter, TransportMissing, adapter
from ._cli_decode import decode_lines
from ._cli_mews_source import BadLine, generated, load_envelopes
from ._cli_output import PROG, emit, note
from ._cli_parser import (
    MEWS_ACCESS_ENV,
    MEWS_CLIENT_ENV,
    MEWS_ENVIRONMENTS,
    PLACEOS_KEY_ENV,
    build_parser,
)
from ._demo import run_demo
from ._demo_data import DEMO_SYSTEMS

__all__ = ["run", "CliError"]


class CliError(Exception):
    """A failure to report as one line (no traceback), with exit status 1."""


# -- secrets ---------------------------------------------------------------------------------


def _secret(given: str | None, env: str, option: str) -> str:
    value = given if given is not None else os.environ.get(env)
    if not value:
        raise CliError(f"no {option[2:].replace('-', ' ')}: give {option} or set {env}")
    return value


def _mews_tokens(args: argparse.Namespace) -> commands.MewsTokens:
    return commands.MewsTokens(
        _secret(args.client_token, MEWS_CLIENT_ENV, "--client-token"),
        _secret(args.access_token, MEWS_ACCESS_ENV, "--access-token"),
    )


# -- running a command -----------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    """One line for an exception a command can meet (never its traceback)."""
    if isinstance(exc, TimeoutError):  # before OSError, its base class
        return str(exc) or "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, HandshakeFailed | PlaceOSError | ConnectionLost | ProtocolError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@contextmanager
def _reported(doing: str) -> Iterator[None]:
    """Failures inside become `CliError` (``doing: why``); Ctrl-C stays a KeyboardInterrupt."""
    try:
        yield
    except BaseExceptionGroup as group:  # trio may group what several tasks raised
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from None
        raise CliError(f"{doing}: {_describe(_first_leaf(group))}") from None
    except (TransportMissing, CliError):
        raise
    except Exception as exc:
        raise CliError(f"{doing}: {_describe(exc)}") from None


def _run(ad: Adapter, main: Callable[[], Coroutine[Any, Any, None]], doing: str) -> int:
    """Run a command's coroutine on its transport; exit status 0 when it returns."""
    with _reported(doing):
        ad.run(main)
    return 0


# -- the commands ----------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    ad = adapter(args.transport)
    with _reported("the demo failed"):
        run_demo(ad, emit)
    return 0


def _load_systems(path: Path | None) -> MockEngine:
    if path is None:
        return MockEngine.from_config(DEMO_SYSTEMS)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        config = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{path}: not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{path}: not valid JSON: line {exc.lineno}: {exc.msg}") from None
    try:
        return MockEngine.from_config(config)
    except ProtocolError as exc:
        raise CliError(f"{path}: {exc}") from None


def _cmd_serve_placeos(args: argparse.Namespace) -> int:
    ad = adapter(args.transport)
    engine = _load_systems(args.systems)
    api_key = args.api_key if args.api_key is not None else os.environ.get(PLACEOS_KEY_ENV)

    async def main() -> None:
        await commands.serve_placeos(ad, engine, args.host, args.port, api_key)

    return _run(ad, main, f"serving PlaceOS on {args.host} port {args.port}")


def _cmd_serve_mews(args: argparse.Namespace) -> int:
    ad = adapter(args.transport)
    ad.require_mews()
    tokens = _mews_tokens(args)
    messages: Iterable[Envelope]
    if args.events is not None:
        try:
            envelopes = load_envelopes(args.events)
        except OSError as exc:
            raise CliError(f"cannot read {args.events}: {exc.strerror or exc}") from None
        except (BadLine, ValueError) as exc:
            raise CliError(str(exc)) from None
        envelopes = envelopes[: args.count]  # a count of None slices nothing off
        messages, total = envelopes, len(envelopes)
    else:
        messages, total = itertools.islice(generated(args.seed), args.count), args.count

    async def main() -> None:
        await commands.serve_mews(
            ad, args.host, args.port, tokens, messages, rate=args.rate, total=total
        )

    return _run(ad, main, f"serving Mews on {args.host} port {args.port}")


def _cmd_mews_listen(args: argparse.Namespace) -> int:
    ad = adapter(args.transport)
    ad.require_mews()
    url = args.url if args.url is not None else MEWS_ENVIRONMENTS[args.environment]
    tokens = _mews_tokens(args)

    async def main() -> None:
        await commands.mews_listen(ad, url, tokens, auth=args.auth, count=args.count)

    return _run(ad, main, f"Mews at {commands.safe_url(url)}")


def _cmd_placeos(args: argparse.Namespace) -> int:
    ad = adapter(args.transport)
    api_key = _secret(args.api_key, PLACEOS_KEY_ENV, "--api-key")
    url: str = args.url
    main: Callable[[], Coroutine[Any, Any, None]]
    if args.action == "exec":

        async def main() -> None:
            target = (args.sys, args.mod, args.name)
            await commands.placeos_exec(
                ad, url, api_key, target, args.args, index=args.index, timeout=args.timeout
            )

    elif args.action == "bind":

        async def main() -> None:
            target = (args.sys, args.mod, args.name)
            await commands.placeos_bind(
                ad, url, api_key, target, index=args.index, count=args.count
            )

    else:

        async def main() -> None:
            await commands.placeos_debug(
                ad,
                url,
                api_key,
                (args.sys, args.module_id),
                index=args.index,
                count=args.count,
                as_json=args.json,
            )

    return _run(ad, main, f"PlaceOS at {commands.safe_url(url)}")


def _cmd_decode(args: argparse.Namespace) -> int:
    name = args.file
    try:
        if name == "-":
            text, source = sys.stdin.read(), "<stdin>"
        else:
            text, source = Path(name).read_text(encoding="utf-8"), name
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    return decode_lines(text, args.protocol, source=source, lenient=args.lenient)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _cmd_demo,
    "serve placeos": _cmd_serve_placeos,
    "serve mews": _cmd_serve_mews,
    "mews listen": _cmd_mews_listen,
    "placeos": _cmd_placeos,
    "decode": _cmd_decode,
}


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; the exit status. Ctrl-C is the caller's."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format=f"{PROG}: %(message)s",
        stream=sys.stderr,
    )
    try:
        status = _COMMANDS[args.command](args)
    except (CliError, TransportMissing) as exc:
        note(f"error: {exc}")
        return 1
    return status
