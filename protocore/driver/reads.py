"""How much an adapter reads from a socket at a time: one figure for every transport.

64 KiB, because what a read brings is decoded at once into models, which the garbage
collector tracks until the consumer drops them, while bytes still in the kernel's
socket buffer cost nothing. A 4-event Mews envelope of ~640 bytes makes a 64 KiB read
about 400 events, below CPython's young-generation threshold (700 new objects), so a
consumer that keeps up sees almost no collections. asyncio's own 256 KiB read made
about 1,650 events a read, and a few hundred collections per 100,000 events, some of
them full ones (benchmarks: `docs/benchmarks.md`).
"""

from __future__ import annotations

__all__ = ["READ_SIZE"]

READ_SIZE = 65536
