"""Exceptions raised by the protocol core.

Owns: the error vocabulary of ``gearman_proto``.  Does not own: deciding
when one is raised (the modules that detect the fault).
Two families, as in h11: :class:`LocalProtocolError` when *our* side asks for
something the protocol or the connection state forbids, and
:class:`RemoteProtocolError` when the *server* sends something malformed or
unexpected.  A server ``ERROR`` packet is not an exception here: it is an
ordinary :class:`~gearman_proto.ServerError` event.  A value refused
because of its type or its content is a :class:`LocalTypeError` or a
:class:`LocalValueError`, which are also ``TypeError`` / ``ValueError``,
so a binding tells them apart without reading messages.
"""

from __future__ import annotations

__all__ = [
    "AttemptsExceeded",
    "LocalProtocolError",
    "LocalTypeError",
    "LocalValueError",
    "NoServerAvailable",
    "PacketTooLarge",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestIgnored",
    "UnknownHandle",
]


class ProtocolError(Exception):
    """Base class of every error raised by the core; never raised itself."""


class LocalProtocolError(ProtocolError):
    """The caller asked for a move the protocol or the current state forbids.

    The connection is left as it was: nothing was queued for sending.
    """


class LocalValueError(LocalProtocolError, ValueError):
    """A value the protocol cannot carry: a forbidden byte in a name, a unique
    longer than gearmand keeps, a number out of its range, an admin argument
    that would split the command line.

    Raised when the event (or the request) is built: nothing was queued.
    """


class LocalTypeError(LocalProtocolError, TypeError):
    """A value of the wrong type: ``str`` where bytes travel, a float or a
    bool where a whole number counts.

    Raised when the event (or the request) is built: nothing was queued.
    """


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break the protocol.

    The connection that raised it is dead afterwards (its state is
    ``ERROR``); every later call that would read or write raises again.
    """


class PacketTooLarge(RemoteProtocolError):
    """A packet header or admin line announced more bytes than the limit allows.

    Raised from the 12 header bytes alone, before anything of the body is
    buffered.

    Attributes:
        size: the number of bytes the peer announced (or buffered, for a line).
        limit: the configured maximum.
    """

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class UnknownHandle(RemoteProtocolError):
    """The server sent a ``WORK_*`` packet for a job handle we never saw.

    Attributes:
        handle: the job handle as received.
    """

    def __init__(self, message: str, *, handle: bytes) -> None:
        super().__init__(message)
        self.handle = handle


class AttemptsExceeded(ProtocolError):
    """A job request lost its connection before JOB_CREATED too many times.

    Attributes:
        attempts: how many times it was sent.
    """

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class NoServerAvailable(ProtocolError):
    """No server of the pool could take a request: every one is down or in back-off.

    Set as a request's ``delivery_error`` by the client session, never
    raised by the core itself.
    """


class RequestIgnored(ProtocolError):
    """The server passed over a request in silence: it answered a later one.

    A server that does not know a request may drop it without an ERROR
    (gear's ``Server`` does so with SUBMIT_JOB_EPOCH, SUBMIT_REDUCE_JOB*,
    GET_STATUS_UNIQUE, OPTION_REQ and ECHO_REQ).  Set as a request's
    ``delivery_error`` by the client session, never raised by the core
    itself.
    """
