"""The project as users get it: its sdist and wheel, and a fresh venv with the wheel.

Owns: building both distributions the way a release does (``python -m
build``: the sdist, then the wheel from that sdist) from a copy of the
checkout, and making a virtual environment that has the wheel installed and
nothing of the checkout on its path.  The fixtures of
``tests/tools/conftest.py`` call these once per session.  Does not own: the
checks on what is built (``test_packaging.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: what development leaves in a checkout (each named by .gitignore or
#: fuzz/.gitignore): planted in the copy the sdist is built from, so the
#: tests can check that none of it ships.
JUNK = (
    ".venv/bin/python",
    ".hypothesis/examples/0",
    ".mypy_cache/3.11/cache.json",
    ".coverage",
    "build/lib/gearman/__init__.py",
    "dist/gearman_proto-0.0.0.tar.gz",
    "gearman_proto.egg-info/PKG-INFO",
    "gearman_proto/__pycache__/_wire.cpython-311.pyc",
    "bindings/gearman/__pycache__/client.cpython-311.pyc",
    "tests/core/__pycache__/test_golden.cpython-311-pytest.pyc",
    "fuzz/crashes/client/crash-0",
    "fuzz/work/client/seed-0",
    "fuzz/work/client.log",
    "benchmarks/.peers-venv/bin/python",
    "benchmarks/.build/gmbench",
    "benchmarks/results/20260101-000000/results.json",
    "crash-0",
)

#: environment variables that would point a child Python at the checkout.
_LEAKY = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "MYPYPATH", "VIRTUAL_ENV")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what points Python at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY and not k.startswith("COV_")}
    env.update(extra)
    return env


def run(
    command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run *command*, capturing its output as text; never raises for its exit status."""
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def checked(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """*result* if the command succeeded; else an AssertionError with its output."""
    assert result.returncode == 0, (
        f"{result.args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def copy_checkout(target: Path) -> Path:
    """The files of the checkout that git does not ignore, copied under *target*,
    plus :data:`JUNK`; returns *target*."""
    listing = checked(
        run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            env=clean_env(),
        )
    )
    for name in listing.stdout.split("\0"):
        source = REPO / name
        if name and source.is_file():  # a file deleted but not yet committed is skipped
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for name in JUNK:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(b"junk\n")
    return target


@dataclass(frozen=True)
class Distributions:
    """The sdist and the wheel built from it."""

    sdist: Path
    wheel: Path


def build_distributions(workdir: Path) -> Distributions:
    """``python -m build`` on a copy of the checkout (with :data:`JUNK`) in *workdir*."""
    source = copy_checkout(workdir / "checkout")
    dist = workdir / "dist"
    checked(
        run(
            [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
            cwd=workdir,
            env=clean_env(),
        )
    )
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    return Distributions(sdist=sdist, wheel=wheel)


@dataclass(frozen=True)
class WheelVenv:
    """A fresh virtual environment with the project's wheel installed (not editable).

    Nothing of the checkout is on its path: commands run with
    :func:`clean_env` from :attr:`workdir`, an empty directory outside the
    checkout.  Install what a test needs besides with :meth:`install`.
    """

    root: Path
    wheel: Path
    workdir: Path
    site_packages: Path

    @property
    def python(self) -> Path:
        """The venv's interpreter."""
        return self.root / "bin" / "python"

    def env(self) -> dict[str, str]:
        """The environment its commands run with: its ``bin`` first on PATH."""
        return clean_env(PATH=f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")

    def run(
        self, *arguments: str, cwd: Path | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """``python *arguments`` in the venv (from :attr:`workdir` by default)."""
        return run(
            [str(self.python), *arguments],
            cwd=cwd or self.workdir,
            env=self.env(),
            timeout=timeout,
        )

    def install(self, *requirements: str) -> None:
        """pip-install *requirements* (names, pins or paths) into the venv."""
        checked(
            run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "--python",
                    str(self.python),
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    *requirements,
                ],
                cwd=self.workdir,
                env=clean_env(),
            )
        )


def make_wheel_venv(root: Path, wheel: Path, *requirements: str) -> WheelVenv:
    """A venv at *root* with *wheel* and *requirements* installed.

    The venv gets no pip of its own: this process's pip installs into it
    (``pip --python``), which saves bootstrapping one.
    """
    checked(
        run(
            [sys.executable, "-m", "venv", "--without-pip", str(root)],
            cwd=root.parent,
            env=clean_env(),
        )
    )
    python = root / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = checked(run([str(python), "-c", code], cwd=root.parent, env=clean_env()))
    workdir = root.parent / f"{root.name}-work"
    workdir.mkdir()
    venv = WheelVenv(
        root=root, wheel=wheel, workdir=workdir, site_packages=Path(purelib.stdout.strip())
    )
    venv.install(str(wheel), *requirements)
    return venv
