"""The pytest plugin of gearman-proto: fixtures that run private gearmand servers.

Installed with the ``gearman-proto`` distribution and registered through its
``pytest11`` entry point, so every pytest run in that environment offers:

- ``gearmand``: one server for the whole session (a `gearman.testing.Gearmand`;
  ``gearmand.address`` is ``"127.0.0.1:PORT"`` for ``GearmanClient([...])``).
  Tests share it: do not stop, kill or restart it; jobs left queued by one
  test are seen by the next.
- ``gearmand_factory``: servers of the test's own (a
  `gearman.testing.GearmandFactory`): ``gearmand_factory(extra_args=[...])``
  returns one started server, ``gearmand_factory.many(3)`` a started
  `gearman.testing.GearmandGroup` with its ``host_list``. Each may be stopped,
  killed or restarted (on the same port); all are closed at teardown.
- ``gearmand_path``: the gearmand executable the other two run.

Settings (``[tool.pytest.ini_options]``, ``pytest.ini``, or ``-o NAME=VALUE``):

- ``gearmand_path``: the executable (a path, relative to the config file, or a
  name on ``PATH``); else ``$GEARMAND_PATH``; else ``PATH`` and
  ``/usr/sbin``. A setting that names no executable fails the tests.
- ``gearmand_missing``: what a test that needs a server does when gearmand is
  not installed: ``skip``, ``fail``, or ``auto`` (the default): fail when the
  ``CI`` environment variable is set (a CI run must not pass by skipping its
  server tests), skip otherwise.

A project's own fixture of the same name overrides the plugin's, and
``-p no:gearman`` turns the plugin off. With plugin autoloading disabled
(``PYTEST_DISABLE_PLUGIN_AUTOLOAD``), load it with ``-p pytest_gearman`` or
``pytest_plugins = ["pytest_gearman"]`` in the top-level conftest.py: the entry
point has the module's name, so listing it as well as installing it registers
it once.

This module is top-level on purpose and imports neither ``gearman`` nor
``gearman_proto`` until a fixture runs: pytest loads plugins before
coverage measurement starts, and a plugin inside ``gearman`` would import
the whole binding into every pytest run of the environment (and hide its
import-time lines from coverage).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from gearman.testing import Gearmand, GearmandFactory

__all__ = ["gearmand", "gearmand_factory", "gearmand_path"]

#: What ``gearmand_missing`` may be set to.
MISSING_POLICIES = ("auto", "skip", "fail")
#: Values of the ``CI`` environment variable that do not mean "this is CI".
_NOT_CI = ("", "0", "false", "no")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ini settings (no command-line options: they could clash with a project's)."""
    parser.addini(
        "gearmand_path",
        "gearmand executable for the gearmand fixtures (default: $GEARMAND_PATH, then PATH)",
        default="",
    )
    parser.addini(
        "gearmand_missing",
        "without gearmand, tests using its fixtures: skip, fail, or auto (fail if CI is set)",
        default="auto",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Reject a ``gearmand_missing`` value that is none of `MISSING_POLICIES`."""
    _missing_policy(config)


def _missing_policy(config: pytest.Config) -> str:
    policy = str(config.getini("gearmand_missing")).strip().lower() or "auto"
    if policy not in MISSING_POLICIES:
        raise pytest.UsageError(
            f"gearmand_missing = {policy!r}: expected one of {', '.join(MISSING_POLICIES)}"
        )
    return policy


def _configured_path(config: pytest.Config) -> str | None:
    """The ``gearmand_path`` setting, a relative path taken from the config file's directory."""
    value = str(config.getini("gearmand_path")).strip()
    if not value:
        return None
    if os.sep in value and not os.path.isabs(value):
        base = config.inipath.parent if config.inipath is not None else Path.cwd()
        return str(base / value)
    return value


def _missing(config: pytest.Config, reason: str) -> NoReturn:
    """Skip the test, or fail it when `_missing_policy` says so."""
    policy = _missing_policy(config)
    in_ci = os.environ.get("CI", "").strip().lower() not in _NOT_CI
    if policy == "fail" or (policy == "auto" and in_ci):
        why = "gearmand_missing = fail" if policy == "fail" else "CI is set"
        pytest.fail(f"{reason}; {why}, so the test fails instead of skipping", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def gearmand_path(pytestconfig: pytest.Config) -> str:
    """The gearmand executable; without one the test is skipped or failed (``gearmand_missing``)."""
    from gearman.testing import GearmandNotFound, find_gearmand  # noqa: PLC0415 -- see module doc

    try:
        path = find_gearmand(_configured_path(pytestconfig))
    except GearmandNotFound as error:  # a setting that is wrong: never a skip
        pytest.fail(f"gearmand_path: {error}", pytrace=False)
    if path is None:
        _missing(
            pytestconfig,
            "gearmand is not installed (Debian/Ubuntu: apt-get install gearman-job-server; "
            "or set gearmand_path or $GEARMAND_PATH)",
        )
    return path


@pytest.fixture(scope="session")
def gearmand(gearmand_path: str) -> Iterator[Gearmand]:
    """One gearmand shared by the whole session; do not stop, kill or restart it."""
    from gearman.testing import Gearmand  # noqa: PLC0415 -- see module doc

    with Gearmand(executable=gearmand_path) as server:
        yield server


@pytest.fixture
def gearmand_factory(gearmand_path: str) -> Iterator[GearmandFactory]:
    """Servers of the test's own: ``gearmand_factory(**options)`` or ``.many(count, **options)``.

    Options are `gearman.testing.Gearmand`'s keyword arguments; every server
    made is closed (by its pid) at teardown.
    """
    from gearman.testing import GearmandFactory  # noqa: PLC0415 -- see module doc

    with GearmandFactory(executable=gearmand_path) as factory:
        yield factory
