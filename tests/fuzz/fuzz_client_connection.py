#!/usr/bin/env python3
"""atheris harness: `ClientConnection.receive_data` with a PlaceOS or Mews client session.

The contract is `_contracts.check_client_connection`; anything else escaping is a crash.
Run it with ``python tests/fuzz/run.py --target client_connection``, or directly with libFuzzer
flags and corpus directories (``python tests/fuzz/fuzz_client_connection.py -help=1``).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["protocore", "_contracts", "wsproto", "h11"]):
    from _contracts import check_client_connection


def main() -> None:
    atheris.Setup(sys.argv, check_client_connection)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
