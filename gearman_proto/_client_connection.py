"""Connection level, client role: submissions, their answers, status queries.

Owns: :class:`ClientConnection`: which requests a client may send, matching
JOB_CREATED, STATUS_RES and STATUS_RES_UNIQUE to the requests they answer,
routing ``WORK_*`` packets by handle to the foreground jobs this connection
follows, and dropping late packets for jobs that recently finished.  Does
not own: what every role shares (``_connection``), the life of a job
request across servers and retries (``_client_session``), sockets or clocks.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from ._codec import encode_event
from ._connection import (
    _SUBMISSIONS,
    _T,
    DEFAULT_MAX_LINE_LENGTH,
    DEFAULT_MAX_PACKET_SIZE,
    FENCE,
    PacketHandler,
    _Connection,
)
from ._errors import LocalProtocolError, RemoteProtocolError, UnknownHandle
from ._events import (
    EchoRequest,
    Event,
    GetStatus,
    GetStatusUnique,
    JobCreated,
    JobStatus,
    JobStatusUnique,
    SetClientId,
    SetOption,
    SubmitJob,
    SubmitJobEpoch,
    SubmitReduceJob,
    WorkComplete,
    WorkData,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
    parsed_factory,
)
from ._wire import decimal_field

__all__ = ["FINISHED_HANDLES_REMEMBERED", "ClientConnection"]

logger = logging.getLogger("gearman_proto")

#: how many finished job handles a client remembers, to drop late packets
#: for them quietly (an admin ``cancel job`` of a running job produces
#: WORK_FAIL and later WORK_COMPLETE: PROTOCOL.md trap 10).
FINISHED_HANDLES_REMEMBERED = 1024

# Events the decoder builds from values it just parsed (no re-validation).
_job_created = parsed_factory(JobCreated, "handle", "request")
_parsed_work_data = parsed_factory(WorkData, "handle", "payload")
_parsed_work_warning = parsed_factory(WorkWarning, "handle", "payload")
_parsed_work_status = parsed_factory(WorkStatus, "handle", "numerator", "denominator")
_parsed_work_complete = parsed_factory(WorkComplete, "handle", "payload")
_parsed_work_exception = parsed_factory(WorkException, "handle", "payload")
_parsed_work_fail = parsed_factory(WorkFail, "handle")


class ClientConnection(_Connection):
    """A client's connection: submits jobs, follows them, asks their status.

    Sends :class:`SubmitJob`, :class:`SubmitJobEpoch`,
    :class:`SubmitReduceJob`, :class:`GetStatus`, :class:`GetStatusUnique`,
    :class:`SetOption`, :class:`EchoRequest` and :class:`SetClientId`.
    Reports :class:`JobCreated` (carrying the submission it answers),
    ``Work*`` events of foreground jobs, :class:`JobStatus`,
    :class:`JobStatusUnique`, :class:`OptionAccepted`, :class:`EchoReply`,
    :class:`ServerError`, :class:`UnknownPacket` and
    :class:`ConnectionClosed`.

    ``WORK_*`` packets must name a handle this connection holds a
    foreground job for; a handle never seen raises :class:`UnknownHandle`,
    a late packet for a recently finished job is dropped (logged at DEBUG).
    """

    _role = "client"

    def __init__(
        self,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
    ) -> None:
        super().__init__(max_packet_size=max_packet_size, max_line_length=max_line_length)
        #: foreground handle -> number of our submissions attached to it.
        self._foreground: dict[bytes, int] = {}
        self._finished: OrderedDict[bytes, None] = OrderedDict()
        # gear's Server sends the WORK_FAIL it makes when the worker holding
        # a job disconnects with the REQ magic: it still ends that job.
        self._req_taken = frozenset({_T.WORK_FAIL})
        self._handlers.update(
            {
                _T.JOB_CREATED: self._on_job_created,
                _T.STATUS_RES: self._on_status_res,
                _T.STATUS_RES_UNIQUE: self._on_status_res_unique,
                _T.WORK_DATA: self._update(WorkData),
                _T.WORK_WARNING: self._update(WorkWarning),
                _T.WORK_STATUS: self._on_work_status,
                _T.WORK_COMPLETE: self._terminal(WorkComplete),
                _T.WORK_EXCEPTION: self._terminal(WorkException),
                _T.WORK_FAIL: self._on_work_fail,
            }
        )

    @property
    def foreground_handles(self) -> tuple[bytes, ...]:
        """Handles of foreground jobs created and not yet finished."""
        return tuple(self._foreground)

    def _send(self, event: Event) -> None:
        kind = type(event)
        if kind in _CLIENT_REQUESTS:
            self._queue(encode_event(event))
            self._unanswered.append(event)
            if kind is SubmitJobEpoch or kind is SubmitReduceJob:
                # Servers that lack these answer none of them, but do answer
                # later submissions: a FENCE keeps JOB_CREATED pairing exact.
                self._queue(_FENCE_PACKET)
                self._unanswered.append(FENCE)
        elif kind is SetClientId:
            self._queue(encode_event(event))
        else:
            raise LocalProtocolError(f"a client connection does not send {kind.__name__}")

    def _open_handles(self) -> tuple[bytes, ...]:
        return tuple(self._foreground)

    def _on_job_created(self, arguments: list[bytes]) -> None:
        handle = arguments[0]
        request = self._answered(_SUBMISSIONS, "JOB_CREATED")
        if not getattr(request, "background", True):
            self._foreground[handle] = self._foreground.get(handle, 0) + 1
            self._finished.pop(handle, None)
        self._events.append(_job_created(handle, request))

    def _on_status_res(self, arguments: list[bytes]) -> None:
        handle, known, running, numerator, denominator = arguments
        # _answered checked the type; the annotation tells mypy.
        request: GetStatus = self._answered(GetStatus, "STATUS_RES")  # type: ignore[assignment]
        if handle != request.handle:
            raise RemoteProtocolError(
                f"STATUS_RES for {handle!r} answers GET_STATUS for {request.handle!r}"
            )
        if request is FENCE:
            return  # it only proved the order: nobody asked
        self._events.append(
            JobStatus(
                handle=handle,
                known=_flag(known, "known"),
                running=_flag(running, "running"),
                numerator=_progress(numerator, "numerator"),
                denominator=_progress(denominator, "denominator"),
                request=request,
            )
        )

    def _on_status_res_unique(self, arguments: list[bytes]) -> None:
        unique, known, running, numerator, denominator, clients = arguments
        request: GetStatusUnique = self._answered(  # type: ignore[assignment]
            GetStatusUnique, "STATUS_RES_UNIQUE"
        )
        if unique != request.unique:
            raise RemoteProtocolError(
                f"STATUS_RES_UNIQUE for {unique!r} answers GET_STATUS_UNIQUE for {request.unique!r}"
            )
        self._events.append(
            JobStatusUnique(
                unique=unique,
                known=_flag(known, "known"),
                running=_flag(running, "running"),
                numerator=_progress(numerator, "numerator"),
                denominator=_progress(denominator, "denominator"),
                client_count=decimal_field(clients, "status field client_count"),
                request=request,
            )
        )

    def _tracked(self, handle: bytes, packet: str) -> bool:
        """Whether *handle* is ours; False (drop) for a recently finished job."""
        if handle in self._foreground:
            return True
        return self._late(handle, packet)

    def _late(self, handle: bytes, packet: str) -> bool:
        if handle in self._finished:
            logger.debug("dropping %s for finished job %r", packet, handle)
            return False
        raise UnknownHandle(f"{packet} for job handle {handle!r} that we never saw", handle=handle)

    def _update(self, kind: type[WorkData] | type[WorkWarning]) -> PacketHandler:
        packet = "WORK_DATA" if kind is WorkData else "WORK_WARNING"

        def handle(arguments: list[bytes]) -> None:
            handle, payload = arguments
            if self._tracked(handle, packet):
                self._events.append(make(handle, payload))

        make = _parsed_work_data if kind is WorkData else _parsed_work_warning
        return handle

    def _on_work_status(self, arguments: list[bytes]) -> None:
        handle, numerator, denominator = arguments
        if self._tracked(handle, "WORK_STATUS"):
            self._events.append(_parsed_work_status(handle, numerator, denominator))

    def _finish(self, handle: bytes, packet: str) -> bool:
        attached = self._foreground.get(handle)
        if attached is None:
            return self._late(handle, packet)
        if attached > 1:
            self._foreground[handle] = attached - 1
        else:
            del self._foreground[handle]
            self._finished[handle] = None
            if len(self._finished) > FINISHED_HANDLES_REMEMBERED:
                self._finished.popitem(last=False)
        return True

    def _terminal(self, kind: type[WorkComplete] | type[WorkException]) -> PacketHandler:
        packet = "WORK_COMPLETE" if kind is WorkComplete else "WORK_EXCEPTION"

        def handle(arguments: list[bytes]) -> None:
            handle, payload = arguments
            if self._finish(handle, packet):
                self._events.append(make(handle, payload))

        make = _parsed_work_complete if kind is WorkComplete else _parsed_work_exception
        return handle

    def _on_work_fail(self, arguments: list[bytes]) -> None:
        handle = arguments[0]
        # gearmand appends a NUL to the handle of the WORK_FAIL it makes out
        # of a WORK_EXCEPTION for clients without the option (PROTOCOL.md 3).
        if handle.endswith(b"\0"):
            handle = handle[:-1]
        if self._finish(handle, "WORK_FAIL"):
            self._events.append(_parsed_work_fail(handle))


_FENCE_PACKET = encode_event(FENCE)
_CLIENT_REQUESTS = frozenset(
    {SubmitJob, SubmitJobEpoch, SubmitReduceJob, GetStatus, GetStatusUnique, SetOption, EchoRequest}
)


def _progress(text: bytes, name: str) -> int:
    """A status reply's numerator or denominator; empty means no report yet (0).

    gearmand always sends digits ("0" before any WORK_STATUS); gear's
    ``Server`` sends the fields empty until the worker reports progress.
    """
    if not text:
        return 0
    return decimal_field(text, f"status field {name}")


def _flag(text: bytes, name: str) -> bool:
    if text == b"1":
        return True
    if text == b"0":
        return False
    raise RemoteProtocolError(f"status field {name} is {text!r}, not 0 or 1")
