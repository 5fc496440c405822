"""Several private gearmand servers handled together: `GearmandGroup`, `GearmandFactory`.

Owns: starting servers as a set (all or none), their ``host_list``, and
closing every server a test made, whatever state each one was left in.
Does not own: one server's process (`gearman.testing._gearmand`) or pytest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, overload

from ._gearmand import Gearmand

__all__ = ["GearmandFactory", "GearmandGroup"]


class GearmandGroup(Sequence[Gearmand]):
    """Several gearmand servers, started together and closed together.

    ``GearmandGroup(3)`` makes three servers with `Gearmand`'s default
    options; keyword arguments are `Gearmand`'s and apply to each
    (``GearmandGroup(2, extra_args=["-j", "2"])``). A list of `Gearmand`
    objects makes a group of servers with different options. A group is a
    sequence of its servers (``group[0].kill()``); each keeps its own life
    cycle (`Gearmand.stop`, `Gearmand.restart`, ...).

    Nothing starts until `start` (or ``with GearmandGroup(3) as group:``).
    """

    def __init__(self, servers: int | Iterable[Gearmand] = 2, **options: Any) -> None:
        if isinstance(servers, int):
            if servers < 1:
                raise ValueError(f"a group needs at least one server, not {servers}")
            self._servers = tuple(Gearmand(**options) for _ in range(servers))
        else:
            if options:
                raise TypeError("options apply to servers the group makes, not to given ones")
            self._servers = tuple(servers)

    @property
    def host_list(self) -> list[str]:
        """Every server's ``"host:port"``, in order: ready for ``GearmanClient(host_list)``."""
        return [server.address for server in self._servers]

    def start(self) -> GearmandGroup:
        """Start every server that is not running; returns self.

        All or none: if one fails to start, the servers this call started are
        closed again before its error is raised.
        """
        with contextlib.ExitStack() as undo:
            for server in self._servers:
                if not server.running:
                    undo.callback(server.close)
                    server.start()
            undo.pop_all()
        return self

    def stop(self) -> None:
        """Stop every server (`Gearmand.stop`); their logs stay readable."""
        for server in self._servers:
            server.stop()

    def close(self) -> None:
        """Stop every server and remove its files (`Gearmand.close`), even if one fails."""
        with contextlib.ExitStack() as cleanup:
            for server in self._servers:
                cleanup.callback(server.close)

    @overload
    def __getitem__(self, index: int) -> Gearmand: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Gearmand]: ...

    def __getitem__(self, index: int | slice) -> Gearmand | Sequence[Gearmand]:
        return self._servers[index]

    def __len__(self) -> int:
        return len(self._servers)

    def __iter__(self) -> Iterator[Gearmand]:
        return iter(self._servers)

    def __enter__(self) -> GearmandGroup:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<GearmandGroup {list(self._servers)!r}>"


class GearmandFactory:
    """Starts servers on demand and closes every one of them at the end.

    What the ``gearmand_factory`` fixture hands out: ``factory()`` returns a
    started `Gearmand`, ``factory.many(3)`` a started `GearmandGroup`.
    *defaults* are `Gearmand` keyword arguments given to every server (the
    fixture passes ``executable``); a call's own keywords override them.
    `close` (or leaving ``with GearmandFactory() as factory:``) closes every
    server made, running, stopped or killed alike.
    """

    def __init__(self, **defaults: Any) -> None:
        self._defaults = defaults
        self._servers: list[Gearmand] = []
        self._cleanup = contextlib.ExitStack()

    @property
    def servers(self) -> tuple[Gearmand, ...]:
        """Every server this factory made, in order (those in groups included)."""
        return tuple(self._servers)

    def __call__(self, **options: Any) -> Gearmand:
        """Start one more server with `Gearmand`'s keyword arguments *options*."""
        return self._make(options).start()

    def many(self, count: int = 2, **options: Any) -> GearmandGroup:
        """Start *count* more servers with the same *options*, as a `GearmandGroup`."""
        if count < 1:
            raise ValueError(f"a group needs at least one server, not {count}")
        return GearmandGroup([self._make(options) for _ in range(count)]).start()

    def close(self) -> None:
        """Close every server made so far (last first), even if closing one fails."""
        self._cleanup.close()

    def _make(self, options: dict[str, Any]) -> Gearmand:
        server = Gearmand(**{**self._defaults, **options})
        self._servers.append(server)
        self._cleanup.callback(server.close)  # before start: a failed start leaves files
        return server

    def __enter__(self) -> GearmandFactory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<GearmandFactory {len(self._servers)} servers>"
