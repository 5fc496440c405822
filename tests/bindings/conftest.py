"""The ``runtime`` parametrisation of the binding suite.

Every binding test that takes the ``runtime`` fixture runs once per runtime
in `RUNTIMES`: each value offers ``GearmanClient``, ``GearmanWorker``,
``GearmanAdminClient``, ``DataEncoder`` and ``errors`` with the same sync
API, and ``concurrency`` (`_binding_helpers.Threads` or
`_binding_helpers.Greenlets`): how the test runs things in the background,
waits for an event and pauses.

- ``blocking`` is the ``gearman`` module's classes, tests in threads;
- ``gevent`` is ``gearman.gevent``'s classes (the same sync API), tests in
  greenlets of the test's own thread, no monkey-patching
  (``test_gevent_monkey.py`` runs the same share again under
  ``gevent.monkey.patch_all()`` in a subprocess);
- ``trio`` is a sync facade (`_async_facade.AsyncFacade`) over
  ``gearman.trio``'s real objects, driven through a `_portal.TrioPortal`:
  a ``trio.run`` of the test's own in a background thread, ended (and
  every link with it) when the test ends;
- ``asyncio`` is the same facade over ``gearman.asyncio``, through an
  `_portal.AsyncioPortal` (an asyncio loop of the test's own in a
  background thread); ``asyncio-uvloop`` the same on a uvloop loop.

``GEARMAN_TEST_RUNTIMES`` (comma-separated names) restricts the runs to
those runtimes; only they are imported.  A test marked
``_binding_helpers.sync_runtimes_only()`` runs on the sync runtimes
(``blocking``, ``gevent``) only.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from _binding_helpers import Concurrency, Greenlets, Threads, selected_runtimes

import gearman


class SyncRuntime(types.ModuleType):
    """A sync runtime of the suite: *binding*'s classes, the rest of ``gearman``.

    ``GearmanClient``, ``GearmanWorker``, ``GearmanAdminClient`` (and any
    other name *binding* has) are *binding*'s own, unwrapped; ``errors``,
    ``DataEncoder``, the constants and the rest come from ``gearman``,
    which they share.  ``concurrency`` is how its tests run alongside.
    """

    def __init__(self, name: str, binding: types.ModuleType, concurrency: Concurrency) -> None:
        super().__init__(f"{binding.__name__} (runtime {name})")
        self.runtime_name = name
        self.binding = binding
        self.concurrency = concurrency

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        for source in (self.binding, gearman):
            with contextlib.suppress(AttributeError):
                return getattr(source, attribute)
        raise AttributeError(f"runtime {self.runtime_name} has no {attribute!r}")


@contextlib.contextmanager
def blocking_runtime() -> Iterator[types.ModuleType]:
    """``gearman`` itself; tests in threads."""
    yield SyncRuntime("blocking", gearman, Threads())


@contextlib.contextmanager
def gevent_runtime() -> Iterator[types.ModuleType]:
    """``gearman.gevent``; tests in greenlets of the test's thread.

    At the end the hub runs until it is idle: the readers of links whose
    server the test stopped take in the end and close their sockets, as
    they would in a program whose hub keeps running (the async runtimes'
    loops end with their test instead).
    """
    import gevent  # noqa: PLC0415 -- imported only when its runtime runs

    import gearman.gevent  # noqa: PLC0415

    yield SyncRuntime("gevent", gearman.gevent, Greenlets())
    gevent.idle()


@contextlib.contextmanager
def trio_runtime() -> Iterator[types.ModuleType]:
    """``gearman.trio`` behind a sync facade, on a ``trio.run`` for one test."""
    from _async_facade import AsyncFacade  # noqa: PLC0415
    from _portal import TrioPortal  # noqa: PLC0415

    import gearman.trio  # noqa: PLC0415

    with TrioPortal() as portal:
        yield AsyncFacade("trio", gearman.trio, portal)


@contextlib.contextmanager
def asyncio_runtime(uvloop: bool = False) -> Iterator[types.ModuleType]:
    """``gearman.asyncio`` behind a sync facade, on an event loop for one test
    (uvloop's if *uvloop*)."""
    import asyncio  # noqa: PLC0415

    from _async_facade import AsyncFacade  # noqa: PLC0415
    from _portal import AsyncioPortal  # noqa: PLC0415

    import gearman.asyncio  # noqa: PLC0415

    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    name = "asyncio"
    if uvloop:
        import uvloop as uvloop_module  # noqa: PLC0415

        loop_factory, name = uvloop_module.new_event_loop, "asyncio-uvloop"
    with AsyncioPortal(loop_factory) as portal:
        yield AsyncFacade(name, gearman.asyncio, portal)


#: each runtime's name and how to open it for one test.
RUNTIMES: dict[str, Callable[[], AbstractContextManager[types.ModuleType]]] = {
    "blocking": blocking_runtime,
    "gevent": gevent_runtime,
    "trio": trio_runtime,
    "asyncio": asyncio_runtime,
    "asyncio-uvloop": lambda: asyncio_runtime(uvloop=True),
}


@pytest.fixture(params=selected_runtimes(RUNTIMES))
def runtime(request: pytest.FixtureRequest) -> Iterator[types.ModuleType]:
    """The binding module of one runtime (or its sync facade)."""
    with RUNTIMES[request.param]() as module:
        yield module
