"""Run gear's ``Server`` on one address until the process is killed.

The process `devtools.gear_server.GearServer` starts: standard library and
the ``gear`` package (OpenStack's Python Gearman server) only, run by path.

Usage: ``run_gear_server.py HOST PORT LOG_FILE READY_FILE``. gear logs every
packet it handles to LOG_FILE (INFO). Once the server listens (its bind and
listen are done in its constructor, its threads started), the process
writes its pid to READY_FILE. It exits with `PORT_TAKEN` when the port
cannot be bound, and otherwise runs until a signal ends it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

#: exit status when the port cannot be bound (EADDRINUSE's number on Linux).
PORT_TAKEN = 98


def main(argv: list[str]) -> int:
    """Start the server as *argv* says; return only when it could not start."""
    host, port, log_file, ready_file = argv
    logging.basicConfig(
        filename=log_file, level=logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    # Imported here, so that the parent can import PORT_TAKEN without gear.
    import gear  # noqa: PLC0415

    try:
        server = gear.Server(port=int(port), host=host)
    except Exception as error:  # gear raises a bare Exception when no bind works
        logging.exception("gear.Server(port=%s, host=%s) failed", port, host)
        return PORT_TAKEN if "Could not open socket" in str(error) else 1
    logging.info("listening on %s:%s (server %r)", host, server.port, server)
    with open(ready_file, "w", encoding="ascii") as ready:
        ready.write(f"{os.getpid()}\n")
    while True:  # gear's threads serve; SIGTERM or SIGKILL ends the process
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
