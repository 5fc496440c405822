"""The ``runtime`` parametrisation of the binding suite.

Every binding test that takes the ``runtime`` fixture runs once per runtime
in `RUNTIMES`: each value offers ``GearmanClient``, ``GearmanWorker``,
``GearmanAdminClient``, ``DataEncoder`` and ``errors`` with the same sync
API.  ``blocking`` is the ``gearman`` module itself; ``trio`` is a sync
facade (`_async_facade.AsyncFacade`) over ``gearman.trio``'s real objects,
driven through a `_portal.TrioPortal`: a ``trio.run`` of the test's own in
a background thread, ended (and every link with it) when the test ends.
gevent and asyncio join here.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from _async_facade import AsyncFacade
from _portal import TrioPortal

import gearman
import gearman.trio


@contextlib.contextmanager
def trio_runtime() -> Iterator[types.ModuleType]:
    """``gearman.trio`` behind a sync facade, on a ``trio.run`` for one test."""
    with TrioPortal() as portal:
        yield AsyncFacade("trio", gearman.trio, portal)


#: each runtime's name and how to open it for one test.
RUNTIMES: dict[str, Callable[[], AbstractContextManager[types.ModuleType]]] = {
    "blocking": lambda: contextlib.nullcontext(gearman),
    "trio": trio_runtime,
}


@pytest.fixture(params=sorted(RUNTIMES))
def runtime(request: pytest.FixtureRequest) -> Iterator[types.ModuleType]:
    """The binding module of one runtime (or its sync facade)."""
    with RUNTIMES[request.param]() as module:
        yield module
