"""python-gearman's error classes, plus the few this binding adds.

Every class derives from :class:`GearmanError`.  Core errors are mapped to
these in one place, :func:`gearman._common.map_error`.

A call refused before anything is sent (a value the protocol cannot carry,
an argument of the wrong type) raises its role's class (``InvalidClientState``,
``InvalidWorkerState``, ``InvalidAdminClientState``) in the flavour of the
fault: ``Invalid*Value`` is also a ``ValueError`` (and :class:`InvalidValue`),
``Invalid*Type`` also a ``TypeError`` (and :class:`InvalidType`).  So
``except GearmanError``, ``except InvalidClientState`` and ``except
ValueError`` all catch a NUL in a client's function name.
"""

from __future__ import annotations

import builtins

__all__ = [
    "AdminCommandError",
    "ConnectionError",
    "ExceededConnectionAttempts",
    "GearmanError",
    "InvalidAdminClientState",
    "InvalidAdminType",
    "InvalidAdminValue",
    "InvalidClientState",
    "InvalidClientType",
    "InvalidClientValue",
    "InvalidType",
    "InvalidValue",
    "InvalidWorkerState",
    "InvalidWorkerType",
    "InvalidWorkerValue",
    "ProtocolError",
    "ServerUnavailable",
    "TlsError",
    "UnknownCommandError",
]


class GearmanError(Exception):
    """Base class of every error this package raises."""


class ConnectionError(GearmanError, builtins.ConnectionError):  # noqa: A001
    """A connection to a server could not be made or broke."""


class TlsError(ConnectionError):
    """A TLS link could not be set up, or the TLS settings given cannot be used.

    The handshake failed (a server that does not speak TLS, a certificate
    that does not verify or names another host, a TLS version the context
    refuses), or a certificate file could not be loaded.  The message
    carries the TLS library's reason; a TLS link never falls back to plaintext.
    """


class ServerUnavailable(GearmanError):
    """No server of the host list can be reached right now."""


class ProtocolError(GearmanError):
    """A server sent something that breaks the Gearman protocol."""


class UnknownCommandError(ProtocolError):
    """A server sent a packet type this library does not know."""


class ExceededConnectionAttempts(GearmanError):
    """A job lost its connection before JOB_CREATED ``max_retries + 1`` times."""


class InvalidClientState(GearmanError):
    """A client call that the request's state does not allow."""


class InvalidWorkerState(GearmanError):
    """A worker call that the worker's state does not allow."""


class InvalidAdminClientState(GearmanError):
    """An admin call failed: no reply in time, or a reply that makes no sense."""


class InvalidValue(GearmanError, ValueError):
    """A value refused before anything was sent: a NUL, TAB, LF or CR in a
    function name or client id, a unique over 63 bytes, a status number out
    of range, a bad port, an admin argument that would split the command."""


class InvalidType(GearmanError, TypeError):
    """An argument of the wrong type, refused before anything was sent: a
    payload the encoder cannot turn into bytes, a float status number."""


class InvalidClientValue(InvalidClientState, InvalidValue):
    """:class:`InvalidValue` from a client."""


class InvalidClientType(InvalidClientState, InvalidType):
    """:class:`InvalidType` from a client."""


class InvalidWorkerValue(InvalidWorkerState, InvalidValue):
    """:class:`InvalidValue` from a worker."""


class InvalidWorkerType(InvalidWorkerState, InvalidType):
    """:class:`InvalidType` from a worker."""


class InvalidAdminValue(InvalidAdminClientState, InvalidValue):
    """:class:`InvalidValue` from an admin client."""


class InvalidAdminType(InvalidAdminClientState, InvalidType):
    """:class:`InvalidType` from an admin client."""


class AdminCommandError(InvalidAdminClientState):
    """The server answered an admin command with ``ERR``.

    Attributes: code (e.g. ``"UNKNOWN_COMMAND"``) and message, as text.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
