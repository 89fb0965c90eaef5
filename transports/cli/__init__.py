"""The ``protocore`` command line: a demo, fake servers, clients, and a decoder.

::

    protocore [--version] [-v] [--transport asyncio|trio|sync] COMMAND ...
    protocore demo
    protocore serve placeos [--port P] [--systems FILE] [--api-key KEY | --allow-anonymous]
    protocore serve mews [--host H] [--port P] [--events FILE | --seed N] [--rate N] ...
    protocore mews listen (--url URL | --environment demo|production) [--count N]
    protocore placeos exec|bind --url URL SYS MOD NAME [ARGS...]
    protocore placeos debug --url URL SYS MODULE_ID
    protocore decode mews|placeos [--lenient] [FILE|-]

An application on top of the library: it uses only the public API of `protocore`
and of `transports.asyncio`, `transports.trio` and `transports.sync`. Exit status:
0 done, 1 failed (one ``protocore: error: ...`` line on stderr), 2 bad usage, 130
interrupted (Ctrl-C, at any moment: even while the modules load, which is why `main`
imports them inside). Secrets come from options or the environment
(``PLACEOS_API_KEY``, ``MEWS_CLIENT_TOKEN``, ``MEWS_ACCESS_TOKEN``) and are never
printed, not even as ``--help`` defaults.

To add a command group: a function ``add_x(groups)`` in `transports.cli.parser`
listed in its ``GROUPS``, and its leaf commands' functions in
`transports.cli.commands.COMMANDS`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

INTERRUPTED = 130
"""The exit status after Ctrl-C (128 + SIGINT), as shells report it."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv``: the arguments, default ``sys.argv[1:]``); the status."""
    try:
        # Inside the try: a Ctrl-C while protocore and the transports load must not
        # end in a traceback either, nor a library that refuses to load (a bad
        # PROTOCORE_JSON).
        try:
            from .commands import run  # noqa: PLC0415
        except Exception as exc:  # a library refusing to load: one line, never a traceback
            print(f"protocore: error: cannot load protocore: {exc}", file=sys.stderr, flush=True)
            return 1
        return run(argv)
    except KeyboardInterrupt:
        print("protocore: interrupted", file=sys.stderr, flush=True)
        return INTERRUPTED
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
