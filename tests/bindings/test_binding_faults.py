"""A client's server connection cut at each point of a job exchange, for every runtime.

The client reaches gearmand through a `devtools.faultproxy.FaultProxy` (the
``fault_proxy`` fixture) that cuts its connection at one point of the
exchange SUBMIT_JOB -> JOB_CREATED -> WORK_COMPLETE: at a packet boundary or
inside a packet, with a FIN or a RST, on a fresh connection (the job is the
first thing on it) or on a warm one (one job completed on it before). A real
worker serves the function on gearmand's own address, so only the client's
link breaks. Whatever the point, the client ends with a clear outcome within
its ``poll_timeout``, never a hang or a mis-parse, by the core's rules
(README, "Several servers" and "What differs"):

- cut before the client saw a whole JOB_CREATED, on a warm connection (the
  server had answered on it): the job is resent at once (``max_retries=1``)
  on a new connection and completes; the worker may have run the first copy
  too (gearmand had it): at least once. The resend carries a fresh unique
  when the client made the first one up: gearmand 1.1.20 keeps a first copy
  whose client left before a worker took it as abandoned, answers a resend
  with the same unique with that job's handle, and drops the job at the next
  grab, which would leave the request waiting for a job that never runs;
- the same on a fresh connection: the server dropped a new connection
  without answering, which puts it in back-off; with no other server the
  submission raises ``ServerUnavailable`` (and works again after the
  back-off);
- cut after JOB_CREATED and before a whole WORK_COMPLETE: the job is never
  resent, since a worker may run it: the request ends ``lost``;
- cut after WORK_COMPLETE: the result had arrived: the request is complete.

Afterwards the same client object completes a job through the proxy again.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
from _binding_helpers import (
    reverse,
    serving,
    unique_name,
    wait_for_workers,
    wait_until,
)

from devtools.faultproxy import TO_CLIENT, TO_SERVER, FaultProxyFactory, Trigger
from gearman import (
    JOB_COMPLETE,
    JOB_UNKNOWN,
    GearmanJob,
    GearmanJobRequest,
    GearmanWorker,
)
from gearman.testing import Gearmand

#: The client's budget for one job; every outcome but gearmand's dropped job
#: (see the module docstring) comes well within it.
POLL_TIMEOUT = 5.0


class Point(NamedTuple):
    """Where the connection is cut, and how far the exchange had got then."""

    direction: str
    #: the trigger, given which exchange of the connection (1 or 2) is cut.
    at: Callable[[int], Trigger]
    #: "unanswered" (no whole JOB_CREATED yet), "created" or "completed".
    reached: str
    #: gearmand has the whole SUBMIT_JOB when the cut comes.
    submitted: bool = True


#: Every boundary of the exchange, and a point inside each packet.
POINTS = {
    "before SUBMIT_JOB": Point(
        TO_SERVER, lambda n: Trigger.before("SUBMIT_JOB", nth=n), "unanswered", submitted=False
    ),
    "inside SUBMIT_JOB": Point(
        TO_SERVER,
        lambda n: Trigger.before("SUBMIT_JOB", nth=n, into=6),
        "unanswered",
        submitted=False,
    ),
    "after SUBMIT_JOB": Point(
        TO_SERVER, lambda n: Trigger.after("SUBMIT_JOB", nth=n), "unanswered"
    ),
    "before JOB_CREATED": Point(
        TO_CLIENT, lambda n: Trigger.before("JOB_CREATED", nth=n), "unanswered"
    ),
    "inside JOB_CREATED": Point(
        TO_CLIENT, lambda n: Trigger.before("JOB_CREATED", nth=n, into=14), "unanswered"
    ),
    "after JOB_CREATED": Point(TO_CLIENT, lambda n: Trigger.after("JOB_CREATED", nth=n), "created"),
    "inside WORK_COMPLETE": Point(
        TO_CLIENT, lambda n: Trigger.before("WORK_COMPLETE", nth=n, into=14), "created"
    ),
    "after WORK_COMPLETE": Point(
        TO_CLIENT, lambda n: Trigger.after("WORK_COMPLETE", nth=n), "completed"
    ),
}

#: (point, link): a fresh link differs from a warm one only before JOB_CREATED.
CASES = [
    (point, link)
    for point, spec in POINTS.items()
    for link in ("fresh", "warm")
    if link == "warm" or spec.reached == "unanswered"
]


def submit_when_out_of_back_off(
    runtime: types.ModuleType, client: Any, task: str, data: bytes
) -> GearmanJobRequest:
    """Submit until the only server has left its back-off (`ServerUnavailable` until then)."""

    def attempt() -> GearmanJobRequest | None:
        try:
            request: GearmanJobRequest = client.submit_job(
                task, data, max_retries=1, poll_timeout=POLL_TIMEOUT
            )
        except runtime.errors.ServerUnavailable:
            return None
        return request

    return wait_until(runtime, attempt, message="the server out of back-off")


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
@pytest.mark.parametrize(("where", "link"), CASES, ids=[f"{p}-{k}" for p, k in CASES])
def test_a_foreground_job_cut_at_any_point_completes_or_is_reported(
    runtime: types.ModuleType,
    gearmand: Gearmand,
    fault_proxy: FaultProxyFactory,
    where: str,
    link: str,
    reset: bool,
) -> None:
    point = POINTS[where]
    proxy = fault_proxy(gearmand, wait_readable=runtime.concurrency.wait_readable)
    first = proxy.connection(0)
    task = unique_name("cut")
    runs: list[bytes] = []

    def counted(worker: GearmanWorker, job: GearmanJob) -> Any:
        runs.append(job.data)
        return job.data[::-1]

    with serving(runtime, [gearmand.address], {task: counted}):
        wait_for_workers(runtime, gearmand.address, task)
        client = runtime.GearmanClient([proxy.address])
        exchange = 1
        if link == "warm":
            warm_up = client.submit_job(task, b"warm", poll_timeout=POLL_TIMEOUT)
            assert warm_up.result == b"mraw"
            runs.clear()
            exchange = 2
        # Armed on the live connection when it is warm, ahead of it when it is fresh.
        first.flow(point.direction).cut(point.at(exchange), reset=reset)

        if point.reached == "unanswered" and link == "fresh":
            with pytest.raises(runtime.errors.ServerUnavailable):
                client.submit_job(task, b"abc", max_retries=1, poll_timeout=POLL_TIMEOUT)
            assert len(proxy.connections) == 1, "no second connect while in back-off"
            assert len(runs) <= 1, runs  # gearmand may have run what reached it
        else:
            request = client._create_request_from_dictionary(
                {"task": task, "data": b"abc"}, max_retries=1
            )
            sent_unique = request.job.unique
            client.submit_multiple_requests([request], poll_timeout=POLL_TIMEOUT)
            if point.reached == "unanswered":
                assert request.connection_attempts == 2
                second = proxy.connection(1)
                assert second.to_server.names == ["SUBMIT_JOB"]
                assert (request.state, request.result) == (JOB_COMPLETE, b"cba")
                assert (request.timed_out, request.lost) == (False, False)
                assert second.to_client.names == ["JOB_CREATED", "WORK_COMPLETE"]
                assert 1 <= len(runs) <= 2, runs  # at least once: gearmand may have had it
                assert request.job.unique != sent_unique  # a made-up unique is made anew
            elif point.reached == "created":
                assert request.lost is True
                assert (request.state, request.complete) == (JOB_UNKNOWN, False)
                assert request.connection_attempts == 1, "a created job is never sent again"
                assert len(proxy.connections) == 1
            else:
                assert (request.state, request.result) == (JOB_COMPLETE, b"cba")
                assert (request.timed_out, request.lost) == (False, False)
                assert request.connection_attempts == 1

        # The cut happened where it was armed, once.
        assert first.close_reason == ("reset" if reset else "cut")
        assert [fired.action for fired in first.flow(point.direction).fired] == ["cut"]
        assert first.to_client.names.count("JOB_CREATED") == exchange - (
            point.reached == "unanswered"
        )

        # The client object recovers: the next job completes on a fresh connection.
        # max_retries=1: the proxy's FIN may still be on its way when the job is
        # written, and a job lost before JOB_CREATED is resent.
        again = submit_when_out_of_back_off(runtime, client, task, b"xyz")
        assert (again.state, again.result) == (JOB_COMPLETE, b"zyx")
        assert proxy.connections[-1].close_reason is None


def test_a_test_can_wait_on_the_packets_of_a_worker_behind_the_proxy(
    runtime: types.ModuleType, gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    """The proxy's waits let the runtime's background run (gevent's greenlets
    included), so a test synchronises on what its worker said, without sleeps."""
    proxy = fault_proxy(gearmand, wait_readable=runtime.concurrency.wait_readable)
    task = unique_name("watched")
    with serving(runtime, [proxy.address], {task: reverse}):
        link = proxy.wait_for_connection(0)
        link.to_server.wait_for_packet("PRE_SLEEP")  # registered, found nothing, asleep
        assert link.to_server.names.index("CAN_DO") < link.to_server.names.index("PRE_SLEEP")
        client = runtime.GearmanClient([gearmand.address])
        request = client.submit_job(task, b"abc", poll_timeout=POLL_TIMEOUT)
        assert request.result == b"cba"
        link.to_server.wait_for_packet("WORK_COMPLETE")
    woken = link.to_client.names
    assert "NOOP" in woken
    assert any(name.startswith("JOB_ASSIGN") for name in woken)
    assert woken.index("NOOP") < next(i for i, n in enumerate(woken) if n.startswith("JOB_ASSIGN"))
