"""Shared fixtures: real gearmand servers on private loopback ports.

`gearmand` is one server for the whole session; tests that stop, kill or
restart a server, or need several, take theirs from `gearmand_factory`.
Without gearmand installed these tests are skipped, except under CI (the
``CI`` environment variable set), where a missing server is an error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.gearmand import Gearmand, GearmandFactory, find_gearmand

#: TLS certificates and stunnel in front of gearmand (tests/_tls.py).
pytest_plugins = ["_tls"]


@pytest.fixture(scope="session")
def gearmand_path() -> str:
    """The gearmand executable; skips the test (fails it under CI) if there is none."""
    path = find_gearmand()
    if path is None:
        message = "gearmand is not installed: run scripts/setup (apt package gearman-job-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must not skip the server tests", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def gearmand(gearmand_path: str) -> Iterator[Gearmand]:
    """A gearmand shared by the whole session; do not stop or restart it."""
    with Gearmand(executable=gearmand_path) as server:
        yield server


@pytest.fixture
def gearmand_factory(gearmand_path: str) -> Iterator[GearmandFactory]:
    """Start extra servers: ``gearmand_factory(extra_args=["-j", "2"])`` returns one started.

    Takes the keyword arguments of `Gearmand`; every server is closed at teardown.
    """
    with contextlib.ExitStack() as cleanup:

        def start(**kwargs: Any) -> Gearmand:
            server = Gearmand(**{"executable": gearmand_path, **kwargs})
            cleanup.callback(server.close)
            return server.start()

        yield start
