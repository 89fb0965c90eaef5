#!/usr/bin/env python3
"""atheris harness: `ServerConnection.receive_data`, PlaceOS (mock engine) or Mews server.

The contract is `_contracts.check_server_connection`; anything else escaping is a crash.
Run it with ``python tests/fuzz/run.py --target server_connection``, or directly with libFuzzer
flags and corpus directories (``python tests/fuzz/fuzz_server_connection.py -help=1``).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["protocore", "_contracts", "wsproto", "h11"]):
    from _contracts import check_server_connection


def main() -> None:
    atheris.Setup(sys.argv, check_server_connection)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
