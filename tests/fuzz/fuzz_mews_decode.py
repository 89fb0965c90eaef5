#!/usr/bin/env python3
"""atheris harness: `protocore.mews.decode_envelope` (strict and lenient, both JSON backends).

The contract is `_contracts.check_mews_decode`; anything else escaping is a crash.
Run it with ``python tests/fuzz/run.py --target mews_decode``, or directly with libFuzzer
flags and corpus directories (``python tests/fuzz/fuzz_mews_decode.py -help=1``).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["protocore", "_contracts"]):
    from _contracts import check_mews_decode


def main() -> None:
    atheris.Setup(sys.argv, check_mews_decode)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
