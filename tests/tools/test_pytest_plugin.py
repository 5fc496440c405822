"""The ``pytest_gearman`` plugin as a user meets it: pytest runs of small test files.

Each run is a pytest subprocess (pytester) in a fresh directory. The plugin
reaches it the way an installed wheel registers it: a distribution on
``PYTHONPATH`` whose ``pytest11`` entry point is the one pyproject.toml
declares (the venv's own editable install may predate it). The inner runs
submit real jobs through the gearmand servers the fixtures start.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
#: The entry point pyproject.toml declares: ``name = module`` in group pytest11.
ENTRY_POINT = ("pytest_gearman", "pytest_gearman")


@pytest.fixture
def user(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose runs see the plugin's entry point, as an install of the wheel gives."""
    site = pytester.path.parent / f"{pytester.path.name}-site"
    dist_info = site / "gearman_plugin_probe-0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: gearman-plugin-probe\nVersion: 0\n"
    )
    name, module = ENTRY_POINT
    (dist_info / "entry_points.txt").write_text(f"[pytest11]\n{name} = {module}\n")
    path = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("CI", raising=False)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


_REVERSE = """
import threading

import gearman


class OneJobWorker(gearman.GearmanWorker):
    def after_job(self):
        return False  # leave work() after one job


def reverse(worker, job):
    return job.data[::-1]


def serve_one_job(host_list):
    worker = OneJobWorker(host_list)
    worker.register_task("reverse", reverse)
    thread = threading.Thread(target=worker.work, kwargs={"poll_timeout": 0.1}, daemon=True)
    thread.start()
    return thread


def reverse_through(host_list, text):
    thread = serve_one_job(host_list)
    with gearman.GearmanClient(host_list) as client:
        request = client.submit_job("reverse", text, poll_timeout=60)
    thread.join(60)
    assert not thread.is_alive()
    return request
"""


def test_a_user_submits_jobs_through_the_fixtures_servers(user: pytest.Pytester) -> None:
    user.makepyfile(
        helpers=_REVERSE,
        test_user="""
import gearman
from helpers import reverse_through


def test_session_server(gearmand):
    request = reverse_through([gearmand.address], "Hello World!")
    assert request.state == gearman.JOB_COMPLETE
    assert request.result == b"!dlroW olleH"


def test_a_server_of_its_own_restarts_on_its_port(gearmand_factory, gearmand):
    server = gearmand_factory(extra_args=["--job-handle-prefix", "P:mine"])
    assert server.port != gearmand.port
    port, pid = server.port, server.pid
    server.restart()
    assert (server.port, server.pid != pid) == (port, True)
    request = reverse_through([server.address], "abc")
    assert request.result == b"cba"
    assert request.job.handle.startswith("P:mine:")


def test_several_servers_one_of_them_down(gearmand_factory):
    servers = gearmand_factory.many(2)
    assert len(set(servers.host_list)) == 2
    servers[0].kill()
    request = reverse_through(servers.host_list, "failover")
    assert request.state == gearman.JOB_COMPLETE
    assert request.result == b"revoliaf"
""",
    )
    result = run(user, "-v")
    result.assert_outcomes(passed=3)


_REGISTERED_ONCE = """
import sys


def test_registered_once(request, gearmand):
    plugin = sys.modules["pytest_gearman"]
    manager = request.config.pluginmanager
    names = [name for name, registered in manager.list_name_plugin() if registered is plugin]
    assert names == ["pytest_gearman"]
    by_entry_point = any(p is plugin for p, _ in manager.list_plugin_distinfo())
    print("ENTRY POINT", by_entry_point)
    assert gearmand.address.startswith("127.0.0.1:")
"""


def test_a_conftest_that_lists_the_plugin_too_gets_it_once(user: pytest.Pytester) -> None:
    """tests/conftest.py's case once the wheel is installed: entry point and pytest_plugins."""
    user.makeconftest('pytest_plugins = ["pytest_gearman"]')
    user.makepyfile(test_once=_REGISTERED_ONCE)
    result = run(user, "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ENTRY POINT True*"])


def test_without_autoloading_the_conftest_loads_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/conftest.py's case with an install that predates the entry point."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_once=_REGISTERED_ONCE)
    run(pytester).stdout.fnmatch_lines(["*fixture 'gearmand' not found*"])
    pytester.makeconftest('pytest_plugins = ["pytest_gearman"]')
    run(pytester).assert_outcomes(passed=1)


def test_the_project_suite_collects_its_fixtures_both_ways(
    user: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our own tests/conftest.py, with the entry point and without autoloading."""
    target = str(REPO / "tests" / "tools" / "test_testing_gearmand.py")
    for autoload_off in (False, True):
        if autoload_off:
            monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        result = run(user, "--rootdir", str(REPO), "-k", "echo_round_trip", target)
        result.assert_outcomes(passed=1, deselected=result.parseoutcomes()["deselected"])


_OWN_FIXTURES = """
import sys

import pytest


@pytest.fixture
def gearmand():
    return "the project's own"
"""


@pytest.mark.parametrize("disabled", [False, True], ids=["plugin on", "-p no:gearman"])
def test_a_projects_own_fixtures_win_and_the_plugin_can_be_turned_off(
    user: pytest.Pytester, disabled: bool
) -> None:
    user.makeconftest(_OWN_FIXTURES)
    user.makepyfile(
        test_own="""
import sys


def test_own(request, gearmand):
    assert gearmand == "the project's own"
    print("PLUGIN", request.config.pluginmanager.has_plugin("pytest_gearman"))
    # loading the plugin imports nothing of gearman-proto: fixtures import it when they run
    assert not [m for m in sys.modules if m.split(".")[0] in ("gearman", "gearman_proto")]
""",
    )
    result = run(user, "-s", *(["-p", "no:gearman"] if disabled else []))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*PLUGIN {not disabled}*"])
    if disabled:
        result = run(user, "--fixtures", "-p", "no:gearman")
        assert "gearmand_factory" not in result.stdout.str()


def test_importing_the_plugin_imports_no_binding_nor_event_loop_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import pytest_gearman; "
        "print(sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] in ('gearman', 'gearman_proto', 'trio', 'gevent', 'asyncio')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_the_helpers_import_no_event_loop_library() -> None:
    code = (
        "import sys; import gearman.testing; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('trio', 'gevent')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "[]", done.stderr


# -- without gearmand ---------------------------------------------------------

_NO_GEARMAND_HERE = """
import gearman.testing._gearmand as server_module

server_module._KNOWN_LOCATIONS = ()  # with PATH emptied: as if gearmand were not installed
"""

_NEEDS_A_SERVER = """
def test_needs_a_server(gearmand):
    pass
"""


@pytest.fixture
def no_gearmand(user: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A user's project on a machine without gearmand (PATH has only python's directory)."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    monkeypatch.delenv("GEARMAND_PATH", raising=False)
    user.makeconftest(_NO_GEARMAND_HERE)
    user.makepyfile(test_server=_NEEDS_A_SERVER)
    return user


@pytest.mark.parametrize(
    ("ci", "policy", "outcome"),
    [
        (None, None, "skipped"),
        ("true", None, "error"),
        ("0", None, "skipped"),
        ("true", "skip", "skipped"),
        (None, "fail", "error"),
    ],
)
def test_without_gearmand_a_test_is_skipped_or_failed(
    no_gearmand: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ci: str | None,
    policy: str | None,
    outcome: str,
) -> None:
    if ci is not None:
        monkeypatch.setenv("CI", ci)
    args = ["-rsE"] + (["-o", f"gearmand_missing={policy}"] if policy else [])
    result = run(no_gearmand, *args)
    result.stdout.fnmatch_lines(["*gearmand is not installed*apt-get install gearman-job-server*"])
    if outcome == "skipped":
        result.assert_outcomes(skipped=1)
    else:  # a fixture that fails is reported as an error of the test's setup
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*so the test fails instead of skipping*"])


def test_a_gearmand_path_setting_that_names_no_executable_fails(
    no_gearmand: pytest.Pytester,
) -> None:
    result = run(
        no_gearmand, "-o", "gearmand_path=/nowhere/gearmand", "-o", "gearmand_missing=skip"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*gearmand_path: the configured gearmand*not an executable*"])


def test_a_relative_gearmand_path_is_taken_from_the_config_file(
    no_gearmand: pytest.Pytester, gearmand_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = no_gearmand.path / "tools" / "gearmand"
    link.parent.mkdir()
    link.symlink_to(gearmand_path)
    no_gearmand.makeini("[pytest]\ngearmand_path = tools/gearmand\n")
    no_gearmand.makepyfile(
        test_server=f"""
def test_needs_a_server(gearmand, gearmand_path):
    assert gearmand_path == {str(link)!r}
    assert gearmand.running
"""
    )
    elsewhere = no_gearmand.mkdir("elsewhere")
    monkeypatch.chdir(elsewhere)
    result = run(no_gearmand, str(no_gearmand.path / "test_server.py"))
    result.assert_outcomes(passed=1)


def test_an_unknown_gearmand_missing_value_is_a_usage_error(user: pytest.Pytester) -> None:
    user.makepyfile(test_server=_NEEDS_A_SERVER)
    result = run(user, "-o", "gearmand_missing=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*gearmand_missing = 'sometimes'*auto, skip, fail*"])


def readme_example(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    (example,) = [block for block in blocks if marker in block]
    return str(example)


def test_the_readme_pytest_example_passes(user: pytest.Pytester) -> None:
    user.makepyfile(test_readme=readme_example("def test_submit(gearmand)"))
    run(user).assert_outcomes(passed=2)


def test_the_readme_context_manager_example_runs(
    gearmand_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEARMAND_PATH", gearmand_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(readme_example("from gearman.testing import"), {})
    address, host_list = out.getvalue().splitlines()
    assert re.fullmatch(r"127\.0\.0\.1:\d+", address)
    assert re.fullmatch(r"\['127\.0\.0\.1:\d+'(, '127\.0\.0\.1:\d+'){2}\]", host_list)


def test_pyproject_declares_the_entry_point_these_runs_use() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    name, module = ENTRY_POINT
    assert project["entry-points"]["pytest11"] == {name: module}
