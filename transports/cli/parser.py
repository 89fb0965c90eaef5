"""The ``protocore`` command line's arguments: every command, option and its help.

One function per command group (`add_demo`, `add_serve`, `add_mews`, `add_placeos`,
`add_decode`), each given the subparsers and the `Globals`; `GROUPS` lists them, in
the order ``--help`` shows them. A new group is one more function in `GROUPS`. Each
leaf parser sets ``command`` (``"serve placeos"``...), which `transports.cli.commands`
maps to the function that runs it.

The global options (``-v``, ``--transport``) work before and after the subcommand:
every parser has them, and below the top one their default is "not given", so a
later one never undoes an earlier one. Values are checked here (ports, counts,
URLs), so a usage mistake is one line and status 2 before anything starts. Options
holding secrets show no default but the environment variable's name.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import attrs

from protocore import ProtocolError, parse_ws_url
from protocore.mews import DEMO_URL, PRODUCTION_URL
from protocore.placeos import Dialect
from transports.fleet.cli import register as register_fleet

from .credentials import MEWS_ACCESS_ENV, MEWS_CLIENT_ENV, PLACEOS_KEY_ENV
from .output import PROG
from .runtime import DEFAULT_TRANSPORT, TRANSPORTS
from .version import VersionAction

__all__ = [
    "MEWS_ENVIRONMENTS",
    "Globals",
    "GROUPS",
    "add_demo",
    "add_serve",
    "add_mews",
    "add_placeos",
    "add_decode",
    "build_parser",
]

MEWS_ENVIRONMENTS: Final = {"demo": DEMO_URL, "production": PRODUCTION_URL}


# -- argument types -------------------------------------------------------------------------


def _ws_url(text: str) -> str:
    try:
        parse_ws_url(text)
    except ProtocolError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return port


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a count (0 or more), got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _exec_arg(text: str) -> Any:
    """A JSON value where the text is one (``true``, ``30``, ``{"a": 1}``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# -- the parser ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (and status 2), pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _global_options(parser: argparse.ArgumentParser, *, top: bool, transport: bool) -> None:
    """``-v`` (and ``--transport`` where there is I/O) on ``parser``; see the module doc."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="log connects, drops, reconnects, state changes, latency and refused clients",
    )
    if transport:
        parser.add_argument(
            "--transport",
            choices=TRANSPORTS,
            default=DEFAULT_TRANSPORT if top else argparse.SUPPRESS,
            help=f"the I/O adapter to use (default: {DEFAULT_TRANSPORT}; trio needs trio)",
        )


@attrs.frozen
class Globals:
    """Makes the parsers of a group, each with the global options."""

    subparsers: Any

    def parser(
        self, name: str, *, io: bool = True, subparsers: Any = None, **kwargs: Any
    ) -> argparse.ArgumentParser:
        """A parser ``name`` under ``subparsers`` (default: the top level's)."""
        where = self.subparsers if subparsers is None else subparsers
        parser: argparse.ArgumentParser = where.add_parser(name, **kwargs)
        _global_options(parser, top=False, transport=io)
        return parser


def _serve_options(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=port,
        help=f"the port to listen on; 0 picks a free one (default: {port})",
    )


def _mews_token_options(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--client-token",
        metavar="TOKEN",
        help=f"the ClientToken (default: ${MEWS_CLIENT_ENV}; {default})",
    )
    parser.add_argument(
        "--access-token",
        metavar="TOKEN",
        help=f"the AccessToken (default: ${MEWS_ACCESS_ENV}; {default})",
    )


def _proxy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--proxy",
        metavar="URL",
        default="auto",
        help="an http://, socks5:// or socks4a:// proxy, user:password@ allowed, or 'none' "
        "(default: $https_proxy for wss://, $http_proxy for ws://, $all_proxy; $no_proxy "
        "lists hosts that go direct)",
    )


def _stats_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stats",
        action="store_true",
        help="at exit, print the client's counters to stderr as one JSON line",
    )


def _count_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-n", "--count", type=_count, metavar="N", help=f"stop after N {what} (default: never)"
    )


DEMO_TOKENS_HELP: Final = "without either, Mews' published demo tokens"


def add_demo(groups: Globals) -> None:
    """``protocore demo``."""
    demo = groups.parser(
        "demo",
        help="both protocols end to end on fake local servers",
        description="Start a fake Mews server and a fake PlaceOS engine on 127.0.0.1, connect "
        "clients, and show what happens. Exits 0 when everything worked.",
    )
    demo.set_defaults(command="demo")


def add_serve(groups: Globals) -> None:
    """``protocore serve placeos|mews``."""
    serve = groups.parser(
        "serve", help="run a fake PlaceOS engine or Mews server", description="Run a fake server."
    )
    kinds = serve.add_subparsers(dest="kind", required=True, metavar="{placeos,mews}")

    placeos = groups.parser(
        "placeos",
        subparsers=kinds,
        help="a fake PlaceOS engine serving systems from a file",
        description="Serve mock PlaceOS systems over the real-time WebSocket until Ctrl-C. "
        "Prints 'listening on URL' first. As the library's serve_placeos, it refuses "
        f"every client unless given an API key (--api-key or ${PLACEOS_KEY_ENV}) or "
        "told to accept everyone (--allow-anonymous).",
    )
    _serve_options(placeos, 8080)
    placeos.add_argument(
        "--systems",
        type=Path,
        metavar="FILE",
        help="systems, modules, status and scripted methods, as JSON or TOML (.toml); "
        "see examples/systems.json (default: a built-in meeting room, sys-room-1)",
    )
    access = placeos.add_mutually_exclusive_group()
    access.add_argument(
        "--api-key", metavar="KEY", help=f"the key clients must send (default: ${PLACEOS_KEY_ENV})"
    )
    access.add_argument(
        "--allow-anonymous",
        action="store_true",
        help="accept every client, with or without a key (for local use only)",
    )
    placeos.add_argument(
        "--dialect",
        choices=[d.value for d in Dialect],
        default=Dialect.CURRENT.value,
        help="the error form: current (the number in error_code, as today's PlaceOS) or seed "
        "(the number in code, as older clients such as the 4.7 TypeScript client read it) "
        "(default: current)",
    )
    placeos.set_defaults(command="serve placeos")

    mews = groups.parser(
        "mews",
        subparsers=kinds,
        help="a fake Mews Connector server pushing events",
        description="Serve the Mews Connector WebSocket and push messages to every client, "
        "starting when the first one connects; then serve until Ctrl-C. "
        "Prints 'listening on URL' first. It accepts the tokens given; given none, "
        "Mews' published demo tokens (those of the example request in Mews' "
        "documentation), which 'protocore mews listen' sends when given none too.",
    )
    _serve_options(mews, 8081)
    _mews_token_options(mews, DEMO_TOKENS_HELP)
    source = mews.add_mutually_exclusive_group()
    source.add_argument(
        "--events",
        type=Path,
        metavar="FILE",
        help='replay the messages of a JSON-lines file (one {"Events": [...]} per line)',
    )
    source.add_argument("--seed", type=int, help="seed the generated events, for repeatable runs")
    mews.add_argument(
        "--rate",
        type=_positive_float,
        default=1.0,
        metavar="N",
        help="messages per second (default: 1)",
    )
    mews.add_argument(
        "-n",
        "--count",
        type=_count,
        metavar="N",
        help="send N messages, then only serve (default: the whole file, or without end)",
    )
    mews.set_defaults(command="serve mews")


def add_mews(groups: Globals) -> None:
    """``protocore mews listen``."""
    mews = groups.parser(
        "mews", help="Mews Connector client", description="Mews Connector WebSocket client."
    )
    mews_actions = mews.add_subparsers(dest="action", required=True, metavar="{listen}")
    listen = groups.parser(
        "listen",
        subparsers=mews_actions,
        help="print each event as a JSON line",
        description="Connect to the Mews Connector WebSocket and print one JSON line per "
        "event; reconnects by itself (a note on stderr says events may have been missed).",
    )
    where = listen.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", type=_ws_url, help="the WebSocket URL (ws:// or wss://)")
    where.add_argument(
        "--environment",
        choices=sorted(MEWS_ENVIRONMENTS),
        help=f"a published address: demo ({DEMO_URL}) or production ({PRODUCTION_URL})",
    )
    _mews_token_options(listen, f"{DEMO_TOKENS_HELP}, except for production")
    listen.add_argument(
        "--auth",
        choices=("cookie", "query"),
        default="cookie",
        help="where the tokens go: cookie (current API) or query (legacy) (default: cookie)",
    )
    _count_option(listen, "events")
    _proxy_option(listen)
    _stats_option(listen)
    listen.set_defaults(command="mews listen")


def add_placeos(groups: Globals) -> None:
    """``protocore placeos exec|bind|debug``."""
    placeos = groups.parser(
        "placeos",
        help="PlaceOS real-time client",
        description="PlaceOS real-time WebSocket client.",
    )
    actions = placeos.add_subparsers(dest="action", required=True, metavar="{exec,bind,debug}")
    helps = {
        "exec": "call a module's method and print its result as JSON",
        "bind": "print a status variable's value, then each change, as JSON lines "
        "(a note on stderr while it has none yet)",
        "debug": "print a module's log lines",
    }
    for action, text in helps.items():
        sub = groups.parser(action, subparsers=actions, help=text, description=text + ".")
        sub.add_argument(
            "--url",
            type=_ws_url,
            required=True,
            help="ws[s]://HOST/api/engine/v2/systems/control",
        )
        sub.add_argument(
            "--api-key", metavar="KEY", help=f"the API key (default: ${PLACEOS_KEY_ENV})"
        )
        sub.add_argument(
            "--index", type=_positive_int, default=1, help="the module's index (default: 1)"
        )
        sub.add_argument("sys", metavar="SYS", help="the system id (sys-...)")
        _proxy_option(sub)
        if action == "debug":
            sub.add_argument("module_id", metavar="MODULE_ID", help="the module id (mod-...)")
            sub.add_argument("--json", action="store_true", help="print JSON lines, not text")
            _count_option(sub, "lines")
        else:
            sub.add_argument("mod", metavar="MOD", help="the module name (Display)")
            sub.add_argument("name", metavar="NAME", help="the method or status variable")
        if action == "exec":
            sub.add_argument(
                "args",
                metavar="ARGS",
                nargs="*",
                type=_exec_arg,
                help='the method\'s arguments, JSON where they parse (true, 30, "30"), '
                "strings otherwise",
            )
            sub.add_argument(
                "--timeout",
                type=_positive_float,
                default=10.0,
                metavar="SECONDS",
                help="how long to wait for the result (default: 10)",
            )
            _stats_option(sub)
        if action == "bind":
            _count_option(sub, "values")
        sub.set_defaults(command=f"placeos {action}")


def add_decode(groups: Globals) -> None:
    """``protocore decode mews|placeos [FILE]`` (``--lenient`` before or after ``mews``)."""
    description = (
        "Decode captured messages (one per line; blank lines skipped), print each decoded "
        "form as a JSON line, and name every line that fails (its number, where in the "
        "message, why). Exit status 1 when any line fails."
    )
    lenient_help = "mews: keep an event that fails its schema as an InvalidEvent, as clients do"
    decode = groups.parser(
        "decode", io=False, help="check captured messages, one per line", description=description
    )
    decode.add_argument("--lenient", action="store_true", help=lenient_help)
    protocols = decode.add_subparsers(dest="protocol", required=True, metavar="{mews,placeos}")
    helps = {"mews": "Mews messages", "placeos": "PlaceOS requests and responses"}
    for protocol, text in helps.items():
        sub = groups.parser(
            protocol,
            io=False,
            subparsers=protocols,
            help=text,
            description=description,
        )
        sub.add_argument(
            "file", nargs="?", default="-", metavar="FILE", help="the file; - for stdin (default)"
        )
        if protocol == "mews":
            sub.add_argument(
                "--lenient", action="store_true", default=argparse.SUPPRESS, help=lenient_help
            )
        sub.set_defaults(command="decode")


def add_asyncapi(groups: Globals) -> None:
    """``protocore asyncapi mews|placeos [--format json|yaml]``."""
    asyncapi = groups.parser(
        "asyncapi",
        io=False,
        help="print the AsyncAPI 3.0 document of an API",
        description="Print the AsyncAPI 3.0 document protocore generates from its models: "
        "channels, messages, every field, both dialects, the auth schemes.",
    )
    asyncapi.add_argument("protocol", choices=("mews", "placeos"), help="which API")
    asyncapi.add_argument(
        "--format",
        choices=("json", "yaml"),
        default="json",
        help="json (default) or yaml (yaml needs the 'yaml' extra: PyYAML)",
    )
    asyncapi.set_defaults(command="asyncapi")


def add_fleet(groups: Globals) -> None:
    """``protocore fleet add|remove|list|worker`` (transports.fleet; extra ``fleet``)."""
    fleet = register_fleet(groups.subparsers)
    fleet.set_defaults(command="fleet")


GROUPS: Final[Sequence[Callable[[Globals], None]]] = (
    add_demo,
    add_serve,
    add_mews,
    add_placeos,
    add_decode,
    add_asyncapi,
    add_fleet,
)
"""Every command group, in the order ``--help`` lists them."""


def build_parser(groups: Sequence[Callable[[Globals], None]] = GROUPS) -> argparse.ArgumentParser:
    """The whole command line (every command has ``--help``)."""
    parser = _Parser(
        prog=PROG,
        description="protocore: the Mews Connector and PlaceOS real-time WebSockets.",
        epilog="Start with 'protocore demo'. Secrets come from options or the environment "
        f"(${PLACEOS_KEY_ENV}, ${MEWS_CLIENT_ENV}, ${MEWS_ACCESS_ENV}) and are never printed.",
    )
    parser.add_argument("--version", action=VersionAction)
    _global_options(parser, top=True, transport=True)
    subparsers = parser.add_subparsers(
        dest="top_command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for add in groups:
        add(Globals(subparsers))
    return parser
