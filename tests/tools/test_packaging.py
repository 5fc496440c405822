"""What the packages promise their users' type checkers."""

from __future__ import annotations

from pathlib import Path

import pytest

import gearman
import gearman_proto


@pytest.mark.parametrize("package", [gearman_proto, gearman], ids=lambda p: p.__name__)
def test_each_package_is_marked_typed(package: object) -> None:
    """PEP 561: without ``py.typed``, mypy treats every name of the package as Any."""
    marker = Path(package.__file__).parent / "py.typed"  # type: ignore[attr-defined]
    assert marker.is_file()
    assert marker.read_bytes() == b""
