"""The core stays pure, and its public names are documented.

DESIGN.md section 1: nothing in ``gearman_proto`` does I/O, starts threads or
reads the clock; time is passed in.  The imports are read with ``ast``, so a
name in a comment or a string does not count and an aliased or nested import
does.
"""

from __future__ import annotations

import ast
import enum
import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest

import gearman_proto

CORE = Path(gearman_proto.__file__).parent

#: Modules that mean I/O, concurrency or a clock.
FORBIDDEN = frozenset(
    {
        "socket",
        "select",
        "selectors",
        "ssl",
        "threading",
        "_thread",
        "asyncio",
        "trio",
        "gevent",
        "time",
        "datetime",
        "multiprocessing",
        "concurrent",
        "subprocess",
        "os",
    }
)


def forbidden_imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every import of a FORBIDDEN module in *source*."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [(node.lineno, m) for m in modules if m.split(".")[0] in FORBIDDEN]
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os", [(1, "os")]),
        ("import os.path as p", [(1, "os.path")]),
        ("from time import monotonic", [(1, "time")]),
        ("import json, socket", [(1, "socket")]),
        ("def f():\n    import threading", [(2, "threading")]),
        ("from concurrent.futures import Future", [(1, "concurrent.futures")]),
        ("from . import time", []),  # a sibling module of the package, not the stdlib
        ("import struct  # socket", []),
        ("x = 'import socket'", []),
        ("import timeit, osmosis", []),
    ],
)
def test_forbidden_imports_finds_what_it_should(
    source: str, expected: list[tuple[int, str]]
) -> None:
    assert forbidden_imports(source) == expected


def test_core_imports_no_io_concurrency_or_clock() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert CORE / "_connection.py" in files
    offences = [
        f"{path.relative_to(CORE.parent)}:{line}: imports {module}"
        for path in files
        for line, module in forbidden_imports(path.read_text(encoding="utf-8"))
    ]
    assert offences == []


def _is_documented(name: str, obj: object) -> bool:
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return False
    # dataclasses write a signature into __doc__ when there is none; old Enums
    # an "An enumeration." placeholder.
    return not doc.startswith(f"{name}(") and doc != "An enumeration."


def test_every_public_name_exists() -> None:
    missing = [name for name in gearman_proto.__all__ if not hasattr(gearman_proto, name)]
    assert missing == []
    assert len(set(gearman_proto.__all__)) == len(gearman_proto.__all__)


def test_every_public_class_and_function_has_a_docstring() -> None:
    undocumented = [
        name
        for name in gearman_proto.__all__
        if (inspect.isclass(obj := getattr(gearman_proto, name)) or inspect.isroutine(obj))
        and not _is_documented(name, obj)
    ]
    assert undocumented == []


def test_docstring_check_sees_through_generated_docstrings() -> None:
    @dataclass
    class Bare:
        x: int

    class BareEnum(enum.Enum):
        A = 1

    def bare() -> None:
        pass

    assert not _is_documented("Bare", Bare)
    assert not _is_documented("BareEnum", BareEnum)
    assert not _is_documented("bare", bare)
    assert _is_documented("ClientConnection", gearman_proto.ClientConnection)


def test_every_core_module_opens_with_what_it_owns_and_what_not() -> None:
    # STYLE.md section 1: each file is about one thing and says so up front.
    def says_both(path: Path) -> bool:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        text = " ".join(doc.split())
        return "Owns:" in text and "Does not own:" in text

    vague = [path.name for path in sorted(CORE.glob("*.py")) if not says_both(path)]
    assert vague == []


def assert_statements(source: str) -> list[int]:
    """The lines of every ``assert`` statement in *source*."""
    return [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assert)]


def test_the_assert_scan_sees_nested_asserts_only() -> None:
    assert assert_statements("def f(x):\n    if x:\n        assert x") == [3]
    assert assert_statements("x = 'assert y'  # assert z") == []


def test_the_core_checks_with_real_checks_not_asserts() -> None:
    # Asserts vanish under ``python -O``: a runtime fact they guarded would
    # then fail further on, as an AttributeError or worse.
    offences = [
        f"{path.relative_to(CORE.parent)}:{line}"
        for path in sorted(CORE.rglob("*.py"))
        for line in assert_statements(path.read_text(encoding="utf-8"))
    ]
    assert offences == []
