"""The session level, driven with plain bytes: requests, servers, worker budget."""

from __future__ import annotations

import random
import struct

import pytest

import gearman_proto as gp
from gearman_proto import PacketType as T

A = gp.ServerAddress("a", 1)
B = gp.ServerAddress("b", 2)


def res(packet_type: T, *arguments: bytes) -> bytes:
    """A server packet, built by hand (not with the encoder under test)."""
    body = b"\0".join(arguments)
    return b"\0RES" + struct.pack(">II", packet_type, len(body)) + body


def req(packet_type: T, *arguments: bytes) -> bytes:
    body = b"\0".join(arguments)
    return b"\0REQ" + struct.pack(">II", packet_type, len(body)) + body


def feed(session: gp.ClientSession | gp.WorkerSession, server: gp.ServerAddress, data: bytes):
    """Feed *data* to the session's connection to *server*; return what changed."""
    connection = session.connections[server]
    connection.receive_data(data)
    changed = []
    for event in connection.events():
        changed.extend(session.receive(server, event, 0.0))
    return changed


# ------------------------------------------------------------ addresses, pool


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("localhost", gp.ServerAddress("localhost", 4730)),
        ("h:1234", gp.ServerAddress("h", 1234)),
        ("[::1]:4731", gp.ServerAddress("::1", 4731)),
        ("[::1]", gp.ServerAddress("::1", 4730)),
        ("::1", gp.ServerAddress("::1", 4730)),
        (("h", 7), gp.ServerAddress("h", 7)),
        (gp.ServerAddress("x", 9), gp.ServerAddress("x", 9)),
    ],
)
def test_parse_server_reads_every_spelling(spec, expected) -> None:
    assert gp.parse_server(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", ":80", "h:", "h:0", "h:70000", "h:x", "[::1", "[::1]x", "[]:1"]
)
def test_parse_server_refuses_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="bad"):
        gp.parse_server(spec)


def test_server_address_prints_ipv6_with_brackets() -> None:
    assert str(gp.ServerAddress("::1", 5)) == "[::1]:5"
    assert str(gp.ServerAddress("h", 5)) == "h:5"


def test_pool_rotates_and_skips_servers_in_backoff() -> None:
    pool = gp.ServerPool([A, B], backoff_initial=1.0, rng=random.Random(1))
    assert pool.candidates(0.0) == [A, B]
    assert pool.candidates(0.0) == [B, A]
    retry = pool.failed(A, 10.0)
    assert 10.8 <= retry <= 11.2
    assert pool.candidates(10.5) == [B]
    assert pool.candidates(retry) in ([A, B], [B, A])
    second = pool.failed(A, 20.0)
    assert 21.6 <= second <= 22.4  # doubled
    assert pool.next_retry([A]) == second
    assert pool.next_retry() == 0.0  # B is available now
    pool.succeeded(A)
    assert pool.available(A, 20.0)


def test_pool_reconnects_a_working_server_at_once_however_often_it_was_lost() -> None:
    pool = gp.ServerPool([A], backoff_initial=1.0, backoff_max=8.0, rng=random.Random(3))
    for now in (0.0, 1.0, 2.0, 3.0):
        assert pool.lost(A, now) == now
        assert pool.available(A, now)
    # A server that drops a fresh connection before answering has failed.
    again = pool.lost(A, 4.0, proven=False)
    assert again > 4.0
    assert not pool.available(A, 4.0)


def test_pool_backoff_is_capped() -> None:
    pool = gp.ServerPool([A], backoff_initial=1.0, backoff_max=4.0, rng=random.Random(2))
    for _ in range(10):
        retry = pool.failed(A, 0.0)
    assert retry <= 4.0 * 1.2


def test_an_empty_pool_offers_no_server_and_a_submission_ends_undelivered() -> None:
    # python-gearman accepted an empty host list; using it raised ServerUnavailable.
    assert gp.ServerPool([]).candidates(0.0) == []
    session = gp.ClientSession([])
    request = gp.JobRequest(gp.SubmitJob(function=b"f"))
    session.submit(request, 0.0)
    assert isinstance(request.delivery_error, gp.NoServerAvailable)
    assert request.sendable  # undelivered: it may be submitted again later
    assert session.connection_wanted(0.0) is None
    assert gp.WorkerSession([]).missing_servers(0.0) == []


# ------------------------------------------------------------------ client


def client_session(**kwargs) -> gp.ClientSession:
    session = gp.ClientSession([A, B], **kwargs)
    session.connection_made(A)
    return session


def submit(session: gp.ClientSession, server=A, **kwargs) -> gp.JobRequest:
    request = gp.JobRequest(gp.SubmitJob(function=b"f", payload=b"x", **kwargs))
    session.submit(request, 0.0, server=server)
    return request


def test_new_connection_sends_client_id_and_exceptions_option() -> None:
    session = gp.ClientSession([A], exceptions=True, client_id=b"me")
    session.connection_made(A)
    assert session.data_to_send() == {
        A: req(T.SET_CLIENT_ID, b"me") + req(T.OPTION_REQ, b"exceptions")
    }
    changed = feed(session, A, res(T.OPTION_RES, b"exceptions"))
    assert changed == []


def test_foreground_request_lives_from_pending_to_complete() -> None:
    session = client_session()
    request = submit(session)
    assert request.state is gp.JobState.PENDING
    assert request.attempts == 1
    assert session.data_to_send() == {A: req(T.SUBMIT_JOB, b"f", b"", b"x")}
    assert feed(session, A, res(T.JOB_CREATED, b"H:1")) == [request]
    assert (request.state, request.handle, request.server) == (gp.JobState.CREATED, b"H:1", A)
    assert not request.complete
    feed(session, A, res(T.WORK_STATUS, b"H:1", b"1", b"2"))
    assert (request.known, request.running, request.numerator, request.denominator) == (
        True,
        True,
        b"1",
        b"2",
    )
    feed(session, A, res(T.WORK_COMPLETE, b"H:1", b"done"))
    assert request.state == "COMPLETE"
    assert request.result == b"done"
    assert request.complete
    assert request.finished
    assert session.tracked == 0


def test_hooks_see_data_and_warnings() -> None:
    seen: list[tuple[str, bytes]] = []

    class Recording(gp.JobRequest):
        def _on_data(self, payload: bytes) -> None:
            seen.append(("data", payload))

        def _on_warning(self, payload: bytes) -> None:
            seen.append(("warning", payload))

        def _on_exception(self, payload: bytes) -> None:
            seen.append(("exception", payload))

    session = client_session(exceptions=True)
    request = Recording(gp.SubmitJob(function=b"f"))
    session.submit(request, 0.0, server=A)
    feed(session, A, res(T.OPTION_RES, b"exceptions") + res(T.JOB_CREATED, b"H:1"))
    feed(session, A, res(T.WORK_DATA, b"H:1", b"d\0x") + res(T.WORK_WARNING, b"H:1", b"w"))
    feed(session, A, res(T.WORK_EXCEPTION, b"H:1", b"boom"))
    assert seen == [("data", b"d\0x"), ("warning", b"w"), ("exception", b"boom")]
    assert request.state is gp.JobState.FAILED
    assert request.exception == b"boom"


def test_background_request_is_finished_at_job_created() -> None:
    session = client_session()
    request = submit(session, background=True)
    feed(session, A, res(T.JOB_CREATED, b"H:2"))
    assert request.complete
    assert request.finished
    assert session.tracked == 0


def test_work_fail_fails_every_request_coalesced_on_the_handle() -> None:
    session = client_session()
    first, second = submit(session, unique=b"u"), submit(session, unique=b"u")
    feed(session, A, res(T.JOB_CREATED, b"H:3") + res(T.JOB_CREATED, b"H:3"))
    assert feed(session, A, res(T.WORK_FAIL, b"H:3")) == [first, second]
    assert first.state is second.state is gp.JobState.FAILED


def test_server_error_fails_the_submission_it_answers() -> None:
    session = client_session()
    request = submit(session)
    feed(session, A, res(T.ERROR, b"QUEUE_ERROR", b"Job queue is full"))
    assert request.state is gp.JobState.FAILED
    assert request.error == gp.ServerError(
        code=b"QUEUE_ERROR", text=b"Job queue is full", request=request.submission
    )
    assert request.finished
    assert request.complete  # python-gearman: a failed foreground job is complete


def test_lost_before_job_created_is_retryable_then_exhausted() -> None:
    session = client_session()
    request = gp.JobRequest(gp.SubmitJob(function=b"f"), max_attempts=2)
    session.submit(request, 0.0, server=A)
    loss = session.connection_lost(A, 5.0)
    assert loss.resent == [request]
    assert request.state is gp.JobState.UNKNOWN
    assert request.retryable  # the session sends it again itself
    assert not request.accepted
    # Never answered on A: A is in back-off, so the resend wants B.
    assert not session.pool.available(A, 5.0)
    assert session.connection_wanted(5.0) == B
    session.connection_made(B)
    assert request.state is gp.JobState.PENDING
    assert request.server == B
    assert session.data_to_send() == {B: req(T.SUBMIT_JOB, b"f", b"", b"")}
    loss = session.connection_lost(B, 5.0)
    assert loss.undelivered == [request]
    assert isinstance(request.delivery_error, gp.AttemptsExceeded)
    assert request.delivery_error.attempts == 2
    assert request.finished
    assert session.connection_wanted(5.0) is None
    session.connection_made(B)
    with pytest.raises(gp.AttemptsExceeded):
        session.submit(request, 5.0, server=B)


def test_lost_after_job_created_is_never_resent() -> None:
    session = client_session()
    request = submit(session)
    feed(session, A, res(T.JOB_CREATED, b"H:4"))
    assert session.connection_lost(A, 0.0).lost == [request]
    assert request.lost
    assert request.finished
    assert not request.retryable
    session.connection_made(A)
    with pytest.raises(gp.LocalProtocolError, match="cannot be submitted again"):
        session.submit(request, 0.0, server=A)


def test_a_request_reset_while_pending_ignores_the_old_answer_and_can_be_sent_again() -> None:
    session = client_session()
    request = submit(session)
    request.reset()
    assert feed(session, A, res(T.JOB_CREATED, b"H:old")) == []
    assert request.state is gp.JobState.UNKNOWN
    assert request.handle is None
    session.submit(request, 0.0, server=A)  # the same submission, sent anew
    feed(session, A, res(T.JOB_CREATED, b"H:new"))
    assert request.handle == b"H:new"
    assert feed(session, A, res(T.WORK_COMPLETE, b"H:new", b"r")) == [request]
    assert request.result == b"r"
    assert session.tracked == 0


def test_a_request_reset_and_sent_again_before_the_old_answer_keeps_the_two_apart() -> None:
    session = client_session()
    request = submit(session)
    request.reset()
    session.submit(request, 0.0, server=A)
    feed(session, A, res(T.JOB_CREATED, b"H:old"))  # answers the first sending
    assert request.state is gp.JobState.PENDING
    feed(session, A, res(T.JOB_CREATED, b"H:new"))
    assert request.handle == b"H:new"
    assert request.state is gp.JobState.CREATED


def test_a_request_reset_after_job_created_hears_nothing_more_of_that_job() -> None:
    session = client_session()
    request = submit(session)
    feed(session, A, res(T.JOB_CREATED, b"H:5"))
    request.reset()
    feed(session, A, res(T.WORK_DATA, b"H:5", b"d") + res(T.WORK_COMPLETE, b"H:5", b"r"))
    assert request.state is gp.JobState.UNKNOWN
    assert request.result is None
    assert session.connection_lost(A, 0.0).lost == []
    assert not request.lost


def test_a_request_reset_while_it_waits_for_a_connection_is_not_placed() -> None:
    session = gp.ClientSession([A, B])
    request = gp.JobRequest(gp.SubmitJob(function=b"f"))
    session.submit(request, 0.0)  # nothing connected: it waits for a placement
    assert request.placing
    request.reset()
    assert session.connection_wanted(0.0) is None
    session.connection_made(A)
    assert session.data_to_send() == {}
    assert request.state is gp.JobState.UNKNOWN
    session.connect_failed(B, 0.0)  # nothing to move on either


def test_a_request_reset_before_its_connection_dies_is_left_alone() -> None:
    session = client_session()
    request = submit(session)
    request.reset()
    loss = session.connection_lost(A, 0.0)
    assert loss.resent == loss.undelivered == loss.lost == []
    assert request.state is gp.JobState.UNKNOWN


def test_eof_is_a_connection_loss() -> None:
    session = client_session()
    request = submit(session)
    assert feed(session, A, b"") == [request]
    assert A not in session.connections


def test_submit_needs_a_connection_and_a_fresh_request() -> None:
    session = client_session()
    request = gp.JobRequest(gp.SubmitJob(function=b"f"))
    with pytest.raises(gp.LocalProtocolError, match="no connection"):
        session.submit(request, 0.0, server=B)
    session.submit(request, 0.0, server=A)
    assert request.server == A
    with pytest.raises(gp.LocalProtocolError, match="cannot be submitted again"):
        session.submit(request, 0.0, server=A)
    with pytest.raises(gp.LocalProtocolError, match="already has a connection"):
        session.connection_made(A)


def test_job_request_checks_its_arguments() -> None:
    with pytest.raises(gp.LocalProtocolError, match="not a submission"):
        gp.JobRequest(gp.EchoRequest())  # type: ignore[arg-type]
    with pytest.raises(gp.LocalProtocolError, match="max_attempts"):
        gp.JobRequest(gp.SubmitJob(function=b"f"), max_attempts=0)
    epoch = gp.JobRequest(gp.SubmitJobEpoch(function=b"f", epoch=5))
    assert epoch.background
    assert "state=UNKNOWN" in repr(epoch)


def test_status_query_by_request_handle_and_unique() -> None:
    session = client_session()
    session.connection_made(B)
    request = submit(session)
    feed(session, A, res(T.JOB_CREATED, b"H:5"))
    query = session.query_status(request)
    assert not query.done
    feed(session, A, res(T.STATUS_RES, b"H:5", b"1", b"1", b"3", b"4"))
    assert query.done
    assert (query.known, query.running, query.numerator, query.denominator) == (True, True, 3, 4)
    assert (request.numerator, request.denominator) == (b"3", b"4")

    by_handle = session.query_handle(B, b"H:9")
    feed(session, B, res(T.STATUS_RES, b"H:9", b"0", b"0", b"0", b"0"))
    assert by_handle.done
    assert by_handle.answered
    assert not by_handle.known

    by_unique = session.query_unique(b"u", 0.0)
    assert by_unique.servers == [A, B]
    feed(session, B, res(T.STATUS_RES_UNIQUE, b"u", b"1", b"0", b"0", b"0", b"2"))
    feed(session, A, res(T.STATUS_RES_UNIQUE, b"u", b"0", b"0", b"0", b"0", b"0"))
    assert by_unique.done
    assert by_unique.known  # a later "unknown" does not hide the server that knows it
    assert by_unique.client_count == 2
    assert session.tracked == 1  # only the foreground request


def test_status_query_counts_a_lost_server_as_answered() -> None:
    session = client_session()
    query = session.query_handle(A, b"H:1")
    session.connection_lost(A, 0.0)
    assert query.done
    assert not query.answered
    assert query.failed_servers == [A]


def test_status_query_needs_a_handle_and_connection() -> None:
    session = client_session()
    request = gp.JobRequest(gp.SubmitJob(function=b"f"))
    with pytest.raises(gp.LocalProtocolError, match="no handle"):
        session.query_status(request)
    # A server without a connection: the query waits for the binding to connect it.
    query = session.query_handle(B, b"H:1")
    assert session.connection_wanted(0.0) == B
    session.connect_failed(B, 0.0)
    assert query.done
    assert query.failed_servers == [B]


def test_forgotten_requests_ignore_later_packets() -> None:
    session = client_session()
    pending = submit(session)
    session.forget(pending)
    assert feed(session, A, res(T.JOB_CREATED, b"H:6")) == []
    created = submit(session)
    feed(session, A, res(T.JOB_CREATED, b"H:7"))
    session.forget(created)
    assert session.tracked == 0
    # The connection still knows the handle, so the packet is legal; nobody listens.
    assert feed(session, A, res(T.WORK_COMPLETE, b"H:7", b"x")) == []
    assert created.state is gp.JobState.CREATED


FENCE_STATUS = res(T.STATUS_RES, b"-", b"0", b"0", b"0", b"0")


@pytest.mark.parametrize("background", [False, True])
def test_a_submission_the_server_ignores_fails_with_request_ignored(background: bool) -> None:
    # gear's Server drops SUBMIT_JOB_EPOCH / SUBMIT_REDUCE_JOB* in silence and
    # answers the fence behind it: the request fails at once, the next one
    # gets its own JOB_CREATED.
    session = client_session()
    submission = gp.make_submission(b"f", b"x", reducer=b"r", background=background)
    ignored = gp.JobRequest(submission)
    session.submit(ignored, 0.0, server=A)
    later = submit(session)
    assert feed(session, A, FENCE_STATUS) == [ignored]
    assert ignored.state is gp.JobState.FAILED
    assert ignored.finished
    assert ignored.accepted
    assert isinstance(ignored.delivery_error, gp.RequestIgnored)
    assert "SUBMIT_REDUCE_JOB" in str(ignored.delivery_error)
    assert gp.undelivered([ignored, later]) is ignored.delivery_error
    assert feed(session, A, res(T.JOB_CREATED, b"H:2")) == [later]
    assert (later.handle, ignored.handle) == (b"H:2", None)
    assert session.tracked == 1  # the foreground job waiting for its result


def test_ignored_option_and_unique_query_are_logged_and_forgotten(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = gp.ClientSession([A], exceptions=True)
    session.connection_made(A)
    query = session.query_unique(b"u", 0.0)
    request = submit(session)
    assert feed(session, A, res(T.JOB_CREATED, b"H:1")) == [request]
    assert "OPTION_REQ" in caplog.text
    assert "GET_STATUS_UNIQUE" in caplog.text
    assert not query.done  # unanswered: it times out as any such query
    assert session.tracked == 1  # the foreground job only


def test_unrelated_events_change_nothing() -> None:
    session = client_session()
    session.connections[A].queue(gp.EchoRequest(payload=b"p"))
    assert feed(session, A, res(T.ECHO_RES, b"p")) == []
    assert feed(session, A, res(T.ERROR, b"JOB_NOT_FOUND", b"x")) == []


# ------------------------------------------------------------------ worker


GRAB_ALL = req(T.GRAB_JOB_ALL)
GRAB_UNIQ = req(T.GRAB_JOB_UNIQ)


def worker_session(max_jobs: int = 1) -> gp.WorkerSession:
    session = gp.WorkerSession([A, B], max_jobs=max_jobs)
    session.register(b"f")
    return session


def test_new_connection_registers_everything_then_grabs() -> None:
    session = gp.WorkerSession([A])
    session.set_client_id(b"w1")
    session.register(b"f", timeout=1500)
    session.register(b"g")
    session.connection_made(A)
    assert session.data_to_send() == {
        A: req(T.SET_CLIENT_ID, b"w1")
        + req(T.CAN_DO_TIMEOUT, b"f", b"1500")
        + req(T.CAN_DO, b"g")
        + GRAB_UNIQ
    }


@pytest.mark.parametrize(
    ("grab_mode", "grab"),
    [(None, GRAB_UNIQ), (gp.GrabMode.UNIQ, GRAB_UNIQ), (gp.GrabMode.ALL, GRAB_ALL)],
)
def test_grab_mode_reaches_every_connection(grab_mode: gp.GrabMode | None, grab: bytes) -> None:
    # GRAB_JOB_UNIQ by default (every server knows it); GRAB_JOB_ALL on request.
    session = (
        gp.WorkerSession([A, B], max_jobs=2)
        if grab_mode is None
        else gp.WorkerSession([A, B], max_jobs=2, grab_mode=grab_mode)
    )
    session.register(b"f")
    session.connection_made(A)
    session.connection_made(B)
    assert session.data_to_send() == {A: req(T.CAN_DO, b"f") + grab, B: req(T.CAN_DO, b"f") + grab}
    feed(session, A, res(T.NO_JOB))
    feed(session, A, res(T.NOOP))
    assert session.data_to_send() == {A: req(T.PRE_SLEEP) + grab}


def test_changes_go_to_every_live_connection() -> None:
    session = worker_session()
    session.connection_made(A)
    session.data_to_send()
    session.register(b"h")
    session.unregister(b"h")
    session.unregister(b"never-registered")
    session.set_client_id(b"x")
    assert session.data_to_send() == {
        A: req(T.CAN_DO, b"h") + req(T.CANT_DO, b"h") + req(T.SET_CLIENT_ID, b"x")
    }
    assert session.abilities == {b"f": None}


def test_one_job_budget_spans_servers() -> None:
    session = worker_session()
    session.connection_made(A)
    session.connection_made(B)
    # Only one connection may grab at a time with max_jobs=1.
    assert session.data_to_send() == {A: req(T.CAN_DO, b"f") + GRAB_UNIQ, B: req(T.CAN_DO, b"f")}
    feed(session, A, res(T.NO_JOB))
    # A sleeps, so B may grab now.
    assert session.data_to_send() == {A: req(T.PRE_SLEEP), B: GRAB_UNIQ}
    jobs = feed(session, B, res(T.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"u", b"data"))
    assert jobs == [gp.JobAssigned(handle=b"H:1", function=b"f", payload=b"data", unique=b"u")]
    assert session.held_jobs == 1
    # A is woken while B holds the job: it must not grab yet.
    feed(session, A, res(T.NOOP))
    assert session.data_to_send() == {}
    assert session.complete(B, b"H:1", b"result")
    sent = session.data_to_send()
    assert sent[B].startswith(req(T.WORK_COMPLETE, b"H:1", b"result"))
    assert GRAB_UNIQ in (sent.get(A, b"") + sent[B][len(req(T.WORK_COMPLETE, b"H:1", b"result")) :])


def test_larger_budget_lets_connections_grab_together() -> None:
    session = worker_session(max_jobs=2)
    session.connection_made(A)
    session.connection_made(B)
    sent = session.data_to_send()
    assert sent[A].endswith(GRAB_UNIQ)
    assert sent[B].endswith(GRAB_UNIQ)


def test_replies_for_each_outcome() -> None:
    session = worker_session()
    session.connection_made(A)
    session.data_to_send()
    for number in range(1, 4):
        handle = b"H:%d" % number
        feed(session, A, res(T.JOB_ASSIGN_UNIQ, handle, b"f", b"", b"x"))
        session.data(A, handle, b"d")
        session.warning(A, handle, b"w")
        session.status(A, handle, 1, 2)
        assert session.data_to_send() == {
            A: req(T.WORK_DATA, handle, b"d")
            + req(T.WORK_WARNING, handle, b"w")
            + req(T.WORK_STATUS, handle, b"1", b"2")
        }
        if number == 1:
            session.fail(A, handle)
            expected = req(T.WORK_FAIL, handle)
        elif number == 2:
            session.fail(A, handle, b"trace")
            expected = req(T.WORK_EXCEPTION, handle, b"trace")
        else:
            session.complete(A, handle, b"r")
            expected = req(T.WORK_COMPLETE, handle, b"r")
        assert session.data_to_send() == {A: expected + GRAB_UNIQ}


def test_connection_loss_returns_held_jobs_and_backs_off() -> None:
    session = worker_session()
    session.connection_made(A)
    feed(session, A, res(T.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
    assert session.connection_lost(A, 100.0) == (b"H:1",)
    assert session.connection_lost(A, 100.0) == ()
    assert session.missing_servers(100.0) == [A, B]  # first loss: reconnect at once
    session.connection_made(A)
    session.connection_lost(A, 101.0)
    assert session.missing_servers(101.0) == [B]  # lost again soon after: back-off
    assert not session.complete(A, b"H:1", b"late")  # nowhere to send it
    session.connection_made(B)
    assert feed(session, B, b"") == []
    assert B not in session.connections


def test_not_accepting_stops_grabbing_and_wake_grabs_again() -> None:
    session = worker_session()
    session.connection_made(A)
    feed(session, A, res(T.NO_JOB))
    session.data_to_send()
    session.wake()
    assert session.data_to_send() == {A: GRAB_UNIQ}
    feed(session, A, res(T.NO_JOB))
    session.data_to_send()
    session.accepting = False
    assert not session.accepting
    feed(session, A, res(T.NOOP))
    assert session.data_to_send() == {}
    session.accepting = True
    assert session.data_to_send() == {A: GRAB_UNIQ}


def test_server_errors_are_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    session = worker_session()
    session.connection_made(A)
    assert feed(session, A, res(T.ERROR, b"JOB_NOT_FOUND", b"gone")) == []
    assert "JOB_NOT_FOUND" in caplog.text
    with pytest.raises(ValueError, match="max_jobs"):
        gp.WorkerSession([A], max_jobs=0)
    with pytest.raises(gp.LocalProtocolError, match="already"):
        session.connection_made(A)


# ------------------------------------------------- placement and waits (core)


def test_a_request_waits_for_the_connection_the_session_wants_then_leaves() -> None:
    session = gp.ClientSession([A, B], pool=gp.ServerPool([A, B], rng=random.Random(0)))
    request = gp.JobRequest(gp.SubmitJob(function=b"f"))
    session.submit(request, 0.0)
    assert request.placing
    assert not request.accepted
    assert session.wants_connection
    assert session.connection_wanted(0.0) == A
    session.connect_failed(A, 0.0)  # A down: the request moves on to B
    assert session.connection_wanted(0.0) == B
    session.connection_made(B)
    assert (request.state, request.server, request.attempts) == (gp.JobState.PENDING, B, 1)
    assert session.data_to_send() == {B: req(T.SUBMIT_JOB, b"f", b"", b"")}
    assert not session.wants_connection


def test_no_server_left_ends_the_request_with_no_server_available() -> None:
    session = gp.ClientSession([A])
    request = gp.JobRequest(gp.SubmitJob(function=b"f"))
    session.submit(request, 0.0)
    session.connect_failed(A, 0.0)
    assert isinstance(request.delivery_error, gp.NoServerAvailable)
    assert request.accepted
    assert request.finished
    assert gp.undelivered([request]) is request.delivery_error
    later = gp.JobRequest(gp.SubmitJob(function=b"f"))
    session.submit(later, 0.1)  # A still in back-off: refused at once
    assert isinstance(later.delivery_error, gp.NoServerAvailable)
    assert session.tracked == 0


def test_a_working_server_lost_is_reconnected_for_the_resend_at_once() -> None:
    session = gp.ClientSession([A])
    session.connection_made(A)
    first = gp.JobRequest(gp.SubmitJob(function=b"f"))
    session.submit(first, 0.0)
    feed(session, A, res(T.JOB_CREATED, b"H:1"))  # A has answered: it works
    second = gp.JobRequest(gp.SubmitJob(function=b"f"), max_attempts=2)
    session.submit(second, 1.0)
    loss = session.connection_lost(A, 1.0)
    assert (loss.lost, loss.resent) == ([first], [second])
    assert session.connection_wanted(1.0) == A  # no back-off after a working connection
    session.connection_made(A)
    assert second.state is gp.JobState.PENDING
    assert second.attempts == 2


@pytest.mark.parametrize(
    ("state", "goal", "settled", "reached"),
    [
        ("pending", gp.Goal.ACCEPTED, False, False),
        ("created", gp.Goal.ACCEPTED, True, True),
        ("created", gp.Goal.FINISHED, False, False),
        ("complete", gp.Goal.FINISHED, True, True),
        ("lost", gp.Goal.ACCEPTED, True, False),
        ("lost", gp.Goal.FINISHED, True, False),
    ],
)
def test_goals_say_when_a_wait_ends_and_whether_it_timed_out(
    state: str, goal: gp.Goal, settled: bool, reached: bool
) -> None:
    session = client_session()
    request = submit(session)
    if state != "pending":
        feed(session, A, res(T.JOB_CREATED, b"H:1"))
    if state == "complete":
        feed(session, A, res(T.WORK_COMPLETE, b"H:1", b"r"))
    if state == "lost":
        session.connection_lost(A, 0.0)
    assert request.settled(goal) is settled
    assert request.reached(goal) is reached
    gp.settle([request], goal)
    assert request.timed_out is not reached


def test_acceptance_deadline_is_the_earlier_of_call_and_submit_timeout() -> None:
    assert gp.acceptance_deadline(10.0, None, None) is None
    assert gp.acceptance_deadline(10.0, 12.0, None) == 12.0
    assert gp.acceptance_deadline(10.0, None, 1.0) == 11.0
    assert gp.acceptance_deadline(10.0, 12.0, 5.0) == 12.0
    assert gp.acceptance_deadline(10.0, 12.0, 1.0) == 11.0


def test_make_submission_picks_the_packet_family() -> None:
    assert isinstance(gp.make_submission(b"f", b"x", epoch=5), gp.SubmitJobEpoch)
    assert isinstance(gp.make_submission(b"f", b"x", reducer=b"r"), gp.SubmitReduceJob)
    plain = gp.make_submission(b"f", b"x", priority=gp.Priority.HIGH, background=True)
    assert (plain.priority, plain.background) == (gp.Priority.HIGH, True)
    with pytest.raises(gp.LocalProtocolError, match="epoch"):
        gp.make_submission(b"f", b"x", epoch=5, priority=gp.Priority.LOW)
    with pytest.raises(gp.LocalProtocolError, match="reduce"):
        gp.make_submission(b"f", b"x", reducer=b"r", priority=gp.Priority.LOW)


def test_worker_outcome_rules() -> None:
    plain = worker_session()
    plain.connection_made(A)
    plain.data_to_send()
    feed(plain, A, res(T.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"x"))
    plain.job_returned(A, b"H:1", None)  # None is an empty result
    assert plain.data_to_send()[A].startswith(req(T.WORK_COMPLETE, b"H:1", b""))
    feed(plain, A, res(T.JOB_ASSIGN_UNIQ, b"H:2", b"f", b"", b"x"))
    plain.job_raised(A, b"H:2", b"ValueError: x")  # without send_exceptions: WORK_FAIL
    assert plain.data_to_send()[A].startswith(req(T.WORK_FAIL, b"H:2"))
    # A job for a function unregistered meanwhile is failed by the session itself.
    assert feed(plain, A, res(T.JOB_ASSIGN_UNIQ, b"H:3", b"gone", b"", b"x")) == []
    assert plain.data_to_send()[A].startswith(req(T.WORK_FAIL, b"H:3"))

    telling = gp.WorkerSession([A], send_exceptions=True)
    telling.register(b"f")
    telling.connection_made(A)
    feed(telling, A, res(T.JOB_ASSIGN_UNIQ, b"H:4", b"f", b"", b"x"))
    telling.data_to_send()
    telling.job_raised(A, b"H:4", b"ValueError: x")
    assert telling.data_to_send()[A].startswith(req(T.WORK_EXCEPTION, b"H:4", b"ValueError: x"))


def test_a_reply_for_a_job_of_an_earlier_connection_is_dropped() -> None:
    """gearmand numbers handles afresh after a restart: the old job's late
    reply must not answer the new connection's job of the same handle."""
    session = worker_session(max_jobs=2)
    first = session.connection_made(A)
    feed(session, A, res(T.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"old"))
    session.connection_lost(A, 0.0)
    second = session.connection_made(A)
    session.data_to_send()
    feed(session, A, res(T.JOB_ASSIGN_UNIQ, b"H:1", b"f", b"", b"new"))
    session.data_to_send()
    assert not session.job_returned(A, b"H:1", b"result of old", on=first)
    assert not session.job_abandoned(A, b"H:1", on=first)
    assert session.data_to_send() == {}
    assert session.job_returned(A, b"H:1", b"result of new", on=second)
    assert session.data_to_send()[A].startswith(req(T.WORK_COMPLETE, b"H:1", b"result of new"))


def test_worker_timers_cover_epoch_wakes_and_reconnects() -> None:
    session = gp.WorkerSession([A, B], epoch_poll_interval=5.0, pool=gp.ServerPool([A, B]))
    session.register(b"f")
    assert session.tick(0.0) == [A, B]  # schedules the first wake-up, asks for connections
    session.connection_made(A)
    session.connect_failed(B, 0.0)
    retry = session.pool.next_retry([B])
    assert session.next_deadline() == min(5.0, retry)
    feed(session, A, res(T.NO_JOB))
    session.data_to_send()
    assert session.tick(5.0) == [B]  # due: wakes A, and B is out of back-off
    assert session.data_to_send() == {A: GRAB_UNIQ}
    assert session.next_deadline() == retry  # B is missing: already due
    with pytest.raises(ValueError, match="epoch_poll_interval"):
        gp.WorkerSession([A], epoch_poll_interval=0)


# ------------------------------------------------------- liveness (half-open)

ECHO = req(T.ECHO_REQ, gp._liveness.ECHO_PAYLOAD)


def live_worker(interval: float = 10.0, timeout: float = 2.0) -> gp.WorkerSession:
    session = gp.WorkerSession([A], liveness_interval=interval, liveness_timeout=timeout)
    session.register(b"f")
    session.connection_made(A)
    feed(session, A, res(T.NO_JOB))  # asleep: nothing more will come unless a job does
    session.data_to_send()
    return session


def test_a_quiet_connection_is_asked_for_a_sign_of_life_then_given_up() -> None:
    session = live_worker()
    assert session.next_deadline() == float("-inf")  # a new connection: look at it now
    session.tick(0.0)
    assert session.next_deadline() == 10.0
    session.tick(9.9)
    assert session.data_to_send() == {}
    session.tick(10.0)
    assert session.data_to_send() == {A: ECHO}
    assert session.unresponsive == []
    assert session.next_deadline() == 12.0
    session.tick(12.0)  # silent past the deadline
    assert session.unresponsive == [A]
    session.connection_lost(A, 12.0)  # the binding gave the link up
    assert session.tick(12.0) == [A]  # proven before: reconnect at once
    assert session.unresponsive == []


def test_any_traffic_counts_as_a_sign_of_life() -> None:
    session = live_worker()
    session.tick(0.0)
    session.tick(10.0)
    assert session.data_to_send() == {A: ECHO}
    feed(session, A, res(T.ECHO_RES, gp._liveness.ECHO_PAYLOAD))
    session.tick(11.0)
    assert session.unresponsive == []
    assert session.next_deadline() == 21.0  # quiet counted from the check that saw traffic
    feed(session, A, res(T.NOOP))  # a job is coming: the worker grabs
    session.tick(21.0)
    assert session.data_to_send() == {A: GRAB_UNIQ}  # no ECHO: it heard something


def test_liveness_is_off_unless_asked_and_refuses_nonsense() -> None:
    session = gp.WorkerSession([A])
    session.connection_made(A)
    assert session.next_deadline() is None
    session.tick(1e9)
    assert session.unresponsive == []
    with pytest.raises(ValueError, match="liveness"):
        gp.WorkerSession([A], liveness_interval=0)
    with pytest.raises(ValueError, match="liveness"):
        gp.Liveness(1.0, -1.0)


def test_a_request_hears_before_it_is_sent_again_and_may_change_its_submission() -> None:
    resends: list[int] = []

    class Renewing(gp.JobRequest):
        def _on_resend(self) -> None:
            resends.append(self.attempts)
            self.submission = gp.SubmitJob(function=b"f", unique=b"fresh")

    session = client_session()
    request = Renewing(gp.SubmitJob(function=b"f", unique=b"first"), max_attempts=2)
    session.submit(request, 0.0, server=A)
    assert resends == []  # a first sending is not a resend
    session.data_to_send()
    session.connection_lost(A, 0.0)
    session.connection_made(B)
    assert resends == [1]
    assert session.data_to_send() == {B: req(T.SUBMIT_JOB, b"f", b"fresh", b"")}
    feed(session, B, res(T.JOB_CREATED, b"H:9"))
    assert request.handle == b"H:9"
