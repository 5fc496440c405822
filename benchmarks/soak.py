"""Load and soak: many client connections and worker processes on one gearmand, results checked.

Usage: .venv/bin/python benchmarks/soak.py [--jobs N] [--clients C] [--workers W]
       [--client-processes P] [--runtime blocking|gevent|trio|asyncio] [--samples S]
       [--flat-mib M] [--output FILE] ...

One private gearmand (`gearman.testing.Gearmand`, errors-only log) on a free
loopback port; W worker processes of our binding (one job at a time each);
C client connections, spread over P client processes, each connection a
``GearmanClient`` of its own that runs its share of the N jobs one after
another, all connections at once (a thread per connection for the blocking
runtime, a greenlet for gevent, a task for trio and asyncio; the workers
use the same runtime). Every job has a payload of its own and every result
is compared with what it must be (`benchmarks.soak_processes`), so the run
counts results that are wrong or belong to another job (mismatched), jobs
that did not end COMPLETE (lost) and exceptions; it also counts the jobs
the workers ran (each exactly once: their sum is N) and what is left in
gearmand's queue at the end (nothing).

Memory: the RSS (``VmRSS`` of ``/proc/<pid>/status``) of every client and
worker process and of gearmand, before the first job and each time another
1/S of the jobs has ended (S = 10: at 10 %, 20 %, ..., 100 %); the last
sample is taken while every process still holds its connections. The
verdict is "flat" when no client or worker process grew by `--flat-mib`
(2 MiB) or more from the base sample to the last one. The base is the first
sample after the warm-up: at least 20 % of the jobs (connections, buffers,
the allocator's first arenas), and every connection has run 2,048 jobs.
That is because a client connection remembers its last 1,024 finished job
handles (``FINISHED_HANDLES_REMEMBERED`` of ``gearman_proto``, to drop late
packets for them): about 115 bytes each, so its memory grows for its first
1,024 jobs (and its dict's table once more, at about 1,400) and then
stays; 200 connections need 409,600 jobs for that, hence the default of
800,000 jobs (the base is then about the 60 % sample). A run too short for
it is judged from the 20 % sample, and says so. Why 2 MiB: CPython's
small-object allocator takes memory from the system in 1 MiB arenas and
glibc's malloc in heaps per thread, so RSS moves by up to about one arena
with no leak at all; and 2 MiB over the window is a leak of less than 2 MiB
/ (jobs of that process in the window) per job: with the defaults and a
60 % base, about 26 bytes per job in a client process and 105 in a worker,
less than any object a job could leave behind (a bytes object of a job
handle is about 45 bytes, a request object several hundred). The report
prints that limit for the run. gearmand's growth is reported beside it,
not judged.

Prints the throughput (jobs/s over the whole run, from the first job's
submission to the last one's result), the checks, the samples and a table
per process type; writes every figure as JSON to
``benchmarks/results/soak-<UTC date and time>.json`` (``--output``; like
every benchmark output but ``latest.*``, that directory's files are not
committed). Exit status 0 when every check passed and memory was flat, 1
when not, 2 when the run could not be carried out.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import multiprocessing
import os
import queue
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from multiprocessing.context import ForkServerContext, ForkServerProcess
from pathlib import Path
from typing import Any

# This tree's gearman_proto and gearman, whatever the interpreter's install points at.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bindings"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gearman
from benchmarks import harness
from benchmarks.soak_processes import (
    BINDINGS,
    FUNCTION,
    RUNTIMES,
    ClientPlan,
    client_process,
    worker_process,
)
from gearman.testing import Gearmand, GearmandError
from gearman_proto._client_connection import FINISHED_HANDLES_REMEMBERED

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MIB = 1024  # KiB per MiB: RSS is read in KiB
#: The earliest sample the flatness verdict measures from (a fraction of the jobs).
FLAT_FROM = 0.2
#: Jobs every connection must have run before memory is judged: each client
#: connection remembers its last FINISHED_HANDLES_REMEMBERED (1024) finished
#: job handles (about 115 bytes each with the OrderedDict's node), and that
#: dict's table reaches its lasting size at its first resize with 1024 entries
#: kept, after about 1,400 jobs; twice the bound leaves a margin.
WARM_JOBS_PER_CONNECTION = 2 * FINISHED_HANDLES_REMEMBERED
#: Seconds between two looks at the shared job counters.
LOOK_INTERVAL = 0.01


class SoakError(RuntimeError):
    """The run could not be carried out (a process failed to start or broke, a timeout)."""


# ------------------------------------------------------------------ the command line


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options; see the module docstring."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=800_000, help="jobs in all (800000)")
    parser.add_argument("--clients", type=int, default=200, help="client connections (200)")
    parser.add_argument(
        "--client-processes", type=int, default=4, help="processes the connections share (4)"
    )
    parser.add_argument("--workers", type=int, default=16, help="worker processes (16)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="blocking", help="(blocking)")
    parser.add_argument(
        "--samples", type=int, default=10, help="memory samples after the first one (10)"
    )
    parser.add_argument("--payload-size", type=int, default=32, help="bytes per payload (32)")
    parser.add_argument(
        "--flat-mib",
        type=float,
        default=2.0,
        help="growth from the base sample to the end below which memory is flat (2)",
    )
    parser.add_argument(
        "--job-timeout", type=float, default=60.0, help="poll_timeout of each job, s (60)"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="give up on the whole run after, s (3600)"
    )
    parser.add_argument("--output", type=Path, help="the JSON file (results/soak-<date>.json)")
    options = parser.parse_args(argv)
    for name in ("jobs", "clients", "client_processes", "workers", "samples"):
        if getattr(options, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if options.client_processes > options.clients:
        parser.error("--client-processes cannot exceed --clients")
    return options


def connection_plans(options: argparse.Namespace, address: str) -> list[ClientPlan]:
    """The client processes' plans: connections dealt out in turn, jobs as even as can be."""
    base, extra = divmod(options.jobs, options.clients)
    plans = [
        ClientPlan(
            index=index,
            address=address,
            runtime=options.runtime,
            connections=[],
            payload_size=options.payload_size,
            job_timeout=options.job_timeout,
            wait_timeout=options.timeout,
        )
        for index in range(options.client_processes)
    ]
    for number in range(options.clients):
        plans[number % len(plans)].connections.append((number, base + (number < extra)))
    return plans


# ------------------------------------------------------------------ processes


class Children:
    """The processes of the run: started here, killed by their pid on the way out."""

    def __init__(self, context: ForkServerContext) -> None:
        self.context = context
        self.processes: dict[str, ForkServerProcess] = {}

    def start(self, name: str, target: Any, *args: Any) -> None:
        process = self.context.Process(target=target, args=args, name=name, daemon=True)
        process.start()
        self.processes[name] = process

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items() if process.pid}

    def dead(self) -> list[str]:
        """The processes that have ended, with their exit status."""
        return [
            f"{name} (exit status {process.exitcode})"
            for name, process in self.processes.items()
            if process.exitcode is not None
        ]

    def join(self, timeout: float) -> dict[str, int | None]:
        """Wait for every process to end by *timeout*; their exit statuses."""
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
        return {name: process.exitcode for name, process in self.processes.items()}

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes.values():
            if process.exitcode is None:
                process.kill()
        for process in self.processes.values():
            process.join(10)


class Mailbox:
    """The children's messages: ready, report and failed, by process name."""

    def __init__(self, inbox: Any) -> None:
        self.queue = inbox
        self.ready: set[str] = set()
        self.reports: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, str] = {}

    def collect(self, timeout: float = 0.0) -> None:
        """Take in every message there is (waiting up to *timeout* for the first)."""
        block = timeout > 0
        while True:
            try:
                what, kind, index, data = self.queue.get(block, timeout)
            except queue.Empty:
                return
            block = False
            name = f"{kind}-{index}"
            if what == "ready":
                self.ready.add(name)
            elif what == "report":
                self.reports[name] = data
            else:
                self.failures[name] = data

    def await_all(self, names: set[str], box: str, children: Children, timeout: float) -> None:
        """Collect until every one of *names* is in *box* (``ready`` or ``reports``)."""
        deadline = time.monotonic() + timeout
        while True:
            self.collect(0.1)
            self.check(children)
            held = self.ready if box == "ready" else set(self.reports)
            missing = names - held
            if not missing:
                return
            if time.monotonic() > deadline:
                raise SoakError(f"no {box} from {', '.join(sorted(missing))} in {timeout:g} s")

    def check(self, children: Children, expect_alive: set[str] | None = None) -> None:
        """Raise `SoakError` if a child failed, or one of *expect_alive* ended."""
        if self.failures:
            name, text = next(iter(self.failures.items()))
            raise SoakError(f"{name} failed:\n{text}")
        ended = [entry for entry in children.dead() if entry.split()[0] in (expect_alive or ())]
        if ended:
            raise SoakError(f"ended before its time: {', '.join(ended)}")


# ------------------------------------------------------------------ readings from /proc


def rss_kib(pid: int) -> int | None:
    """VmRSS of *pid* in KiB (None if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of *pid* so far (None if the process is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def take_sample(
    mark: float, done: int, elapsed: float, pids: dict[str, int], jobs: dict[str, int]
) -> dict[str, Any]:
    """One memory sample: every process's RSS, with the jobs each had done by then."""
    return {
        "mark": mark,
        "jobs": done,
        "elapsed_s": round(elapsed, 3),
        "rss_kib": {name: rss_kib(pid) for name, pid in pids.items()},
        "process_jobs": jobs,
    }


# ------------------------------------------------------------------ the run


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Carry out the soak; every figure of it, as the JSON file holds them."""
    # Children forked from one server process that imported the binding once:
    # much quicker to start than a fresh interpreter each (spawn), and as
    # clean (nothing of this process is inherited, no threads).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["benchmarks.soak_processes", BINDINGS[options.runtime]])
    progress = context.RawArray("q", options.clients)  # jobs ended, per connection
    executed = context.RawArray("q", options.workers)
    stop = context.RawValue("b", 0)
    go, release = context.Event(), context.Event()
    mailbox = Mailbox(context.Queue())
    started = time.monotonic()
    with Gearmand(verbose=None) as server, Children(context) as children:
        plans = connection_plans(options, server.address)
        for index in range(options.workers):
            children.start(
                f"worker-{index}",
                worker_process,
                options.runtime,
                server.address,
                index,
                executed,
                stop,
                mailbox.queue,
            )
        for plan in plans:
            children.start(
                f"client-{plan.index}", client_process, plan, progress, go, release, mailbox.queue
            )
        names = set(children.processes)
        mailbox.await_all(names, "ready", children, timeout=120)
        pids = {"gearmand": server.pid, **children.pids()}

        def jobs_so_far() -> dict[str, int]:
            counts = {
                f"client-{plan.index}": sum(progress[number] for number, _ in plan.connections)
                for plan in plans
            }
            counts.update({f"worker-{index}": executed[index] for index in range(options.workers)})
            counts["fewest of a connection"] = min(progress)
            return counts

        samples = [take_sample(0.0, 0, 0.0, pids, jobs_so_far())]
        begin = time.perf_counter()
        go.set()
        marks = [
            (k / options.samples, math.ceil(options.jobs * k / options.samples))
            for k in range(1, options.samples + 1)
        ]
        while marks:
            done = sum(progress)
            if done >= marks[0][1]:
                while marks and done >= marks[0][1]:
                    mark, _ = marks.pop(0)
                elapsed = time.perf_counter() - begin
                samples.append(take_sample(mark, done, elapsed, pids, jobs_so_far()))
                continue
            mailbox.collect()
            mailbox.check(children, expect_alive=names)
            if time.monotonic() - started > options.timeout:
                raise SoakError(f"{done} of {options.jobs} jobs ended in {options.timeout:g} s")
            time.sleep(LOOK_INTERVAL)
        elapsed = time.perf_counter() - begin
        cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        release.set()
        clients = {f"client-{plan.index}" for plan in plans}
        mailbox.await_all(clients, "reports", children, timeout=120)
        left = queue_left(server.address)
        stop.value = 1
        mailbox.await_all(names - clients, "reports", children, timeout=120)
        exits = children.join(60)
    results = {
        "meta": {
            **harness.machine_info(None),
            "commit": harness.describe_working_tree(),
            "command": " ".join(["benchmarks/soak.py", *sys.argv[1:]]),
        },
        "options": {
            key: str(value) if isinstance(value, Path) else value
            for key, value in vars(options).items()
        },
        "elapsed_s": round(elapsed, 3),
        "throughput_jobs_per_s": round(options.jobs / elapsed, 1),
        "checks": checks(options.jobs, mailbox.reports, list(executed), left, exits),
        "cpu_s": cpu,
        "samples": samples,
    }
    results["memory"] = memory(samples, options.flat_mib)
    results["ok"] = results["checks"]["passed"] and results["memory"]["flat"]
    return results


def queue_left(address: str) -> dict[str, int]:
    """gearmand's admin ``status`` for the soak's function: jobs left, running, workers."""
    with gearman.GearmanAdminClient([address], poll_timeout=30) as admin:
        rows = admin.get_status()
    for row in rows:
        if row["task"] == FUNCTION:
            return {key: int(row[key]) for key in ("queued", "running", "workers")}
    return {"queued": 0, "running": 0, "workers": 0}


def checks(
    jobs: int,
    reports: dict[str, dict[str, Any]],
    executed: list[int],
    queue: dict[str, int],
    exits: dict[str, int | None],
) -> dict[str, Any]:
    """What the client reports, the workers' counts and gearmand's queue add up to."""
    clients = [report for name, report in sorted(reports.items()) if name.startswith("client")]
    lost: Counter[str] = Counter()
    exceptions: Counter[str] = Counter()
    for report in clients:
        lost.update(report["lost"])
        exceptions.update(report["exceptions"])
    figures: dict[str, Any] = {
        "jobs": jobs,
        "ended": sum(report["ended"] for report in clients),
        "checked": sum(report["correct"] + report["mismatched"] for report in clients),
        "correct": sum(report["correct"] for report in clients),
        "mismatched": sum(report["mismatched"] for report in clients),
        "lost": sum(lost.values()),
        "lost_by_outcome": dict(lost),
        "exceptions": sum(exceptions.values()),
        "exceptions_by_type": dict(exceptions),
        "first_errors": [error for report in clients for error in report["errors"]][:10],
        "executed_by_workers": sum(executed),
        "executed_per_worker": executed,
        "left_in_queue": queue["queued"],
        "failed_exits": {name: code for name, code in exits.items() if code != 0},
    }
    figures["passed"] = (
        figures["correct"] == figures["checked"] == figures["ended"] == jobs
        and figures["lost"] == figures["exceptions"] == 0
        and figures["executed_by_workers"] == jobs
        and figures["left_in_queue"] == 0
        and not figures["failed_exits"]
    )
    return figures


def memory(samples: list[dict[str, Any]], flat_mib: float) -> dict[str, Any]:
    """Per process type: the RSS figures of each process and the verdict.

    Growth is judged from the base sample: the first one at or after
    `FLAT_FROM` of the jobs at which every connection has run
    `WARM_JOBS_PER_CONNECTION` jobs, or (in a run too short for that) the
    first one at or after `FLAT_FROM`; ``warm`` says which.
    """
    late = [i for i, sample in enumerate(samples) if sample["mark"] >= FLAT_FROM - 1e-9]
    warm = [
        i
        for i in late
        if samples[i]["process_jobs"]["fewest of a connection"] >= WARM_JOBS_PER_CONNECTION
        and i < len(samples) - 1
    ]
    base = warm[0] if warm else late[0]
    kinds: dict[str, dict[str, Any]] = {}
    for name in samples[0]["rss_kib"]:
        series = [sample["rss_kib"][name] for sample in samples]
        if None in series:
            raise SoakError(f"{name} was gone before the last memory sample")
        jobs = [sample["process_jobs"].get(name, sample["jobs"]) for sample in samples]
        since = series[-1] - series[base]
        process = {
            "first_kib": series[0],
            "min_kib": min(series),
            "max_kib": max(series),
            "last_kib": series[-1],
            "growth_kib": series[-1] - series[0],
            "growth_since_base_kib": since,
            "jobs_since_base": jobs[-1] - jobs[base],
        }
        kind = kinds.setdefault(name.split("-")[0], {"processes": {}})
        kind["processes"][name] = process
    for kind in kinds.values():
        processes = list(kind["processes"].values())
        kind.update(
            first_mean_kib=round(statistics.mean(p["first_kib"] for p in processes)),
            last_mean_kib=round(statistics.mean(p["last_kib"] for p in processes)),
            min_kib=min(p["min_kib"] for p in processes),
            max_kib=max(p["max_kib"] for p in processes),
            growth_max_kib=max(p["growth_kib"] for p in processes),
            growth_since_base_max_kib=max(p["growth_since_base_kib"] for p in processes),
            fewest_jobs_since_base=min(p["jobs_since_base"] for p in processes),
        )
        fewest = kind["fewest_jobs_since_base"]
        kind["detects_bytes_per_job"] = round(flat_mib * MIB * 1024 / fewest) if fewest else None
        kind["flat"] = kind["growth_since_base_max_kib"] < flat_mib * MIB
    ours = [kinds[kind]["flat"] for kind in ("client", "worker") if kind in kinds]
    return {
        "flat_mib": flat_mib,
        "from_mark": samples[base]["mark"],
        "warm": bool(warm),
        "warm_jobs_per_connection": WARM_JOBS_PER_CONNECTION,
        "flat": all(ours),
        "by_kind": kinds,
    }


# ------------------------------------------------------------------ the report


def mib(kib: float) -> str:
    return f"{kib / MIB:.1f}"


def _details(counts: dict[str, int]) -> str:
    """`` (3 FAILED, 1 CREATED timed_out)``, or "" when there are none."""
    return f" ({', '.join(f'{n} {what}' for what, n in counts.items())})" if counts else ""


def render(results: dict[str, Any]) -> str:
    """The text report: throughput, checks, the samples, per process type, the verdict."""
    options, check, memory_ = results["options"], results["checks"], results["memory"]
    kinds = memory_["by_kind"]
    lines = [
        f"soak: {options['jobs']:,} jobs, {options['clients']} client connections in "
        f"{options['client_processes']} processes, {options['workers']} worker processes, "
        f"runtime {options['runtime']}, {results['meta']['gearmand']}, "
        f"{results['meta']['nproc']} CPUs, at {results['meta']['commit']}",
        f"throughput: {results['throughput_jobs_per_s']:,.0f} jobs/s "
        f"({options['jobs']:,} jobs in {results['elapsed_s']:.1f} s)",
        f"checks: {check['checked']:,} results checked, {check['correct']:,} correct, "
        f"{check['mismatched']} mismatched, "
        f"{check['lost']} lost{_details(check['lost_by_outcome'])}, "
        f"{check['exceptions']} exceptions{_details(check['exceptions_by_type'])}; "
        f"workers ran {check['executed_by_workers']:,} jobs; "
        f"{check['left_in_queue']} left in gearmand's queue; "
        f"{'passed' if check['passed'] else 'FAILED'}",
    ]
    lines += [f"  {error}" for error in check["first_errors"]]
    lines += [f"  exit status {code}: {name}" for name, code in check["failed_exits"].items()]
    lines += [
        "",
        "Memory samples (RSS in MiB; clients and workers: min / mean / max over the processes)",
        "",
        "| sample | jobs | s | jobs/s since the last | gearmand | clients | workers |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    previous = None
    for sample in results["samples"]:
        rss = sample["rss_kib"]
        cells = []
        for kind in ("client", "worker"):
            values = [v for name, v in rss.items() if name.startswith(kind)]
            cells.append(
                f"{mib(min(values))} / {mib(statistics.mean(values))} / {mib(max(values))}"
            )
        rate = "-"
        if previous is not None and sample["elapsed_s"] > previous["elapsed_s"]:
            spent = sample["elapsed_s"] - previous["elapsed_s"]
            rate = f"{(sample['jobs'] - previous['jobs']) / spent:,.0f}"
        lines.append(
            f"| {sample['mark']:.0%} | {sample['jobs']:,} | {sample['elapsed_s']:.1f} | {rate} "
            f"| {mib(rss['gearmand'])} | {cells[0]} | {cells[1]} |"
        )
        previous = sample
    since = f"growth {memory_['from_mark']:.0%} to end"
    lines += [
        "",
        "Memory per process type (RSS in MiB; first and last: mean over the processes; "
        "growth: the largest of any process)",
        "",
        f"| type | processes | first | last | min | max | growth last - first | {since} "
        "| jobs per process since then | CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in ("client", "worker", "gearmand"):
        figures = kinds[kind]
        cpu = sum(
            results["cpu_s"][name] or 0.0 for name in results["cpu_s"] if name.startswith(kind)
        )
        lines.append(
            f"| {kind} | {len(figures['processes'])} | {mib(figures['first_mean_kib'])} "
            f"| {mib(figures['last_mean_kib'])} | {mib(figures['min_kib'])} "
            f"| {mib(figures['max_kib'])} | {figures['growth_max_kib']:+,} KiB "
            f"| {figures['growth_since_base_max_kib']:+,} KiB "
            f"| {figures['fewest_jobs_since_base']:,} | {cpu:.1f} |"
        )
    limits = ", ".join(
        f"{kind} {kinds[kind]['detects_bytes_per_job']} B/job"
        for kind in ("client", "worker")
        if kinds[kind]["detects_bytes_per_job"] is not None
    )
    verdict = "flat" if memory_["flat"] else "NOT FLAT"
    warm = memory_["warm_jobs_per_connection"]
    base = (
        f"the {memory_['from_mark']:.0%} sample, the first at which every connection had run "
        f"{warm:,} jobs,"
        if memory_["warm"]
        else f"the {memory_['from_mark']:.0%} sample (not every connection had run {warm:,} "
        "jobs before the last sample: the clients' finished-handle memory may still grow)"
    )
    lines += [
        "",
        f"verdict: {verdict}: every client and worker process must grow less than "
        f"{memory_['flat_mib']:g} MiB from {base} to the end, which catches a leak of more "
        f"than: {limits}; gearmand (not judged) "
        f"{kinds['gearmand']['growth_since_base_max_kib']:+,} KiB",
    ]
    return "\n".join(lines) + "\n"


def default_output() -> Path:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    return RESULTS_DIR / f"soak-{stamp}.json"


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the run like Ctrl-C: every child killed, gearmand stopped."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak, print the report, write the JSON file; the exit status."""
    options = parse_arguments(argv)
    try:
        with _signals_interrupt():
            results = run(options)
    except (SoakError, GearmandError) as error:
        print(f"soak: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soak: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    output: Path = options.output or default_output()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results), end="")
    print(f"soak: results in {output}", file=sys.stderr)
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
