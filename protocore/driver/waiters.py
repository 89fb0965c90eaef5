"""What an application waits on: a call's result, or a stream of items.

The driver settles these; an adapter only supplies how to wake the task or thread
that waits (``waker``: a ``trio.Event.set``, an asyncio future's setter, a
``threading.Event.set``). One waiter at a time: whoever waits sets ``waker`` and
clears it when done, so nothing of an abandoned wait stays behind.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Call", "Feed", "Waitable"]

T = TypeVar("T")


class Waitable:
    """Something a task can wait on: `wake` calls the current ``waker`` once."""

    __slots__ = ("waker",)

    def __init__(self) -> None:
        self.waker: Callable[[], None] | None = None

    def wake(self) -> None:
        waker = self.waker
        if waker is not None:
            self.waker = None
            waker()

    @property
    def ready(self) -> bool:
        """Whether a wait would return at once."""
        raise NotImplementedError


class Call(Waitable):
    """One request's outcome: a value or an exception, settled once."""

    __slots__ = ("done", "error", "request_id", "value")

    def __init__(self, request_id: int = 0) -> None:
        super().__init__()
        self.request_id = request_id
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def settle(self, value: Any, error: BaseException | None = None) -> None:
        """The first outcome counts; later ones are ignored."""
        if not self.done:
            self.done = True
            self.value = value
            self.error = error
            self.wake()

    @property
    def ready(self) -> bool:
        return self.done

    def result(self) -> Any:
        """The value, or raise the error (only once `done`)."""
        if self.error is not None:
            raise self.error
        return self.value


class Feed(Waitable, Generic[T]):
    """Items for one consumer, in order, then an end (quiet, or with an error).

    With ``maxsize`` it drops the oldest item when full and counts it in `dropped`
    (binding values, log lines: a slow consumer wants the latest). Without, it
    keeps everything and the driver stops reading instead (Mews events).
    """

    __slots__ = ("closed", "dropped", "error", "items")

    def __init__(self, maxsize: int | None = None) -> None:
        super().__init__()
        if maxsize is not None and maxsize < 1:
            raise ValueError("buffer_size must be at least 1")
        self.items: deque[T] = deque(maxlen=maxsize)
        self.dropped = 0
        self.closed = False
        self.error: BaseException | None = None

    def put(self, item: T) -> None:
        if self.closed:
            return
        items = self.items
        if len(items) == items.maxlen:
            self.dropped += 1
        items.append(item)
        self.wake()

    def close(self, error: BaseException | None = None) -> None:
        """No more items; a consumer sees ``error`` (if any) after the last one."""
        if not self.closed:
            self.closed = True
            self.error = error
            self.wake()

    @property
    def ready(self) -> bool:
        return bool(self.items) or self.closed

    def __len__(self) -> int:
        return len(self.items)
