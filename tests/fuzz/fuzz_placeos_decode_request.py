#!/usr/bin/env python3
"""atheris harness: `protocore.placeos.decode_request` (both JSON backends).

The contract is `_contracts.check_placeos_decode_request`; anything else escaping is a crash.
Run it with ``python tests/fuzz/run.py --target placeos_decode_request``, or directly with libFuzzer
flags and corpus directories (``python tests/fuzz/fuzz_placeos_decode_request.py -help=1``).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["protocore", "_contracts"]):
    from _contracts import check_placeos_decode_request


def main() -> None:
    atheris.Setup(sys.argv, check_placeos_decode_request)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
