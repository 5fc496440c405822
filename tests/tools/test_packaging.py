"""What users get from the built distributions, checked on the built files.

The sdist must be the project whole enough to run its own test suite; the
wheel must hold both packages, typed, with the license and the version of
``gearman_proto``; its extras must name only what the code imports; and
user code type-checked against the installed wheel must see real types.
"""

from __future__ import annotations

import ast
import email.message
import email.parser
import json
import os
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from _dists import JUNK, REPO, Distributions, WheelVenv, checked, clean_env, run
from packaging.requirements import Requirement

import gearman
import gearman_proto

#: the checkout's top directories and files the sdist holds (PKG-INFO is added by the build).
SDIST_ROOTS = {
    "gearman_proto",
    "bindings",
    "tests",
    "devtools",
    "examples",
    "fuzz",
    "benchmarks",
    "scripts",
    "docs",
}
SDIST_FILES = {"README.md", "LICENSE", "pyproject.toml", ".gitignore"}

#: a fast part of the suite run inside the unpacked sdist: no real-server
#: scenarios, no long property runs, and not this file (which would recurse).
SDIST_SUBSET = [
    "tests/core",
    "--ignore=tests/core/test_real_server_core.py",
    "--ignore=tests/core/test_properties.py",
    "--ignore=tests/core/test_state_machines.py",
    "tests/bindings/test_kernel_purity.py",
    "tests/tools/test_benchmark_smoke.py",
    "--deselect=tests/tools/test_benchmark_smoke.py"
    "::test_benchmark_runs_every_scenario_and_writes_valid_results",
]

#: a pytest plugin for the runs in the sdist: where every imported module came from.
GUARD = """
import json, os, sys

def pytest_unconfigure(config):
    files = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
    with open(os.environ["SDIST_GUARD_REPORT"], "w") as report:
        json.dump({name: path for name, path in files.items() if path}, report)
"""


def source_version() -> str:
    """``__version__`` as gearman_proto/__init__.py assigns it (read, not imported)."""
    tree = ast.parse((REPO / "gearman_proto" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            "__version__"
        ]:
            assert isinstance(node.value, ast.Constant)
            assert isinstance(node.value.value, str)
            return node.value.value
    raise AssertionError("gearman_proto/__init__.py assigns no __version__")


def checkout_files() -> set[str]:
    """The checkout's files git does not ignore, as paths from its root."""
    listing = checked(
        run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            env=clean_env(),
        )
    )
    return {name for name in listing.stdout.split("\0") if name and (REPO / name).is_file()}


def wheel_metadata(wheel: Path) -> email.message.Message:
    """The wheel's METADATA, parsed."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.BytesParser().parsebytes(archive.read(name))


# ------------------------------------------------------------------ the sdist


@pytest.fixture(scope="module")
def unpacked_sdist(
    built_distributions: Distributions, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The sdist, unpacked; its one top directory."""
    target = tmp_path_factory.mktemp("sdist")
    with tarfile.open(built_distributions.sdist) as archive:
        # the "data" filter where this Python has it (3.10.12+, 3.11.4+)
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(target, **safe)
    (top,) = target.iterdir()
    return top


def run_pytest_in(root: Path, *arguments: str) -> tuple[str, dict[str, str]]:
    """pytest (this environment's) on *root*'s own code, from inside it.

    Returns its output and where each module it imported came from.
    """
    guard = root.parent / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sdist_guard.py").write_text(GUARD)
    report = guard / "modules.json"
    pythonpath = os.pathsep.join([str(root), str(root / "bindings"), str(guard)])
    result = run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "sdist_guard", *arguments],
        cwd=root,
        env=clean_env(PYTHONPATH=pythonpath, SDIST_GUARD_REPORT=str(report)),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]  # pytest's summary is at the end

    return output, json.loads(report.read_text())


def foreign_modules(modules: dict[str, str], root: Path) -> dict[str, str]:
    """The modules that came neither from *root* nor from this Python's own installation."""
    allowed = [
        root.parent,
        *{
            Path(p).resolve()
            for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
        },
    ]
    return {
        name: path
        for name, path in modules.items()
        if not any(Path(path).resolve().is_relative_to(base) for base in allowed)
    }


def collected_ids(output: str) -> list[str]:
    return [line for line in output.splitlines() if "::" in line]


def test_the_sdist_holds_the_checkout_that_the_suite_needs_and_no_junk(
    built_distributions: Distributions, unpacked_sdist: Path
) -> None:
    shipped = {
        path.relative_to(unpacked_sdist).as_posix()
        for path in unpacked_sdist.rglob("*")
        if path.is_file()
    }
    expected = {
        name
        for name in checkout_files()
        if name.split("/")[0] in SDIST_ROOTS or name in SDIST_FILES
    } | {"PKG-INFO"}
    assert sorted(shipped - expected) == []
    assert sorted(expected - shipped) == []
    assert not set(JUNK) & shipped
    assert (unpacked_sdist / "LICENSE").read_bytes() == (REPO / "LICENSE").read_bytes()
    pkg_info = email.parser.BytesParser().parsebytes((unpacked_sdist / "PKG-INFO").read_bytes())
    assert pkg_info["License-Expression"] == "Apache-2.0"
    assert pkg_info["Version"] == source_version()


def test_the_sdist_collects_the_whole_suite_from_its_own_files(unpacked_sdist: Path) -> None:
    """Every test of the checkout, and nothing imported from outside the sdist."""
    output, modules = run_pytest_in(unpacked_sdist, "--collect-only", "-q", "tests")
    assert re.search(r"^\d+ tests collected in ", output, flags=re.M), output  # no "errors"
    theirs = checked(
        run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "--collect-only",
                "-q",
                "tests",
            ],
            cwd=REPO,
            env=clean_env(PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "bindings")])),
        )
    )
    assert collected_ids(output) == collected_ids(theirs.stdout)
    assert foreign_modules(modules, unpacked_sdist) == {}
    for name in ("gearman_proto", "gearman", "devtools", "benchmarks", "fuzz_harness"):
        assert Path(modules[name]).is_relative_to(unpacked_sdist), (name, modules[name])


def test_a_fast_part_of_the_suite_passes_in_the_sdist(unpacked_sdist: Path) -> None:
    output, modules = run_pytest_in(unpacked_sdist, "-q", *SDIST_SUBSET)
    summary = output.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), output
    assert not re.search(r"failed|error", summary), output
    assert foreign_modules(modules, unpacked_sdist) == {}
    assert Path(modules["gearman_proto"]).is_relative_to(unpacked_sdist)


# ------------------------------------------------------------------ the wheel


#: the names in bindings/ that are Python packages or modules (what the wheel ships from it).
SHIPPED = {
    path.name
    for path in (REPO / "bindings").iterdir()
    if (path / "__init__.py").is_file() or (path.suffix == ".py" and path.is_file())
}


def test_the_wheel_holds_both_typed_packages_the_license_and_nothing_else(
    built_distributions: Distributions,
) -> None:
    with zipfile.ZipFile(built_distributions.wheel) as archive:
        names = set(archive.namelist())
        license_text = archive.read(f"gearman_proto-{source_version()}.dist-info/licenses/LICENSE")
    dist_info = f"gearman_proto-{source_version()}.dist-info"
    # gearman_proto, and what bindings/ holds (the gearman package), at the top:
    # no tests, devtools or other checkout directories
    bindings = {path.name for path in (REPO / "bindings").iterdir() if path.name in SHIPPED}
    assert {name.split("/")[0] for name in names} == {"gearman_proto", dist_info, *bindings}
    assert "gearman" in bindings
    assert {"gearman_proto/py.typed", "gearman/py.typed"} <= names
    assert license_text == (REPO / "LICENSE").read_bytes()
    sources = {
        re.sub(r"^bindings/", "", name)
        for name in checkout_files()
        if name.startswith(("gearman_proto/", "bindings/"))
    }
    assert {name for name in names if not name.startswith(dist_info)} == sources


def test_the_wheel_metadata_names_the_license_the_version_and_the_pythons(
    built_distributions: Distributions,
) -> None:
    metadata = wheel_metadata(built_distributions.wheel)
    assert metadata["Version"] == source_version()
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Requires-Python"] == ">=3.10"
    pythons = {
        classifier.rsplit(" :: ", 1)[1]
        for classifier in metadata.get_all("Classifier") or []
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", classifier)
    }
    assert pythons == {"3.10", "3.11", "3.12", "3.13"}
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in pythons


def test_the_installed_wheel_is_imported_with_the_distribution_version(
    installed_wheel_venv: WheelVenv,
) -> None:
    probe = checked(
        installed_wheel_venv.run(
            "-c",
            "import importlib.metadata, gearman, gearman.asyncio, gearman_proto\n"
            "print(importlib.metadata.version('gearman-proto'))\n"
            "print(gearman_proto.__version__)\n"
            "print(gearman.__version__)\n"
            "print(gearman_proto.__file__)\n"
            "print(gearman.__file__)\n",
        )
    )
    distribution, core, compat, core_file, compat_file = probe.stdout.split("\n")[:5]
    assert distribution == core == source_version()
    assert compat == gearman.__version__ == "2.0.2"  # python-gearman's, for code that checks it
    assert Path(core_file).is_relative_to(installed_wheel_venv.site_packages)
    assert Path(compat_file).is_relative_to(installed_wheel_venv.site_packages)


@pytest.mark.parametrize("package", [gearman_proto, gearman], ids=lambda p: p.__name__)
def test_each_package_is_marked_typed(package: object) -> None:
    """PEP 561: without ``py.typed``, mypy treats every name of the package as Any."""
    marker = Path(package.__file__).parent / "py.typed"  # type: ignore[attr-defined]
    assert marker.is_file()
    assert marker.read_bytes() == b""


def test_this_checkout_has_the_version_it_builds() -> None:
    assert gearman_proto.__version__ == source_version()


# ------------------------------------------------------------------- the extras

#: names that are imported but ours: the checkout's top-level files and
#: directories, what bindings/ holds, the suite's own plugin modules in tests/
#: (on the path of every test: the rootdir conftest's directory), and the fuzz
#: harness as its test loads it.
FIRST_PARTY = {
    path.stem
    for path in [*REPO.iterdir(), *(REPO / "bindings").iterdir(), *(REPO / "tests").iterdir()]
} | {"fuzz_harness"}


def third_party_imports(*roots: str) -> set[str]:
    """Top-level names imported by the Python files under *roots* that are neither
    the standard library's nor ours (nor a module beside the importing file)."""
    names = set()
    for root in roots:
        for path in (REPO / root).rglob("*.py"):
            # a script's directory is on its path; a package's is not
            script_dir = not (path.parent / "__init__.py").exists()
            beside = {sibling.stem for sibling in path.parent.iterdir()} if script_dir else set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    found = [node.module]
                else:
                    continue
                names |= {name.split(".")[0] for name in found}
                names -= set(sys.stdlib_module_names) | FIRST_PARTY | beside
    return names


def extra(metadata: email.message.Message, name: str) -> set[str]:
    """The distribution names the extra *name* installs (on this platform)."""
    requirements = [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]
    return {
        r.name.lower()
        for r in requirements
        if r.marker is not None and r.marker.evaluate({"extra": name})
    }


#: every package outside the standard library that the wheel's code imports,
#: and why a user who imports that code has it.
WHEEL_IMPORTS = {
    "trio": "gearman.trio's runtime; the trio extra installs it",
    "gevent": "gearman.gevent's runtime; the gevent extra installs it",
    "pytest": "only a pytest plugin module (pytest11 entry point), which pytest itself loads",
}

#: what the test extra holds that no test imports, and where each is used.
TEST_TOOLS = {
    "pytest-cov": ("scripts/test", "--cov="),
    "pytest-timeout": ("pyproject.toml", "\ntimeout = "),
    "mypy": ("scripts/test", "-m mypy"),
    "ruff": ("scripts/test", "-m ruff"),
    "types-gevent": ("bindings/gearman/_gevent.py", "import gevent"),  # stubs for mypy
    "build": ("tests/tools/_dists.py", '"-m", "build"'),
}


def test_the_extras_install_what_the_code_imports_and_nothing_else(
    built_distributions: Distributions,
) -> None:
    metadata = wheel_metadata(built_distributions.wheel)
    requirements = [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]
    assert [r for r in requirements if r.marker is None] == []  # the core needs nothing
    assert set(metadata.get_all("Provides-Extra") or []) == {
        "trio",
        "gevent",
        "test",
        "fuzz",
        "bench",
    }
    # gearman.trio and gearman.gevent are what their extras are for; nothing else
    # the wheel ships imports a package the user did not ask for.
    assert third_party_imports("gearman_proto") == set()
    assert {"trio", "gevent"} <= third_party_imports("bindings") <= set(WHEEL_IMPORTS)
    assert "pytest" not in third_party_imports("bindings/gearman")
    assert extra(metadata, "trio") == {"trio"}
    assert extra(metadata, "gevent") == {"gevent"}
    assert extra(metadata, "fuzz") == third_party_imports("fuzz") == {"atheris"}
    assert extra(metadata, "bench") == {"matplotlib"}
    assert "matplotlib" in third_party_imports("benchmarks")


def test_the_test_extra_holds_what_the_suite_imports_and_the_tools_it_runs(
    built_distributions: Distributions,
) -> None:
    test = extra(wheel_metadata(built_distributions.wheel), "test")
    imported = third_party_imports("tests", "devtools", "examples")
    assert imported <= test
    assert test - imported == set(TEST_TOOLS)
    for path, needle in TEST_TOOLS.values():
        assert needle in (REPO / path).read_text(), (path, needle)


# -------------------------------------------------------------------- the types

USER_CODE = Path(__file__).with_name("wheel_user_code.py")


def expected_reveals() -> dict[int, str]:
    """Line number -> the type each ``reveal_type`` line of the user code expects."""
    reveals = {}
    for number, line in enumerate(USER_CODE.read_text().splitlines(), start=1):
        if "reveal_type(" in line:
            reveals[number] = line.split("# -> ", 1)[1].strip()
    return reveals


def test_user_code_type_checks_strictly_against_the_installed_wheel(
    installed_wheel_venv: WheelVenv,
) -> None:
    """python-gearman style code sees the wheel's real types, not Any."""
    workdir = installed_wheel_venv.workdir / "typecheck"
    workdir.mkdir()
    (workdir / USER_CODE.name).write_text(USER_CODE.read_text())
    result = installed_wheel_venv.run(
        "-m",
        "mypy",
        "--strict",
        "--no-incremental",
        "--show-error-codes",
        USER_CODE.name,
        cwd=workdir,
    )
    output = result.stdout + result.stderr
    revealed = {
        int(number): kind.replace("builtins.", "")
        for number, kind in re.findall(
            rf'^{re.escape(USER_CODE.name)}:(\d+): note: Revealed type is "(.*)"$',
            output,
            flags=re.M,
        )
    }
    errors = [line for line in output.splitlines() if ": error:" in line]
    assert errors == []
    assert result.returncode == 0, output
    expected = {n: kind.replace("builtins.", "") for n, kind in expected_reveals().items()}
    assert revealed == expected
    assert all("Any" not in kind for kind in revealed.values())


def test_the_installed_wheel_registers_the_pytest_plugin_and_its_fixture_runs_a_job(
    installed_wheel_venv: WheelVenv,
) -> None:
    # What a user gets from `pip install gearman-proto pytest`: the pytest11
    # entry point, a plugin that imports nothing of ours until a fixture runs,
    # and the README's example passing against a real gearmand.
    installed_wheel_venv.install(f"pytest=={pytest.__version__}")
    probe = checked(
        installed_wheel_venv.run(
            "-c",
            "import importlib.metadata as m, sys\n"
            "eps = {e.name: e.value for e in m.entry_points(group='pytest11')}\n"
            "print(eps.get('pytest_gearman'))\n"
            "import pytest_gearman\n"
            "ours = ('gearman', 'gearman_proto')\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ours))\n"
            "from gearman.testing import Gearmand, GearmandFactory, GearmandGroup\n",
        )
    )
    entry_point, loaded = probe.stdout.splitlines()[:2]
    assert entry_point == "pytest_gearman"
    assert loaded == "[]"
    tests = installed_wheel_venv.workdir / "plugin_user"
    tests.mkdir(exist_ok=True)
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    (example,) = [block for block in blocks if "def test_submit(gearmand)" in block]
    (tests / "test_readme_example.py").write_text(example)
    result = installed_wheel_venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
