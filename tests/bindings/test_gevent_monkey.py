"""The shared binding scenarios for gevent once more, under ``gevent.monkey.patch_all()``.

The ``runtime`` fixture runs them for gevent in this process, unpatched.
Here a subprocess patches everything before anything else is imported,
then runs the same files, the same conftest, for the gevent runtime only
(``GEARMAN_TEST_RUNTIMES=gevent``, ``-k gevent``): the binding on patched
sockets, threads that are greenlets, a patched ``time.sleep`` and
``subprocess``.  It must pass every one of them: as many as a plain
collection of the same selection finds, none skipped, none failed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

#: the shared binding suite, as paths from the repository's root.
SHARED = sorted(str(path.relative_to(ROOT)) for path in HERE.glob("test_binding_*.py"))

#: pytest's arguments in both runs: the gevent share of the shared suite.
SELECTION = ["-p", "no:cacheprovider", "-q", "-k", "gevent", *SHARED]

#: the subprocess: patch first, check it took, then pytest.
PATCHED = (
    "from gevent import monkey; monkey.patch_all()\n"
    "import sys, threading\n"
    "assert monkey.is_module_patched('socket') and monkey.is_module_patched('threading')\n"
    "assert monkey.is_module_patched('time') and monkey.is_module_patched('subprocess')\n"
    "import pytest\n"
    "sys.exit(pytest.main(sys.argv[1:]))\n"
)

#: seconds the patched run may take (the gevent share takes about 30 s alone).
RUN_TIMEOUT = 600


def _pytest(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "pytest"]
    return subprocess.run(
        [*command, *args],
        cwd=ROOT,
        env={**os.environ, "GEARMAN_TEST_RUNTIMES": "gevent"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def _summary(output: str) -> dict[str, int]:
    """The counts of pytest's last summary line: ``{"passed": 136, "deselected": 193}``."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert lines, "pytest printed nothing"
    counts = re.findall(r"(\d+) (\w+)", lines[-1].strip("= "))
    return {word: int(number) for number, word in counts}


@pytest.mark.timeout(RUN_TIMEOUT + 120)
def test_the_shared_scenarios_pass_for_gevent_under_monkey_patching(gearmand_path: str) -> None:
    # gearmand_path: skipped (failed under CI) like the shared tests if there is no gearmand
    collected = _pytest("--collect-only", *SELECTION)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    expected = [line for line in collected.stdout.splitlines() if "::" in line]
    assert expected, collected.stdout
    assert all("gevent" in line.partition("[")[2] for line in expected), expected

    patched = _pytest(*SELECTION, code=PATCHED)
    report = patched.stdout[-6000:] + patched.stderr[-4000:]
    assert patched.returncode == 0, report
    summary = _summary(patched.stdout)
    assert summary.get("passed") == len(expected), (summary, len(expected), report)
    assert set(summary) <= {"passed", "deselected", "warning", "warnings"}, (summary, report)
