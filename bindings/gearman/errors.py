"""python-gearman's error classes, plus the few this binding adds.

Every class derives from :class:`GearmanError`.  Core errors are mapped to
these in one place, :func:`gearman._common.map_error`.
"""

from __future__ import annotations

import builtins

__all__ = [
    "AdminCommandError",
    "ConnectionError",
    "ExceededConnectionAttempts",
    "GearmanError",
    "InvalidAdminClientState",
    "InvalidClientState",
    "InvalidWorkerState",
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


class AdminCommandError(InvalidAdminClientState):
    """The server answered an admin command with ``ERR``.

    Attributes: code (e.g. ``"UNKNOWN_COMMAND"``) and message, as text.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
