"""python-gearman's ``connection_manager`` module: encoders and the common base class."""

from __future__ import annotations

from typing import Any, ClassVar

from . import errors
from ._common import DataEncoder, Misuse, NoopEncoder, parse_host_list

__all__ = [
    "AsyncGearmanConnectionManager",
    "DataEncoder",
    "GearmanConnectionManager",
    "NoopEncoder",
]


class GearmanConnectionManager:
    """What clients, workers and admin clients share: the host list and the encoder.

    Attributes:
        servers: the parsed host list (:class:`gearman_proto.ServerAddress`).
        data_encoder: a :class:`DataEncoder` class applied to job payloads.
    """

    data_encoder: type[DataEncoder] = NoopEncoder
    #: the role's error class (a bad host list raises its ValueError flavour).
    _misuse: ClassVar[Misuse] = errors.GearmanError

    def __init__(self, host_list: Any = None) -> None:
        self.servers = parse_host_list(host_list, self._misuse)

    def shutdown(self) -> None:
        """Close every connection."""
        raise NotImplementedError


class AsyncGearmanConnectionManager:
    """:class:`GearmanConnectionManager` for the async facades: the same host
    list and encoder, with an awaitable :meth:`shutdown`."""

    data_encoder: type[DataEncoder] = NoopEncoder
    #: the role's error class (a bad host list raises its ValueError flavour).
    _misuse: ClassVar[Misuse] = errors.GearmanError

    def __init__(self, host_list: Any = None) -> None:
        self.servers = parse_host_list(host_list, self._misuse)

    async def shutdown(self) -> None:
        """Close every connection."""
        raise NotImplementedError
