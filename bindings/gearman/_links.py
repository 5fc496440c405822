"""The runtime-neutral half of the links of a runtime that runs a reader and a writer per link.

Owns: the table of links, each with its core connection, the bytes queued
for its writer and the count of bytes written; turning bytes read into
events handed to the sink (:meth:`Links.received`); giving a link up
through the core exactly once (:meth:`Links.give_up`); parked waiters
(:class:`gearman._waiters.Waiters`) and what a wait that ends unwoken means
for a link whose writes did not move (:meth:`Links.end_wait`).  Pure: no
I/O library, never waits.  The trio, asyncio and gevent runtimes subclass
:class:`Link` with their stream and task handles, and do only the I/O.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable, Collection, Iterator

import gearman_proto as proto

from ._runtime import AnyConnection, EventSink, take_events
from ._waiters import Settable, Waiters

__all__ = ["WRITE_CHUNK", "Link", "LinkedRuntime", "Links", "Marks", "chunks"]

logger = logging.getLogger("gearman.io")

_OPEN = proto.ConnectionState.OPEN

#: each link with the bytes queued on it when a wait began.
Marks = list[tuple["Link", int]]

#: bytes per send: progress is counted per chunk (see :meth:`Links.end_wait`).
WRITE_CHUNK = 256 * 1024


def chunks(data: memoryview) -> Iterator[memoryview]:
    """*data* in :data:`WRITE_CHUNK` pieces, for one send each."""
    for start in range(0, len(data), WRITE_CHUNK):
        yield data[start : start + WRITE_CHUNK]


def _describe(error: BaseException) -> str:
    """*error*'s message, with what it wraps (trio's ``BrokenResourceError``
    says nothing of the ``ssl.SSLError`` behind it)."""
    message = str(error)
    cause = error.__cause__ or error.__context__
    if cause is not None:
        message = f"{message} ({cause!s})" if message else str(cause)
    return message or type(error).__name__


class Link:
    """One link's core side; a runtime subclass adds its stream and tasks."""

    __slots__ = ("connection", "pending", "progressed_at", "queued", "sending", "server", "written")

    def __init__(self, server: proto.ServerAddress, connection: AnyConnection) -> None:
        self.server = server
        self.connection = connection
        #: what the core queued and the writer has not sent yet, in order ...
        self.pending: collections.deque[bytes] = collections.deque()
        #: ... bytes handed to the writer so far, and bytes written so far:
        #: a waiter's own bytes are out once ``written`` reaches ``queued``
        #: as it was when the wait began.
        self.queued = 0
        self.written = 0
        #: the writer is inside a send (a writer not scheduled yet is not stalled) ...
        self.sending = False
        #: ... since this time, or since its last chunk went out, if later.
        self.progressed_at = 0.0

    def take_pending(self) -> memoryview:
        """Everything queued for the writer, as one buffer for one write (empty: nothing)."""
        pending = self.pending
        if not pending:
            return memoryview(b"")
        data = pending.popleft() if len(pending) == 1 else b"".join(pending)
        pending.clear()
        return memoryview(data)

    def send_now(self, data: bytes) -> int:
        """Write what the socket takes of *data* without waiting; the bytes sent.

        The default sends nothing (a stream with no synchronous send); an
        error leaves the bytes to the writer, which meets it and gives the
        link up in order.
        """
        return 0

    def wake_writer(self) -> None:
        """The runtime's writer has bytes in ``pending``."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the runtime's tasks of this link and release its stream (never waits)."""
        raise NotImplementedError


class Links:
    """Every link of one runtime object, and the waiters parked on their events."""

    def __init__(self, on_event: EventSink) -> None:
        self._on_event = on_event
        self._links: dict[proto.ServerAddress, Link] = {}
        self.waiters = Waiters()

    def __contains__(self, server: proto.ServerAddress) -> bool:
        return server in self._links

    def __iter__(self) -> Iterator[Link]:
        return iter(list(self._links.values()))

    def get(self, server: proto.ServerAddress) -> Link | None:
        """The link to *server*, if one is open."""
        return self._links.get(server)

    def add(self, link: Link) -> None:
        """A link is up: what ``connection_made`` queued (client id, abilities) goes out."""
        self._links[link.server] = link
        self.pull(link)

    # ------------------------------------------------------------ writing

    def pull(self, link: Link) -> None:
        """Send what *link*'s core connection queued: at once, as far as the
        socket takes it without waiting, when the writer is idle; the rest
        (or everything, on a stream with no such send) goes to the writer."""
        data = link.connection.data_to_send()
        if not data:
            return
        link.queued += len(data)
        if not link.pending and not link.sending:
            sent = link.send_now(data)
            link.written += sent
            if sent == len(data):
                return
            data = data[sent:]
        link.pending.append(data)
        link.wake_writer()

    def flush(self) -> None:
        """:meth:`pull` for every link."""
        for link in self._links.values():
            self.pull(link)

    def sending(self, link: Link, now: float) -> None:
        """*link*'s writer starts a send."""
        link.sending = True
        link.progressed_at = now

    def sent(self, link: Link, size: int, now: float) -> None:
        """A chunk of *size* bytes of *link* went out."""
        link.written += size
        link.progressed_at = now

    def wrote(self) -> None:
        """A writer emptied its ``pending``: waiters counting on it may go on
        (they watch nothing in particular)."""
        self.waiters.check(())

    async def write_pending(
        self,
        link: Link,
        send: Callable[[memoryview], Awaitable[object]],
        clock: Callable[[], float],
        broken: tuple[type[BaseException], ...],
    ) -> bool:
        """An async writer's turn: send what *link* owes, chunk by chunk, with
        *send*; False when the stream broke (*broken*: the runtime's errors
        for that), the link then given up through the core."""
        while data := link.take_pending():
            self.sending(link, clock())
            try:
                for chunk in chunks(data):
                    await send(chunk)
                    self.sent(link, len(chunk), clock())
            except broken as error:
                self.write_failed(link, error)
                return False
            link.sending = False
        self.wrote()
        return True

    # ------------------------------------------------------------ reading

    def received(self, link: Link, data: bytes | bytearray | memoryview) -> bool:
        """Bytes read on *link* (``b""``: its end); False once the link is over.

        What the core answered on its own is handed to the writer before the
        events go to the sink; waiters whose condition now holds are woken.
        """
        if self._links.get(link.server) is not link:
            return False  # given up meanwhile (the read raced our close)
        connection = link.connection
        events = take_events(connection, data)
        ended = connection.state is not _OPEN
        if ended:  # EOF or a protocol error: the last event is the end
            self._detach(link)
        else:
            self.pull(link)
        on_event = self._on_event
        server = link.server
        changed: list[object] = []
        for event in events:
            touched = on_event(server, event)
            if touched:
                changed += touched
        self.flush()  # what the sink queued, on any link (a worker's grab moving elsewhere)
        if ended:
            self.waiters.wake_all()
            return False
        self.waiters.check(changed)
        return True

    # ------------------------------------------------------------- ending

    def give_up(self, link: Link, closed: proto.ConnectionClosed) -> None:
        """End *link* with the core's *closed* (reported once, however often called)."""
        if self._detach(link):
            self._on_event(link.server, closed)
            self.waiters.wake_all()

    def read_failed(self, link: Link, error: BaseException) -> None:
        """The stream broke while reading: the link is abandoned."""
        if self._links.get(link.server) is not link:
            return  # closed by us meanwhile: the error is its aftermath
        logger.warning("%s: read failed: %s", link.server, _describe(error))
        self.give_up(link, link.connection.abandon())

    def write_failed(self, link: Link, error: BaseException) -> None:
        """The stream broke while writing: what was handed out did not arrive."""
        if self._links.get(link.server) is not link:
            return  # closed by us meanwhile: the error is its aftermath
        logger.warning("%s: write failed: %s", link.server, _describe(error))
        self.give_up(link, link.connection.send_failed())

    def close(self, server: proto.ServerAddress) -> None:
        """Close the link to *server*, if any; its end reaches the sink."""
        link = self._links.get(server)
        if link is not None:
            self.give_up(link, link.connection.abandon())

    def close_all(self) -> None:
        """Close every link."""
        for server in list(self._links):
            self.close(server)

    def _detach(self, link: Link) -> bool:
        if self._links.get(link.server) is not link:
            return False
        del self._links[link.server]
        link.stop()
        return True

    # ------------------------------------------------------------ waiting

    def begin_wait(
        self, event: Settable, done: Callable[[], bool], watch: Collection[object]
    ) -> Marks:
        """Park *event* until *done()* (see :meth:`Waiters.park`); return the
        marks :meth:`end_wait` needs."""
        self.waiters.park(event, done, watch)
        return self.marks()

    def end_wait(
        self, event: Settable, marks: Marks, woken: bool, started: float, now: float
    ) -> None:
        """A wait that began at *started* is over at *now*.

        One that ends unwoken (its deadline, the caller's cancellation) gives
        up each link that still owes bytes queued on it before the wait
        began and whose writer is stuck: inside a send that has not moved
        in the latter half of the wait.  The caller's own request is stuck
        behind a peer that stopped reading.  A peer that reads slowly but
        steadily is not stuck; bytes queued later (another task's large
        payload) do not count against the wait; a writer that never got to
        run (a wait whose deadline had passed already) is not stuck.
        """
        self.waiters.leave(event)
        if woken:
            return
        quiet_since = started + (now - started) / 2
        for link, mark in marks:
            if (
                link.sending
                and link.written < mark
                and link.progressed_at <= quiet_since
                and self._links.get(link.server) is link
            ):
                logger.warning(
                    "%s: write stalled (%d bytes owed at the deadline): closing",
                    link.server,
                    mark - link.written,
                )
                self.give_up(link, link.connection.send_failed())

    def drained(self, marks: Marks) -> Callable[[], bool]:
        """A condition: every link has written what was queued on it up to its mark."""
        return lambda: all(link.written >= mark for link, mark in marks)

    def marks(self) -> Marks:
        """Each link with the bytes queued on it so far."""
        return [(link, link.queued) for link in self._links.values()]


class LinkedRuntime:
    """What every runtime on :class:`Links` (gevent, trio, asyncio) answers the
    same way; each sets ``_links`` and adds its I/O."""

    _links: Links

    def connected(self, server: proto.ServerAddress) -> bool:
        """Whether a link to *server* is open."""
        return server in self._links

    def flush(self) -> None:
        """Hand what every core connection queued to its writer."""
        self._links.flush()

    def wake(self) -> None:
        """Make every waiter look at its condition again."""
        self._links.waiters.check()

    def close(self, server: proto.ServerAddress) -> None:
        """Close the link to *server* now; its end reaches the sink."""
        self._links.close(server)

    def close_all(self) -> None:
        """Close every link now; each end reaches the sink."""
        self._links.close_all()
