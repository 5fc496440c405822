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
``trio.from_thread`` with the run's token).  `AsyncioPortal` is the asyncio
one (an event loop of its own, made by a loop factory so that uvloop's runs
it just as well; calls through ``run_coroutine_threadsafe`` and
``call_soon_threadsafe``, blocking functions in a thread pool of its own).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Protocol, TypeVar

import trio

__all__ = ["AsyncioPortal", "Portal", "TrioPortal"]

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


class AsyncioPortal:
    """A `Portal` on an asyncio event loop of its own, in a daemon thread.

    *loop_factory* makes the loop (default: ``asyncio.new_event_loop``;
    ``uvloop.new_event_loop`` runs the same under uvloop).  Use it as a
    context manager, or call `close`: what is still running in the loop
    is cancelled and awaited, as ``asyncio.run`` does at its end.
    """

    def __init__(
        self, loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    ) -> None:
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: calls handed to the loop and not answered yet; failed if the loop
        #: ends first, so no thread waits for an answer forever.
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        self._ended = False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=THREADS, thread_name_prefix="asyncio-portal-worker"
        )
        self._thread = threading.Thread(
            target=self._run, args=(loop_factory,), name="asyncio-portal", daemon=True
        )
        self._thread.start()
        if not self._started.wait(LOOP_TIMEOUT):
            raise RuntimeError(f"the asyncio loop did not start within {LOOP_TIMEOUT} s")
        if self._error is not None:
            raise self._error

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The portal's event loop."""
        assert self._loop is not None
        return self._loop

    def _run(self, loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
        try:
            loop = loop_factory()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.call_soon(self._started.set)
                loop.run_forever()
            finally:
                try:
                    self._cancel_everything(loop)
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    asyncio.set_event_loop(None)
                    loop.close()
        except BaseException as error:
            self._error = error
        finally:
            with self._lock:
                self._ended = True
                unanswered, self._pending = self._pending, set()
            for future in unanswered:
                future.cancel()
            self._started.set()

    def _handed(self, hand: Callable[[], concurrent.futures.Future[T]]) -> T:
        """Hand a call to the loop (*hand* returns its future); wait for the answer."""
        with self._lock:
            if self._ended:
                raise RuntimeError("the portal's event loop has ended")
            future = hand()
            self._pending.add(future)
        try:
            return future.result()
        finally:
            with self._lock:
                self._pending.discard(future)

    @staticmethod
    def _cancel_everything(loop: asyncio.AbstractEventLoop) -> None:
        """Cancel every task still running and wait for them (``asyncio.run``'s end)."""
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))

    @property
    def _in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, async_fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self._in_loop:
            raise RuntimeError("Portal.call from the loop's own thread would block the loop")

        async def run() -> T:
            return await async_fn(*args)

        def hand() -> concurrent.futures.Future[T]:
            coroutine: Coroutine[Any, Any, T] = run()
            return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

        return self._handed(hand)

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        if self._in_loop:
            return fn(*args)

        def hand() -> concurrent.futures.Future[T]:
            future: concurrent.futures.Future[T] = concurrent.futures.Future()

            def run() -> None:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    future.set_result(fn(*args))
                except BaseException as error:
                    future.set_exception(error)

            self.loop.call_soon_threadsafe(run)
            return future

        return self._handed(hand)

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def close(self) -> None:
        if self._thread.is_alive() and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: ended on its own
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(LOOP_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError(f"the asyncio loop did not end within {LOOP_TIMEOUT} s")
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._error is not None:
            raise self._error

    def __enter__(self) -> AsyncioPortal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
