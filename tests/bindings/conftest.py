"""The ``runtime`` parametrisation of the binding suite.

Every binding test that takes the ``runtime`` fixture runs once per runtime
that exists: each value offers ``GearmanClient``, ``GearmanWorker``,
``GearmanAdminClient`` and ``errors`` with the same API.  Only ``blocking``
exists so far; gevent, trio and asyncio join here.
"""

from __future__ import annotations

import types

import pytest

import gearman

RUNTIMES = {"blocking": gearman}


@pytest.fixture(params=sorted(RUNTIMES))
def runtime(request: pytest.FixtureRequest) -> types.ModuleType:
    """The binding module of one runtime."""
    return RUNTIMES[request.param]
