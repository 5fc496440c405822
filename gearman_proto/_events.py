"""Events: what a connection is asked to send and what it reports back.

Owns: the event classes and the argument checks made when one is built.
Does not own: which packet an event becomes (``_codec``) or when it is
legal (the ``_*connection`` modules, by the tables of ``_state``).

Every field that travels on the wire is ``bytes``; a ``str`` (or any other
type) handed in raises :class:`LocalTypeError` at construction, and a value
the protocol cannot carry (a NUL, TAB, LF or CR in a function name or client
id, a unique gearmand would cut, an admin argument that would split the
command line) raises :class:`LocalValueError`: both are
:class:`LocalProtocolError`, so a bad event never reaches ``send``.  Events
are frozen, slotted and compared by value.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TypeVar

from ._errors import LocalTypeError, LocalValueError

__all__ = [
    "ADMIN_FORBIDDEN",
    "NAME_FORBIDDEN",
    "STATUS_NUMBER_MAX",
    "UNIQUE_LIMIT",
    "AdminCommand",
    "AdminError",
    "AdminOk",
    "AdminRequest",
    "CanDo",
    "CantDo",
    "ConnectionClosed",
    "EchoReply",
    "EchoRequest",
    "Event",
    "FunctionPriorityStatus",
    "FunctionStatus",
    "GetStatus",
    "GetStatusUnique",
    "GrabMode",
    "JobAssigned",
    "JobCreated",
    "JobInfo",
    "JobStatus",
    "JobStatusUnique",
    "JobsReply",
    "NoJob",
    "Noop",
    "OptionAccepted",
    "PidReply",
    "Priority",
    "PriorityStatusReply",
    "ResetAbilities",
    "ServerError",
    "SetClientId",
    "SetOption",
    "StatusReply",
    "SubmitJob",
    "SubmitJobEpoch",
    "SubmitReduceJob",
    "Unanswered",
    "UniqueJobsReply",
    "UnknownPacket",
    "VerboseReply",
    "VersionReply",
    "WorkComplete",
    "WorkData",
    "WorkException",
    "WorkFail",
    "WorkStatus",
    "WorkWarning",
    "WorkerInfo",
    "WorkersReply",
    "status_number",
]

#: gearmand answers nothing at all to GET_STATUS / GET_STATUS_UNIQUE whose
#: argument is 64 bytes or longer (PROTOCOL.md 3), which would stall the
#: reply queue forever; we refuse to send those.
STATUS_ARGUMENT_LIMIT = 63

#: The longest unique a submission may carry.  gearmand 1.1.20 keeps a job's
#: unique in ``char unique[GEARMAN_MAX_UNIQUE_SIZE]`` with
#: ``GEARMAN_MAX_UNIQUE_SIZE 64`` including the terminating NUL
#: (libgearman-1.0/limits.h, libgearman-server/struct/job.h).  It refuses a
#: longer unique with ARGUMENT_TOO_LARGE (libgearman-server/server.cc;
#: for reduce jobs it tests the reducer instead), but a 64-byte one passes
#: that test and is cut to 63 bytes by the ``snprintf`` in
#: ``gearman_server_job_add_reducer`` (libgearman-server/job.cc) while its
#: length stays 64: the worker then receives the NUL in front of the
#: payload, and equal uniques no longer coalesce (PROTOCOL.md 4.3, trap 8).
UNIQUE_LIMIT = 63

#: The largest WORK_STATUS number: gearmand stores numerator and denominator
#: as ``uint32_t`` (libgearman-server/struct/job.h), read with
#: ``(uint32_t)atoi(...)`` and the denominator cut to 10 characters first
#: (libgearman-server/server.cc, WORK_STATUS); anything else is mangled.
STATUS_NUMBER_MAX = 2**32 - 1

#: Bytes a function name or client id may not hold.  A NUL ends the field on
#: the wire; TAB, LF and CR because names and ids appear in the admin text
#: replies (``status`` lines are tab-separated, ``workers`` lines end in LF,
#: PROTOCOL.md 8.2), where a worker registering such a name could forge
#: lines: fake queue counts, a hidden real entry.
NAME_FORBIDDEN = b"\0\t\n\r"
_name_forbidden = re.compile(b"[" + re.escape(NAME_FORBIDDEN) + b"]").search
_BYTE_NAMES = {b"\0": "NUL", b"\t": "TAB", b"\n": "LF", b"\r": "CR"}

#: Bytes an admin argument may not hold: gearmand splits the command line on
#: spaces and ends it at LF (a CR before it is dropped), so any of these
#: would make one argument two, or start a second command; a TAB would put a
#: forged column into ``status`` through ``create function``; NUL as above.
ADMIN_FORBIDDEN = b" " + NAME_FORBIDDEN
_admin_forbidden = re.compile(b"[" + re.escape(ADMIN_FORBIDDEN) + b"]").search


def _check_bytes(value: object, name: str) -> None:
    if type(value) is not bytes:
        raise LocalTypeError(f"{name} must be bytes, not {type(value).__name__}")


def _check_field(value: object, name: str) -> None:
    """A field that is not the last of its packet: bytes without NUL."""
    _check_bytes(value, name)
    if b"\0" in value:  # type: ignore[operator]
        raise LocalValueError(f"{name} must not contain a NUL byte")


def _not_field(value: object) -> bool:
    """Whether *value* is not a valid field (the fast test; callers then raise)."""
    return type(value) is not bytes or b"\0" in value


def _check_name(value: object, name: str) -> None:
    """A function name or client id: bytes without NUL, TAB, LF or CR."""
    _check_bytes(value, name)
    found = _name_forbidden(value)  # type: ignore[call-overload]
    if found is not None:
        raise LocalValueError(f"{name} {value!r} must not contain a {_BYTE_NAMES[found.group()]}")


def _not_name(value: object) -> bool:
    """Whether *value* is not a valid name (the fast test; callers then raise)."""
    return type(value) is not bytes or _name_forbidden(value) is not None


def _check_unique(value: object, name: str = "unique") -> None:
    """A submission's unique: a field of at most :data:`UNIQUE_LIMIT` bytes."""
    _check_field(value, name)
    if len(value) > UNIQUE_LIMIT:  # type: ignore[arg-type]
        raise LocalValueError(
            f"a {len(value)}-byte {name} is more than gearmand keeps "  # type: ignore[arg-type]
            f"(at most {UNIQUE_LIMIT} bytes)"
        )


def _not_unique(value: object) -> bool:
    """Whether *value* is not a valid unique (the fast test; callers then raise)."""
    return type(value) is not bytes or b"\0" in value or len(value) > UNIQUE_LIMIT


def _check_int(value: object, name: str, *, minimum: int = 0, maximum: int | None = None) -> None:
    """A whole number (an ``int``, not a bool or float) from *minimum* to *maximum*."""
    if type(value) is not int:
        raise LocalTypeError(f"{name} must be an int, not {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        top = "" if maximum is None else f" and <= {maximum}"
        raise LocalValueError(f"{name} must be >= {minimum}{top}, not {value!r}")


def status_number(value: object, name: str) -> bytes:
    """A WORK_STATUS number as it travels: an int from 0 to :data:`STATUS_NUMBER_MAX`.

    Raises:
        LocalTypeError: not an ``int`` (a float or bool included).
        LocalValueError: negative or above :data:`STATUS_NUMBER_MAX`.
    """
    _check_int(value, name, maximum=STATUS_NUMBER_MAX)
    return b"%d" % value  # type: ignore[str-format]


class Event:
    """Base class of every event."""

    __slots__ = ()


class Priority(enum.Enum):
    """Job priority; orders jobs of the same function (PROTOCOL.md 4.2)."""

    NORMAL = "normal"
    HIGH = "high"
    LOW = "low"


class GrabMode(enum.Enum):
    """Which GRAB_JOB variant a worker connection sends.

    ``PLAIN`` (GRAB_JOB) gets JOB_ASSIGN without the unique id; ``UNIQ``
    (GRAB_JOB_UNIQ) adds the unique id; ``ALL`` (GRAB_JOB_ALL) adds the
    unique id and, for reduce jobs, the reducer.
    """

    PLAIN = "plain"
    UNIQ = "uniq"
    ALL = "all"


# --------------------------------------------------------------- client side


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitJob(Event):
    """Ask the server to run *function* on *payload*.

    One event for six packet types: SUBMIT_JOB, _BG, _HIGH, _HIGH_BG, _LOW
    and _LOW_BG, chosen by *priority* and *background*.

    Fields:
        function: the function name (no NUL, TAB, LF or CR).
        payload: the job's data, opaque bytes (may contain NUL).
        unique: the unique id, at most :data:`UNIQUE_LIMIT` bytes without
            NUL; ``b""`` never coalesces, ``b"-"`` makes the server use the
            payload as the key (PROTOCOL.md 4.3).
        priority: :class:`Priority`.
        background: True for a background job: only JOB_CREATED comes back.
    """

    function: bytes
    payload: bytes = b""
    unique: bytes = b""
    priority: Priority = Priority.NORMAL
    background: bool = False

    def __post_init__(self) -> None:
        # One cheap test for the common case; the precise checks name the culprit.
        if (
            _not_name(self.function)
            or _not_unique(self.unique)
            or type(self.payload) is not bytes
            or type(self.priority) is not Priority
        ):
            _check_name(self.function, "function")
            _check_unique(self.unique)
            _check_bytes(self.payload, "payload")
            raise LocalTypeError(f"priority must be a Priority, not {self.priority!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitJobEpoch(Event):
    """Submit a background job that does not run before Unix time *epoch*.

    SUBMIT_JOB_EPOCH; always normal priority, always background.  Nothing
    wakes a sleeping worker when the time comes (PROTOCOL.md 5.2).

    Fields: function, payload, unique as in :class:`SubmitJob`; epoch: whole
    seconds since 1970 (``0`` runs now).
    """

    function: bytes
    payload: bytes = b""
    unique: bytes = b""
    epoch: int = 0

    def __post_init__(self) -> None:
        _check_name(self.function, "function")
        _check_unique(self.unique)
        _check_bytes(self.payload, "payload")
        _check_int(self.epoch, "epoch")


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitReduceJob(Event):
    """Submit a map/reduce job: SUBMIT_REDUCE_JOB(_BACKGROUND).

    Sent with the five fields gearmand wants (the aggregator always empty).

    Fields: function, payload, unique as in :class:`SubmitJob`; reducer: the
    reducer function name (a name like *function*; gearmand limits it to
    64 bytes); background: use the background variant.
    """

    function: bytes
    reducer: bytes
    payload: bytes = b""
    unique: bytes = b""
    background: bool = False

    def __post_init__(self) -> None:
        _check_name(self.function, "function")
        _check_unique(self.unique)
        _check_name(self.reducer, "reducer")
        _check_bytes(self.payload, "payload")


@dataclass(frozen=True, slots=True, kw_only=True)
class GetStatus(Event):
    """Ask the state of a job by handle (GET_STATUS); answered by :class:`JobStatus`.

    Fields: handle: the job handle, at most 63 bytes.
    """

    handle: bytes

    def __post_init__(self) -> None:
        if _not_field(self.handle):
            _check_field(self.handle, "handle")
        if len(self.handle) > STATUS_ARGUMENT_LIMIT:
            raise LocalValueError(
                f"a {len(self.handle)}-byte handle gets no reply from gearmand "
                f"(limit {STATUS_ARGUMENT_LIMIT})"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class GetStatusUnique(Event):
    """Ask the state of a job by unique id (GET_STATUS_UNIQUE).

    Answered by :class:`JobStatusUnique`.  Fields: unique: at most 63 bytes.
    """

    unique: bytes

    def __post_init__(self) -> None:
        _check_field(self.unique, "unique")
        if len(self.unique) > STATUS_ARGUMENT_LIMIT:
            raise LocalValueError(
                f"a {len(self.unique)}-byte unique gets no reply from gearmand "
                f"(limit {STATUS_ARGUMENT_LIMIT})"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class SetOption(Event):
    """Set a connection option (OPTION_REQ); only ``exceptions`` exists.

    Answered by :class:`OptionAccepted` or a :class:`ServerError`.
    """

    option: bytes = b"exceptions"

    def __post_init__(self) -> None:
        _check_bytes(self.option, "option")


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoRequest(Event):
    """Ping the server (ECHO_REQ); answered by :class:`EchoReply`.

    Fields: payload: any bytes, returned unchanged.
    """

    payload: bytes = b""

    def __post_init__(self) -> None:
        _check_bytes(self.payload, "payload")


@dataclass(frozen=True, slots=True, kw_only=True)
class SetClientId(Event):
    """Label this connection in the admin ``workers`` list (SET_CLIENT_ID).

    Fields: client_id: bytes without NUL, TAB, LF or CR (it is shown in
    the ``workers`` reply); gearmand keeps the first 127.
    """

    client_id: bytes

    def __post_init__(self) -> None:
        _check_name(self.client_id, "client_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class JobCreated(Event):
    """The server accepted a submission (JOB_CREATED).

    Fields:
        handle: the job handle the server assigned.
        request: the submission event this answers.
    """

    handle: bytes
    request: SubmitJob | SubmitJobEpoch | SubmitReduceJob


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus(Event):
    """Reply to :class:`GetStatus` (STATUS_RES).

    Fields:
        handle: the handle asked about.
        known: the server knows the job (False once it finished).
        running: a worker holds it.
        numerator, denominator: the last progress report (0/0 before any).
        request: the :class:`GetStatus` this answers.
    """

    handle: bytes
    known: bool
    running: bool
    numerator: int
    denominator: int
    request: GetStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatusUnique(Event):
    """Reply to :class:`GetStatusUnique` (STATUS_RES_UNIQUE).

    Fields as :class:`JobStatus`, keyed by *unique*, plus *client_count*:
    the foreground clients attached to the job.
    """

    unique: bytes
    known: bool
    running: bool
    numerator: int
    denominator: int
    client_count: int
    request: GetStatusUnique


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionAccepted(Event):
    """The server accepted an option (OPTION_RES).

    Fields: option: the name as echoed; request: the :class:`SetOption`.
    """

    option: bytes
    request: SetOption


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoReply(Event):
    """Reply to :class:`EchoRequest` (ECHO_RES).

    Fields: payload: the echoed bytes; request: the :class:`EchoRequest`.
    """

    payload: bytes
    request: EchoRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerError(Event):
    """The server sent an ERROR packet.

    Fields:
        code: the error code, e.g. ``b"QUEUE_ERROR"`` (PROTOCOL.md 7).
        text: the human-readable text.
        request: the request it answers (a submission that failed, an
            unknown option), or None when it answers a packet that has no
            reply of its own (a ``WORK_*`` for a job the server does not
            know).
    """

    code: bytes
    text: bytes
    request: Event | None = None


# ------------------------------------------------- work packets (both ways)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkData(Event):
    """Partial result of a job (WORK_DATA): sent by workers, received by clients.

    Fields: handle: the job handle; payload: opaque bytes.
    """

    handle: bytes
    payload: bytes = b""

    def __post_init__(self) -> None:
        if _not_field(self.handle) or type(self.payload) is not bytes:
            _check_field(self.handle, "handle")
            _check_bytes(self.payload, "payload")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkWarning(Event):
    """A warning about a job (WORK_WARNING): sent by workers, received by clients.

    Fields: handle: the job handle; payload: opaque bytes.
    """

    handle: bytes
    payload: bytes = b""

    def __post_init__(self) -> None:
        if _not_field(self.handle) or type(self.payload) is not bytes:
            _check_field(self.handle, "handle")
            _check_bytes(self.payload, "payload")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkStatus(Event):
    """Progress of a job (WORK_STATUS): sent by workers, received by clients.

    Fields:
        handle: the job handle.
        numerator, denominator: ASCII bytes as they travel; gearmand
            forwards them verbatim, so a client may receive non-digits.
            :meth:`WorkerSession.status <gearman_proto.WorkerSession.status>`
            sends only whole numbers gearmand can store
            (:func:`status_number`).
    """

    handle: bytes
    numerator: bytes
    denominator: bytes

    def __post_init__(self) -> None:
        _check_field(self.handle, "handle")
        _check_field(self.numerator, "numerator")
        _check_bytes(self.denominator, "denominator")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkComplete(Event):
    """A job finished successfully (WORK_COMPLETE); terminal.

    Fields: handle: the job handle; payload: the result.
    """

    handle: bytes
    payload: bytes = b""

    def __post_init__(self) -> None:
        if _not_field(self.handle) or type(self.payload) is not bytes:
            _check_field(self.handle, "handle")
            _check_bytes(self.payload, "payload")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkFail(Event):
    """A job failed (WORK_FAIL); terminal.

    A client that did not enable the ``exceptions`` option also receives
    this for a job whose worker sent WORK_EXCEPTION (PROTOCOL.md 3).

    Fields: handle: the job handle.
    """

    handle: bytes

    def __post_init__(self) -> None:
        if _not_field(self.handle):
            _check_field(self.handle, "handle")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkException(Event):
    """A job failed with an exception payload (WORK_EXCEPTION); terminal.

    Clients receive it only with the ``exceptions`` option.

    Fields: handle: the job handle; payload: the exception data.
    """

    handle: bytes
    payload: bytes = b""

    def __post_init__(self) -> None:
        if _not_field(self.handle) or type(self.payload) is not bytes:
            _check_field(self.handle, "handle")
            _check_bytes(self.payload, "payload")


# --------------------------------------------------------------- worker side


@dataclass(frozen=True, slots=True, kw_only=True)
class CanDo(Event):
    """Register a function (CAN_DO, or CAN_DO_TIMEOUT with a timeout).

    Fields:
        function: the function name (no NUL, TAB, LF or CR).
        timeout: None, or the server-side time limit per job in
            milliseconds; gearmand raises 1-999 to 1000 and re-queues the
            job when the limit passes (PROTOCOL.md 6).
    """

    function: bytes
    timeout: int | None = None

    def __post_init__(self) -> None:
        _check_name(self.function, "function")
        if self.timeout is not None:
            _check_int(self.timeout, "timeout", minimum=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class CantDo(Event):
    """Unregister a function (CANT_DO). Fields: function (a name as in :class:`CanDo`)."""

    function: bytes

    def __post_init__(self) -> None:
        _check_name(self.function, "function")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetAbilities(Event):
    """Unregister every function of this connection (RESET_ABILITIES)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobAssigned(Event):
    """The server handed this worker a job (JOB_ASSIGN, _UNIQ or _ALL).

    Fields:
        handle: the job handle, to quote in every ``WORK_*`` reply.
        function: the function name.
        payload: the job's data.
        unique: the unique id (None for plain JOB_ASSIGN).
        reducer: the reducer (only JOB_ASSIGN_ALL of a reduce job; else None).
    """

    handle: bytes
    function: bytes
    payload: bytes
    unique: bytes | None = None
    reducer: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoJob(Event):
    """The server had no job for this worker (NO_JOB); the core sends PRE_SLEEP."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop(Event):
    """Wake-up from the server (NOOP); the core grabs when it has room."""


# ---------------------------------------------------------------- any role


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownPacket(Event):
    """A well-framed packet of a type this library does not know (43 and up).

    Reported rather than fatal, so a newer server cannot kill the connection.

    Fields: packet_type: the number; body: the raw body.
    """

    packet_type: int
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Unanswered(Event):
    """The server answered a later request, so it passed over this one in silence.

    Gearman servers answer in order (PROTOCOL.md 4.1), so a reply that can
    only belong to a later request proves that the ones before it will get
    none: the server does not know them (gear's ``Server`` ignores the
    packet types it lacks instead of answering ERROR).  Made before the
    reply's own event.

    Fields: request: the request that will get no answer.
    """

    request: Event


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed(Event):
    """The connection ended: what was in flight on it.

    Made once per connection: the last event after the peer closed
    (``receive_data(b"")``), or what ``abandon()`` and ``send_failed()``
    return when the binding gives the connection up.  Any later
    ``abandon()`` returns one with nothing in it.

    Fields:
        unanswered: requests that were still waiting for their direct
            answer (submissions without JOB_CREATED, status queries, echoes,
            admin commands), oldest first.
        handles: job handles whose outcome is now unknown: foreground jobs
            on a client connection, held jobs on a worker connection.
        truncated: bytes received were left unparsed: the peer closed in the
            middle of a packet or line, or the connection was given up (or
            had failed) with bytes not yet parsed.
    """

    unanswered: tuple[Event, ...] = ()
    handles: tuple[bytes, ...] = ()
    truncated: bool = False


# -------------------------------------------------------------------- admin


class AdminCommand(enum.Enum):
    """The admin text commands of gearmand 1.1.20 (PROTOCOL.md 8.2).

    The value is the command line's leading words.
    """

    STATUS = b"status"
    PRIORITY_STATUS = b"prioritystatus"
    WORKERS = b"workers"
    VERSION = b"version"
    GETPID = b"getpid"
    VERBOSE = b"verbose"
    SHOW_JOBS = b"show jobs"
    SHOW_UNIQUE_JOBS = b"show unique jobs"
    CANCEL_JOB = b"cancel job"
    CREATE_FUNCTION = b"create function"
    DROP_FUNCTION = b"drop function"
    MAXQUEUE = b"maxqueue"
    SHUTDOWN = b"shutdown"


#: how many arguments each command takes (inclusive range).
ADMIN_ARGUMENTS: dict[AdminCommand, tuple[int, int]] = {
    AdminCommand.STATUS: (0, 0),
    AdminCommand.PRIORITY_STATUS: (0, 0),
    AdminCommand.WORKERS: (0, 0),
    AdminCommand.VERSION: (0, 0),
    AdminCommand.GETPID: (0, 0),
    AdminCommand.VERBOSE: (0, 0),
    AdminCommand.SHOW_JOBS: (0, 0),
    AdminCommand.SHOW_UNIQUE_JOBS: (0, 0),
    AdminCommand.CANCEL_JOB: (1, 1),
    AdminCommand.CREATE_FUNCTION: (1, 1),
    AdminCommand.DROP_FUNCTION: (1, 1),
    AdminCommand.MAXQUEUE: (1, 4),
    AdminCommand.SHUTDOWN: (0, 1),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminRequest(Event):
    """One admin text command, e.g. ``AdminRequest(AdminCommand.MAXQUEUE, (b"f", b"10"))``.

    Fields:
        command: the :class:`AdminCommand`.
        arguments: its words; each non-empty, without space, TAB, CR, LF
            or NUL (:data:`ADMIN_FORBIDDEN`: gearmand splits on spaces,
            ends a command at LF and closes the connection at six words).
    """

    command: AdminCommand
    arguments: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.command, AdminCommand):
            raise LocalTypeError(f"command must be an AdminCommand, not {self.command!r}")
        if type(self.arguments) is not tuple:
            raise LocalTypeError("arguments must be a tuple of bytes")
        low, high = ADMIN_ARGUMENTS[self.command]
        if not low <= len(self.arguments) <= high:
            raise LocalValueError(
                f"{self.command.name} takes {low}..{high} arguments, got {len(self.arguments)}"
            )
        for word in self.arguments:
            _check_bytes(word, "admin argument")
            if not word or _admin_forbidden(word) is not None:
                raise LocalValueError(
                    f"admin argument {word!r} must be non-empty, without space, TAB, CR, LF or NUL"
                )


@dataclass(frozen=True, slots=True)
class FunctionStatus:
    """One line of ``status``: a function's job and worker counts.

    Fields: function; total (queued + running); running; workers.
    """

    function: bytes
    total: int
    running: int
    workers: int


@dataclass(frozen=True, slots=True)
class FunctionPriorityStatus:
    """One line of ``prioritystatus``: queued jobs per priority and workers."""

    function: bytes
    high: int
    normal: int
    low: int
    workers: int


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One line of ``workers``: one connection of the server.

    Fields: fd (as text), ip, client_id (``b"-"`` when unset; may contain
    spaces), functions (most recently registered first).
    """

    fd: bytes
    ip: bytes
    client_id: bytes
    functions: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One line of ``show jobs``.

    Fields: handle; retries; ignored (abandoned or cancelled); background
    (``QUEUED`` column: kept in a persistent queue if there is one).
    """

    handle: bytes
    retries: int
    ignored: bool
    background: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReply(Event):
    """Reply to ``status``. Fields: functions; request."""

    functions: tuple[FunctionStatus, ...]
    request: AdminRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorityStatusReply(Event):
    """Reply to ``prioritystatus``. Fields: functions; request."""

    functions: tuple[FunctionPriorityStatus, ...]
    request: AdminRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkersReply(Event):
    """Reply to ``workers``. Fields: workers; request."""

    workers: tuple[WorkerInfo, ...]
    request: AdminRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class JobsReply(Event):
    """Reply to ``show jobs``. Fields: jobs; request."""

    jobs: tuple[JobInfo, ...]
    request: AdminRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class UniqueJobsReply(Event):
    """Reply to ``show unique jobs``. Fields: uniques (``b""`` for jobs without); request."""

    uniques: tuple[bytes, ...]
    request: AdminRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionReply(Event):
    """Reply to ``version``. Fields: version (``OK `` prefix removed); request."""

    version: bytes
    request: AdminRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class PidReply(Event):
    """Reply to ``getpid``. Fields: pid; request."""

    pid: int
    request: AdminRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class VerboseReply(Event):
    """Reply to ``verbose``. Fields: level, e.g. ``b"INFO"``; request."""

    level: bytes
    request: AdminRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminOk(Event):
    """An ``OK`` line answering cancel, create, drop or maxqueue.

    Fields: text: whatever followed ``OK`` (usually empty); request.
    """

    text: bytes
    request: AdminRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminError(Event):
    """An ``ERR`` line answering any admin command.

    Fields:
        code: e.g. ``b"UNKNOWN_COMMAND"``.
        message: the rest of the line with ``+`` turned back into spaces.
        request: the command it answers.
    """

    code: bytes
    message: bytes
    request: AdminRequest


# --------------------------------------------- the decoder's private fast path

E = TypeVar("E", bound=Event)


def parsed_factory(cls: type[E], *names: str) -> Callable[..., E]:
    """A positional constructor for *cls* that skips ``__init__`` checks.

    For the decoder only: it builds events from values it has just parsed,
    which need no re-validation (h11's ``_parsed`` idea).  Every field must
    be named, in order.  Setting the slots through their descriptors is
    several times cheaper than a frozen dataclass's ``__init__``.
    """
    if list(names) != [f.name for f in fields(cls)]:  # type: ignore[arg-type]
        raise TypeError(f"parsed_factory({cls.__name__}) must name every field in order")
    new = object.__new__
    setters = tuple(getattr(cls, name).__set__ for name in names)
    if len(setters) == 1:
        (s0,) = setters

        def make1(a: object) -> E:
            event = new(cls)
            s0(event, a)
            return event

        return make1
    if len(setters) == 2:
        s0, s1 = setters

        def make2(a: object, b: object) -> E:
            event = new(cls)
            s0(event, a)
            s1(event, b)
            return event

        return make2
    if len(setters) == 3:
        s0, s1, s2 = setters

        def make3(a: object, b: object, c: object) -> E:
            event = new(cls)
            s0(event, a)
            s1(event, b)
            s2(event, c)
            return event

        return make3
    if len(setters) == 5:
        s0, s1, s2, s3, s4 = setters

        def make5(a: object, b: object, c: object, d: object, e: object) -> E:
            event = new(cls)
            s0(event, a)
            s1(event, b)
            s2(event, c)
            s3(event, d)
            s4(event, e)
            return event

        return make5

    def make(*values: object) -> E:
        event = new(cls)
        for setter, value in zip(setters, values, strict=True):
            setter(event, value)
        return event

    return make
