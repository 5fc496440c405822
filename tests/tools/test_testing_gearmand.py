"""`gearman.testing`: its `Gearmand`, `GearmandGroup` and `GearmandFactory`, checked
against real gearmand processes over raw sockets and by their pids.

`devtools.gearmand` (the same code for the project's scripts, loaded without
the ``gearman`` package) is checked here too.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import gearman.testing
from gearman.testing import (
    GEARMAND_PATH_VARIABLE,
    PORT_RANGE,
    Gearmand,
    GearmandError,
    GearmandFactory,
    GearmandGroup,
    GearmandNotFound,
    find_gearmand,
    pick_free_port,
    port_is_free,
)

REPO = Path(__file__).resolve().parents[2]

ECHO_REQ = b"\0REQ" + struct.pack(">II", 16, 5) + b"hello"
ECHO_RES = b"\0RES" + struct.pack(">II", 17, 5) + b"hello"


def connect(server: Gearmand) -> socket.socket:
    """Open a TCP connection to *server* with a timeout, so a test never hangs."""
    return socket.create_connection((server.host, server.port), timeout=5)


def recv_exactly(conn: socket.socket, size: int) -> bytes:
    """Read *size* bytes, failing the test if the server closes first."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def recv_line(conn: socket.socket) -> bytes:
    """Read one admin reply line, line end included."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def admin(server: Gearmand, command: bytes) -> bytes:
    """Send one single-line admin command and return its reply line."""
    with connect(server) as conn:
        conn.sendall(command + b"\n")
        return recv_line(conn)


def echo(conn: socket.socket) -> bytes:
    """Send ECHO_REQ "hello" and return the server's reply packet."""
    conn.sendall(ECHO_REQ)
    return recv_exactly(conn, len(ECHO_RES))


def assert_closed_by_peer(conn: socket.socket) -> None:
    """The server side of *conn* is gone: EOF, or a reset if data was in flight."""
    with contextlib.suppress(ConnectionResetError):
        assert conn.recv(100) == b""


def test_echo_round_trip_is_byte_exact(gearmand: Gearmand) -> None:
    with connect(gearmand) as conn:
        assert echo(conn) == ECHO_RES


def test_admin_version_answers_ok(gearmand: Gearmand) -> None:
    assert admin(gearmand, b"version").startswith(b"OK ")


def test_properties_describe_the_running_server(gearmand: Gearmand) -> None:
    low, high = PORT_RANGE
    assert gearmand.running
    assert gearmand.host == "127.0.0.1"
    assert low <= gearmand.port <= high
    assert gearmand.address == f"127.0.0.1:{gearmand.port}"
    assert admin(gearmand, b"getpid") == f"OK {gearmand.pid}\n".encode()
    assert "Starting up" in gearmand.log_text()


def assert_gone(pid: int) -> None:
    """No process has *pid* any more: it was stopped and reaped."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def answers_as(server: Gearmand) -> int:
    """The pid the process listening on *server*'s port reports (admin ``getpid``)."""
    reply = admin(server, b"getpid")
    assert reply.startswith(b"OK "), reply
    return int(reply[3:])


def test_servers_from_the_factory_get_their_own_ports(
    gearmand: Gearmand, gearmand_factory: GearmandFactory
) -> None:
    first, second = gearmand_factory(), gearmand_factory()
    assert len({gearmand.port, first.port, second.port}) == 3
    for server in (first, second):
        with connect(server) as conn:
            assert echo(conn) == ECHO_RES


def test_restart_keeps_the_port_and_serves_again(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory()
    port, old_pid = server.port, server.pid
    with connect(server) as old_conn:
        assert echo(old_conn) == ECHO_RES
        # The old process leaves this connection in FIN_WAIT/TIME_WAIT on the
        # server's port; gearmand's SO_REUSEADDR must still let the new one bind.
        server.restart()
        assert_closed_by_peer(old_conn)
    assert server.port == port
    assert server.pid != old_pid
    with connect(server) as conn:
        assert echo(conn) == ECHO_RES


def test_restart_after_kill_reuses_the_port(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory()
    port = server.port
    with connect(server) as conn:
        server.kill()
        assert_closed_by_peer(conn)
    server.restart()
    assert server.port == port
    assert admin(server, b"getpid") == f"OK {server.pid}\n".encode()


def test_kill_drops_connections_and_refuses_new_ones(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory()
    with connect(server) as conn:
        assert echo(conn) == ECHO_RES
        server.kill()
        assert not server.running
        assert_closed_by_peer(conn)
    with pytest.raises(ConnectionRefusedError):
        connect(server)


def test_stop_ends_the_process_and_keeps_the_log(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory()
    pid = server.pid
    server.stop()
    server.stop()  # a second stop is harmless
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "Starting up" in server.log_text()
    with pytest.raises(GearmandError):
        _ = server.pid


def test_context_manager_stops_the_server_and_removes_its_files(gearmand_path: str) -> None:
    with Gearmand(executable=gearmand_path) as server:
        pid, log_path = server.pid, server.log_path
        assert log_path.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not log_path.parent.exists()


def test_extra_args_and_verbose_reach_the_server(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory(verbose="DEBUG", extra_args=["--job-handle-prefix", "P:devtools"])
    assert admin(server, b"verbose") == b"OK DEBUG\n"
    body = b"reverse\0\0data"  # SUBMIT_JOB_BG: function, unique, data
    with connect(server) as conn:
        conn.sendall(b"\0REQ" + struct.pack(">II", 18, len(body)) + body)
        header = recv_exactly(conn, 12)
        magic, kind, size = struct.unpack(">4sII", header)
        assert (magic, kind) == (b"\0RES", 8)  # JOB_CREATED
        assert recv_exactly(conn, size) == b"P:devtools:1"


def test_a_taken_port_is_an_error_not_a_hang(
    gearmand: Gearmand, gearmand_factory: GearmandFactory
) -> None:
    with pytest.raises(GearmandError, match="another process"):
        gearmand_factory(port=gearmand.port)
    with connect(gearmand) as conn:
        assert echo(conn) == ECHO_RES


def test_startup_failure_reports_the_server_output(gearmand_factory: GearmandFactory) -> None:
    with pytest.raises(GearmandError, match="no-such-option"):
        gearmand_factory(extra_args=["--no-such-option"])


def test_pick_free_port_stays_below_the_ephemeral_range() -> None:
    port = pick_free_port()
    assert PORT_RANGE[0] <= port <= PORT_RANGE[1] < 32768
    assert port_is_free("127.0.0.1", port)


def test_start_after_the_server_died_on_its_own(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory()
    port = server.port
    pid = server.pid
    os.kill(pid, signal.SIGKILL)  # not through kill(): a crash
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped
    assert not server.running
    server.start()
    assert server.port == port
    with connect(server) as conn:
        assert echo(conn) == ECHO_RES


# -- finding gearmand ---------------------------------------------------------


@pytest.fixture
def linked_gearmand(gearmand_path: str, tmp_path: Path) -> str:
    """The real gearmand under another name, in a directory that is not on PATH."""
    link = tmp_path / "bin" / "my-gearmand"
    link.parent.mkdir()
    link.symlink_to(gearmand_path)
    return str(link)


def test_find_gearmand_takes_the_environment_variable_then_the_setting(
    linked_gearmand: str, gearmand_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(GEARMAND_PATH_VARIABLE, raising=False)
    assert find_gearmand() is not None
    assert find_gearmand(linked_gearmand) == linked_gearmand
    monkeypatch.setenv(GEARMAND_PATH_VARIABLE, linked_gearmand)
    assert find_gearmand() == linked_gearmand
    assert find_gearmand(gearmand_path) == gearmand_path  # the setting comes first


def test_a_named_gearmand_that_is_not_an_executable_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain_file = tmp_path / "gearmand"
    plain_file.write_text("not a program")
    with pytest.raises(GearmandNotFound, match="configured gearmand"):
        find_gearmand(str(plain_file))
    monkeypatch.setenv(GEARMAND_PATH_VARIABLE, str(tmp_path / "missing"))
    with pytest.raises(GearmandNotFound, match=GEARMAND_PATH_VARIABLE):
        find_gearmand()
    with pytest.raises(GearmandNotFound, match=GEARMAND_PATH_VARIABLE):
        Gearmand().start()


def test_start_runs_the_gearmand_the_environment_names(
    linked_gearmand: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GEARMAND_PATH_VARIABLE, linked_gearmand)
    with Gearmand() as server:
        argv = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[0] == linked_gearmand.encode()
        assert answers_as(server) == server.pid


def test_an_executable_that_cannot_run_is_gearmand_not_found(tmp_path: Path) -> None:
    server = Gearmand(executable=str(tmp_path / "nowhere" / "gearmand"))
    with pytest.raises(GearmandNotFound, match="cannot run"):
        server.start()
    assert not server.running
    server.close()


# -- several servers ----------------------------------------------------------


def test_a_group_starts_distinct_servers_and_closes_them_by_pid(gearmand_path: str) -> None:
    with GearmandGroup(3, executable=gearmand_path) as group:
        assert len(group) == 3
        assert group.host_list == [f"127.0.0.1:{server.port}" for server in group]
        assert len(set(group.host_list)) == 3
        pids = [answers_as(server) for server in group]
        assert pids == [server.pid for server in group]
        workdirs = [server.log_path.parent for server in group]
        group[1].kill()  # each server keeps its own life cycle
        group[2].restart()
        assert answers_as(group[2]) == group[2].pid != pids[2]
        pids.append(group[2].pid)
    for pid in pids:
        assert_gone(pid)
    assert not any(workdir.exists() for workdir in workdirs)


def test_a_group_starts_all_or_none(gearmand: Gearmand, gearmand_path: str) -> None:
    already = Gearmand(executable=gearmand_path).start()
    fresh = Gearmand(executable=gearmand_path)
    clashing = Gearmand(executable=gearmand_path, port=gearmand.port)
    try:
        with pytest.raises(GearmandError, match="another process"):
            GearmandGroup([already, fresh, clashing]).start()
        assert not fresh.running  # started by that call, so closed again
        with pytest.raises(ConnectionRefusedError):
            connect(fresh)
        assert fresh.log_text() == ""  # its files are gone ("Starting up" was logged)
        assert answers_as(already) == already.pid  # not the call's to stop
        assert answers_as(gearmand) == gearmand.pid
    finally:
        for server in (already, fresh, clashing):
            server.close()


def test_a_group_refuses_options_it_cannot_apply(gearmand_path: str) -> None:
    with pytest.raises(ValueError, match="at least one"):
        GearmandGroup(0)
    with pytest.raises(TypeError, match="given ones"):
        GearmandGroup([Gearmand()], verbose=None)


def test_the_factory_closes_every_server_it_made_by_pid(gearmand_path: str) -> None:
    with GearmandFactory(executable=gearmand_path, verbose=None) as factory:
        single = factory(verbose="DEBUG")  # a call's options override the defaults
        group = factory.many(2)
        with pytest.raises(GearmandError, match="no-such-option"):
            factory(extra_args=["--no-such-option"])
        assert factory.servers[:3] == (single, *group)
        assert admin(single, b"verbose") == b"OK DEBUG\n"
        assert admin(group[0], b"verbose") == b"OK ERROR\n"
        pids = [single.pid, group[0].pid, group[1].pid]
        group[0].kill()
        single.stop()
        workdirs = [server.log_path.parent for server in factory.servers]
        assert all(workdir.exists() for workdir in workdirs)  # the failed one's too
    for pid in pids:
        assert_gone(pid)
    assert not any(workdir.exists() for workdir in workdirs)
    assert not any(server.running for server in factory.servers)


_LEFT_RUNNING = """
import json, sys
from gearman.testing import Gearmand, GearmandGroup
single = Gearmand(executable=sys.argv[1]).start()
group = GearmandGroup(2, executable=sys.argv[1]).start()
servers = [single, *group]
print(json.dumps([[s.pid, str(s.log_path.parent)] for s in servers]), flush=True)
# exits without stopping anything
"""


def test_servers_left_running_are_stopped_at_interpreter_exit(gearmand_path: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LEFT_RUNNING, gearmand_path],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    started = json.loads(done.stdout.splitlines()[-1])
    assert len(started) == 3
    for pid, workdir in started:
        assert_gone(pid)
        assert not Path(workdir).exists()


# -- what the package may import ----------------------------------------------


def _module_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import of {node.module!r}"
            names.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
    return names


def test_the_server_module_uses_the_standard_library_only() -> None:
    """devtools.gearmand loads the file by its path: no package, no relative import."""
    source = Path(gearman.testing.__file__).with_name("_gearmand.py")
    foreign = _module_level_imports(source) - sys.stdlib_module_names - {"__future__"}
    assert not foreign


_WITHOUT_OUR_GEARMAN = """
import sys
import devtools.gearmand as d
assert "gearman" not in sys.modules, sorted(sys.modules)
with d.Gearmand(executable=sys.argv[1]) as server:
    print(server.address, server.pid, flush=True)
"""


def test_devtools_gearmand_works_where_gearman_is_another_package(
    gearmand_path: str, tmp_path: Path
) -> None:
    """As in benchmarks/.peers-venv, where pygearman owns the name ``gearman``."""
    stand_in = tmp_path / "site" / "gearman"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text(
        '__version__ = "0.2.6"\nraise ImportError("the stand-in for pygearman was imported")\n'
    )
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OUR_GEARMAN, gearmand_path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(stand_in.parent), str(REPO)])},
    )
    assert done.returncode == 0, done.stderr
    address, pid = done.stdout.split()
    assert address.startswith("127.0.0.1:")
    assert_gone(int(pid))


_SHARED = """
import gearman.testing, devtools.gearmand
assert devtools.gearmand.Gearmand is gearman.testing.Gearmand
assert devtools.gearmand.GearmandError is gearman.testing.GearmandError
print("shared")
"""


def test_devtools_gearmand_shares_the_binding_module_once_it_is_imported() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SHARED],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "bindings")])},
    )
    assert done.stdout.strip() == "shared", done.stderr
