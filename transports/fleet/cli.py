"""``fleet`` commands: edit the specs bucket, list who holds what, run a worker.

::

    fleet add NAME --protocol mews --url WSS_URL --credential client_token=env:VAR \\
        --credential access_token=file:/etc/fleet/hotel-1 [--replace]
    fleet add NAME --protocol placeos --url WS_URL --credential api_key=env:VAR \\
        --bind sys-1/Display_1.power [--bind ...]
    fleet remove NAME
    fleet list [--json]
    fleet worker [--id ID] [--lease-ttl SECONDS]

Every command takes ``--nats URL`` (default ``$NATS_URL``, else
``nats://127.0.0.1:4222``; repeat it for a cluster) and ``--replicas N`` (for the
buckets and streams it creates). `register` adds them to an
argparse parser; each handler returns the exit status and reports a failure as one
line on stderr. ``python -m transports.fleet ...`` runs them on their own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from .specs import BindingSpec, ConnectionSpec, SpecError, encode_spec

# nats-py (the 'fleet' extra) is imported by the handlers, not here: the parser can be
# registered in a command line installed without it.

__all__ = ["register", "main", "parse_binding"]

log = logging.getLogger("protocore.fleet")
DEFAULT_NATS = "nats://127.0.0.1:4222"
T = TypeVar("T")


class FleetError(Exception):
    """A failure to report as one line, exit status 1."""


def parse_binding(text: str) -> BindingSpec:
    """``SYS/MOD_INDEX.NAME`` (or ``SYS/MOD.NAME``, index 1) as a `BindingSpec`."""
    sys_id, slash, rest = text.partition("/")
    module, dot, name = rest.partition(".")
    if not (sys_id and slash and module and dot and name):
        raise SpecError(f"binding {text!r} is not SYS/MOD_INDEX.NAME")
    mod, underscore, index = module.rpartition("_")
    if underscore and index.isdigit():
        return BindingSpec(sys_id, mod, name, int(index))
    return BindingSpec(sys_id, module, name, 1)


def _credential(text: str) -> tuple[str, str]:
    key, eq, ref = text.partition("=")
    if not (key and eq and ref):
        raise SpecError(
            f"--credential {key or text!r}: expected SECRET=env:VAR or SECRET=file:PATH"
        )
    return key, ref


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``fleet`` command (and its actions) to ``subparsers``.

    Each action sets ``fleet_handler``: call ``args.fleet_handler(args)`` for the
    exit status.
    """
    fleet = subparsers.add_parser(
        "fleet",
        help="share Mews and PlaceOS connections among workers over NATS JetStream",
        description=DESCRIPTION,
    )
    _build(fleet)
    return fleet  # type: ignore[no-any-return]


DESCRIPTION = "Connection specs in NATS JetStream, held by a fleet of workers."


def _build(fleet: argparse.ArgumentParser) -> None:
    nats_opts = argparse.ArgumentParser(add_help=False)
    nats_opts.add_argument(
        "--nats",
        action="append",
        metavar="URL",
        help=f"NATS server URL (repeatable; default $NATS_URL or {DEFAULT_NATS})",
    )
    nats_opts.add_argument(
        "--replicas",
        type=int,
        default=1,
        choices=range(1, 6),
        metavar="N",
        help="JetStream replicas of the buckets and streams this creates (default 1; "
        "3 on a cluster)",
    )
    actions = fleet.add_subparsers(
        dest="fleet_action", required=True, metavar="{add,remove,list,worker}"
    )
    add = actions.add_parser("add", parents=[nats_opts], help="add or replace a connection spec")
    add.add_argument("name")
    add.add_argument("--protocol", required=True, choices=("mews", "placeos"))
    add.add_argument("--url", required=True, help="the ws:// or wss:// URL")
    add.add_argument(
        "--credential",
        action="append",
        default=[],
        metavar="SECRET=REF",
        help="a secret by reference: client_token=env:VAR, api_key=file:PATH ...",
    )
    add.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="SYS/MOD_INDEX.NAME",
        help="a PlaceOS status variable to hold (repeatable)",
    )
    add.add_argument("--replace", action="store_true", help="replace a spec of that name")
    add.set_defaults(fleet_handler=_handler(_add))
    remove = actions.add_parser("remove", parents=[nats_opts], help="remove a connection spec")
    remove.add_argument("name")
    remove.set_defaults(fleet_handler=_handler(_remove))
    listing = actions.add_parser("list", parents=[nats_opts], help="list specs and their owners")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(fleet_handler=_handler(_list))
    worker = actions.add_parser("worker", parents=[nats_opts], help="run a worker until SIGTERM")
    worker.add_argument("--id", help="this worker's id (default: host-pid-random)")
    worker.add_argument(
        "--lease-ttl",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="lease TTL, used when the leases bucket is created (default 10)",
    )
    worker.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    worker.set_defaults(fleet_handler=_handler(_worker))


def _servers(args: argparse.Namespace) -> list[str]:
    return list(args.nats or [os.environ.get("NATS_URL", DEFAULT_NATS)])


Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def _handler(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            from nats.errors import Error as NATSError  # noqa: PLC0415
        except ImportError:
            print(
                "protocore fleet: error: the fleet needs nats-py: pip install 'protocore[fleet]'",
                file=sys.stderr,
            )
            return 1
        try:
            return asyncio.run(command(args))
        except (FleetError, SpecError) as exc:
            print(f"protocore fleet: error: {exc}", file=sys.stderr)
        except (NATSError, OSError, TimeoutError) as exc:
            why = str(exc) or type(exc).__name__
            print(f"protocore fleet: error: NATS: {why}", file=sys.stderr)
        except KeyboardInterrupt:
            print("protocore fleet: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # a bug: one line here, the details at debug level
            log.debug("unexpected failure", exc_info=True)
            print(f"protocore fleet: error: unexpected {type(exc).__name__}", file=sys.stderr)
        return 1

    return run


async def _with_js(args: argparse.Namespace, body: Callable[[Any], Awaitable[T]]) -> T:
    from .jetstream import connect  # noqa: PLC0415

    try:
        nc = await connect(_servers(args), name="protocore-fleet-cli", forever=False)
    except Exception as exc:
        raise FleetError(f"cannot reach NATS at {', '.join(_servers(args))}") from exc
    try:
        return await body(nc.jetstream(timeout=5.0))
    finally:
        await nc.close()


async def _add(args: argparse.Namespace) -> int:
    from .admin import SpecExists, put_spec  # noqa: PLC0415

    spec = ConnectionSpec(
        name=args.name,
        protocol=args.protocol,
        url=args.url,
        credentials=dict(_credential(c) for c in args.credential),
        bindings=tuple(parse_binding(b) for b in args.bind),
    )
    try:
        await _with_js(
            args, lambda js: put_spec(js, spec, replace=args.replace, replicas=args.replicas)
        )
    except SpecExists as exc:
        raise FleetError(f"{exc} (use --replace)") from None
    print(f"added {spec.name}")
    return 0


async def _remove(args: argparse.Namespace) -> int:
    from .admin import NoSuchSpec, remove_spec  # noqa: PLC0415

    try:
        await _with_js(args, lambda js: remove_spec(js, args.name))
    except NoSuchSpec as exc:
        raise FleetError(str(exc)) from None
    print(f"removed {args.name}")
    return 0


async def _list(args: argparse.Namespace) -> int:
    from .admin import list_specs, owners  # noqa: PLC0415

    async def body(js: Any) -> tuple[dict[str, ConnectionSpec | SpecError], dict[str, str]]:
        return await list_specs(js), await owners(js)

    specs, held = await _with_js(args, body)
    for name, spec in specs.items():
        owner = held.get(name)
        if isinstance(spec, SpecError):
            print(f"{name}: unusable spec ({spec})")
        elif args.json:
            doc = json.loads(encode_spec(spec))
            doc["owner"] = owner
            print(json.dumps(doc, sort_keys=True))
        else:
            print(f"{spec.name}\t{spec.protocol}\t{spec.url}\t{owner or '-'}")
    return 0


async def _worker(args: argparse.Namespace) -> int:
    from .worker import Worker  # noqa: PLC0415 - only the worker needs the transports

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.lease_ttl < 1.0:
        raise FleetError("--lease-ttl must be at least 1 second")
    if args.id is not None and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", args.id) is None:
        raise FleetError("--id must be 1-64 letters, digits, '-' or '_'")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    worker = Worker(
        _servers(args), worker_id=args.id, lease_ttl=args.lease_ttl, replicas=args.replicas
    )
    await worker.run(stop)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m transports.fleet ACTION ...``: the ``fleet`` command on its own."""
    parser = argparse.ArgumentParser(prog="python -m transports.fleet", description=DESCRIPTION)
    _build(parser)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.fleet_handler
    return handler(args)
