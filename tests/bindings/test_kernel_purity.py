"""The binding kernel stays pure: no I/O library, no threads, no runtime.

The kernel modules hold python-gearman's shapes and the runtime-neutral
logic for every runtime, so they may not import a socket, selector, thread
or event-loop library, nor a runtime or facade module of ours.  The async
facades are written once for trio and asyncio, so they may not import
either (nor a sync facade, which brings the blocking runtime).  Read with
``ast``: comments and strings do not count, nested imports do; imports
under ``if TYPE_CHECKING:`` do not (they name types, like ``ssl.SSLContext``
in a signature, and run nothing).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gearman

PACKAGE = Path(gearman.__file__).parent
KERNEL = [
    "_client_kernel.py",
    "_worker_kernel.py",
    "_common.py",
    "_runtime.py",
    "_sync.py",
    "_async.py",
    "_links.py",
    "_waiters.py",
    "_admin_kernel.py",
    "_shapes.py",
    "job.py",
    "errors.py",
    "constants.py",
    "connection_manager.py",
]
FORBIDDEN = {
    "socket",
    "select",
    "selectors",
    "ssl",
    "threading",
    "asyncio",
    "trio",
    "gevent",
    "concurrent",
    "multiprocessing",
}
RUNTIMES = {"_blocking", "_gevent", "_trio", "_asyncio", "_sockets", "_tls"}
FACADES = {"client", "worker", "admin_client", "trio", "gevent", "asyncio"}
ASYNC_FACADES = ["_async_client.py", "_async_worker.py", "_async_admin.py"]


def _type_checking(node: ast.AST) -> bool:
    """Whether *node* is ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of *tree* except the bodies of ``if TYPE_CHECKING:`` (their
    ``else`` runs, so it counts)."""
    found: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        if _type_checking(node):
            assert isinstance(node, ast.If)
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


def imported(source: str) -> set[str]:
    """Top-level module names (and sibling modules, for relative imports) in
    *source*, type-only imports left out."""
    names: set[str] = set()
    for node in _nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.module:
                    names.add(node.module.split(".")[0])
                names.update(alias.name for alias in node.names)
            elif node.module:
                names.add(node.module.split(".")[0])
    return names


def test_the_scan_sees_nested_and_relative_imports() -> None:
    assert imported("def f():\n    import socket") == {"socket"}
    assert imported("from . import _blocking") == {"_blocking"}
    assert imported("from ._blocking import X") == {"_blocking", "X"}
    assert imported("x = 'import socket'  # import select") == set()
    assert imported("if TYPE_CHECKING:\n    import ssl\nelse:\n    import select") == {"select"}
    assert imported("if typing.TYPE_CHECKING:\n    import ssl") == set()
    assert imported("if ready:\n    import ssl") == {"ssl"}


@pytest.mark.parametrize("module", KERNEL)
def test_kernel_module_imports_no_io_and_no_runtime(module: str) -> None:
    names = imported((PACKAGE / module).read_text(encoding="utf-8"))
    assert not names & FORBIDDEN
    assert not names & RUNTIMES
    assert not names & FACADES


@pytest.mark.parametrize("module", ASYNC_FACADES)
def test_async_facade_imports_no_io_no_runtime_and_no_sync_facade(module: str) -> None:
    names = imported((PACKAGE / module).read_text(encoding="utf-8"))
    assert not names & FORBIDDEN
    assert not names & RUNTIMES
    assert not names & FACADES


def test_no_module_of_the_binding_relies_on_assert() -> None:
    # Asserts vanish under ``python -O``: what they guarded (the kind of an
    # admin reply, say) would then fail further on as an AttributeError.
    offences = [
        f"{path.name}:{node.lineno}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert offences == []
