"""Half-open links: a worker's server that stops answering without closing.

The worker reaches gearmand through a `devtools.faultproxy.FaultProxy` that
black-holes its connection: both sides stay open, nothing passes either
way, the way a frozen server or a middlebox that dropped its state behaves.
TCP cannot tell (the proxy's stack still acknowledges), so only the
worker's liveness check (an ECHO after ``liveness_interval`` seconds of
quiet, answered within ``liveness_timeout``) notices it.
"""

from __future__ import annotations

import types

from _binding_helpers import BackgroundWorker, reverse, unique_name

from devtools.faultproxy import FaultProxyFactory
from gearman import JOB_COMPLETE
from gearman.testing import Gearmand


def test_an_idle_worker_gives_up_a_black_holed_link_and_serves_on_a_new_one(
    runtime: types.ModuleType, gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    """Expectation: the sleeping worker's ECHO gets no answer, so it gives the
    link up and reconnects through the proxy by itself; a job submitted while
    its old link is a black hole runs on the new one."""
    proxy = fault_proxy(gearmand, wait_readable=runtime.concurrency.wait_readable)
    task = unique_name("half-open")
    worker = runtime.GearmanWorker([proxy.address], liveness_interval=0.2, liveness_timeout=0.3)
    worker.register_task(task, reverse)
    with BackgroundWorker(runtime, worker):
        first = proxy.wait_for_connection(0, timeout=10)
        first.to_server.wait_for_packet("PRE_SLEEP", timeout=10)  # asleep, waiting for NOOP
        first.black_hole()
        client = runtime.GearmanClient([gearmand.address])
        request = client.submit_job(task, b"abc", wait_until_complete=False, poll_timeout=10)
        second = proxy.wait_for_connection(1, timeout=10)  # gave the first up by itself
        second.to_server.wait_for_packet("CAN_DO", timeout=10)  # and registered again
        client.wait_until_jobs_completed([request], poll_timeout=10)
    assert "ECHO_REQ" in first.to_server.names  # asked, never answered
    assert "ECHO_RES" not in first.to_client.names
    assert (request.state, request.result) == (JOB_COMPLETE, b"cba")


def test_a_worker_that_hears_its_server_sends_no_liveness_echo_while_busy(
    runtime: types.ModuleType, gearmand: Gearmand, fault_proxy: FaultProxyFactory
) -> None:
    """Expectation: traffic counts as a sign of life, and an answered ECHO
    keeps the link: a worker whose server answers keeps its first connection."""
    proxy = fault_proxy(gearmand, wait_readable=runtime.concurrency.wait_readable)
    task = unique_name("alive")
    worker = runtime.GearmanWorker([proxy.address], liveness_interval=0.1, liveness_timeout=0.4)
    worker.register_task(task, reverse)
    with BackgroundWorker(runtime, worker):
        first = proxy.wait_for_connection(0, timeout=10)
        first.to_client.wait_for_packet("ECHO_RES", count=3, timeout=10)  # asked and answered
        client = runtime.GearmanClient([gearmand.address])
        request = client.submit_job(task, b"xyz", poll_timeout=10)
    assert request.result == b"zyx"
    assert len(proxy.connections) == 1  # the first link was never replaced
    assert first.to_server.names.count("ECHO_REQ") >= 3
