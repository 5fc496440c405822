"""The one interface between the sync facades and an I/O runtime.

Owns: the contract, as a :class:`typing.Protocol`, that every sync runtime
(blocking sockets, gevent) fulfils, and the callback type through which a
runtime hands what it read to the kernel.  Does not own: any I/O (the
runtimes), any protocol decision (``gearman_proto``) or any python-gearman
shape (the kernel modules).

The facade (``client.py``, ``worker.py``, ``admin_client.py``) drives it:
it asks the core which server to connect, calls :meth:`Runtime.connect`,
lets the core queue bytes, and calls :meth:`Runtime.wait` with a condition
over the core's state and a deadline.  The runtime writes what each core
connection queued, reads, feeds the bytes in and hands every event to the
``on_event`` callback it was built with, until the condition holds or the
deadline passes.  A link that breaks, stalls or speaks garbage reaches the
callback as the core connection's own :class:`gearman_proto.ConnectionClosed`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

import gearman_proto as proto

__all__ = ["AnyConnection", "EventSink", "Runtime", "RuntimeFactory"]

T = TypeVar("T")

AnyConnection = proto.ClientConnection | proto.WorkerConnection | proto.AdminConnection

#: called by a runtime for every event read, and for the end of a link.
EventSink = Callable[[proto.ServerAddress, proto.Event], None]


class Runtime(Protocol):
    """What a sync facade needs from its I/O runtime; about a dozen names.

    Time is the runtime's monotonic clock (:meth:`now`); every deadline is
    a value of that clock, None meaning no deadline.  No method blocks past
    the deadline it is given.
    """

    #: held by the facade around every use of the core when callers may share
    #: the object (threads, greenlets); :meth:`wait` lets go of it while it
    #: blocks, so other callers can submit meanwhile.
    lock: AbstractContextManager[object]

    def now(self) -> float:
        """The runtime's monotonic clock, in seconds."""

    def connect(
        self,
        server: proto.ServerAddress,
        connection: Callable[[], AnyConnection],
        deadline: float | None,
    ) -> None:
        """Open a link to *server* by *deadline*, then attach ``connection()`` to it.

        *connection* is called only once the transport is up (it is the
        session's ``connection_made``), so a failed connect leaves the core
        untouched.

        Raises:
            gearman.errors.ConnectionError: no link by the deadline.
        """

    def connected(self, server: proto.ServerAddress) -> bool:
        """Whether a link to *server* is open."""

    def flush(self) -> None:
        """Write what the core queued, without waiting."""

    def wait(self, done: Callable[[], bool], deadline: float | None) -> bool:
        """Write what the core queued, then read and hand events on until
        *done()* holds (True), *deadline* passes (False), or a link ends
        (``done()``: the caller may have to connect before it waits again).

        *done* is checked before anything blocks, so a condition that
        already holds returns at once.  A link whose queued bytes are still
        not written when the deadline passes has stalled: it is given up
        (``send_failed``), and the core decides what its requests become.
        """

    def refresh(self) -> None:
        """Take in what already arrived (a link closed while idle), without
        waiting; a no-op for runtimes whose readers run on their own."""

    def wake(self) -> None:
        """Make every :meth:`wait` look at its condition again now."""

    def run_job(self, job: Callable[[T], object], argument: T) -> None:
        """Run ``job(argument)`` (user code) under the runtime's concurrency limit."""

    def close(self, server: proto.ServerAddress) -> None:
        """Close the link to *server*, reporting its end to the sink."""

    def close_all(self) -> None:
        """Close every link, reporting each end to the sink."""


class RuntimeFactory(Protocol):
    """Builds a runtime for one client, worker or admin client."""

    def __call__(
        self, on_event: EventSink, *, shared: bool, keepalive: bool, connect_timeout: float | None
    ) -> Runtime:
        """A runtime that hands events to *on_event*.

        Args:
            on_event: the kernel's receiver.
            shared: several callers (threads, greenlets) may use the object
                at once, so :attr:`Runtime.lock` must be a real lock.
            keepalive: TCP keepalive on every link.
            connect_timeout: the cap of one connect, within any deadline.
        """
