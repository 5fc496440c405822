"""The ``fault_proxy`` fixture: fault-injecting proxies in front of real servers.

A pytest plugin module (``pytest_plugins`` in tests/conftest.py), kept apart
from the gearmand fixtures there. ``fault_proxy(upstream, **kwargs)`` starts a
`devtools.faultproxy.FaultProxy` towards *upstream* (a `Gearmand`, a
``"host:port"`` or a ``(host, port)``) with `FaultProxy`'s keywords, and
returns it; every proxy started is stopped at teardown, which fails the test
if its subprocess reported an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.faultproxy import FaultProxy, FaultProxyFactory


@pytest.fixture
def fault_proxy() -> Iterator[FaultProxyFactory]:
    """Start proxies: ``fault_proxy(gearmand)`` returns one started, stopped at teardown."""
    with contextlib.ExitStack() as cleanup:

        def start(upstream: Any, **kwargs: Any) -> FaultProxy:
            proxy = FaultProxy(upstream, **kwargs)
            cleanup.callback(proxy.stop)
            return proxy.start()

        yield start
