"""Fixtures for tests of the package as users install it.

`built_distributions` builds the sdist and the wheel once per session;
`installed_wheel_venv` is a fresh venv with that wheel (and mypy, the same
version as this environment's) installed.  Both need PyPI or pip's cache:
``python -m build`` fetches hatchling into its isolated build environment.
"""

from __future__ import annotations

import importlib.metadata

import pytest
from _dists import Distributions, WheelVenv, build_distributions, make_wheel_venv


@pytest.fixture(scope="session")
def built_distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """The project's sdist and the wheel built from it (``python -m build``).

    Built from a copy of the checkout's files, with a developer's leftovers
    (``_dists.JUNK``) added: none of them may ship.
    """
    return build_distributions(tmp_path_factory.mktemp("dists"))


@pytest.fixture(scope="session")
def installed_wheel_venv(
    tmp_path_factory: pytest.TempPathFactory, built_distributions: Distributions
) -> WheelVenv:
    """A fresh venv with the wheel installed (not editable) and mypy beside it.

    Shared by the session: a test that installs more (``.install("pytest")``)
    leaves it there for the others.
    """
    mypy = f"mypy=={importlib.metadata.version('mypy')}"
    return make_wheel_venv(
        tmp_path_factory.mktemp("wheel") / "venv", built_distributions.wheel, mypy
    )
