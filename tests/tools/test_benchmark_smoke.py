"""The end-to-end benchmark (benchmarks/run) still runs: a tiny workload, no timings asserted.

Our four bindings (blocking ``ours``, ``ours-trio``, ``ours-gevent``,
``ours-asyncio``) always take part, and in a git checkout also
``ours@HEAD``: the blocking binding of the last commit, extracted by the
harness, for the before/after comparison. libgearman's C contender takes
part when a compiler and libgearman's headers are installed (scripts/setup
installs both). The peers (gear, pygearman, aiogear) need their own virtual
environment, which needs a package index: gear and pygearman are left out,
and aiogear takes part only where ``benchmarks/.peers-venv`` is already
built and current (after a ``benchmarks/run``; never in a fresh clone, so
not in CI). Its conc runs may fail, but only with the defect the harness's
check finds in it (results delivered to the wrong submitter). The conc
check itself, the peers' install failures and the conc report are tested
without any peer.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks import harness, report

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = {"fg", "pipe", "conc", "bg", "drain", "large-64KiB"}
SMALL = {"fg", "pipe", "conc", "bg", "drain"}
#: The scenario keys each contender takes part in (the others' are all of SCENARIOS).
TAKES_PART = {
    "ours-trio": SMALL,
    "ours-gevent": SMALL,
    "ours-asyncio": SMALL,
    "aiogear": SMALL,
    "libgearman": SCENARIOS - {"conc"},
}
#: The only way a measurement may fail: aiogear's conc, with the defect the check finds.
AIOGEAR_DEFECT = re.compile(r"aiogear conc client: \d+ of 20 results belonged to another job")


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
    contenders = ["ours", "ours-trio", "ours-gevent", "ours-asyncio"]
    contenders += ["ours@HEAD"] if head else []
    contenders += ["libgearman"] if c_contender_can_build() else []
    contenders += ["aiogear"] if harness.peers_venv_is_current() else []
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
            if (key, name) == ("conc", "aiogear") and figures["errors"]:
                assert AIOGEAR_DEFECT.match(figures["errors"][0]), figures["errors"]
                continue
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
    assert "conc goal: conc jobs/s ÷ ours' fg jobs/s at least 1.5: ours-trio " in table
    assert ", ours-gevent " in table.split("conc goal:")[1].splitlines()[0]
    check_conc_table(table, contenders)
    failed = [line for line in done.stderr.splitlines() if "FAILED" in line]
    assert all(AIOGEAR_DEFECT.search(line) for line in failed), failed
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


def check_conc_table(table: str, contenders: list[str]) -> None:
    """The "conc beside fg" table: ours' fg first, then every contender's conc."""
    section = table[table.index("conc beside fg:") :].split("\n\n")[1]
    _header, _rule, *rows = section.splitlines()
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    labels = {name: harness.LABELS.get(name, name) for name in contenders}
    takers = [name for name in contenders if "conc" in TAKES_PART.get(name, SCENARIOS)]
    assert [(row[0], row[1]) for row in cells] == [(labels["ours"], "fg")] + [
        (labels[name], "conc") for name in takers
    ]
    assert cells[0][3] == "1.00"
    for row, name in zip(cells[1:], takers, strict=True):
        if row[6]:  # a problem: only aiogear's defect
            assert name == "aiogear", row
            assert AIOGEAR_DEFECT.search(row[6]), row
        else:
            assert row[2] != "-", row


def load_common() -> ModuleType:
    """benchmarks/contenders/_common.py, as the contender scripts import it."""
    path = REPO / "benchmarks" / "contenders" / "_common.py"
    spec = importlib.util.spec_from_file_location("bench_contender_common", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_conc_check_tells_results_delivered_to_the_wrong_job_from_wrong_ones() -> None:
    common = load_common()
    payloads = common.numbered_payloads(5, 16)
    assert len(set(payloads)) == 5
    assert all(len(payload) == 16 and payload.isdigit() for payload in payloads)
    tally = common.Tally([payload[::-1] for payload in payloads])
    claimed = [tally.claim() for _ in range(6)]
    assert claimed == [0, 1, 2, 3, 4, None]
    # Jobs 0 and 1 get each other's results (a mixed-up client), job 2 garbage.
    for index, result in [(0, payloads[1]), (1, payloads[0]), (2, b"?"), (3, payloads[3])]:
        tally.answer(index, result[::-1] if result != b"?" else result)
    assert tally.problems() == [
        "4 answers for 5 jobs",
        "2 of 5 results belonged to another job",
        "1 of 5 results were no job's answer",
    ]
    tally.answer(4, payloads[4][::-1])
    assert tally.problems() == [
        "2 of 5 results belonged to another job",
        "1 of 5 results were no job's answer",
    ]


def test_a_peer_that_cannot_be_installed_or_imported_is_left_out_with_the_reason() -> None:
    failed = harness.PeersVenv(Path(sys.executable), {"aiogear": "pip install aiogear failed"})
    left_out = harness.make_peer("aiogear", lambda: failed)
    assert not left_out.available
    assert left_out.reason == "pip install aiogear failed"
    # The project's .venv has no aiogear: as if it installed but did not import.
    installed = harness.PeersVenv(Path(sys.executable), {})
    broken = harness.make_peer("aiogear", lambda: installed)
    assert not broken.available
    assert broken.reason.startswith("import aiogear fails: ModuleNotFoundError")

    def no_venv() -> harness.PeersVenv:
        raise harness.HarnessError("python -m venv failed")

    assert harness.make_peer("gear", no_venv).reason == "python -m venv failed"


def test_requirements_are_read_one_per_distribution() -> None:
    text = "# peers\ngear==0.16.0\nPyGearman==0.2.6  # a fork\n\naiogear==0.2.6\n"
    assert harness.requirements(text) == {
        "gear": "gear==0.16.0",
        "pygearman": "PyGearman==0.2.6",
        "aiogear": "aiogear==0.2.6",
    }
    listed = harness.requirements(harness.PEERS_REQUIREMENTS.read_text())
    assert {peer.distribution for peer in harness.PEERS.values()} == set(listed)


def test_the_conc_goal_line_reads_three_decimals() -> None:
    summary = {
        "fg": {"ours": {"throughput": 1000.0}},
        "conc": {"ours-trio": {"throughput": 1498.0}, "ours-gevent": {"throughput": 2000.0}},
    }
    line = report.conc_target({"summary": summary})[1]
    assert line == (
        "conc goal: conc jobs/s ÷ ours' fg jobs/s at least 1.5: "
        "ours-trio 1.498 (not met), ours-gevent 2.000 (met)."
    )


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
