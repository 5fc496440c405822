"""Contender: the ``gearman`` command-line tool of gearman-tools (libgearman inside).

Only where the tool can express the work without forking per job:

* client bg: ``gearman -b -N -f reverse`` submits one background job per
  line of its standard input (N lines of the 16-byte payload);
* worker drain: ``gearman -w -c N -f reverse`` with no command is a sink
  worker: it writes each workload to its standard output (sent to
  /dev/null here) and completes the job without forking.

The tool is measured from the outside: ``elapsed`` is its whole run (process
start and connection included) and its CPU time comes from ``os.wait4``.
Its foreground worker mode runs a command per job, which measures fork and
exec rather than Gearman, so fg, pipe and large are not offered.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common


def run(options: _common.Options) -> None:
    tool = shutil.which("gearman")
    if tool is None:
        _common.fail("the gearman tool is not installed (apt-get install gearman-tools)")
    server = ["-h", options.host, "-p", str(options.port)]
    function = ["-f", _common.function_for(options.scenario)]
    payload = _common.make_payload(options.payload_size)
    if options.role == "client" and options.scenario == "bg":
        if b"\n" in payload:
            _common.fail("the gearman tool sends one job per line: payload must have no newline")
        command = [tool, *server, "-b", "-N", *function]
        stdin: int | None = subprocess.PIPE
        lines = (payload + b"\n") * options.n
    elif options.role == "worker" and options.scenario == "drain":
        command = [tool, *server, "-w", "-c", str(options.n), *function]
        stdin = subprocess.DEVNULL
        lines = b""
    else:
        _common.fail(f"the gearman tool does not take part in {options.role} {options.scenario}")

    started = time.perf_counter()
    process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.DEVNULL)
    if stdin == subprocess.PIPE:
        assert process.stdin is not None
        process.stdin.write(lines)
        process.stdin.close()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        _common.fail(f"{' '.join(command)} exited with status {process.returncode}")
    window = _common.Window()
    window.elapsed, window.utime, window.stime = elapsed, usage.ru_utime, usage.ru_stime
    _common.report(options, window, options.n, measured="whole process")


if __name__ == "__main__":
    opts = _common.parse_options()
    _common.start_watchdog(opts.timeout, f"gearman tool {opts.role} {opts.scenario}")
    run(opts)
