"""The soak's short form: benchmarks/soak.py on 2,000 jobs, for every runtime.

One private gearmand, 4 worker processes and 20 client connections in 2
client processes, as the full soak runs them (issue 14, point 5): every
result must be checked and correct, no job lost or run twice, nothing left
in gearmand's queue, every process exits cleanly, and no client or worker
process may grow by 16 MiB or more from the 20 % sample to the end (a
generous bound: the full run's verdict uses 2 MiB). No timing is asserted.
The verdict's arithmetic (the base sample, the threshold) is tested on
made-up samples.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import soak
from benchmarks.soak_processes import RUNTIMES, answer, job_id, make_payload

REPO = Path(__file__).resolve().parents[2]
JOBS, CLIENTS, CLIENT_PROCESSES, WORKERS = 2000, 20, 2, 4
#: KiB a client or worker process may grow by from the 20 % sample to the end.
GROWTH_BOUND_KIB = 16 * 1024


def run_soak(runtime: str, output: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "soak.py"),
        *("--jobs", str(JOBS), "--clients", str(CLIENTS), "--workers", str(WORKERS)),
        *("--client-processes", str(CLIENT_PROCESSES), "--runtime", runtime),
        *("--flat-mib", str(GROWTH_BOUND_KIB / 1024), "--job-timeout", "30"),
        *("--timeout", "240", "--output", str(output)),
    ]
    # The timeout only ends a hung run; nothing about time is asserted.
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.usefixtures("gearmand_path")  # skipped (or an error under CI) without gearmand
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_short_soak_checks_every_result_and_memory_stays_bounded(
    runtime: str, tmp_path: Path
) -> None:
    output = tmp_path / "soak.json"
    done = run_soak(runtime, output)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    results = json.loads(output.read_text())

    checks = results["checks"]
    assert checks["jobs"] == checks["ended"] == checks["checked"] == checks["correct"] == JOBS
    assert (checks["mismatched"], checks["lost"], checks["exceptions"]) == (0, 0, 0), checks
    assert checks["executed_by_workers"] == sum(checks["executed_per_worker"]) == JOBS
    assert checks["left_in_queue"] == 0
    assert checks["failed_exits"] == {}
    assert checks["passed"]

    names = {"gearmand"} | {f"client-{i}" for i in range(CLIENT_PROCESSES)}
    names |= {f"worker-{i}" for i in range(WORKERS)}
    samples = results["samples"]
    assert [sample["mark"] for sample in samples] == [k / 10 for k in range(11)]
    jobs = [sample["jobs"] for sample in samples]
    assert jobs == sorted(jobs)
    assert jobs[-1] == JOBS
    for sample in samples:
        assert set(sample["rss_kib"]) == names
        assert all(kib > 0 for kib in sample["rss_kib"].values())

    memory = results["memory"]
    assert memory["from_mark"] == pytest.approx(0.2)
    for kind in ("client", "worker"):
        for name, figures in memory["by_kind"][kind]["processes"].items():
            assert figures["growth_since_base_kib"] < GROWTH_BOUND_KIB, (name, figures)
    assert memory["flat"]
    assert "verdict: flat" in done.stdout


def test_a_job_payload_is_its_own_and_the_answer_depends_on_it() -> None:
    first, second = make_payload(job_id(1, 23), 32), make_payload(job_id(12, 3), 32)
    assert len(first) == len(second) == 32
    assert first.startswith(b"1-23|")
    assert second.startswith(b"12-3|")
    assert answer(first) != answer(second)
    assert answer(first).startswith(first[::-1] + b"#")
    assert make_payload(job_id(123456, 7890), 4) == b"123456-7890|"  # never cut below its id


def samples_of(client_kib: list[int], fewest: list[int]) -> list[dict[str, Any]]:
    """Made-up samples at 0 %, 10 %, ..., 100 % for one client and one worker process."""
    return [
        {
            "mark": k / 10,
            "jobs": 1000 * k,
            "rss_kib": {"client-0": kib, "worker-0": 30_000, "gearmand": 10_000},
            "process_jobs": {
                "client-0": 1000 * k,
                "worker-0": 1000 * k,
                "fewest of a connection": f,
            },
        }
        for k, (kib, f) in enumerate(zip(client_kib, fewest, strict=True))
    ]


def test_memory_is_judged_after_the_warm_up_and_growth_at_the_threshold_is_not_flat() -> None:
    warm = soak.WARM_JOBS_PER_CONNECTION
    fewest = [0, 100, 200, 300, 400, warm - 1, warm, warm + 100, warm + 200, warm + 300, warm + 400]
    # Growing until the connections are warm (the 60 % sample), flat afterwards.
    filling = [30_000 + 1000 * min(k, 6) for k in range(11)]
    judged = soak.memory(samples_of(filling, fewest), flat_mib=2.0)
    assert (judged["from_mark"], judged["warm"], judged["flat"]) == (0.6, True, True)
    client = judged["by_kind"]["client"]
    assert client["growth_max_kib"] == 6000
    assert client["growth_since_base_max_kib"] == 0

    # 2 MiB more from the base to the end is not flat; 1 KiB less is.
    for extra, flat in ((2048, False), (2047, True)):
        grown = [*filling[:-1], filling[-1] + extra]
        assert soak.memory(samples_of(grown, fewest), flat_mib=2.0)["flat"] is flat

    # Never warm: judged from the 20 % sample, and it says so.
    cold = soak.memory(samples_of(filling, [0] * 11), flat_mib=2.0)
    assert (cold["from_mark"], cold["warm"], cold["flat"]) == (0.2, False, False)
