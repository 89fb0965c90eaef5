"""The ``protocore`` command line: a demo, fake servers, clients, and a decoder.

::

    protocore demo [--transport trio|asyncio|sync]
    protocore serve placeos [--host H] [--port P] [--systems FILE] [--api-key KEY]
    protocore serve mews [--host H] [--port P] [--events FILE | --seed N] [--rate N] ...
    protocore mews listen (--url URL | --environment demo|production) [--count N]
    protocore placeos exec|bind --url URL SYS MOD NAME [ARGS...]
    protocore placeos debug --url URL SYS MODULE_ID
    protocore decode mews|placeos [FILE|-]

Exit status: 0 done, 1 failed (one ``protocore: error: ...`` line on stderr), 2 bad
usage, 130 interrupted (Ctrl-C, at any moment: even while the modules load, which is
why this entry point imports them inside `main`). Secrets come from options or the
environment (``PLACEOS_API_KEY``, ``MEWS_CLIENT_TOKEN``, ``MEWS_ACCESS_TOKEN``) and
are never printed, not even as ``--help`` defaults. The parser and the commands are
in `transports._cli_main`.
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
        # end in a traceback either.
        from ._cli_main import run  # noqa: PLC0415

        return run(argv)
    except KeyboardInterrupt:
        print("protocore: interrupted", file=sys.stderr, flush=True)
        return INTERRUPTED
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
