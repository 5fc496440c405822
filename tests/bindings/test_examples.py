"""The examples in examples/ run against a real gearmand and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gearman.testing import Gearmand, GearmandFactory

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_reverse_worker_and_client_reverse_hello_world(gearmand: Gearmand) -> None:
    worker = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "reverse_worker.py"), gearmand.address, "--count", "1"]
    )
    try:
        client = run_example("reverse_client.py", gearmand.address)
        assert client.returncode == 0, client.stderr
        assert client.stdout.startswith("Job ")
        assert client.stdout.endswith(" finished! Result: COMPLETE - !dlroW olleH\n")
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


@pytest.mark.parametrize(
    ("worker", "client", "many"),
    [
        ("trio_worker.py", "trio_client.py", "--tasks"),
        ("gevent_worker.py", "gevent_client.py", "--greenlets"),
        ("asyncio_worker.py", "asyncio_client.py", "--tasks"),
    ],
)
def test_concurrent_worker_and_client_reverse_words(
    gearmand: Gearmand, worker: str, client: str, many: str
) -> None:
    serving = subprocess.Popen(
        [sys.executable, str(EXAMPLES / worker), gearmand.address, "--count", "6"]
    )
    try:
        completed = run_example(client, gearmand.address, many, "6")
        assert completed.returncode == 0, completed.stderr
        assert completed.stdout.splitlines() == [
            f"word{index} -> {index}drow (COMPLETE)" for index in range(6)
        ]
        assert serving.wait(30) == 0, "the worker leaves on its own after 6 jobs"
    finally:
        if serving.poll() is None:
            serving.kill()
            serving.wait()


def test_reverse_client_reports_a_timeout_when_nobody_works(
    gearmand_factory: GearmandFactory,
) -> None:
    server = gearmand_factory()
    client = run_example("reverse_client.py", server.address, "--timeout", "0.3")
    assert client.returncode == 1
    assert client.stdout.endswith(" timed out!\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "progress.py",
            [
                "data: 4 words in line 1",
                "data: 2 words in line 2",
                "data: 3 words in line 3",
                "warnings: ['no warnings, just saying']",
                "last status: 3 / 3",
                "status updates: [(1, 3), (2, 3), (3, 3)]",
                "result: COMPLETE 9",
            ],
        ),
        ("json_encoder.py", ["result: COMPLETE {'name': 'primes', 'sum': 17, 'count': 4}"]),
        (
            "batch.py",
            [
                "accepted: 4 of 4",
                "alpha -> ALPHA (COMPLETE)",
                "beta -> BETA (COMPLETE)",
                "gamma -> GAMMA (COMPLETE)",
                "delta -> DELTA (COMPLETE)",
            ],
        ),
    ],
)
def test_example_prints_its_results(gearmand: Gearmand, name: str, expected: list[str]) -> None:
    completed = run_example(name, gearmand.address)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == expected
