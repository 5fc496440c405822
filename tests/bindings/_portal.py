"""Portals: an event loop in a background thread that sync test code calls into.

The binding suite is written in sync style; for an async runtime it drives
the real async objects through a portal.  A portal owns one event loop
running in a daemon thread and offers:

- `Portal.call` ``(async_fn, *args)``: run ``async_fn(*args)`` in the loop
  and block the calling thread until it ends; its result is returned and
  its exception raised unchanged.
- `Portal.call_sync` ``(fn, *args)``: run plain ``fn(*args)`` in the loop's
  thread (objects of the loop are touched from that thread only).
- `Portal.to_thread` ``(fn, *args)``: an awaitable, for code running in the
  loop, that runs blocking ``fn(*args)`` in a worker thread; that thread
  may use `call` and `call_sync` again.
- `Portal.close`: end the loop (what is still running in it is cancelled)
  and join its thread; an error the loop itself ended with is raised.

`TrioPortal` is the trio one (``trio.run`` in the thread, calls through
``trio.from_thread`` with the run's token).  An asyncio portal (``asyncio``
loop in the thread, ``run_coroutine_threadsafe``, ``asyncio.to_thread``)
offers the same four names.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol, TypeVar

import trio

__all__ = ["Portal", "TrioPortal"]

T = TypeVar("T")

#: seconds a portal waits for its loop to start or to end.
LOOP_TIMEOUT = 10.0

#: worker threads `Portal.to_thread` runs at once: more than the suite ever
#: nests or blocks (a hook in a thread calling into the loop, which runs a task
#: function in another thread ...), so a full limiter never deadlocks a test.
THREADS = 1000


class Portal(Protocol):
    """What the sync facades need of an event loop running in another thread."""

    def call(self, async_fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``async_fn(*args)`` in the loop; block until it returns or raises."""

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the loop's thread; block until it returns or raises."""

    def to_thread(self, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Awaited in the loop: run blocking ``fn(*args)`` in a worker thread."""

    def close(self) -> None:
        """End the loop and join its thread."""


class TrioPortal:
    """A `Portal` on a ``trio.run`` of its own, in a daemon thread.

    Use it as a context manager, or call `close`.  Everything created
    through one portal lives in its one ``trio.run``.
    """

    def __init__(self) -> None:
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._limiter: trio.CapacityLimiter | None = None
        self._thread = threading.Thread(target=self._run, name="trio-portal", daemon=True)
        self._thread.start()
        if not self._started.wait(LOOP_TIMEOUT):
            raise RuntimeError(f"trio.run did not start within {LOOP_TIMEOUT} s")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:
            self._error = error
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        self._limiter = trio.CapacityLimiter(THREADS)
        self._started.set()
        await self._stop.wait()

    @property
    def _in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, async_fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self._in_loop:
            raise RuntimeError("Portal.call from the loop's own thread would block the loop")
        return trio.from_thread.run(async_fn, *args, trio_token=self._token)

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        if self._in_loop:
            return fn(*args)
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(functools.partial(fn, *args), limiter=self._limiter)

    def close(self) -> None:
        if self._thread.is_alive() and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):  # ended on its own
                self.call_sync(self._stop.set)
        self._thread.join(LOOP_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError(f"trio.run did not end within {LOOP_TIMEOUT} s")
        if self._error is not None:
            raise self._error

    def __enter__(self) -> TrioPortal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
