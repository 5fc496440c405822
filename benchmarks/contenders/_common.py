"""What every Python contender shares: the command line, payloads, clocks, the report.

Standard library only, and kept importable by any Python >= 3.8: the same
file is imported by contenders that run in the project's ``.venv`` and by
those that run in ``benchmarks/.peers-venv``.

The contract with the harness (``benchmarks/harness.py``):

* arguments: ``--role client|worker --scenario fg|pipe|bg|drain|large|fill
  --n N --address host:port --payload-size S --timeout SECONDS``;
* output: exactly one JSON line on stdout, the last line printed, with
  ``elapsed`` (wall seconds of the measured window), ``utime`` and
  ``stime`` (CPU seconds of this process, all threads, in the same window)
  and ``jobs`` (jobs in the window); or a line with ``error`` and a
  non-zero exit status.

Measured windows:

* client fg/pipe/large: one untimed warm-up job first, with the 16-byte
  payload (it also waits for the worker to come up and checks its answer),
  then N jobs;
* client bg: one untimed warm-up submission, then N submissions;
* worker fg/pipe/large: serves N + 1 jobs (the client's warm-up included) and
  measures from the end of the first one to the end of the last one;
* worker drain: serves N queued background jobs, measured from just before
  it connects and registers to the end of the N-th job;
* fill (helper, not a measurement): queue N background jobs quickly.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

ROLES = ("client", "worker")
SCENARIOS = ("fg", "pipe", "bg", "drain", "large", "fill")

#: The function name of the small-job scenarios and of the large one.
REVERSE = "reverse"
ECHO = "echo"

SMALL_PAYLOAD = b"0123456789abcdef"  # 16 bytes


def function_for(scenario: str) -> str:
    """The Gearman function a scenario's jobs are submitted to."""
    return ECHO if scenario == "large" else REVERSE


def make_payload(size: int) -> bytes:
    """`size` bytes: the 16-byte small payload, or a byte ramp for larger sizes."""
    if size == len(SMALL_PAYLOAD):
        return SMALL_PAYLOAD
    ramp = bytes(range(256))
    return (ramp * (size // 256 + 1))[:size]


def expected_result(scenario: str, payload: bytes) -> bytes:
    """What the worker answers: the payload reversed, or echoed for "large"."""
    return payload if scenario == "large" else payload[::-1]


class Options(argparse.Namespace):
    role: str
    scenario: str
    n: int
    address: str
    payload_size: int
    timeout: float

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description="one Gearman benchmark contender")
    parser.add_argument("--role", choices=ROLES, required=True)
    parser.add_argument("--scenario", choices=SCENARIOS, required=True)
    parser.add_argument("--n", type=int, required=True, help="jobs in the measured window")
    parser.add_argument("--address", required=True, help="gearmand as host:port")
    parser.add_argument("--payload-size", type=int, default=len(SMALL_PAYLOAD))
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up (exit 3) after this many seconds"
    )
    options = parser.parse_args(argv, namespace=Options())
    if options.n < 1:
        parser.error("--n must be at least 1")
    return options


class Window:
    """Wall clock and CPU time (all threads of this process) between `start` and `stop`."""

    def __init__(self) -> None:
        self._wall = 0.0
        self._usage: resource.struct_rusage | None = None
        self.elapsed = 0.0
        self.utime = 0.0
        self.stime = 0.0

    def start(self) -> None:
        self._usage = resource.getrusage(resource.RUSAGE_SELF)
        self._wall = time.perf_counter()

    def stop(self) -> None:
        wall = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        if self._usage is None:
            raise RuntimeError("Window.stop() before start()")
        self.elapsed = wall - self._wall
        self.utime = usage.ru_utime - self._usage.ru_utime
        self.stime = usage.ru_stime - self._usage.ru_stime


def report(options: Options, window: Window, jobs: int, **extra: Any) -> None:
    """Print the one JSON line the harness reads."""
    line = {
        "role": options.role,
        "scenario": options.scenario,
        "jobs": jobs,
        "payload_size": options.payload_size,
        "elapsed": window.elapsed,
        "utime": window.utime,
        "stime": window.stime,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "pid": os.getpid(),
    }
    line.update(extra)
    print(json.dumps(line), flush=True)


def fail(message: str, status: int = 1) -> NoReturn:
    """Print an error line for the harness and leave at once (threads included)."""
    print(json.dumps({"error": message}), flush=True)
    sys.stderr.flush()
    os._exit(status)


def start_watchdog(timeout: float, what: str) -> None:
    """End the process with an error line if it is still running after `timeout` s."""

    def expire() -> None:
        fail(f"{what}: timed out after {timeout:g} s", status=3)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()


def check(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


# --- the scenario drivers, the same for every Python library ---------------------


class ClientAdapter(Protocol):
    """How one library submits jobs; results come back as bytes."""

    def submit(self, function: str, payload: bytes) -> bytes:
        """One foreground job, waited for; returns its result."""

    def submit_many(self, function: str, payload: bytes, count: int) -> list[bytes]:
        """`count` foreground jobs sent at once, all waited for; returns the results."""

    def submit_background(self, function: str, payload: bytes) -> None:
        """One background job, waited for until the server accepted it."""

    def submit_background_many(self, function: str, payload: bytes, count: int) -> None:
        """`count` background jobs, as fast as the library allows (the drain's filler)."""


class WorkerAdapter(Protocol):
    """How one library serves jobs."""

    def serve(
        self,
        function: str,
        handler: Callable[[bytes], bytes],
        count: int,
        after_job: Callable[[int], None],
    ) -> None:
        """Answer `count` jobs of `function` with `handler(payload)`, then return.

        `after_job(done)` is called after each job's result has been sent.
        """


def run_client(options: Options, adapter: ClientAdapter) -> None:
    function = function_for(options.scenario)
    payload = make_payload(options.payload_size)
    expected = expected_result(options.scenario, payload)
    n = options.n
    window = Window()
    if options.scenario == "drain":
        fail("the drain scenario has no client side (use --scenario fill to queue jobs)")
    if options.scenario == "fill":
        window.start()
        adapter.submit_background_many(function, payload, n)
        window.stop()
    elif options.scenario == "bg":
        adapter.submit_background(function, payload)  # warm-up
        window.start()
        for _ in range(n):
            adapter.submit_background(function, payload)
        window.stop()
    else:
        # The warm-up job is small in every scenario: it waits for the worker
        # and checks its answer; big payloads are for the measured jobs.
        small = make_payload(len(SMALL_PAYLOAD))
        warm_up = adapter.submit(function, small)
        check(
            warm_up == expected_result(options.scenario, small),
            f"warm-up job answered {warm_up[:40]!r}, not the expected",
        )
        if options.scenario == "pipe":
            window.start()
            results = adapter.submit_many(function, payload, n)
            window.stop()
            check(len(results) == n, f"{len(results)} results for {n} jobs")
            check(all(result == expected for result in results), "a job answered wrongly")
        else:  # fg, large
            wrong = 0
            window.start()
            for _ in range(n):
                if adapter.submit(function, payload) != expected:
                    wrong += 1
            window.stop()
            check(wrong == 0, f"{wrong} jobs answered wrongly")
    report(options, window, n)


def reverse(payload: bytes) -> bytes:
    return payload[::-1]


def echo(payload: bytes) -> bytes:
    return payload


def run_worker(options: Options, adapter: WorkerAdapter) -> None:
    if options.scenario in ("bg", "fill"):
        fail(f"the {options.scenario} scenario has no worker side")
    function = function_for(options.scenario)
    handler = echo if options.scenario == "large" else reverse
    window = Window()
    if options.scenario == "drain":
        count = options.n
        window.start()
    else:
        count = options.n + 1  # the client's warm-up job first

    def after_job(done: int) -> None:
        if done == 1 and options.scenario != "drain":
            window.start()
        if done == count:
            window.stop()

    adapter.serve(function, handler, count, after_job)
    report(options, window, options.n)


def main(
    client: Callable[[Options], ClientAdapter],
    worker: Callable[[Options], WorkerAdapter],
    argv: list[str] | None = None,
) -> None:
    """Parse the command line and run one side of one scenario."""
    options = parse_options(argv)
    start_watchdog(options.timeout, f"{options.role} {options.scenario}")
    # BENCH_PROFILE=prefix: write cProfile statistics to prefix.<role>.prof.
    profile_prefix = os.environ.get("BENCH_PROFILE")
    profiler = cProfile.Profile() if profile_prefix else None
    try:
        if profiler is not None:
            profiler.enable()
        if options.role == "client":
            run_client(options, client(options))
        else:
            run_worker(options, worker(options))
    except Exception as error:  # report it as the harness expects, then leave
        traceback.print_exc()
        fail(f"{type(error).__name__}: {error}")
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{profile_prefix}.{options.role}.prof")
    sys.stdout.flush()
    os._exit(0)  # do not wait for a library's non-daemon threads
