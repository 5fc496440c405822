"""The main demo (``./scripts/demo``): reverse "Hello World!" through a real gearmand.

Starts a private gearmand on a free loopback port, runs
``examples/reverse_worker.py`` and ``examples/reverse_client.py`` against it
as separate processes, prints the client's output, and always stops the
worker and the server again. Exit status: 0 on success, 1 otherwise.

Run it as ``python -m devtools.demo`` from the repository root.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devtools.gearmand import Gearmand, GearmandError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Seconds the client may take for the whole job.
CLIENT_TIMEOUT = 60.0
#: Seconds the worker gets to exit on its own after its one job, or after SIGTERM.
WORKER_EXIT_TIMEOUT = 10.0


def _example(name: str, address: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / name), address]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate *process* if it is still running; kill it if it ignores that."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(WORKER_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_demo() -> int:
    """Run gearmand, the worker and the client once; return the exit status."""
    with Gearmand(verbose=None) as server:
        print(f"gearmand {server.address} (pid {server.pid})", flush=True)
        worker = subprocess.Popen([*_example("reverse_worker.py", server.address), "--count", "1"])
        try:
            client = subprocess.run(
                _example("reverse_client.py", server.address),
                stdout=subprocess.PIPE,
                text=True,
                timeout=CLIENT_TIMEOUT,
                check=False,
            )
            print(client.stdout, end="", flush=True)
            if client.returncode != 0:
                print(f"demo: the client exited with status {client.returncode}", file=sys.stderr)
                return 1
            try:
                status = worker.wait(WORKER_EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                print("demo: the worker did not exit after its job", file=sys.stderr)
                return 1
            if status != 0:
                print(f"demo: the worker exited with status {status}", file=sys.stderr)
                return 1
        finally:
            _stop(worker)
    print("gearmand stopped")
    return 0


def main() -> int:
    """Command-line entry point: `run_demo` with readable errors instead of tracebacks."""
    try:
        return run_demo()
    except subprocess.TimeoutExpired as exc:
        print(f"demo: the client gave no result within {exc.timeout} s", file=sys.stderr)
    except GearmandError as exc:
        print(f"demo: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
