"""Counters a client keeps: cheap to bump on the hot path, cheap to read."""

from __future__ import annotations

__all__ = ["Stats"]


class Stats:
    """Bytes, messages, reconnects, dropped items and bad messages, since the start."""

    __slots__ = (
        "bad_messages",
        "bytes_in",
        "bytes_out",
        "dropped",
        "messages_in",
        "messages_out",
        "reconnects",
    )

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.messages_in = 0
        self.messages_out = 0
        self.reconnects = 0
        self.dropped = 0
        self.bad_messages = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in sorted(self.__slots__)}

    def __repr__(self) -> str:
        fields = " ".join(f"{name}={value}" for name, value in self.as_dict().items())
        return f"<Stats {fields}>"
