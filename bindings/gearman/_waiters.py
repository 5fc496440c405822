"""Tasks parked on conditions over the core's state, woken by whoever reads.

Owns: the table of parked waiters of an async or greenlet runtime, each a
condition (a cheap predicate such as :func:`gearman._client_kernel.all_settled`),
the runtime's own event object to set when it holds, and what the
condition watches (the requests or status queries it is about).  After a
batch of events the runtime's reader calls :meth:`Waiters.check` with what
the events changed, so only the waiters watching those objects, and those
that watch nothing in particular, have their condition evaluated: a
hundred tasks each waiting for its own request cost nothing per batch
that does not concern them.  A link that ends wakes them all
(:meth:`Waiters.wake_all`: the caller may have to connect).  Pure: imports
no I/O library, never waits; shared by every runtime that parks tasks
(trio, asyncio, gevent).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Protocol

__all__ = ["Settable", "Waiters"]


class Settable(Protocol):
    """What a runtime's event offers here: ``trio.Event``, ``asyncio.Event``, gevent's."""

    def set(self) -> None:
        """Wake whoever waits on it."""


class Waiters:
    """Parked waiters: ``event -> condition``, indexed by what each one watches."""

    __slots__ = ("_by_watched", "_general", "_parked")

    def __init__(self) -> None:
        self._parked: dict[Settable, tuple[Callable[[], bool], Collection[object]]] = {}
        #: watched object -> the waiters watching it.
        self._by_watched: dict[object, set[Settable]] = {}
        #: the waiters that watch nothing in particular: checked every time.
        self._general: set[Settable] = set()

    def __len__(self) -> int:
        return len(self._parked)

    def park(
        self, event: Settable, done: Callable[[], bool], watch: Collection[object] = ()
    ) -> None:
        """Set *event* once *done()* holds; *done* depends only on the objects in
        *watch* (empty: on anything)."""
        self._parked[event] = (done, watch)
        if not watch:
            self._general.add(event)
            return
        by_watched = self._by_watched
        for watched in watch:
            waiting = by_watched.get(watched)
            if waiting is None:
                by_watched[watched] = {event}
            else:
                waiting.add(event)

    def leave(self, event: Settable) -> None:
        """Forget *event* (its wait ended, woken or not)."""
        parked = self._parked.pop(event, None)
        if parked is None:
            return
        watch = parked[1]
        if not watch:
            self._general.discard(event)
            return
        by_watched = self._by_watched
        for watched in watch:
            waiting = by_watched.get(watched)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del by_watched[watched]

    def check(self, changed: Iterable[object] | None = None) -> None:
        """Wake the waiters whose condition holds now, among those watching
        something in *changed* and those watching nothing in particular
        (None: every waiter)."""
        if not self._parked:
            return
        if changed is None:
            candidates: Iterable[Settable] = list(self._parked)
        else:
            candidates = set(self._general)
            by_watched = self._by_watched
            for watched in changed:
                waiting = by_watched.get(watched)
                if waiting is not None:
                    candidates.update(waiting)
        parked = self._parked
        for event in [event for event in candidates if parked[event][0]()]:
            self.leave(event)
            event.set()

    def wake_all(self) -> None:
        """Wake every waiter, whatever its condition."""
        events = list(self._parked)
        self._parked.clear()
        self._by_watched.clear()
        self._general.clear()
        for event in events:
            event.set()
