"""gearman.testing: private gearmand servers for the tests of code that uses Gearman.

A `Gearmand` runs the real gearmand executable on a free loopback port
below the ephemeral range, logs into a temporary directory of its own and
is stopped by its pid (at interpreter exit at the latest)::

    import gearman
    from gearman.testing import Gearmand, GearmandGroup

    with Gearmand() as server:  # started; stopped and cleaned up on leaving
        client = gearman.GearmanClient([server.address])
        ...
        server.restart()  # same port, fresh process (kill() is a crash)

    with GearmandGroup(3) as servers:  # several servers, for failover tests
        client = gearman.GearmanClient(servers.host_list)
        servers[0].kill()

`GearmandFactory` starts servers on demand and closes all of them at once.
Standard library only; gearmand itself must be installed (Debian/Ubuntu:
``apt-get install gearman-job-server``) or named in ``$GEARMAND_PATH``.

Under pytest the same helpers come as fixtures (``gearmand``,
``gearmand_factory``, ``gearmand_path``) from the ``pytest_gearman`` plugin
that this distribution registers; see that module.
"""

from __future__ import annotations

from ._gearmand import (
    DEFAULT_HOST,
    GEARMAND_PATH_VARIABLE,
    PORT_RANGE,
    Gearmand,
    GearmandError,
    GearmandNotFound,
    find_gearmand,
    pick_free_port,
    port_is_free,
)
from ._group import GearmandFactory, GearmandGroup

__all__ = [
    "DEFAULT_HOST",
    "GEARMAND_PATH_VARIABLE",
    "PORT_RANGE",
    "Gearmand",
    "GearmandError",
    "GearmandFactory",
    "GearmandGroup",
    "GearmandNotFound",
    "find_gearmand",
    "pick_free_port",
    "port_is_free",
]
