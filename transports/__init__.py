"""I/O adapters (trio, asyncio, blocking sockets) and the `protocore` command line."""
