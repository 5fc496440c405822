"""The end-to-end benchmark (benchmarks/run) still runs: a tiny workload, no timings asserted.

Our two bindings (blocking ``ours``, ``ours-trio``) always take part, and in
a git checkout also ``ours@HEAD``: the blocking binding of the last commit,
extracted by the harness, for the before/after comparison. libgearman's C
contender takes part when a compiler and libgearman's headers are installed
(scripts/setup installs both). The peers (gear, pygearman) are left out:
they need their own virtual environment, which needs a package index.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import harness

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = {"fg", "pipe", "conc", "bg", "drain", "large-64KiB"}
#: The scenario keys each contender takes part in (the others' are all of SCENARIOS).
TAKES_PART = {
    "ours-trio": {"fg", "pipe", "conc", "bg", "drain"},
    "libgearman": SCENARIOS - {"conc"},
}


def c_contender_can_build() -> bool:
    return shutil.which("cc") is not None and Path("/usr/include/libgearman-1.0/gearman.h").exists()


def head_commit() -> str | None:
    """The commit of HEAD, or None outside a git checkout."""
    if shutil.which("git") is None:
        return None
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def test_benchmark_runs_every_scenario_and_writes_valid_results(
    gearmand_path: str, tmp_path: Path
) -> None:
    head = head_commit()
    contenders = ["ours", "ours-trio"]
    contenders += ["ours@HEAD"] if head else []
    contenders += ["libgearman"] if c_contender_can_build() else []
    output = tmp_path / "results"
    tiny = "--n 20 --large-n 2 --large-sizes 65536 --repeat 1 --target-seconds 0"
    quick = "--parser-seconds 0.01 --timeout 60 --no-chart --no-low-latency"
    command = [
        *(sys.executable, "-m", "benchmarks", "--contenders", ",".join(contenders)),
        *tiny.split(),
        *quick.split(),
        *("--output-dir", str(output), "--build-dir", str(tmp_path / "build")),
    ]
    done = subprocess.run(
        command, check=False, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr

    results = json.loads((output / "latest.json").read_text())
    assert {scenario["key"] for scenario in results["scenarios"]} == SCENARIOS
    for key in SCENARIOS:
        for name in contenders:
            if key not in TAKES_PART.get(name, SCENARIOS):
                assert name not in results["summary"][key], (key, name)
                continue
            figures = results["summary"][key][name]
            assert figures["errors"] == [], (key, name, figures["errors"])
            assert figures["samples"] == 1
            assert figures["n"] == (2 if key.startswith("large") else 20)
            assert figures["throughput"] > 0
            assert math.isfinite(figures["throughput"])
            if key != "drain":
                assert figures["client_cpu"] >= 0
            if key != "bg":
                assert figures["worker_cpu"] >= 0
    parser = results["parser"]
    assert parser["decode_small_job_assign_uniq"]["packets_per_s"] > 0
    assert parser["encode_submit_job"]["packets_per_s"] > 0

    table = (output / "latest.md").read_text()
    assert table.endswith(done.stdout)
    for key in SCENARIOS:
        assert f"| {key} | " in table
    assert "conc goal: ours-trio's conc jobs/s ÷ ours' fg jobs/s = " in table
    assert "FAILED" not in done.stderr
    if head:
        check_before_and_after(results, table, head)


def check_before_and_after(results: dict[str, Any], table: str, head: str) -> None:
    """ours@HEAD ran the extracted commit's binding, and the A/B table has both with figures."""
    entries = {entry["name"]: entry for entry in results["contenders"]}
    old = entries["ours@HEAD"]
    assert old["available"], old["reason"]
    assert old["label"] == "ours@HEAD"
    assert old["revision"] == head
    for module, path in old["imports"].items():
        # Imported from the extracted copy, not from this tree or an editable install.
        assert not Path(path).is_relative_to(REPO), (module, path)
        assert not Path(path).exists(), f"{path}: the extracted copy was not removed"
    working_tree = entries["ours"]["imports"]
    assert all(Path(path).is_relative_to(REPO) for path in working_tree.values()), working_tree

    # The paragraph after "Before and after: ..." is its table, one row per figure.
    section = table[table.index("Before and after:") :].split("\n\n")[1]
    header, _rule, *rows = section.splitlines()
    assert "| ours (working tree) | spread | ours@HEAD | spread | ours ÷ ours@HEAD |" in header
    expected = {(key, "jobs/s") for key in SCENARIOS - {"large-64KiB"}}
    expected |= {(key, "client CPU µs/job") for key in SCENARIOS - {"drain", "large-64KiB"}}
    expected |= {(key, "worker CPU µs/job") for key in SCENARIOS - {"bg", "large-64KiB"}}
    expected |= {("large-64KiB", f"{side} CPU µs/MiB") for side in ("client", "worker")}
    expected.add(("large-64KiB", "MiB/s"))
    seen = set()
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        key, metric, new, new_spread, old_figure, old_spread, ratio = cells[:7]
        seen.add((key, metric))
        for cell in (new, new_spread, old_figure, old_spread, ratio):
            assert cell != "-", row
    assert seen == expected


def fake_revision(root: Path, *, thread_safe: bool) -> Path:
    """A tree laid out like ours whose gearman has the API names only, and a gearman.trio
    that cannot be imported (as where trio is not installed)."""
    (root / "gearman_proto").mkdir(parents=True)
    (root / "gearman_proto" / "__init__.py").write_text("")
    package = root / "bindings" / "gearman"
    package.mkdir(parents=True)
    runtime = "    runtime_factory = None\n" if thread_safe else ""
    (package / "__init__.py").write_text(
        "JOB_COMPLETE = JOB_CREATED = 'state'\n"
        "class GearmanClient:\n"
        f"{runtime}"
        "    submit_job = submit_multiple_jobs = None\n"
        "class GearmanWorker:\n"
        "    register_task = work = after_job = None\n"
    )
    (package / "trio.py").write_text("import trio_is_not_installed_here\n")
    return root


def test_a_revision_without_a_thread_safe_client_skips_conc(tmp_path: Path) -> None:
    root = fake_revision(tmp_path / "old", thread_safe=False)
    old = harness.make_ours("ours@old", root, "0" * 40, harness.BINDINGS["ours"])
    assert old.available, old.reason
    assert old.scenarios == harness.ALL_KINDS - {"conc"}
    assert "lacks GearmanClient.runtime_factory, so it skips conc" in old.note

    root = fake_revision(tmp_path / "new", thread_safe=True)
    new = harness.make_ours("ours@new", root, "1" * 40, harness.BINDINGS["ours"])
    assert new.available, new.reason
    assert new.scenarios == harness.ALL_KINDS
    assert not new.note


def test_the_trio_contender_is_left_out_where_gearman_trio_does_not_import(
    tmp_path: Path,
) -> None:
    root = fake_revision(tmp_path, thread_safe=True)
    trio = harness.make_ours("ours-trio", root, "tree", harness.BINDINGS["ours-trio"])
    assert not trio.available
    assert "gearman lacks trio.GearmanClient" in trio.reason
    assert "gearman.trio: ModuleNotFoundError" in trio.reason
    assert "trio_is_not_installed_here" in trio.reason


def test_report_rerenders_a_saved_run(tmp_path: Path) -> None:
    """``python -m benchmarks.report latest.json`` rebuilds latest.md from the JSON alone."""
    results = {
        "meta": {
            "machine": {
                "date": "today",
                "nproc": 2,
                "cpu": "cpu",
                "kernel": "k",
                "python": "3",
                "gearmand": "gearmand 1",
                "libgearman": "1",
            },
            "config": {
                "command": "benchmarks/run",
                "repeat": 1,
                "target_seconds": 0,
                "n": 3,
                "large_n": 1,
            },
            "duration_s": 1.0,
        },
        "contenders": [
            {
                "name": "ours",
                "label": "ours",
                "available": True,
                "reason": "",
                "python_peer": False,
            },
            {"name": "gear", "label": "gear", "available": True, "reason": "", "python_peer": True},
        ],
        "scenarios": [{"key": "fg", "kind": "fg", "unit": "jobs/s"}],
        "summary": {
            "fg": {
                "ours": {
                    "n": 3,
                    "throughput": 30.0,
                    "client_cpu": 1.0,
                    "worker_cpu": 2.0,
                    "errors": [],
                },
                "gear": {
                    "n": 3,
                    "throughput": 10.0,
                    "client_cpu": 4.0,
                    "worker_cpu": 1.0,
                    "errors": [],
                },
            }
        },
        "parser": None,
    }
    saved = tmp_path / "latest.json"
    saved.write_text(json.dumps(results))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", str(saved)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "latest.md").read_text()
    assert "| fg | jobs/s | 30.0 | 10.0 | - | 3.00 (gear) |" in table
    assert "| fg | client CPU µs/job | 1.00 | 4.00 | - | 0.25 (gear) |" in table


def test_floor_loops_run_and_report_each_layer(gearmand_path: str) -> None:
    """benchmarks/floor.py (raw socket, core alone, binding) still runs."""
    done = subprocess.run(
        [sys.executable, "benchmarks/floor.py", "--n", "30", "--repeat", "1"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names == ["raw", "core", "binding"]
    for line in done.stdout.splitlines():
        rate = float(line.split()[1].replace(",", ""))
        assert rate > 0, line
