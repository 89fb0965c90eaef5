"""What the three adapters share that is not I/O: TLS defaults and bounded mailboxes.

Protocol logic belongs in the core; this module only holds adapter plumbing that
would otherwise be written three times.
"""

from __future__ import annotations

import ssl
from collections import deque
from typing import Generic, TypeVar

from protocore.backoff import Backoff

__all__ = [
    "DEFAULT_BUFFER",
    "Mailbox",
    "client_ssl_context",
    "reconnect_policy",
]

T = TypeVar("T")

DEFAULT_BUFFER = 1000
"""Items a subscription holds for a slow consumer before it drops the oldest."""


def client_ssl_context(secure: bool, ssl_context: ssl.SSLContext | None) -> ssl.SSLContext | None:
    """The TLS context for a ``wss://`` URL: the caller's, or the system CA store's.

    Verification (certificate chain and host name) is on by default; turning it off
    takes an explicit context. A ``ws://`` URL with a context is refused, since the
    caller evidently expected TLS.
    """
    if not secure:
        if ssl_context is not None:
            raise ValueError("ssl_context given for a ws:// URL; use wss:// for TLS")
        return None
    return ssl_context if ssl_context is not None else ssl.create_default_context()


def reconnect_policy(reconnect: bool | Backoff) -> Backoff | None:
    """``True``: the default backoff; ``False``: never reconnect; or the caller's own."""
    if reconnect is True:
        return Backoff()
    if reconnect is False:
        return None
    if isinstance(reconnect, Backoff):
        return reconnect
    raise TypeError("reconnect must be True, False or a protocore.backoff.Backoff")


class Mailbox(Generic[T]):
    """A bounded FIFO that drops its oldest item when full, and says how many it dropped.

    The policy suits status values and log lines: a slow consumer of a binding wants
    the latest values, not a backlog, and memory must not grow without limit. The
    adapter pairs it with its own way of waking the consumer.
    """

    __slots__ = ("_items", "closed", "dropped", "error")

    def __init__(self, maxsize: int = DEFAULT_BUFFER) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._items: deque[T] = deque(maxlen=maxsize)
        self.dropped = 0
        self.closed = False
        self.error: BaseException | None = None

    def put(self, item: T) -> None:
        """Add ``item``; when full, the oldest item goes (and is counted in `dropped`)."""
        if self.closed:
            return
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(item)

    def close(self, error: BaseException | None = None) -> None:
        """No more items will come; a consumer sees ``error`` (if any) after the last one."""
        if not self.closed:
            self.closed = True
            self.error = error

    def __len__(self) -> int:
        return len(self._items)

    def get_nowait(self) -> T:
        """The oldest item; `IndexError` when empty (check ``len`` or `closed` first)."""
        return self._items.popleft()
