"""Tasks parked on conditions over the core's state, woken by whoever reads.

Owns: the table of parked waiters of an async or greenlet runtime, each a
condition (a cheap predicate such as :func:`gearman._client_kernel.all_settled`)
and the runtime's own event object to set when it holds.  The runtime's
reader calls :meth:`Waiters.check` after every batch of events, so only the
waiters whose condition now holds are switched to; a link that ends wakes
them all (:meth:`Waiters.wake_all`: the caller may have to connect).
Pure: imports no I/O library, never waits; shared by every runtime that
parks tasks (trio, asyncio, gevent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Settable", "Waiters"]


class Settable(Protocol):
    """What a runtime's event offers here: ``trio.Event``, ``asyncio.Event``, gevent's."""

    def set(self) -> None:
        """Wake whoever waits on it."""


class Waiters:
    """Parked waiters: ``event -> condition``."""

    __slots__ = ("_parked",)

    def __init__(self) -> None:
        self._parked: dict[Settable, Callable[[], bool]] = {}

    def __len__(self) -> int:
        return len(self._parked)

    def park(self, event: Settable, done: Callable[[], bool]) -> None:
        """Set *event* once *done()* holds (checked at every :meth:`check`)."""
        self._parked[event] = done

    def leave(self, event: Settable) -> None:
        """Forget *event* (its wait ended, woken or not)."""
        self._parked.pop(event, None)

    def check(self) -> None:
        """Wake every waiter whose condition holds now."""
        parked = self._parked
        if not parked:
            return
        ready = [event for event, done in parked.items() if done()]
        for event in ready:
            del parked[event]
            event.set()

    def wake_all(self) -> None:
        """Wake every waiter, whatever its condition."""
        parked = list(self._parked)
        self._parked.clear()
        for event in parked:
            event.set()
