"""Example tests of the connections, one behaviour each.

Bytes in, events out, no sockets.  Server packets are literal bytes where
their exact form matters; the rest are built with ``encode_packet`` through
`server`.  Section numbers refer to ../shared/PROTOCOL.md.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gearman_proto import (
    REQ,
    RES,
    AdminCommand,
    AdminConnection,
    AdminError,
    AdminOk,
    AdminRequest,
    CanDo,
    CantDo,
    ClientConnection,
    ConnectionClosed,
    ConnectionState,
    EchoReply,
    EchoRequest,
    Event,
    GetStatus,
    GetStatusUnique,
    GrabMode,
    JobAssigned,
    JobCreated,
    JobStatus,
    LocalProtocolError,
    NoJob,
    Noop,
    OptionAccepted,
    PacketTooLarge,
    PacketType,
    PidReply,
    Priority,
    RemoteProtocolError,
    ResetAbilities,
    ServerError,
    SetClientId,
    SetOption,
    StatusReply,
    SubmitJob,
    SubmitJobEpoch,
    SubmitReduceJob,
    Unanswered,
    UnknownHandle,
    UnknownPacket,
    VersionReply,
    WorkComplete,
    WorkData,
    WorkerConnection,
    WorkerInfo,
    WorkersReply,
    WorkerState,
    WorkException,
    WorkFail,
    WorkStatus,
    WorkWarning,
    encode_packet,
)
from gearman_proto._codec import encode_event

_T = PacketType

CAN_DO_F = b"\x00REQ\x00\x00\x00\x01\x00\x00\x00\x01f"
GRAB_JOB_UNIQ = b"\x00REQ\x00\x00\x00\x1e\x00\x00\x00\x00"
PRE_SLEEP = b"\x00REQ\x00\x00\x00\x04\x00\x00\x00\x00"
NOOP = b"\x00RES\x00\x00\x00\x06\x00\x00\x00\x00"
NO_JOB = b"\x00RES\x00\x00\x00\x0a\x00\x00\x00\x00"
STATUS = AdminRequest(command=AdminCommand.STATUS)
WORKERS = AdminRequest(command=AdminCommand.WORKERS)
VERSION = AdminRequest(command=AdminCommand.VERSION)
GETPID = AdminRequest(command=AdminCommand.GETPID)
JOB_NOT_FOUND = encode_packet(
    RES, _T.ERROR, (b"JOB_NOT_FOUND", b"Job given in work result not found")
)


def server(packet_type: PacketType, *arguments: bytes) -> bytes:
    """A packet from the server."""
    return encode_packet(RES, packet_type, arguments)


def assign(handle: bytes = b"H:vm:1", function: bytes = b"f", payload: bytes = b"x") -> bytes:
    return server(_T.JOB_ASSIGN_UNIQ, handle, function, b"", payload)


def feed(conn: ClientConnection | WorkerConnection | AdminConnection, data: bytes) -> list[Event]:
    conn.receive_data(data)
    return list(conn.events())


def sleeping_worker(**options: object) -> WorkerConnection:
    """A worker registered for ``f`` that was told NO_JOB and sent PRE_SLEEP."""
    worker = WorkerConnection(**options)  # type: ignore[arg-type]
    worker.send(CanDo(function=b"f"))
    feed(worker, NO_JOB)
    worker.data_to_send()
    assert worker.worker_state is WorkerState.SLEEPING
    return worker


def client_with_job(handle: bytes = b"H:vm:1") -> ClientConnection:
    """A client with one foreground job created under *handle*."""
    client = ClientConnection()
    client.send(SubmitJob(function=b"f", payload=b"x"))
    (created,) = feed(client, server(_T.JOB_CREATED, handle))
    assert isinstance(created, JobCreated)
    return client


# ------------------------------------------------------------- grab loop


def test_can_do_sends_grab_job_when_idle() -> None:
    worker = WorkerConnection()
    assert worker.send(CanDo(function=b"f")) == CAN_DO_F + GRAB_JOB_UNIQ
    assert worker.worker_state is WorkerState.GRABBING


def test_worker_without_abilities_never_grabs() -> None:
    worker = WorkerConnection()
    worker.accepting = True
    assert worker.data_to_send() == b""
    assert worker.send(SetClientId(client_id=b"w")) == b"\x00REQ\x00\x00\x00\x16\x00\x00\x00\x01w"
    assert worker.worker_state is WorkerState.IDLE


def test_no_job_sends_pre_sleep() -> None:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    assert feed(worker, NO_JOB) == [NoJob()]
    assert worker.data_to_send() == PRE_SLEEP
    assert worker.worker_state is WorkerState.SLEEPING


def test_noop_while_sleeping_sends_grab_job() -> None:
    worker = sleeping_worker()
    assert feed(worker, NOOP) == [Noop()]
    assert worker.data_to_send() == GRAB_JOB_UNIQ
    assert worker.worker_state is WorkerState.GRABBING


def test_noop_while_grabbing_sends_nothing() -> None:
    # NOOP can arrive between GRAB_JOB and its JOB_ASSIGN (PROTOCOL.md 9.20).
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    assert feed(worker, NOOP + assign()) == [
        Noop(),
        JobAssigned(handle=b"H:vm:1", function=b"f", payload=b"x", unique=b""),
    ]
    assert worker.data_to_send() == b""


def test_noop_while_full_sends_nothing() -> None:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    feed(worker, assign())
    assert feed(worker, NOOP) == [Noop()]
    assert worker.data_to_send() == b""
    assert worker.worker_state is WorkerState.IDLE


def test_job_end_grabs_again() -> None:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    feed(worker, assign())
    assert worker.data_to_send() == b""
    sent = worker.send(WorkComplete(handle=b"H:vm:1", payload=b"r"))
    assert sent == b"\x00REQ\x00\x00\x00\x0d\x00\x00\x00\x08H:vm:1\x00r" + GRAB_JOB_UNIQ
    assert worker.jobs == ()


@pytest.mark.parametrize(
    "end", [WorkFail(handle=b"H:vm:1"), WorkException(handle=b"H:vm:1", payload=b"e")]
)
def test_every_terminal_packet_frees_the_slot(end: Event) -> None:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    feed(worker, assign())
    assert worker.send(end).endswith(GRAB_JOB_UNIQ)


def test_updates_do_not_free_the_slot() -> None:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    feed(worker, assign())
    for update in (
        WorkData(handle=b"H:vm:1", payload=b"d"),
        WorkWarning(handle=b"H:vm:1", payload=b"w"),
        WorkStatus(handle=b"H:vm:1", numerator=b"1", denominator=b"2"),
    ):
        assert not worker.send(update).endswith(GRAB_JOB_UNIQ)
    assert len(worker.jobs) == 1


def test_job_end_while_not_accepting_does_not_grab() -> None:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    feed(worker, assign())
    worker.accepting = False
    assert not worker.accepting
    assert (
        worker.send(WorkFail(handle=b"H:vm:1")) == b"\x00REQ\x00\x00\x00\x0e\x00\x00\x00\x06H:vm:1"
    )
    worker.accepting = True
    assert worker.data_to_send() == GRAB_JOB_UNIQ


def test_can_do_while_sleeping_grabs() -> None:
    # A sleeping worker is woken only by new submissions, not for jobs already
    # queued under a function it just registered, so it must grab itself.
    worker = sleeping_worker()
    sent = worker.send(CanDo(function=b"g"))
    assert sent == b"\x00REQ\x00\x00\x00\x01\x00\x00\x00\x01g" + GRAB_JOB_UNIQ
    assert worker.worker_state is WorkerState.GRABBING


def test_dropping_every_ability_while_sleeping_stays_asleep() -> None:
    worker = sleeping_worker()
    assert worker.send(ResetAbilities()) == b"\x00REQ\x00\x00\x00\x03\x00\x00\x00\x00"
    assert worker.send(CantDo(function=b"f")) == b"\x00REQ\x00\x00\x00\x02\x00\x00\x00\x01f"
    assert worker.worker_state is WorkerState.SLEEPING
    assert worker.abilities == {}


def test_worker_with_room_for_two_grabs_again_after_an_assignment() -> None:
    worker = WorkerConnection(max_jobs=2)
    worker.send(CanDo(function=b"f"))
    feed(worker, assign(b"H:vm:1"))
    assert worker.data_to_send() == GRAB_JOB_UNIQ
    feed(worker, assign(b"H:vm:2"))
    assert worker.data_to_send() == b""
    assert [job.handle for job in worker.jobs] == [b"H:vm:1", b"H:vm:2"]


def test_wake_grabs_when_sleeping() -> None:
    # Nothing wakes a worker when an epoch job comes due (PROTOCOL.md 5.2).
    worker = sleeping_worker()
    worker.wake()
    assert worker.data_to_send() == GRAB_JOB_UNIQ
    worker.wake()
    assert worker.data_to_send() == b""


@pytest.mark.parametrize(
    ("grab_mode", "grab"),
    [
        (GrabMode.PLAIN, b"\x00REQ\x00\x00\x00\x09\x00\x00\x00\x00"),
        (GrabMode.UNIQ, GRAB_JOB_UNIQ),
        (GrabMode.ALL, b"\x00REQ\x00\x00\x00\x27\x00\x00\x00\x00"),
    ],
)
def test_grab_mode_chooses_the_grab_packet(grab_mode: GrabMode, grab: bytes) -> None:
    worker = WorkerConnection(grab_mode=grab_mode)
    assert worker.grab_mode is grab_mode
    assert worker.send(CanDo(function=b"f")) == CAN_DO_F + grab


def test_abilities_remember_their_timeouts() -> None:
    worker = WorkerConnection()
    worker.accepting = False
    worker.send(CanDo(function=b"f"))
    worker.send(CanDo(function=b"slow", timeout=1500))
    assert worker.abilities == {b"f": None, b"slow": 1500}
    worker.send(CantDo(function=b"f"))
    assert worker.abilities == {b"slow": 1500}


def test_no_job_without_a_grab_is_a_remote_error() -> None:
    worker = WorkerConnection()
    worker.receive_data(NO_JOB)
    with pytest.raises(RemoteProtocolError, match="NO_JOB"):
        worker.next_event()


def test_job_assign_without_a_grab_is_a_remote_error() -> None:
    worker = sleeping_worker()
    worker.receive_data(assign())
    with pytest.raises(RemoteProtocolError, match="JOB_ASSIGN"):
        worker.next_event()


def test_the_same_job_assigned_twice_is_a_remote_error() -> None:
    worker = WorkerConnection(max_jobs=2)
    worker.send(CanDo(function=b"f"))
    worker.receive_data(assign(b"H:vm:1") + assign(b"H:vm:1"))
    assert isinstance(worker.next_event(), JobAssigned)
    with pytest.raises(RemoteProtocolError, match="twice"):
        worker.next_event()


@pytest.mark.parametrize(
    "event",
    [
        WorkData(handle=b"H:vm:9", payload=b"d"),
        WorkWarning(handle=b"H:vm:9"),
        WorkStatus(handle=b"H:vm:9", numerator=b"1", denominator=b"2"),
        WorkComplete(handle=b"H:vm:9"),
        WorkFail(handle=b"H:vm:9"),
        WorkException(handle=b"H:vm:9"),
    ],
)
def test_work_for_a_job_not_held_is_refused_and_queues_nothing(event: Event) -> None:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    feed(worker, assign(b"H:vm:1"))
    with pytest.raises(LocalProtocolError, match="does not hold"):
        worker.send(event)
    assert worker.data_to_send() == b""
    assert len(worker.jobs) == 1


def test_work_after_the_job_ended_is_refused() -> None:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    feed(worker, assign())
    worker.send(WorkComplete(handle=b"H:vm:1"))
    with pytest.raises(LocalProtocolError):
        worker.send(WorkData(handle=b"H:vm:1"))


def test_max_jobs_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_jobs"):
        WorkerConnection(max_jobs=0)


def test_worker_eof_reports_held_jobs_and_unanswered_echo() -> None:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    feed(worker, assign())
    worker.send(EchoRequest(payload=b"p"))
    assert feed(worker, b"") == [
        ConnectionClosed(unanswered=(EchoRequest(payload=b"p"),), handles=(b"H:vm:1",))
    ]


# ------------------------------------------------------ requests and answers


@pytest.mark.parametrize("role", [ClientConnection, WorkerConnection])
def test_error_job_not_found_does_not_pop_pending_echo(
    role: Callable[[], ClientConnection | WorkerConnection],
) -> None:
    conn = role()
    conn.send(EchoRequest(payload=b"probe"))
    assert feed(conn, JOB_NOT_FOUND) == [
        ServerError(code=b"JOB_NOT_FOUND", text=b"Job given in work result not found")
    ]
    assert conn.unanswered == (EchoRequest(payload=b"probe"),)
    assert feed(conn, server(_T.ECHO_RES, b"probe")) == [
        EchoReply(payload=b"probe", request=EchoRequest(payload=b"probe"))
    ]


def test_error_job_not_found_does_not_pop_pending_submission() -> None:
    client = ClientConnection()
    client.send(SubmitJob(function=b"f"))
    assert feed(client, JOB_NOT_FOUND)[0].request is None  # type: ignore[attr-defined]
    assert client.unanswered == (SubmitJob(function=b"f"),)


def test_error_answers_the_submission_not_an_earlier_status_query() -> None:
    # An ERROR stands in for JOB_CREATED or OPTION_RES, never for STATUS_RES.
    client = ClientConnection()
    client.send(GetStatus(handle=b"H:vm:1"))
    assert feed(client, server(_T.ERROR, b"QUEUE_ERROR", b"full")) == [
        ServerError(code=b"QUEUE_ERROR", text=b"full", request=None)
    ]
    assert client.unanswered == (GetStatus(handle=b"H:vm:1"),)


def test_error_unknown_option_answers_set_option_on_a_worker() -> None:
    worker = WorkerConnection()
    worker.send(SetOption(option=b"nope"))
    (error,) = feed(worker, server(_T.ERROR, b"UNKNOWN_OPTION", b"no"))
    assert error == ServerError(
        code=b"UNKNOWN_OPTION", text=b"no", request=SetOption(option=b"nope")
    )
    assert worker.unanswered == ()
    worker.send(SetOption())
    assert feed(worker, server(_T.OPTION_RES, b"exceptions")) == [
        OptionAccepted(option=b"exceptions", request=SetOption())
    ]


# --------------------------------- servers that pass over requests in silence

#: the GET_STATUS the client sends behind SUBMIT_JOB_EPOCH / SUBMIT_REDUCE_JOB*.
FENCE_STATUS = server(_T.STATUS_RES, b"-", b"0", b"0", b"0", b"0")


def test_a_reply_to_a_later_request_reports_the_ones_passed_over() -> None:
    # gear's Server ignores OPTION_REQ and GET_STATUS_UNIQUE (no ERROR), but
    # answers the submission behind them: it will never answer those two.
    client = ClientConnection()
    option, unique, submit = SetOption(), GetStatusUnique(unique=b"u"), SubmitJob(function=b"f")
    for event in (option, unique, submit):
        client.send(event)
    assert feed(client, server(_T.JOB_CREATED, b"H:1")) == [
        Unanswered(request=option),
        Unanswered(request=unique),
        JobCreated(handle=b"H:1", request=submit),
    ]
    assert client.unanswered == ()


def test_a_reply_no_unanswered_request_takes_is_still_a_remote_error() -> None:
    client = ClientConnection()
    client.send(SetOption())
    client.send(GetStatus(handle=b"h"))
    client.receive_data(server(_T.JOB_CREATED, b"H:1"))
    with pytest.raises(RemoteProtocolError, match="no unanswered request takes it"):
        client.next_event()


@pytest.mark.parametrize(
    "extension",
    [
        SubmitJobEpoch(function=b"f", epoch=1, unique=b"e"),
        SubmitReduceJob(function=b"f", reducer=b"r", unique=b"r"),
        SubmitReduceJob(function=b"f", reducer=b"r", unique=b"r", background=True),
    ],
)
def test_a_fence_follows_submissions_some_servers_ignore(extension: Event) -> None:
    client = ClientConnection()
    assert client.send(extension) == encode_event(extension) + encode_event(GetStatus(handle=b"-"))
    assert client.unanswered == (extension,)  # the fence is the core's own
    later = SubmitJob(function=b"f", unique=b"later")
    client.send(later)
    # gearmand answers the extension, the fence (never reported), then the next.
    gearmand = ClientConnection()
    gearmand.send(extension)
    gearmand.send(later)
    assert feed(
        gearmand,
        server(_T.JOB_CREATED, b"H:1") + FENCE_STATUS + server(_T.JOB_CREATED, b"H:2"),
    ) == [JobCreated(handle=b"H:1", request=extension), JobCreated(handle=b"H:2", request=later)]
    # A server that ignores it answers the fence first: the JOB_CREATED that
    # follows is the later submission's, never the ignored one's.
    assert feed(client, FENCE_STATUS + server(_T.JOB_CREATED, b"H:2")) == [
        Unanswered(request=extension),
        JobCreated(handle=b"H:2", request=later),
    ]
    assert client.unanswered == gearmand.unanswered == ()


def test_a_connection_closed_lists_no_fence() -> None:
    client = ClientConnection()
    epoch = SubmitJobEpoch(function=b"f", epoch=1)
    client.send(epoch)
    assert client.abandon() == ConnectionClosed(unanswered=(epoch,))


def test_status_res_for_other_handle_is_remote_error() -> None:
    client = ClientConnection()
    client.send(GetStatus(handle=b"H:vm:1"))
    client.receive_data(server(_T.STATUS_RES, b"H:vm:2", b"1", b"0", b"0", b"0"))
    with pytest.raises(RemoteProtocolError, match="H:vm:2"):
        client.next_event()


def test_status_res_unique_for_other_unique_is_remote_error() -> None:
    client = ClientConnection()
    client.send(GetStatusUnique(unique=b"a"))
    client.receive_data(server(_T.STATUS_RES_UNIQUE, b"b", b"1", b"0", b"0", b"0", b"0"))
    with pytest.raises(RemoteProtocolError, match="GET_STATUS_UNIQUE"):
        client.next_event()


def test_status_res_with_empty_progress_reads_as_no_report_yet() -> None:
    # gear's Server leaves numerator and denominator empty until the worker
    # sends WORK_STATUS; gearmand sends 0 and 0.
    client = ClientConnection()
    client.send(GetStatus(handle=b"h"))
    client.receive_data(server(_T.STATUS_RES, b"h", b"1", b"0", b"", b""))
    assert client.next_event() == JobStatus(
        handle=b"h",
        known=True,
        running=False,
        numerator=0,
        denominator=0,
        request=GetStatus(handle=b"h"),
    )


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (GetStatus(handle=b"h"), server(_T.STATUS_RES, b"h", b"2", b"0", b"0", b"0")),
        (GetStatus(handle=b"h"), server(_T.STATUS_RES, b"h", b"1", b"yes", b"0", b"0")),
        (GetStatus(handle=b"h"), server(_T.STATUS_RES, b"h", b"1", b"0", b"-1", b"0")),
        (GetStatus(handle=b"h"), server(_T.STATUS_RES, b"h", b"1", b"0", b"0", b"1/2")),
        (
            GetStatusUnique(unique=b"u"),
            server(_T.STATUS_RES_UNIQUE, b"u", b"1", b"0", b"0", b"0", b"many"),
        ),
    ],
)
def test_status_res_with_malformed_fields_is_remote_error(request_: Event, reply: bytes) -> None:
    client = ClientConnection()
    client.send(request_)
    client.receive_data(reply)
    with pytest.raises(RemoteProtocolError, match="status field"):
        client.next_event()


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (EchoRequest(), server(_T.JOB_CREATED, b"H:vm:1")),
        (SubmitJob(function=b"f"), server(_T.ECHO_RES, b"")),
        (EchoRequest(), server(_T.OPTION_RES, b"exceptions")),
        (SubmitJob(function=b"f"), server(_T.STATUS_RES, b"h", b"0", b"0", b"0", b"0")),
        (None, server(_T.ECHO_RES, b"")),
        (None, server(_T.STATUS_RES_UNIQUE, b"u", b"0", b"0", b"0", b"0", b"0")),
    ],
)
def test_answer_to_a_request_not_made_is_remote_error(request_: Event | None, reply: bytes) -> None:
    client = ClientConnection()
    if request_ is not None:
        client.send(request_)
    client.receive_data(reply)
    with pytest.raises(RemoteProtocolError):
        client.next_event()


def test_pipelined_requests_are_answered_in_order() -> None:
    client = ClientConnection()
    requests: list[Event] = [
        SubmitJob(function=b"f", background=True),
        EchoRequest(payload=b"e"),
        GetStatus(handle=b"H:vm:1"),
        SubmitJobEpoch(function=b"f", epoch=5),
        SubmitReduceJob(function=b"f", reducer=b"r"),
    ]
    for request in requests:
        client.send(request)
    events = feed(
        client,
        server(_T.JOB_CREATED, b"H:vm:1")
        + server(_T.ECHO_RES, b"e")
        + server(_T.STATUS_RES, b"H:vm:1", b"1", b"0", b"0", b"0")
        + server(_T.JOB_CREATED, b"H:vm:2")
        + server(_T.JOB_CREATED, b"H:vm:3"),
    )
    assert [event.request for event in events] == requests  # type: ignore[attr-defined]
    # Only the foreground reduce job gets WORK_* packets.
    assert client.foreground_handles == (b"H:vm:3",)


def test_send_returns_every_byte_queued_so_far() -> None:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    feed(worker, NO_JOB)  # the core queues PRE_SLEEP
    echo = b"\x00REQ\x00\x00\x00\x10\x00\x00\x00\x011"
    assert worker.send(EchoRequest(payload=b"1")) == PRE_SLEEP + echo
    assert worker.data_to_send() == b""


# ---------------------------------------------------------- job routing


def test_late_packets_for_a_finished_job_are_dropped() -> None:
    # An admin "cancel job" of a running job gives WORK_FAIL, then the
    # worker's WORK_COMPLETE reaches the client too (PROTOCOL.md trap 10).
    client = client_with_job()
    events = feed(
        client,
        server(_T.WORK_FAIL, b"H:vm:1")
        + server(_T.WORK_COMPLETE, b"H:vm:1", b"done anyway")
        + server(_T.WORK_DATA, b"H:vm:1", b"late")
        + server(_T.WORK_STATUS, b"H:vm:1", b"1", b"2")
        + server(_T.WORK_FAIL, b"H:vm:1\0"),
    )
    assert events == [WorkFail(handle=b"H:vm:1")]
    assert client.foreground_handles == ()


def test_work_packet_for_a_handle_never_seen_raises_unknown_handle() -> None:
    client = client_with_job()
    client.receive_data(server(_T.WORK_DATA, b"H:vm:2", b"x"))
    with pytest.raises(UnknownHandle) as raised:
        client.next_event()
    assert raised.value.handle == b"H:vm:2"
    assert client.state is ConnectionState.ERROR


def test_background_job_gets_no_work_packets() -> None:
    client = ClientConnection()
    client.send(SubmitJob(function=b"f", background=True))
    feed(client, server(_T.JOB_CREATED, b"H:vm:1"))
    assert client.foreground_handles == ()
    client.receive_data(server(_T.WORK_COMPLETE, b"H:vm:1", b""))
    with pytest.raises(UnknownHandle):
        client.next_event()


def test_two_submissions_coalesced_onto_one_handle_need_two_terminal_packets() -> None:
    client = ClientConnection()
    client.send(SubmitJob(function=b"f", unique=b"same"))
    client.send(SubmitJob(function=b"f", unique=b"same"))
    feed(client, server(_T.JOB_CREATED, b"H:vm:1") * 2)
    assert client.foreground_handles == (b"H:vm:1",)
    assert feed(client, server(_T.WORK_COMPLETE, b"H:vm:1", b"r")) == [
        WorkComplete(handle=b"H:vm:1", payload=b"r")
    ]
    assert client.foreground_handles == (b"H:vm:1",)
    assert feed(client, server(_T.WORK_COMPLETE, b"H:vm:1", b"r")) == [
        WorkComplete(handle=b"H:vm:1", payload=b"r")
    ]
    assert client.foreground_handles == ()


def test_resubmitting_a_finished_handle_tracks_it_again() -> None:
    # After a restart the server counts handles from 1 again (PROTOCOL.md 9.25).
    client = client_with_job()
    feed(client, server(_T.WORK_COMPLETE, b"H:vm:1", b""))
    client.send(SubmitJob(function=b"f"))
    feed(client, server(_T.JOB_CREATED, b"H:vm:1"))
    assert feed(client, server(_T.WORK_DATA, b"H:vm:1", b"d")) == [
        WorkData(handle=b"H:vm:1", payload=b"d")
    ]


def test_finished_handles_are_forgotten_after_1024() -> None:
    client = ClientConnection()
    for _ in range(1025):
        client.send(SubmitJob(function=b"f"))
    stream = b"".join(
        server(_T.JOB_CREATED, b"H:%d" % n) + server(_T.WORK_FAIL, b"H:%d" % n) for n in range(1025)
    )
    assert len(feed(client, stream)) == 2050
    assert feed(client, server(_T.WORK_DATA, b"H:1", b"late")) == []
    client.receive_data(server(_T.WORK_DATA, b"H:0", b"late"))
    with pytest.raises(UnknownHandle):
        client.next_event()


# ---------------------------------------------------------------- framing


def test_unknown_packet_type_above_42_is_reported() -> None:
    client = ClientConnection()
    client.send(EchoRequest(payload=b"e"))
    data = b"\x00RES\x00\x00\x00\x2b\x00\x00\x00\x03a\x00b" + server(_T.ECHO_RES, b"e")
    assert feed(client, data) == [
        UnknownPacket(packet_type=43, body=b"a\x00b"),
        EchoReply(payload=b"e", request=EchoRequest(payload=b"e")),
    ]
    assert client.state is ConnectionState.OPEN


def test_type_zero_is_fatal() -> None:
    client = ClientConnection()
    client.receive_data(b"\x00RES\x00\x00\x00\x00\x00\x00\x00\x00")
    with pytest.raises(RemoteProtocolError, match="type 0"):
        client.next_event()


def test_unused_type_five_is_fatal() -> None:
    worker = WorkerConnection()
    worker.receive_data(b"\x00RES\x00\x00\x00\x05\x00\x00\x00\x00")
    with pytest.raises(RemoteProtocolError, match="UNUSED"):
        worker.next_event()


@pytest.mark.parametrize(
    ("role", "packet"),
    [
        (ClientConnection, NOOP),
        (ClientConnection, NO_JOB),
        (ClientConnection, assign()),
        (WorkerConnection, server(_T.JOB_CREATED, b"H:vm:1")),
        (WorkerConnection, server(_T.WORK_COMPLETE, b"H:vm:1", b"")),
        (WorkerConnection, server(_T.STATUS_RES, b"h", b"0", b"0", b"0", b"0")),
        (AdminConnection, NOOP),
        (AdminConnection, server(_T.JOB_CREATED, b"H:vm:1")),
    ],
)
def test_packet_for_another_role_is_fatal(
    role: Callable[[], ClientConnection | WorkerConnection | AdminConnection], packet: bytes
) -> None:
    conn = role()
    conn.receive_data(packet)
    with pytest.raises(RemoteProtocolError, match="unexpected"):
        conn.next_event()


@pytest.mark.parametrize("role", [ClientConnection, WorkerConnection, AdminConnection])
def test_request_magic_from_server_is_fatal(
    role: Callable[[], ClientConnection | WorkerConnection | AdminConnection],
) -> None:
    conn = role()
    conn.send(EchoRequest(payload=b"x"))
    conn.receive_data(b"\x00REQ\x00\x00\x00\x11\x00\x00\x00\x01x")
    with pytest.raises(RemoteProtocolError, match="magic"):
        conn.next_event()


def test_a_client_takes_work_fail_with_the_req_magic() -> None:
    # gear's Server sends it so when the worker that held the job disconnects.
    client = ClientConnection()
    client.send(SubmitJob(function=b"f"))
    client.receive_data(server(_T.JOB_CREATED, b"H:1"))
    client.receive_data(encode_packet(REQ, _T.WORK_FAIL, (b"H:1",)))
    assert client.next_events()[-1] == WorkFail(handle=b"H:1")
    worker = WorkerConnection()
    worker.receive_data(b"\0REQ" + bytes(server(_T.NOOP))[4:])
    with pytest.raises(RemoteProtocolError, match="bad magic"):
        worker.next_event()


def test_bad_magic_is_fatal() -> None:
    client = ClientConnection()
    client.receive_data(b"\x00XYZ\x00\x00\x00\x11\x00\x00\x00\x00")
    with pytest.raises(RemoteProtocolError, match="bad magic"):
        client.next_event()


@pytest.mark.parametrize("role", [ClientConnection, WorkerConnection])
def test_text_on_client_connection_is_fatal(
    role: Callable[[], ClientConnection | WorkerConnection],
) -> None:
    conn = role()
    conn.send(EchoRequest())
    conn.receive_data(b"OK\r\n")
    with pytest.raises(RemoteProtocolError, match="text"):
        conn.next_event()


def test_eof_reports_unanswered_and_open_handles() -> None:
    client = client_with_job(b"H:vm:1")
    client.send(SubmitJob(function=b"g", background=True))
    client.send(EchoRequest(payload=b"e"))
    assert feed(client, b"") == [
        ConnectionClosed(
            unanswered=(SubmitJob(function=b"g", background=True), EchoRequest(payload=b"e")),
            handles=(b"H:vm:1",),
            truncated=False,
        )
    ]
    assert client.state is ConnectionState.CLOSED
    assert client.unanswered == ()
    assert client.next_event() is None


def test_eof_mid_packet_is_truncated() -> None:
    client = ClientConnection()
    client.send(EchoRequest(payload=b"abc"))
    reply = server(_T.ECHO_RES, b"abc")
    client.receive_data(reply + reply[:5])
    client.receive_data(b"")
    assert list(client.events()) == [
        EchoReply(payload=b"abc", request=EchoRequest(payload=b"abc")),
        ConnectionClosed(truncated=True),
    ]


def test_events_before_eof_come_first() -> None:
    client = ClientConnection()
    client.send(EchoRequest())
    client.receive_data(server(_T.ECHO_RES, b""))
    client.receive_data(b"")
    assert list(client.events()) == [
        EchoReply(payload=b"", request=EchoRequest()),
        ConnectionClosed(),
    ]


def test_nothing_is_queued_after_the_server_closed() -> None:
    # The grab loop stops at end of file (a NOOP before EOF grabs nothing:
    # PROTOCOL.md 9.25); a NO_JOB read after it must not queue PRE_SLEEP either.
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    worker.data_to_send()
    worker.receive_data(NO_JOB)
    worker.receive_data(b"")
    assert list(worker.events()) == [NoJob(), ConnectionClosed()]
    assert worker.data_to_send() == b""


def test_noop_just_before_eof_grabs_nothing() -> None:
    worker = sleeping_worker()
    worker.receive_data(NOOP)
    worker.receive_data(b"")
    assert list(worker.events()) == [Noop(), ConnectionClosed()]
    assert worker.data_to_send() == b""


def test_receive_after_eof_is_a_local_error() -> None:
    client = ClientConnection()
    client.receive_data(b"")
    with pytest.raises(LocalProtocolError, match="end of the stream"):
        client.receive_data(b"x")
    with pytest.raises(LocalProtocolError, match="closed"):
        client.send(EchoRequest())


def test_send_failed_moves_to_error() -> None:
    client = ClientConnection()
    client.send(EchoRequest())
    client.send_failed()
    assert client.state is ConnectionState.ERROR
    with pytest.raises(LocalProtocolError, match="error connection"):
        client.send(EchoRequest())


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ClientConnection(max_packet_size=-1)
    with pytest.raises(ValueError, match="positive"):
        AdminConnection(max_line_length=0)


def test_numbers_too_long_for_int_are_remote_errors() -> None:
    # Python refuses int() of more than 4300 digits with ValueError; a server
    # sending such a field must still give a RemoteProtocolError.
    client = ClientConnection()
    client.send(GetStatus(handle=b"h"))
    client.receive_data(server(_T.STATUS_RES, b"h", b"1", b"1", b"9" * 5000, b"1"))
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    admin = AdminConnection()
    admin.send(AdminRequest(command=AdminCommand.GETPID))
    admin.receive_data(b"OK " + b"7" * 5000 + b"\n")
    with pytest.raises(RemoteProtocolError):
        admin.next_event()


@pytest.mark.parametrize(
    ("digits", "accepted"), [(b"1" * 20, True), (b"1" * 21, False), (b"", False)]
)
def test_decimal_fields_take_one_to_20_digits(digits: bytes, accepted: bool) -> None:
    admin = AdminConnection()
    admin.send(GETPID)
    admin.receive_data(b"OK " + digits + b"\n")
    if accepted:
        assert admin.next_event() == PidReply(pid=int(digits), request=GETPID)
    else:
        with pytest.raises(RemoteProtocolError, match="not a decimal"):
            admin.next_event()


# --------------------------------------------------------- what may be sent


@pytest.mark.parametrize(
    "build",
    [
        lambda: SubmitJob(function="f"),
        lambda: SubmitJob(function=b"f", payload="x"),
        lambda: SubmitJob(function=b"f", unique="u"),
        lambda: SubmitJobEpoch(function=b"f", payload="x"),
        lambda: SubmitReduceJob(function=b"f", reducer="r"),
        lambda: GetStatus(handle="H:vm:1"),
        lambda: GetStatusUnique(unique="u"),
        lambda: SetOption(option="exceptions"),
        lambda: EchoRequest(payload="x"),
        lambda: SetClientId(client_id="w"),
        lambda: CanDo(function="f"),
        lambda: CantDo(function="f"),
        lambda: WorkData(handle=b"h", payload="x"),
        lambda: WorkWarning(handle="h"),
        lambda: WorkStatus(handle=b"h", numerator=1, denominator=b"2"),
        lambda: WorkComplete(handle=b"h", payload=bytearray(b"x")),
        lambda: WorkFail(handle="h"),
        lambda: WorkException(handle=b"h", payload="boom"),
        lambda: AdminRequest(command=AdminCommand.CANCEL_JOB, arguments=("H:vm:1",)),
    ],
)
def test_str_payload_rejected_at_construction(build: Callable[[], Event]) -> None:
    with pytest.raises(LocalProtocolError, match="bytes"):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: SubmitJob(function=b"f\0g"),
        lambda: SubmitJob(function=b"f", unique=b"u\0"),
        lambda: SubmitJob(function=b"f", priority="high"),
        lambda: SubmitJobEpoch(function=b"f", epoch=-1),
        lambda: SubmitJobEpoch(function=b"f", epoch=1.5),
        lambda: SubmitReduceJob(function=b"f", reducer=b"r\0"),
        lambda: CanDo(function=b"f", timeout=0),
        lambda: CanDo(function=b"f", timeout=True),
        lambda: WorkStatus(handle=b"h", numerator=b"1\0", denominator=b"2"),
        lambda: WorkData(handle=b"h\0"),
        lambda: AdminRequest(command="status"),
        lambda: AdminRequest(command=AdminCommand.STATUS, arguments=(b"x",)),
        lambda: AdminRequest(command=AdminCommand.MAXQUEUE),
        lambda: AdminRequest(command=AdminCommand.MAXQUEUE, arguments=[b"f"]),
        lambda: AdminRequest(command=AdminCommand.MAXQUEUE, arguments=(b"f g",)),
        lambda: AdminRequest(command=AdminCommand.MAXQUEUE, arguments=(b"",)),
        lambda: AdminRequest(command=AdminCommand.CANCEL_JOB, arguments=(b"h\r\n",)),
    ],
)
def test_malformed_events_rejected_at_construction(build: Callable[[], Event]) -> None:
    with pytest.raises(LocalProtocolError):
        build()


def test_get_status_with_64_byte_handle_refused() -> None:
    # gearmand answers nothing at all to these (PROTOCOL.md 3, trap 2).
    assert GetStatus(handle=b"H" * 63).handle == b"H" * 63
    with pytest.raises(LocalProtocolError, match="64-byte handle"):
        GetStatus(handle=b"H" * 64)
    assert GetStatusUnique(unique=b"U" * 63).unique == b"U" * 63
    with pytest.raises(LocalProtocolError, match="64-byte unique"):
        GetStatusUnique(unique=b"U" * 64)


def test_field_region_over_8k_refused() -> None:
    # gearmand parses the fields inside an 8 KiB buffer and drops the
    # connection when they do not fit (PROTOCOL.md 1.1); data blobs are exempt.
    worker = WorkerConnection()
    with pytest.raises(LocalProtocolError, match="8192"):
        worker.send(CanDo(function=b"f" * 9000))
    assert worker.data_to_send() == b""
    assert worker.abilities == {}
    assert worker.worker_state is WorkerState.IDLE
    assert len(worker.send(CanDo(function=b"f" * 8000))) == 12 + 8000 + 12

    client = ClientConnection()
    with pytest.raises(LocalProtocolError, match="8192"):
        client.send(SubmitJob(function=b"f" * 9000))
    with pytest.raises(LocalProtocolError, match="8192"):
        client.send(SetClientId(client_id=b"i" * 9000))
    assert client.unanswered == ()
    assert client.data_to_send() == b""
    assert len(client.send(SubmitJob(function=b"f", payload=b"x" * 100_000))) == 12 + 3 + 100_000
    assert len(client.send(EchoRequest(payload=b"x" * 100_000))) == 12 + 100_000


@pytest.mark.parametrize(
    ("role", "event"),
    [
        (ClientConnection, CanDo(function=b"f")),
        (ClientConnection, WorkComplete(handle=b"h")),
        (ClientConnection, AdminRequest(command=AdminCommand.STATUS)),
        (WorkerConnection, SubmitJob(function=b"f")),
        (WorkerConnection, GetStatus(handle=b"h")),
        (WorkerConnection, AdminRequest(command=AdminCommand.STATUS)),
        (AdminConnection, SubmitJob(function=b"f")),
        (AdminConnection, SetOption()),
        (AdminConnection, SetClientId(client_id=b"x")),
        (ClientConnection, JobCreated(handle=b"h", request=SubmitJob(function=b"f"))),
        (WorkerConnection, Noop()),
    ],
)
def test_events_a_role_does_not_send_are_refused(
    role: Callable[[], ClientConnection | WorkerConnection | AdminConnection], event: Event
) -> None:
    conn = role()
    with pytest.raises(LocalProtocolError, match="does not send"):
        conn.send(event)
    assert conn.data_to_send() == b""
    assert conn.unanswered == ()


@pytest.mark.parametrize("event", [Noop(), NoJob(), ConnectionClosed(), Event()])
def test_events_that_are_never_sent_have_no_encoding(event: Event) -> None:
    with pytest.raises(LocalProtocolError, match="not sent to a server"):
        encode_event(event)


def test_priority_and_background_choose_the_submit_type() -> None:
    types = {
        (priority, background): encode_event(
            SubmitJob(function=b"f", priority=priority, background=background)
        )[4:8]
        for priority in Priority
        for background in (False, True)
    }
    assert types == {
        (Priority.NORMAL, False): b"\x00\x00\x00\x07",
        (Priority.NORMAL, True): b"\x00\x00\x00\x12",
        (Priority.HIGH, False): b"\x00\x00\x00\x15",
        (Priority.HIGH, True): b"\x00\x00\x00\x20",
        (Priority.LOW, False): b"\x00\x00\x00\x21",
        (Priority.LOW, True): b"\x00\x00\x00\x22",
    }


# ------------------------------------------------------------------ admin


def test_pipelined_admin_commands_are_matched_in_order() -> None:
    admin = AdminConnection()
    maxqueue = AdminRequest(command=AdminCommand.MAXQUEUE, arguments=(b"f", b"3"))
    sent = b"".join(admin.send(request) for request in (STATUS, maxqueue, VERSION, WORKERS))
    assert sent == b"status\r\nmaxqueue f 3\r\nversion\r\nworkers\r\n"
    assert admin.unanswered == (STATUS, maxqueue, VERSION, WORKERS)
    events = feed(
        admin,
        b"f\t1\t0\t0\n.\nOK\r\nOK 1.1.20+ds\n5 127.0.0.1 - : f\n.\n",
    )
    assert [type(event) for event in events] == [StatusReply, AdminOk, VersionReply, WorkersReply]
    assert [event.request for event in events] == [STATUS, maxqueue, VERSION, WORKERS]  # type: ignore[attr-defined]
    assert admin.unanswered == ()


def test_err_on_a_block_command_is_an_admin_error() -> None:
    admin = AdminConnection()
    admin.send(STATUS)
    admin.send(VERSION)
    events = feed(admin, b"ERR UNKNOWN_COMMAND Unknown+server+commandstatus\r\nOK 1.1.20+ds\n")
    assert events == [
        AdminError(
            code=b"UNKNOWN_COMMAND", message=b"Unknown server commandstatus", request=STATUS
        ),
        VersionReply(version=b"1.1.20+ds", request=VERSION),
    ]


def test_status_line_of_a_function_named_like_an_error_is_a_status_line() -> None:
    admin = AdminConnection()
    admin.send(STATUS)
    (reply,) = feed(admin, b"ERR x\t1\t0\t0\n.\n")
    assert isinstance(reply, StatusReply)
    assert reply.functions[0].function == b"ERR x"


def test_err_without_code_or_message() -> None:
    admin = AdminConnection()
    admin.send(GETPID)
    assert feed(admin, b"ERR\r\n") == [AdminError(code=b"", message=b"", request=GETPID)]


def test_ok_with_text_is_kept() -> None:
    admin = AdminConnection()
    request = AdminRequest(command=AdminCommand.CREATE_FUNCTION, arguments=(b"f",))
    admin.send(request)
    assert feed(admin, b"OK done \r\n") == [AdminOk(text=b"done", request=request)]


def test_version_without_ok_is_accepted() -> None:
    # Older servers answer with the bare version string.
    admin = AdminConnection()
    admin.send(VERSION)
    assert feed(admin, b"1.0.6\n") == [VersionReply(version=b"1.0.6", request=VERSION)]


def test_workers_line_without_client_id_is_tolerated() -> None:
    admin = AdminConnection()
    admin.send(WORKERS)
    assert feed(admin, b"5 127.0.0.1 :\n6 ::1 : f g\n.\n") == [
        WorkersReply(
            workers=(
                WorkerInfo(b"5", b"127.0.0.1", b"", ()),
                WorkerInfo(b"6", b"::1", b"", (b"f", b"g")),
            ),
            request=WORKERS,
        )
    ]


def test_workers_client_id_ends_at_the_first_lone_colon() -> None:
    admin = AdminConnection()
    admin.send(WORKERS)
    (reply,) = feed(admin, b"5 127.0.0.1 a :b c :d : f\n.\n")
    assert reply == WorkersReply(
        workers=(WorkerInfo(b"5", b"127.0.0.1", b"a :b c :d", (b"f",)),), request=WORKERS
    )


def test_binary_in_the_middle_of_a_block_is_fatal() -> None:
    admin = AdminConnection()
    admin.send(STATUS)
    assert feed(admin, b"f\t1\t0\t0\n") == []
    admin.receive_data(server(_T.ERROR, b"X", b"y") + b".\n")
    with pytest.raises(RemoteProtocolError, match="middle of an admin block"):
        admin.next_event()


@pytest.mark.parametrize(
    "packet",
    [server(_T.ERROR, b"X", b"y"), b"\x00RES\x00\x00\x00\x2b\x00\x00\x00\x00"],
    ids=["ERROR", "type 43"],
)
def test_binary_in_the_middle_of_a_block_is_fatal_in_the_same_chunk(packet: bytes) -> None:
    admin = AdminConnection()
    admin.send(STATUS)
    admin.receive_data(b"f\t1\t0\t0\n" + packet + b".\n")
    with pytest.raises(RemoteProtocolError, match="middle of an admin block"):
        admin.next_event()


def test_admin_line_longer_than_limit_raises_before_the_newline() -> None:
    admin = AdminConnection(max_line_length=16)
    admin.send(VERSION)
    admin.receive_data(b"OK " + b"v" * 13)  # 16 bytes: could still be a line
    assert admin.next_event() is None
    admin.receive_data(b"v")
    with pytest.raises(PacketTooLarge) as raised:
        admin.next_event()
    assert (raised.value.size, raised.value.limit) == (17, 16)


def test_admin_line_of_exactly_the_limit_is_accepted() -> None:
    admin = AdminConnection(max_line_length=16)
    admin.send(VERSION)
    assert feed(admin, b"OK " + b"v" * 13 + b"\n") == [
        VersionReply(version=b"v" * 13, request=VERSION)
    ]


def test_admin_line_arriving_whole_above_the_limit_raises() -> None:
    admin = AdminConnection(max_line_length=16)
    admin.send(VERSION)
    admin.receive_data(b"OK " + b"v" * 20 + b"\n")
    with pytest.raises(PacketTooLarge):
        admin.next_event()


def test_admin_block_larger_than_max_packet_size_is_fatal() -> None:
    admin = AdminConnection(max_packet_size=100, max_line_length=50)
    admin.send(STATUS)
    admin.receive_data(b"function\t1\t0\t0\n" * 10)
    with pytest.raises(RemoteProtocolError, match="block reply above"):
        admin.next_event()


@pytest.mark.parametrize(
    ("request_", "line"),
    [
        (None, b"OK\r\n"),
        (STATUS, b"f\t1\t0\n.\n"),
        (STATUS, b"f\t1\tx\t0\n.\n"),
        (AdminRequest(command=AdminCommand.PRIORITY_STATUS), b"f\t1\t0\t0\n.\n"),
        (WORKERS, b"5 127.0.0.1\n.\n"),
        (WORKERS, b"5 127.0.0.1 id-without-colon f\n.\n"),
        (AdminRequest(command=AdminCommand.SHOW_JOBS), b"H:1\t0\t2\t0\n.\n"),
        (AdminRequest(command=AdminCommand.SHOW_JOBS), b"H:1\t0\t0\n.\n"),
        (GETPID, b"OK abc\n"),
        (GETPID, b"hello\n"),
        (AdminRequest(command=AdminCommand.VERBOSE), b"INFO\n"),
        (AdminRequest(command=AdminCommand.MAXQUEUE, arguments=(b"f",)), b"DONE\r\n"),
    ],
)
def test_malformed_admin_replies_are_remote_errors(request_: Event | None, line: bytes) -> None:
    admin = AdminConnection()
    if request_ is not None:
        admin.send(request_)
    admin.receive_data(line)
    with pytest.raises(RemoteProtocolError, match="admin reply"):
        admin.next_event()


def test_text_line_when_an_echo_is_expected_is_fatal() -> None:
    admin = AdminConnection()
    admin.send(EchoRequest(payload=b"e"))
    admin.receive_data(b"OK\r\n")
    with pytest.raises(RemoteProtocolError, match="answers no admin command"):
        admin.next_event()


def test_server_error_packet_between_admin_replies_answers_nothing() -> None:
    admin = AdminConnection()
    admin.send(GETPID)
    assert feed(admin, server(_T.ERROR, b"INVALID_COMMAND", b"Command not expected")) == [
        ServerError(code=b"INVALID_COMMAND", text=b"Command not expected")
    ]
    assert feed(admin, b"OK 42\n") == [PidReply(pid=42, request=GETPID)]


def test_admin_eof_mid_block_is_truncated() -> None:
    admin = AdminConnection()
    admin.send(STATUS)
    admin.receive_data(b"f\t1\t0\t0\n")
    assert feed(admin, b"") == [ConnectionClosed(unanswered=(STATUS,), truncated=True)]


def test_admin_eof_mid_line_is_truncated() -> None:
    admin = AdminConnection()
    admin.send(GETPID)
    admin.receive_data(b"OK 4")
    assert feed(admin, b"") == [ConnectionClosed(unanswered=(GETPID,), truncated=True)]


def test_admin_echo_round_trip() -> None:
    admin = AdminConnection()
    assert admin.send(EchoRequest(payload=b"p")) == b"\x00REQ\x00\x00\x00\x10\x00\x00\x00\x01p"
    assert feed(admin, server(_T.ECHO_RES, b"p")) == [
        EchoReply(payload=b"p", request=EchoRequest(payload=b"p"))
    ]


# ------------------------------------------------------------ next_events


def test_next_events_returns_a_whole_read_then_an_empty_list() -> None:
    client = ClientConnection()
    client.send(SubmitJob(function=b"f", payload=b"x"))
    client.send(SubmitJob(function=b"f", payload=b"y"))
    client.receive_data(server(_T.JOB_CREATED, b"H:1") + server(_T.JOB_CREATED, b"H:2"))
    events = client.next_events()
    assert [type(e) for e in events] == [JobCreated, JobCreated]
    assert [e.handle for e in events] == [b"H:1", b"H:2"]  # type: ignore[attr-defined]
    assert client.next_events() == []


def test_next_events_delivers_the_good_events_before_raising() -> None:
    client = client_with_job()
    good = server(_T.WORK_DATA, b"H:vm:1", b"partial")
    client.receive_data(good + b"\0RES\0\0\0\x0d\0\0\0\x02no")  # no NUL: one argument
    (data,) = client.next_events()
    assert isinstance(data, WorkData)
    with pytest.raises(RemoteProtocolError):
        client.next_events()
    with pytest.raises(RemoteProtocolError):  # and it stays failed
        client.next_events()


def test_next_events_reports_the_close_once() -> None:
    client = client_with_job()
    client.receive_data(b"")
    (closed,) = client.next_events()
    assert isinstance(closed, ConnectionClosed)
    assert closed.handles == (b"H:vm:1",)
    assert client.next_events() == []


def test_fast_encoders_keep_the_8k_field_limit_to_the_byte() -> None:
    # SUBMIT_JOB fields: 12-byte header + function NUL + unique NUL <= 8192.
    client = ClientConnection()
    unique = b"u" * 63  # the longest the core sends
    fits = SubmitJob(function=b"f" * (8192 - 12 - 2 - 63), unique=unique, payload=b"p")
    assert len(client.send(fits)) == 8192 + 1
    with pytest.raises(LocalProtocolError, match="8192"):
        client.send(SubmitJob(function=b"f" * (8192 - 12 - 2 - 63 + 1), unique=unique))
    assert len(client.unanswered) == 1  # only the one that fitted

    # WORK_COMPLETE: 12-byte header + handle NUL <= 8192; the payload is exempt.
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    long_handle = b"H" * (8192 - 12 - 1 + 1)
    feed(worker, assign(handle=long_handle))
    with pytest.raises(LocalProtocolError, match="8192"):
        worker.send(WorkComplete(handle=long_handle, payload=b"x" * 100_000))
    assert worker.data_to_send() == b""
    assert [job.handle for job in worker.jobs] == [long_handle]  # still held

    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    handle = b"H" * (8192 - 12 - 1)
    feed(worker, assign(handle=handle))
    sent = worker.send(WorkComplete(handle=handle, payload=b"x"))
    assert sent == encode_event(WorkComplete(handle=handle, payload=b"x")) + GRAB_JOB_UNIQ
    assert len(sent) == 8192 + 1 + len(GRAB_JOB_UNIQ)


# ------------------------------------------- the end: abandon(), send_failed()

ECHO = EchoRequest(payload=b"e")
AnyConnection = ClientConnection | WorkerConnection | AdminConnection


def busy_client() -> tuple[AnyConnection, ConnectionClosed]:
    client = client_with_job(b"H:vm:1")
    client.send(ECHO)
    return client, ConnectionClosed(unanswered=(ECHO,), handles=(b"H:vm:1",))


def busy_worker() -> tuple[AnyConnection, ConnectionClosed]:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    feed(worker, assign(b"H:vm:1"))
    worker.send(ECHO)
    return worker, ConnectionClosed(unanswered=(ECHO,), handles=(b"H:vm:1",))


def busy_admin() -> tuple[AnyConnection, ConnectionClosed]:
    admin = AdminConnection()
    admin.send(STATUS)
    admin.send(ECHO)
    return admin, ConnectionClosed(unanswered=(STATUS, ECHO))


BUSY = pytest.mark.parametrize("busy", [busy_client, busy_worker, busy_admin])
Busy = Callable[[], tuple[AnyConnection, ConnectionClosed]]
#: a complete packet each role must not receive.
FOREIGN = {
    ClientConnection: server(_T.NO_JOB),
    WorkerConnection: server(_T.JOB_CREATED, b"H:vm:9"),
    AdminConnection: server(_T.NO_JOB),
}


@BUSY
def test_abandon_reports_what_was_in_flight_then_nothing(busy: Busy) -> None:
    conn, in_flight = busy()
    assert conn.abandon() == in_flight
    assert conn.state is ConnectionState.CLOSED
    assert conn.unanswered == ()
    assert conn.abandon() == ConnectionClosed()  # already reported
    assert conn.next_events() == []
    with pytest.raises(LocalProtocolError, match="abandoned"):
        conn.receive_data(b"x")
    with pytest.raises(LocalProtocolError, match="closed connection"):
        conn.send(ECHO)


def test_abandon_drops_what_was_queued_and_the_worker_grabs_no_more() -> None:
    worker = WorkerConnection()
    worker.queue(CanDo(function=b"f"))  # CAN_DO and GRAB_JOB_UNIQ queued, not written
    assert worker.abandon() == ConnectionClosed()
    assert worker.data_to_send() == b""
    worker.accepting = False
    worker.accepting = True
    assert worker.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        worker.wake()


@BUSY
def test_abandon_after_the_close_was_reported_reports_nothing(busy: Busy) -> None:
    conn, in_flight = busy()
    assert feed(conn, b"") == [in_flight]
    assert conn.abandon() == ConnectionClosed()
    assert conn.state is ConnectionState.CLOSED


@BUSY
def test_abandon_before_the_close_is_parsed_reports_it_once(busy: Busy) -> None:
    conn, in_flight = busy()
    conn.receive_data(b"")
    assert conn.abandon() == in_flight
    assert conn.next_events() == []  # no second ConnectionClosed
    assert conn.state is ConnectionState.CLOSED


@BUSY
def test_abandon_after_a_remote_error_reports_once_and_stays_in_error(busy: Busy) -> None:
    conn, in_flight = busy()
    conn.receive_data(FOREIGN[type(conn)])
    with pytest.raises(RemoteProtocolError):
        conn.next_events()
    assert conn.abandon() == in_flight
    assert conn.state is ConnectionState.ERROR
    assert conn.abandon() == ConnectionClosed()
    with pytest.raises(RemoteProtocolError):  # the error is still the server's
        conn.next_event()


@BUSY
def test_send_failed_moves_to_error_and_returns_the_end_event_once(busy: Busy) -> None:
    conn, in_flight = busy()
    assert conn.send_failed() == in_flight
    assert conn.state is ConnectionState.ERROR
    assert conn.abandon() == ConnectionClosed()
    assert conn.send_failed() == ConnectionClosed()
    assert conn.state is ConnectionState.ERROR
    with pytest.raises(LocalProtocolError, match="could not write"):
        conn.receive_data(b"x")


def test_send_failed_after_the_close_was_reported_reports_nothing() -> None:
    conn, in_flight = busy_client()
    assert feed(conn, b"") == [in_flight]
    assert conn.send_failed() == ConnectionClosed()
    assert conn.state is ConnectionState.ERROR


def test_events_parsed_before_abandon_stay_and_come_first() -> None:
    # next_event() parses the whole read: the ECHO_RES is answered (and its
    # request no longer in flight) before the binding has seen it.
    client = ClientConnection()
    client.send(SubmitJob(function=b"f"))
    client.send(ECHO)
    client.receive_data(server(_T.JOB_CREATED, b"H:vm:1") + server(_T.ECHO_RES, b"e"))
    assert isinstance(client.next_event(), JobCreated)
    assert client.abandon() == ConnectionClosed(handles=(b"H:vm:1",))
    assert client.next_events() == [EchoReply(payload=b"e", request=ECHO)]
    assert client.next_events() == []


def test_abandon_with_bytes_left_unparsed_is_truncated() -> None:
    client = ClientConnection()
    client.send(ECHO)
    client.receive_data(server(_T.ECHO_RES, b"e")[:5])
    assert client.abandon() == ConnectionClosed(unanswered=(ECHO,), truncated=True)


def test_abandon_in_the_middle_of_an_admin_block_is_truncated() -> None:
    admin = AdminConnection()
    admin.send(STATUS)
    assert feed(admin, b"f\t0\t0\t1\n") == []
    assert admin.abandon() == ConnectionClosed(unanswered=(STATUS,), truncated=True)


def test_abandon_after_a_bad_header_is_truncated() -> None:
    client = ClientConnection()
    client.send(ECHO)
    client.receive_data(b"\0XYZ\0\0\0\x10\0\0\0\0")
    with pytest.raises(RemoteProtocolError, match="magic"):
        client.next_event()
    assert client.abandon() == ConnectionClosed(unanswered=(ECHO,), truncated=True)


# ----------------------------------------------------------- has_received


@pytest.mark.parametrize("role", [ClientConnection, WorkerConnection, AdminConnection])
def test_a_server_that_closes_before_saying_anything_has_not_received(
    role: type[AnyConnection],
) -> None:
    conn = role()
    conn.send(ECHO)
    assert not conn.has_received
    assert feed(conn, b"") == [ConnectionClosed(unanswered=(ECHO,))]
    assert not conn.has_received


def test_has_received_after_the_first_complete_packet_is_parsed() -> None:
    client = ClientConnection()
    client.send(ECHO)
    reply = server(_T.ECHO_RES, b"e")
    client.receive_data(reply[:-1])
    assert client.next_events() == []
    assert not client.has_received  # an incomplete packet does not count
    client.receive_data(reply[-1:])
    assert not client.has_received  # parsing is lazy: nothing parsed yet
    assert client.next_events() == [EchoReply(payload=b"e", request=ECHO)]
    assert client.has_received
    feed(client, b"")
    assert client.has_received  # and it stays so


def test_has_received_after_an_admin_line() -> None:
    admin = AdminConnection()
    admin.send(VERSION)
    admin.receive_data(b"OK 1.1.20")
    assert admin.next_events() == []
    assert not admin.has_received
    assert feed(admin, b"\n") == [VersionReply(version=b"1.1.20", request=VERSION)]
    assert admin.has_received


def test_has_received_counts_a_complete_packet_that_breaks_the_protocol() -> None:
    client = ClientConnection()
    client.receive_data(server(_T.NO_JOB))
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    assert client.has_received


def test_has_received_ignores_a_header_refused_before_its_packet_was_taken() -> None:
    client = ClientConnection()
    client.receive_data(b"\0XYZ\0\0\0\x10\0\0\0\0")
    with pytest.raises(RemoteProtocolError, match="magic"):
        client.next_event()
    assert not client.has_received


def test_has_received_on_a_worker_after_no_job() -> None:
    worker = WorkerConnection()
    worker.send(CanDo(function=b"f"))
    assert feed(worker, NO_JOB) == [NoJob()]
    assert worker.has_received
