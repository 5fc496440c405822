"""Property tests: the packet grammar, chunking, garbage, size limits, dead connections.

The server side of these tests is a small peer built on ``_wire``: it writes
valid server packets with ``encode_packet`` and knows what each one means, so
every generated stream comes with the events it must produce.  The exact
bytes of each packet are pinned separately by ``test_golden.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gearman_proto import (
    DEFAULT_MAX_PACKET_SIZE,
    LAYOUTS,
    REQ,
    RES,
    AdminCommand,
    AdminConnection,
    AdminError,
    AdminOk,
    AdminRequest,
    CanDo,
    ClientConnection,
    ConnectionClosed,
    ConnectionState,
    EchoReply,
    EchoRequest,
    Event,
    FunctionPriorityStatus,
    FunctionStatus,
    GetStatus,
    GetStatusUnique,
    GrabMode,
    JobCreated,
    JobInfo,
    JobsReply,
    JobStatus,
    JobStatusUnique,
    LocalProtocolError,
    OptionAccepted,
    PacketTooLarge,
    PacketType,
    PidReply,
    PriorityStatusReply,
    RemoteProtocolError,
    ServerError,
    SetOption,
    StatusReply,
    SubmitJob,
    UniqueJobsReply,
    UnknownPacket,
    VerboseReply,
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
    decode_body,
    encode_packet,
)
from gearman_proto._buffer import ReceiveBuffer

Connection = ClientConnection | WorkerConnection | AdminConnection

#: Small limits keep the garbage tests fast and reach the limits often.
MAX_PACKET = 1024
MAX_LINE = 256

_T = PacketType
#: Types that travel at all (UNUSED has no magic).
WIRE_TYPES = [t for t in PacketType if LAYOUTS[t].magics]
#: Types with two or more arguments, where the NUL rules matter.
MULTI_ARGUMENT_TYPES = [t for t in WIRE_TYPES if len(LAYOUTS[t].arguments) >= 2]

fields = st.binary(max_size=40).map(lambda b: b.replace(b"\0", b""))
blobs = st.binary(max_size=200)
words = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_:.", min_size=1, max_size=12).map(str.encode)
#: gearmand prints client ids and uniques verbatim; these avoid the few that
#: cannot be told apart from the syntax around them (": " in an id, "." alone).
client_ids = (
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-_ ", min_size=1, max_size=12)
    .map(str.encode)
    .filter(lambda i: not i.startswith(b" ") and not i.endswith(b" ") and b"  " not in i)
)
uniques = st.one_of(st.just(b""), words.filter(lambda w: w != b"."))


def server(packet_type: PacketType, *arguments: bytes) -> bytes:
    """A packet from the server."""
    return encode_packet(RES, packet_type, arguments)


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """*data* cut at the given offsets (taken modulo its length)."""
    if not data:
        return []
    points = sorted({cut % len(data) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def play(conn: Connection, chunks: Sequence[bytes]) -> list[Event]:
    """Feed *chunks* one after the other, draining events after each."""
    events: list[Event] = []
    for chunk in chunks:
        if chunk:  # b"" would mean end of file
            conn.receive_data(chunk)
            events += conn.events()
    return events


def play_until_error(
    conn: Connection, chunks: Sequence[bytes]
) -> tuple[list[Event], RemoteProtocolError | None]:
    """Like `play`, but stop at a RemoteProtocolError and return it with the events before it."""
    events: list[Event] = []
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            for event in conn.events():
                events.append(event)
    except RemoteProtocolError as error:
        return events, error
    return events, None


# ------------------------------------------------------------ the grammar


@st.composite
def any_packet(draw: st.DrawFn) -> tuple[bytes, PacketType, list[bytes]]:
    """A magic, a type and arguments that type may carry: NULs only in the last."""
    packet_type = draw(st.sampled_from(WIRE_TYPES))
    layout = LAYOUTS[packet_type]
    magic = draw(st.sampled_from(sorted(layout.magics)))
    arguments = [draw(fields) for _ in layout.arguments[:-1]]
    if layout.arguments:
        arguments.append(draw(blobs))
    return magic, packet_type, arguments


@settings(max_examples=500, deadline=None)
@given(any_packet())
def test_every_packet_type_round_trips(packet: tuple[bytes, PacketType, list[bytes]]) -> None:
    magic, packet_type, arguments = packet
    wire = encode_packet(magic, packet_type, arguments)
    buffer = ReceiveBuffer()
    buffer.feed(wire)
    assert buffer.take_packet(max_body=len(wire)) == (magic, packet_type, wire[12:])
    assert len(buffer) == 0
    assert decode_body(packet_type, wire[12:]) == arguments


@settings(max_examples=200, deadline=None)
@given(packets=st.lists(any_packet(), max_size=10), cuts=st.lists(st.integers(0, 5000)))
def test_receive_buffer_cuts_the_same_packets_from_any_chunking(
    packets: list[tuple[bytes, PacketType, list[bytes]]], cuts: list[int]
) -> None:
    stream = b"".join(encode_packet(*packet) for packet in packets)
    buffer = ReceiveBuffer()
    taken = []
    for chunk in split(stream, cuts):
        buffer.feed(chunk)
        while (found := buffer.take_packet(max_body=MAX_PACKET)) is not None:
            magic, packet_type, body = found
            taken.append((magic, packet_type, decode_body(packet_type, body)))
        buffer.compact()
    assert taken == [(magic, t, list(arguments)) for magic, t, arguments in packets]
    assert len(buffer) == 0


def test_receive_buffer_starts_afresh_once_everything_was_taken() -> None:
    noop = b"\x00RES\x00\x00\x00\x06\x00\x00\x00\x00"
    buffer = ReceiveBuffer()
    buffer.feed(noop)
    assert buffer.take_packet(max_body=0) == (RES, _T.NOOP, b"")
    assert buffer.first_byte() is None
    buffer.feed(noop[:5])  # no compact() in between
    assert len(buffer) == 5
    buffer.feed(noop[5:])
    assert buffer.take_packet(max_body=0) == (RES, _T.NOOP, b"")
    assert len(buffer) == 0


@settings(max_examples=200, deadline=None)
@given(data=st.data(), packet_type=st.sampled_from(MULTI_ARGUMENT_TYPES))
def test_nul_in_any_argument_but_the_last_is_refused(
    data: st.DataObject, packet_type: PacketType
) -> None:
    layout = LAYOUTS[packet_type]
    arguments = [data.draw(fields) for _ in layout.arguments]
    spoiled = data.draw(st.integers(0, len(arguments) - 2))
    arguments[spoiled] += b"\0"
    magic = sorted(layout.magics)[0]
    with pytest.raises(LocalProtocolError, match="NUL"):
        encode_packet(magic, packet_type, arguments)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), packet_type=st.sampled_from(MULTI_ARGUMENT_TYPES))
def test_body_with_too_few_separators_is_a_remote_error(
    data: st.DataObject, packet_type: PacketType
) -> None:
    count = len(LAYOUTS[packet_type].arguments)
    short = data.draw(st.lists(fields, min_size=1, max_size=count - 1))
    with pytest.raises(RemoteProtocolError, match="arguments"):
        decode_body(packet_type, b"\0".join(short))


@pytest.mark.parametrize("packet_type", [t for t in WIRE_TYPES if not LAYOUTS[t].arguments])
def test_body_on_a_type_without_arguments_is_a_remote_error(packet_type: PacketType) -> None:
    assert decode_body(packet_type, b"") == []
    with pytest.raises(RemoteProtocolError, match="no arguments"):
        decode_body(packet_type, b"x")


def test_encode_refuses_a_wrong_argument_count() -> None:
    with pytest.raises(LocalProtocolError, match="takes 3 arguments"):
        encode_packet(REQ, _T.SUBMIT_JOB, (b"f", b""))


def test_encode_refuses_a_magic_the_type_cannot_carry() -> None:
    with pytest.raises(LocalProtocolError, match="magic"):
        encode_packet(REQ, _T.NOOP, ())
    with pytest.raises(LocalProtocolError, match="magic"):
        encode_packet(RES, _T.SUBMIT_JOB, (b"f", b"", b""))
    with pytest.raises(LocalProtocolError, match="magic"):
        encode_packet(REQ, _T.UNUSED, ())


# -------------------------------------------------- valid server streams


@st.composite
def client_scenario(draw: st.DrawFn) -> tuple[list[Event], bytes, list[Event]]:
    """Requests a client sends, a server stream answering them, and the events it must give.

    Direct answers come in request order; each foreground job's WORK_*
    packets come after its JOB_CREATED, interleaved freely with everything
    else; a few packets of unknown types (43 and up) are mixed in.
    """
    requests: list[Event] = draw(
        st.lists(
            st.one_of(
                st.builds(
                    SubmitJob,
                    function=words,
                    payload=blobs,
                    unique=fields,
                    background=st.booleans(),
                ),
                st.builds(GetStatus, handle=words),
                st.builds(GetStatusUnique, unique=words),
                st.builds(EchoRequest, payload=blobs),
                st.builds(SetOption, option=st.sampled_from([b"exceptions", b"frobnicate"])),
            ),
            min_size=1,
            max_size=8,
        )
    )
    counts = st.integers(0, 4294967295)
    # Each stream is a list of (packet, event); a job's stream waits for its JOB_CREATED.
    direct: list[tuple[bytes, Event, bytes | None]] = []
    job_streams: dict[bytes, list[tuple[bytes, Event | None]]] = {}
    for number, request in enumerate(requests, start=1):
        if isinstance(request, SubmitJob):
            if draw(st.booleans()):
                handle = b"H:vm:%d" % number
                created = JobCreated(handle=handle, request=request)
                direct.append((server(_T.JOB_CREATED, handle), created, handle))
                if not request.background:
                    job_streams[handle] = draw(job_stream(handle))
            else:
                error = ServerError(code=b"QUEUE_ERROR", text=b"Job queue is full", request=request)
                direct.append((server(_T.ERROR, error.code, error.text), error, None))
        elif isinstance(request, GetStatus):
            known, running = draw(st.booleans()), draw(st.booleans())
            numerator, denominator = draw(counts), draw(counts)
            packet = server(
                _T.STATUS_RES,
                request.handle,
                b"%d" % known,
                b"%d" % running,
                b"%d" % numerator,
                b"%d" % denominator,
            )
            status = JobStatus(
                handle=request.handle,
                known=known,
                running=running,
                numerator=numerator,
                denominator=denominator,
                request=request,
            )
            direct.append((packet, status, None))
        elif isinstance(request, GetStatusUnique):
            clients = draw(st.integers(0, 1000))
            packet = server(
                _T.STATUS_RES_UNIQUE, request.unique, b"1", b"0", b"0", b"0", b"%d" % clients
            )
            status_unique = JobStatusUnique(
                unique=request.unique,
                known=True,
                running=False,
                numerator=0,
                denominator=0,
                client_count=clients,
                request=request,
            )
            direct.append((packet, status_unique, None))
        elif isinstance(request, EchoRequest):
            reply = EchoReply(payload=request.payload, request=request)
            direct.append((server(_T.ECHO_RES, request.payload), reply, None))
        else:
            assert isinstance(request, SetOption)
            if request.option == b"exceptions":
                accepted = OptionAccepted(option=request.option, request=request)
                direct.append((server(_T.OPTION_RES, request.option), accepted, None))
            else:
                refused = ServerError(code=b"UNKNOWN_OPTION", text=b"no", request=request)
                direct.append((server(_T.ERROR, refused.code, refused.text), refused, None))
    stream: list[bytes] = []
    expected: list[Event] = []
    live: list[list[tuple[bytes, Event | None]]] = []
    position = 0
    while True:
        live = [job for job in live if job]
        choices = len(live) + (position < len(direct))
        if not choices:
            break
        choice = draw(st.integers(0, choices - 1))
        event: Event | None
        if choice < len(live):
            packet, event = live[choice].pop(0)
        else:
            packet, event, handle = direct[position]
            position += 1
            if handle in job_streams:
                live.append(job_streams.pop(handle))
        stream.append(packet)
        if event is not None:
            expected.append(event)
        if draw(st.integers(0, 9)) == 0:
            unknown_type, body = draw(st.integers(43, 2**32 - 1)), draw(blobs)
            stream.append(
                b"\0RES" + unknown_type.to_bytes(4, "big") + len(body).to_bytes(4, "big") + body
            )
            expected.append(UnknownPacket(packet_type=unknown_type, body=body))
    return requests, b"".join(stream), expected


@st.composite
def job_stream(draw: st.DrawFn, handle: bytes) -> list[tuple[bytes, Event | None]]:
    """WORK_* packets for one foreground job, maybe ending in a terminal one."""
    packets: list[tuple[bytes, Event | None]] = []
    for kind in draw(st.lists(st.sampled_from(["data", "warning", "status"]), max_size=3)):
        if kind == "status":
            numerator, denominator = draw(fields), draw(blobs)
            packets.append(
                (
                    server(_T.WORK_STATUS, handle, numerator, denominator),
                    WorkStatus(handle=handle, numerator=numerator, denominator=denominator),
                )
            )
        else:
            payload = draw(blobs)
            packet_type, event_type = {
                "data": (_T.WORK_DATA, WorkData),
                "warning": (_T.WORK_WARNING, WorkWarning),
            }[kind]
            packets.append(
                (server(packet_type, handle, payload), event_type(handle=handle, payload=payload))
            )
    end = draw(st.sampled_from(["running", "complete", "fail", "fail-nul", "exception"]))
    payload = draw(blobs)
    if end == "complete":
        packets.append(
            (
                server(_T.WORK_COMPLETE, handle, payload),
                WorkComplete(handle=handle, payload=payload),
            )
        )
    elif end == "exception":
        packets.append(
            (
                server(_T.WORK_EXCEPTION, handle, payload),
                WorkException(handle=handle, payload=payload),
            )
        )
    elif end in ("fail", "fail-nul"):
        wire_handle = handle + b"\0" if end == "fail-nul" else handle
        packets.append((server(_T.WORK_FAIL, wire_handle), WorkFail(handle=handle)))
    if end != "running" and draw(st.booleans()):
        # A late packet for the finished job (an admin cancel: trap 10) is dropped.
        packets.append((server(_T.WORK_DATA, handle, b"late"), None))
    return packets


@st.composite
def worker_scenario(draw: st.DrawFn) -> tuple[Callable[[], WorkerConnection], bytes]:
    """A prepared worker and a server stream that is legal for it.

    A reference connection fed packet by packet decides what the server may
    send next: NO_JOB and JOB_ASSIGN* only while a GRAB_JOB is outstanding,
    ECHO_RES only while an echo waits; NOOP, ERROR JOB_NOT_FOUND and unknown
    types at any time.
    """
    max_jobs = draw(st.integers(1, 3))
    grab_mode = draw(st.sampled_from(GrabMode))
    echoes = draw(st.lists(blobs, max_size=3))

    def prepared() -> WorkerConnection:
        worker = WorkerConnection(max_jobs=max_jobs, grab_mode=grab_mode)
        worker.send(CanDo(function=b"f"))
        for payload in echoes:
            worker.send(EchoRequest(payload=payload))
        worker.data_to_send()
        return worker

    reference = prepared()
    stream: list[bytes] = []
    for number in range(draw(st.integers(0, 12))):
        handle = b"H:vm:%d" % number
        legal = [
            st.just(server(_T.NOOP)),
            st.just(server(_T.ERROR, b"JOB_NOT_FOUND", b"Job given in work result not found")),
            st.just(b"\0RES\0\0\0\x2b\0\0\0\0"),  # type 43, no body
        ]
        if reference.worker_state is WorkerState.GRABBING:
            legal += [
                st.just(server(_T.NO_JOB)),
                st.builds(partial(server, _T.JOB_ASSIGN, handle, b"f"), blobs),
                st.builds(partial(server, _T.JOB_ASSIGN_UNIQ, handle, b"f"), fields, blobs),
                st.builds(partial(server, _T.JOB_ASSIGN_ALL, handle, b"f"), fields, fields, blobs),
            ]
        if reference.unanswered:
            echo = reference.unanswered[0]
            assert isinstance(echo, EchoRequest)
            legal.append(st.just(server(_T.ECHO_RES, echo.payload)))
        packet = draw(st.one_of(legal))
        reference.receive_data(packet)
        list(reference.events())
        stream.append(packet)
    return prepared, b"".join(stream)


def _status_line(draw: st.DrawFn, columns: int) -> tuple[bytes, list[int]]:
    name = draw(st.binary(max_size=20).map(lambda b: b.translate(None, b"\n\0")))
    numbers = draw(st.lists(st.integers(0, 10**6), min_size=columns, max_size=columns))
    return name, numbers


@st.composite
def admin_scenario(draw: st.DrawFn) -> tuple[list[Event], bytes, list[Event]]:
    """Pipelined admin commands and echoes, the server's replies, and their events."""
    requests: list[Event] = draw(
        st.lists(
            st.one_of(
                st.sampled_from(
                    [
                        AdminRequest(command=command)
                        for command in AdminCommand
                        if command
                        not in (
                            AdminCommand.CANCEL_JOB,
                            AdminCommand.CREATE_FUNCTION,
                            AdminCommand.DROP_FUNCTION,
                            AdminCommand.MAXQUEUE,
                        )
                    ]
                ),
                st.builds(
                    AdminRequest,
                    command=st.sampled_from(
                        [
                            AdminCommand.CANCEL_JOB,
                            AdminCommand.CREATE_FUNCTION,
                            AdminCommand.DROP_FUNCTION,
                            AdminCommand.MAXQUEUE,
                        ]
                    ),
                    arguments=st.tuples(words),
                ),
                st.builds(EchoRequest, payload=blobs),
            ),
            min_size=1,
            max_size=6,
        )
    )
    replies: list[bytes] = []
    expected: list[Event] = []
    for request in requests:
        end = draw(st.sampled_from([b"\n", b"\r\n"]))
        if isinstance(request, EchoRequest):
            replies.append(server(_T.ECHO_RES, request.payload))
            expected.append(EchoReply(payload=request.payload, request=request))
            continue
        assert isinstance(request, AdminRequest)
        command = request.command
        # ERR can answer any command but "show unique jobs", whose lines are arbitrary.
        if command is not AdminCommand.SHOW_UNIQUE_JOBS and draw(st.integers(0, 4)) == 0:
            code, message = draw(words), draw(st.lists(words, max_size=3))
            replies.append(b"ERR " + code + b" " + b"+".join(message) + end)
            expected.append(AdminError(code=code, message=b" ".join(message), request=request))
        elif command is AdminCommand.STATUS:
            rows = [_status_line(draw, 3) for _ in range(draw(st.integers(0, 3)))]
            replies.append(
                b"".join(
                    name + b"".join(b"\t%d" % n for n in numbers) + b"\n" for name, numbers in rows
                )
                + b".\n"
            )
            expected.append(
                StatusReply(
                    functions=tuple(FunctionStatus(name, *numbers) for name, numbers in rows),
                    request=request,
                )
            )
        elif command is AdminCommand.PRIORITY_STATUS:
            rows = [_status_line(draw, 4) for _ in range(draw(st.integers(0, 3)))]
            replies.append(
                b"".join(
                    name + b"".join(b"\t%d" % n for n in numbers) + b"\n" for name, numbers in rows
                )
                + b".\n"
            )
            expected.append(
                PriorityStatusReply(
                    functions=tuple(
                        FunctionPriorityStatus(name, *numbers) for name, numbers in rows
                    ),
                    request=request,
                )
            )
        elif command is AdminCommand.WORKERS:
            workers = draw(
                st.lists(
                    st.builds(
                        WorkerInfo,
                        st.integers(0, 999).map(b"%d".__mod__),
                        st.just(b"127.0.0.1"),
                        st.one_of(st.just(b"-"), client_ids),
                        st.lists(words, max_size=3).map(tuple),
                    ),
                    max_size=3,
                )
            )
            replies.append(
                b"".join(
                    b" ".join((w.fd, w.ip, w.client_id, b":", *w.functions)) + b"\n"
                    for w in workers
                )
                + b".\n"
            )
            expected.append(WorkersReply(workers=tuple(workers), request=request))
        elif command is AdminCommand.SHOW_JOBS:
            jobs = draw(
                st.lists(
                    st.builds(JobInfo, words, st.integers(0, 99), st.booleans(), st.booleans()),
                    max_size=3,
                )
            )
            replies.append(
                b"".join(
                    b"%s\t%d\t%d\t%d\n" % (j.handle, j.retries, j.ignored, j.background)
                    for j in jobs
                )
                + b".\n"
            )
            expected.append(JobsReply(jobs=tuple(jobs), request=request))
        elif command is AdminCommand.SHOW_UNIQUE_JOBS:
            listed = draw(st.lists(uniques, max_size=4))
            replies.append(b"".join(unique + b"\n" for unique in listed) + b".\n")
            expected.append(UniqueJobsReply(uniques=tuple(listed), request=request))
        elif command is AdminCommand.VERSION:
            version = draw(words)
            replies.append(b"OK " + version + end)
            expected.append(VersionReply(version=version, request=request))
        elif command is AdminCommand.GETPID:
            pid = draw(st.integers(1, 2**22))
            replies.append(b"OK %d" % pid + end)
            expected.append(PidReply(pid=pid, request=request))
        elif command is AdminCommand.VERBOSE:
            level = draw(st.sampled_from([b"ERROR", b"INFO", b"DEBUG"]))
            replies.append(b"OK " + level + end)
            expected.append(VerboseReply(level=level, request=request))
        else:
            replies.append(b"OK" + end)
            expected.append(AdminOk(text=b"", request=request))
    return requests, b"".join(replies), expected


# ------------------------------------------------------------- chunking


def _client(requests: Sequence[Event]) -> ClientConnection:
    conn = ClientConnection(max_packet_size=MAX_PACKET, max_line_length=MAX_LINE)
    for request in requests:
        conn.send(request)
    return conn


def _admin(requests: Sequence[Event]) -> AdminConnection:
    conn = AdminConnection(max_packet_size=MAX_PACKET, max_line_length=MAX_LINE)
    for request in requests:
        conn.send(request)
    return conn


@settings(max_examples=150, deadline=None)
@given(scenario=client_scenario(), cuts=st.lists(st.integers(0, 10**6), max_size=20))
def test_client_stream_gives_the_same_events_however_it_is_chunked(
    scenario: tuple[list[Event], bytes, list[Event]], cuts: list[int]
) -> None:
    requests, stream, expected = scenario
    assert play(_client(requests), [stream]) == expected
    assert play(_client(requests), split(stream, cuts)) == expected


@settings(max_examples=30, deadline=None)
@given(scenario=client_scenario())
def test_client_stream_gives_the_same_events_one_byte_at_a_time(
    scenario: tuple[list[Event], bytes, list[Event]],
) -> None:
    requests, stream, expected = scenario
    conn = _client(requests)
    assert play(conn, [stream[i : i + 1] for i in range(len(stream))]) == expected
    assert conn.unanswered == ()


@settings(max_examples=150, deadline=None)
@given(scenario=worker_scenario(), cuts=st.lists(st.integers(0, 10**6), max_size=20))
def test_worker_stream_gives_the_same_events_and_moves_however_it_is_chunked(
    scenario: tuple[Callable[[], WorkerConnection], bytes], cuts: list[int]
) -> None:
    prepared, stream = scenario
    whole = prepared()
    expected = play(whole, [stream])
    chunked = prepared()
    assert play(chunked, split(stream, cuts)) == expected
    assert chunked.data_to_send() == whole.data_to_send()
    assert chunked.worker_state is whole.worker_state
    assert chunked.jobs == whole.jobs
    bytewise = prepared()
    assert play(bytewise, [stream[i : i + 1] for i in range(len(stream))]) == expected


@settings(max_examples=150, deadline=None)
@given(scenario=admin_scenario(), cuts=st.lists(st.integers(0, 10**6), max_size=20))
def test_admin_stream_gives_the_same_events_however_it_is_chunked(
    scenario: tuple[list[Event], bytes, list[Event]], cuts: list[int]
) -> None:
    requests, stream, expected = scenario
    assert play(_admin(requests), [stream]) == expected
    assert play(_admin(requests), split(stream, cuts)) == expected
    assert play(_admin(requests), [stream[i : i + 1] for i in range(len(stream))]) == expected


# --------------------------------------------------------------- garbage


def _started(role: str) -> Connection:
    """A connection of *role* after some legal sends, with replies pending."""
    if role == "client":
        return _client(
            [
                SubmitJob(function=b"f", payload=b"x"),
                SubmitJob(function=b"f", background=True),
                GetStatus(handle=b"H:vm:1"),
                GetStatusUnique(unique=b"u"),
                EchoRequest(payload=b"e"),
                SetOption(),
            ]
        )
    if role == "worker":
        worker = WorkerConnection(max_jobs=2, max_packet_size=MAX_PACKET, max_line_length=MAX_LINE)
        worker.send(CanDo(function=b"f"))
        worker.send(EchoRequest(payload=b"e"))
        return worker
    return _admin(
        [
            AdminRequest(command=AdminCommand.STATUS),
            EchoRequest(payload=b"e"),
            AdminRequest(command=AdminCommand.WORKERS),
            AdminRequest(command=AdminCommand.GETPID),
            AdminRequest(command=AdminCommand.SHOW_JOBS),
        ]
    )


@st.composite
def garbage(draw: st.DrawFn) -> bytes:
    """Bytes that look like server output often enough to get past the first check."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(min_size=1, max_size=64))
    if kind == 1:  # a line of text
        return draw(st.binary(min_size=1, max_size=40)) + draw(
            st.sampled_from([b"\n", b"\r\n", b""])
        )
    packet_type = draw(st.one_of(st.integers(0, 45), st.integers(0, 2**32 - 1)))
    parts = draw(st.lists(st.one_of(words, st.binary(max_size=10)), max_size=7))
    body = b"\0".join(parts)
    size = len(body) if kind == 2 else draw(st.integers(0, 2**32 - 1))
    magic = draw(st.sampled_from([RES, RES, RES, REQ, b"\0XYZ"]))
    return magic + packet_type.to_bytes(4, "big") + size.to_bytes(4, "big") + body


@settings(max_examples=400, deadline=None)
@given(
    role=st.sampled_from(["client", "worker", "admin"]),
    chunks=st.lists(garbage(), max_size=12),
    eof=st.booleans(),
)
def test_garbage_gives_events_or_remote_protocol_error(
    role: str, chunks: list[bytes], eof: bool
) -> None:
    conn = _started(role)
    for chunk in chunks:
        _, error = play_until_error(conn, [chunk])
        if error is not None:
            break
        # Only an incomplete packet or line stays buffered, never more than the limits.
        assert conn.buffered <= max(MAX_PACKET + 12, MAX_LINE)
    else:
        if not eof:
            return
        events, error = play_until_error(conn, [b""])
        if error is None:
            assert isinstance(events[-1], ConnectionClosed)
            assert conn.state is ConnectionState.CLOSED
            return
    assert conn.state is ConnectionState.ERROR
    with pytest.raises(RemoteProtocolError) as again:
        conn.next_event()
    assert again.value is error


@pytest.mark.parametrize("role", ["client", "worker", "admin"])
def test_four_gib_header_raises_packet_too_large_from_twelve_bytes(role: str) -> None:
    conn = {"client": ClientConnection, "worker": WorkerConnection, "admin": AdminConnection}[
        role
    ]()
    conn.receive_data(b"\x00RES\x00\x00\x00\x11\xff\xff\xff\xff")
    with pytest.raises(PacketTooLarge) as raised:
        conn.next_event()
    assert raised.value.size == 0xFFFFFFFF
    assert raised.value.limit == DEFAULT_MAX_PACKET_SIZE
    assert conn.buffered == 12
    assert conn.state is ConnectionState.ERROR


@settings(max_examples=100, deadline=None)
@given(limit=st.integers(0, 10**6), data=st.data())
def test_size_limit_is_checked_from_the_header(limit: int, data: st.DataObject) -> None:
    announced = data.draw(st.integers(1, 2**32 - 1))
    conn = ClientConnection(max_packet_size=limit)
    conn.send(EchoRequest())
    conn.receive_data(b"\x00RES\x00\x00\x00\x11" + announced.to_bytes(4, "big"))
    if announced > limit:
        with pytest.raises(PacketTooLarge):
            conn.next_event()
    else:
        assert conn.next_event() is None


# ------------------------------------------------------ dead connections

#: Bytes no client may receive, whatever came before.
FATAL_FOR_A_CLIENT = [
    b"\x00REQ\x00\x00\x00\x11\x00\x00\x00\x00",  # request magic
    b"\x00XYZ\x00\x00\x00\x11\x00\x00\x00\x00",  # no magic at all
    b"\x00RES\x00\x00\x00\x00\x00\x00\x00\x00",  # type 0
    b"\x00RES\x00\x00\x00\x06\x00\x00\x00\x00",  # NOOP is for workers
    b"\x00RES\x00\x00\x00\x11\x7f\xff\xff\xff",  # far above the size limit
    b"OK\r\n",  # admin text
]


@settings(max_examples=150, deadline=None)
@given(
    scenario=client_scenario(),
    bad=st.sampled_from(FATAL_FOR_A_CLIENT),
    cuts=st.lists(st.integers(0, 10**6), max_size=10),
)
def test_remote_error_comes_after_every_earlier_event_and_sticks(
    scenario: tuple[list[Event], bytes, list[Event]], bad: bytes, cuts: list[int]
) -> None:
    requests, stream, expected = scenario
    conn = _client(requests)
    seen, error = play_until_error(conn, split(stream + bad, cuts))
    assert error is not None
    assert seen == expected
    assert conn.state is ConnectionState.ERROR
    with pytest.raises(RemoteProtocolError) as again:
        conn.next_event()
    assert again.value is error
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(b"\x00RES")
    with pytest.raises(LocalProtocolError):
        conn.send(EchoRequest())
