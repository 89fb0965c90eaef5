"""The ``protocore`` commands: each a small function of the parsed arguments.

`transports.cli.main` calls `run`, which parses (`transports.cli.parser`), sets up
logging (``-v``: the transports' own log of connects, drops, reconnects and refused
clients) and calls the command's function from `COMMANDS`. A command returns the
exit status; what it expects to fail becomes one ``protocore: error: ...`` line and
status 1 (`transports.cli.failures`). The clients and servers themselves are in
`transports.cli.clients` and `transports.cli.servers`, the decoder in
`transports.cli.decode`, the demo in `transports.cli.demo`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from protocore.asyncapi import render
from protocore.driver import ClientState
from protocore.mews import Envelope
from protocore.placeos import Dialect

from . import clients, servers
from .credentials import PLACEOS_KEY_ENV, mews_tokens, required, secret
from .decode import decode_lines
from .demo import run_demo
from .failures import EXPECTED, CliError, reported
from .mews_source import BadLine, generated, load_envelopes
from .output import PROG, emit, note, safe_url
from .parser import MEWS_ENVIRONMENTS, build_parser
from .runtime import Runtime, runtime
from .systems import BadSystems, load_systems

__all__ = ["COMMANDS", "run"]

logger = logging.getLogger("protocore.cli")

API_KEY: Final = "the API key (--api-key)"
MEWS_TOKENS: Final = "the tokens (--client-token, --access-token)"


def _run(
    rt: Runtime,
    main: Callable[[], Coroutine[Any, Any, None]],
    doing: str,
    credential: str | None = None,
    args: argparse.Namespace | None = None,
) -> int:
    """Run a command's coroutine on its transport; exit status 0 when it returns."""
    with reported(doing, credential):
        try:
            rt.run(main)
        finally:
            if args is not None:
                _report(rt, args)
    return 0


def _client_runtime(args: argparse.Namespace) -> Runtime:
    """The transport, with what every client of this command gets: proxy, -v's watcher."""
    rt = runtime(args.transport)
    rt.client_options["proxy"] = None if args.proxy.lower() == "none" else args.proxy
    if args.verbose:
        rt.client_options["on_state_change"] = _log_state
    return rt


def _log_state(state: ClientState) -> None:
    if state.phase == "reconnecting" and state.delay is not None:
        logger.info("state: reconnecting in %.1f s (attempt %d)", state.delay, state.attempt)
    else:
        logger.info("state: %s", state.phase)


def _report(rt: Runtime, args: argparse.Namespace) -> None:
    """At exit: ``-v``'s last round trip, ``--stats``' counters (stderr)."""
    if not rt.clients:
        return
    client = rt.clients[-1]
    if args.verbose:
        latency = client.latency
        if latency is None:
            logger.info("latency: no keepalive pong yet")
        else:
            logger.info("latency: %.1f ms (the last keepalive round trip)", latency * 1000)
    if getattr(args, "stats", False):
        print(json.dumps({"stats": client.stats.as_dict()}), file=sys.stderr, flush=True)


# -- the commands ----------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    rt = runtime(args.transport)
    with reported("the demo failed"):
        run_demo(rt, emit)
    return 0


def cmd_serve_placeos(args: argparse.Namespace) -> int:
    rt = runtime(args.transport)
    try:
        engine = load_systems(args.systems)
    except BadSystems as exc:
        raise CliError(str(exc)) from None
    api_key = None if args.allow_anonymous else secret(args.api_key, PLACEOS_KEY_ENV)
    if api_key is None and not args.allow_anonymous:
        raise CliError(
            f"no API key: give --api-key or set {PLACEOS_KEY_ENV}, "
            "or accept every client with --allow-anonymous"
        )

    dialect = Dialect(args.dialect)

    async def main() -> None:
        await servers.serve_placeos(rt, engine, args.host, args.port, api_key, dialect=dialect)

    return _run(rt, main, f"serving PlaceOS on {args.host} port {args.port}")


def cmd_serve_mews(args: argparse.Namespace) -> int:
    rt = runtime(args.transport)
    tokens = mews_tokens(args)
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
        await servers.serve_mews(
            rt, args.host, args.port, tokens, messages, rate=args.rate, total=total
        )

    return _run(rt, main, f"serving Mews on {args.host} port {args.port}")


def cmd_mews_listen(args: argparse.Namespace) -> int:
    rt = _client_runtime(args)
    url = args.url if args.url is not None else MEWS_ENVIRONMENTS[args.environment]
    tokens = mews_tokens(args, demo_allowed=args.environment != "production")

    async def main() -> None:
        await clients.mews_listen(rt, url, tokens, auth=args.auth, count=args.count)

    return _run(rt, main, f"Mews at {safe_url(url)}", MEWS_TOKENS, args)


def _placeos(args: argparse.Namespace, call: Callable[[Runtime, str], Awaitable[None]]) -> int:
    """Run ``call(runtime, api_key)``: a PlaceOS client command."""
    rt = _client_runtime(args)
    api_key = required(args.api_key, PLACEOS_KEY_ENV, "--api-key", "API key")

    async def main() -> None:
        await call(rt, api_key)

    return _run(rt, main, f"PlaceOS at {safe_url(args.url)}", API_KEY, args)


def cmd_placeos_exec(args: argparse.Namespace) -> int:
    target = (args.sys, args.mod, args.name)
    return _placeos(
        args,
        lambda rt, key: clients.placeos_exec(
            rt, args.url, key, target, args.args, index=args.index, timeout=args.timeout
        ),
    )


def cmd_placeos_bind(args: argparse.Namespace) -> int:
    target = (args.sys, args.mod, args.name)
    return _placeos(
        args,
        lambda rt, key: clients.placeos_bind(
            rt, args.url, key, target, index=args.index, count=args.count
        ),
    )


def cmd_placeos_debug(args: argparse.Namespace) -> int:
    target = (args.sys, args.module_id)
    return _placeos(
        args,
        lambda rt, key: clients.placeos_debug(
            rt, args.url, key, target, index=args.index, count=args.count, as_json=args.json
        ),
    )


def cmd_asyncapi(args: argparse.Namespace) -> int:
    try:
        text = render(args.protocol, args.format)
    except ImportError as exc:
        if exc.name != "yaml":
            raise
        raise CliError("--format yaml needs PyYAML: pip install 'protocore-ws[yaml]'") from None
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    name = args.file
    try:
        if name == "-":
            data, source = sys.stdin.buffer.read(), "<stdin>"
        else:
            data, source = Path(name).read_bytes(), name
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror or exc}") from None
    return decode_lines(data, args.protocol, source=source, lenient=args.lenient)


COMMANDS: Final[dict[str, Callable[[argparse.Namespace], int]]] = {
    "demo": cmd_demo,
    "serve placeos": cmd_serve_placeos,
    "serve mews": cmd_serve_mews,
    "mews listen": cmd_mews_listen,
    "placeos exec": cmd_placeos_exec,
    "placeos bind": cmd_placeos_bind,
    "placeos debug": cmd_placeos_debug,
    "decode": cmd_decode,
    "asyncapi": cmd_asyncapi,
    "fleet": lambda args: int(args.fleet_handler(args)),
}
"""Each leaf parser's ``command`` and the function that runs it."""


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; the exit status. Ctrl-C is the caller's."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format=f"{PROG}: %(message)s",
        stream=sys.stderr,
    )
    try:
        return COMMANDS[args.command](args)
    except EXPECTED as exc:
        note(f"error: {exc}")
        return 1
