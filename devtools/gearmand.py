"""Private gearmand servers for the project's scripts: `gearman.testing`'s `Gearmand`.

The code is ``bindings/gearman/testing/_gearmand.py`` (it ships in the
wheel); this module gives the demo, the benchmarks and the fuzz corpus
recorder the same names without importing the ``gearman`` package:

- in ``benchmarks/.peers-venv``, and wherever pygearman is installed, the
  top-level ``gearman`` is pygearman, which has no ``testing``;
- before the project is installed, ``bindings/`` is not on ``sys.path``;
- importing ``gearman`` imports the whole binding and ``gearman_proto``,
  which a script that only wants a server should not pay for (nor the
  benchmark harness, which measures other checkouts' bindings).

So the file is loaded by its path, standard library only. When this
checkout's ``gearman`` package is already imported (the test suite), its
own module is used instead, so ``devtools.gearmand.Gearmand`` and
``gearman.testing.Gearmand`` are one class there.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

#: The file this module loads: the server helper as the wheel ships it.
SOURCE = Path(__file__).resolve().parents[1] / "bindings" / "gearman" / "testing" / "_gearmand.py"
#: The module's name inside the package, and its name when loaded by path.
_PACKAGED, _LOADED = "gearman.testing._gearmand", "devtools._gearmand"


def _is_this_checkout(module: ModuleType | None, relative: str) -> bool:
    location = getattr(module, "__file__", None)
    return location is not None and Path(location).resolve().parent / relative == SOURCE


def _load() -> ModuleType:
    if _is_this_checkout(sys.modules.get("gearman"), "testing/_gearmand.py"):
        return importlib.import_module(_PACKAGED)  # the binding is there already: share it
    if _LOADED in sys.modules:
        return sys.modules[_LOADED]
    spec = importlib.util.spec_from_file_location(_LOADED, SOURCE)
    if spec is None or spec.loader is None:  # pragma: no cover - the file is in the checkout
        raise ImportError(f"cannot load {SOURCE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_LOADED] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_LOADED]
        raise
    return module


_impl = _load()

DEFAULT_HOST: str = _impl.DEFAULT_HOST
PORT_RANGE: tuple[int, int] = _impl.PORT_RANGE
Gearmand = _impl.Gearmand
GearmandError = _impl.GearmandError
GearmandNotFound = _impl.GearmandNotFound
find_gearmand = _impl.find_gearmand
pick_free_port = _impl.pick_free_port
port_is_free = _impl.port_is_free
STARTUP_TIMEOUT: float = _impl.STARTUP_TIMEOUT
#: for devtools.gear_server, which starts another program the same way.
_PortTaken = _impl._PortTaken

__all__ = [
    "DEFAULT_HOST",
    "PORT_RANGE",
    "SOURCE",
    "STARTUP_TIMEOUT",
    "Gearmand",
    "GearmandError",
    "GearmandNotFound",
    "find_gearmand",
    "pick_free_port",
    "port_is_free",
]
