"""The end-to-end benchmark: every contender against one private gearmand.

Run it as ``benchmarks/run`` (or ``.venv/bin/python -m benchmarks``); see
benchmarks/README.md. In one run it

1. builds the libgearman contender (``benchmarks/c/gmbench.c``) with ``cc``,
   creates ``benchmarks/.peers-venv`` with the Python peers (gear, pygearman,
   aiogear) if needed, and starts gearmand on a free loopback port;
2. sizes each measurement: a short probe per contender and scenario gives a
   rate, and n = rate x ``--target-seconds`` (between a floor and ``--n``),
   so slow contenders do not take minutes per figure;
3. repeats ``--repeat`` times: every scenario, every contender in a rotated
   order (the libraries are interleaved, so drift hits all of them alike);
   each measurement restarts gearmand (so it starts empty), runs the
   contender's client and worker as separate processes
   (`benchmarks/contenders/`), and kills whatever it started when something
   goes wrong;
4. takes medians, runs ``benchmarks/parser.py``, and writes the table to the
   terminal, ``results/latest.md``, ``latest.json`` and ``latest.png``.

``ours`` is the blocking binding of this working tree; ``ours-trio``,
``ours-gevent`` and ``ours-asyncio`` are its trio, gevent and asyncio
bindings (``gearman.trio``, ``gearman.gevent``, ``gearman.asyncio``).
``ours@REV`` is ours' contender script run against the binding and core of
git revision REV, extracted once per run into a temporary directory
(``git archive``), so a before/after comparison shares one run's rounds and
machine conditions.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import hashlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from devtools.gearmand import Gearmand, GearmandError

from . import report

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONTENDERS_DIR = HERE / "contenders"
C_SOURCE = HERE / "c" / "gmbench.c"
BUILD_DIR = HERE / ".build"
PEERS_VENV = HERE / ".peers-venv"
PEERS_REQUIREMENTS = HERE / "peers-requirements.txt"
RESULTS_DIR = HERE / "results"
README = HERE / "README.md"

MIB = 1024 * 1024
SMALL_PAYLOAD = 16
#: Gearman functions the scenarios use; gearmand must have none of them queued
#: or served between measurements.
FUNCTIONS = ("reverse", "echo")


class HarnessError(RuntimeError):
    """The benchmark cannot go on (no gearmand, a stray worker, a bad argument...)."""


class MeasurementError(RuntimeError):
    """One measurement failed; it is recorded and the run goes on."""


# --------------------------------------------------------------------- model


@dataclasses.dataclass(frozen=True)
class Scenario:
    key: str  # "fg", "pipe", "bg", "drain", "large-1MiB", ...
    kind: str  # the contenders' --scenario
    title: str
    payload_size: int

    @property
    def large(self) -> bool:
        return self.kind == "large"

    @property
    def unit(self) -> str:
        return "MiB/s" if self.large else "jobs/s"

    @property
    def sides(self) -> tuple[str, ...]:
        """The contender processes a measurement runs: its client, worker, or both."""
        return {"bg": ("client",), "drain": ("worker",)}.get(self.kind, ("client", "worker"))


def build_scenarios(names: Sequence[str], large_sizes: Sequence[int]) -> list[Scenario]:
    titles = {
        "fg": "fg: one foreground job at a time",
        "pipe": "pipe: N foreground jobs submitted at once",
        "conc": "conc: 100 tasks share one client, each one foreground job at a time",
        "bg": "bg: background submissions, one at a time",
        "drain": "drain: one worker empties a queue of N jobs",
    }
    scenarios = []
    for name in names:
        if name == "large":
            for size in large_sizes:
                label = size_label(size)
                scenarios.append(
                    Scenario(f"large-{label}", "large", f"large: {label} payload echoed", size)
                )
        else:
            scenarios.append(Scenario(name, name, titles[name], SMALL_PAYLOAD))
    return scenarios


def size_label(size: int) -> str:
    if size % MIB == 0:
        return f"{size // MIB}MiB"
    if size % 1024 == 0:
        return f"{size // 1024}KiB"
    return f"{size}B"


@dataclasses.dataclass
class Contender:
    name: str
    label: str
    command: list[str]
    scenarios: frozenset[str]  # the kinds it takes part in
    python_peer: bool = False  # counts for "best Python peer"
    available: bool = True
    reason: str = ""
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # added to its processes'
    revision: str | None = None  # ours and ours@REV: the commit (or the tree's description)
    imports: dict[str, str] = dataclasses.field(default_factory=dict)  # module -> file
    note: str = ""  # why it takes part in fewer scenarios than it could

    def argv(
        self, role: str, scenario: str, n: int, address: str, size: int, timeout: float
    ) -> list[str]:
        """The command line of one side of one measurement (see contenders/_common.py)."""
        flags = {
            "--role": role,
            "--scenario": scenario,
            "--n": str(n),
            "--address": address,
            "--payload-size": str(size),
            "--timeout": f"{timeout:g}",
        }
        return [*self.command, *(part for flag in flags.items() for part in flag)]


#: The --scenarios, in the default order (so conc is measured and shown beside fg and pipe).
SCENARIO_NAMES = ("fg", "pipe", "conc", "bg", "drain", "large")
ALL_KINDS = frozenset(SCENARIO_NAMES)
#: conc shares one client among many submitters: only our bindings and aiogear take
#: part (the C program has no such mode, pygearman's client is not thread-safe, and
#: gear's submissions wait one round trip each).
SERIAL_KINDS = ALL_KINDS - {"conc"}
#: Where our other bindings take part: the small-job scenarios and conc.
SMALL_KINDS = frozenset({"fg", "pipe", "conc", "bg", "drain"})
CONTENDER_NAMES = (
    "ours",
    "ours-trio",
    "ours-gevent",
    "ours-asyncio",
    "gear",
    "pygearman",
    "aiogear",
    "libgearman",
    "gearman-cli",
)
#: ``ours@REV``: our binding at git revision REV (any spelling git understands).
AT = "@"


def is_ours(name: str) -> bool:
    """``ours`` (the working tree) or ``ours@REV`` (a git revision of it)."""
    return name == "ours" or name.startswith("ours" + AT)


# --------------------------------------------------------------- preparation


def build_gmbench(build_dir: Path = BUILD_DIR) -> Path:
    """Compile gmbench.c against libgearman unless the binary is up to date."""
    binary = build_dir / "gmbench"
    if binary.exists() and binary.stat().st_mtime >= C_SOURCE.stat().st_mtime:
        return binary
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise HarnessError("no C compiler (apt-get install build-essential)")
    build_dir.mkdir(parents=True, exist_ok=True)
    partial = build_dir / f"gmbench.{os.getpid()}.tmp"
    command = [
        compiler,
        "-O2",
        "-Wall",
        "-Wextra",
        "-std=c11",
        "-o",
        str(partial),
        str(C_SOURCE),
        "-lgearman",
    ]
    built = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        raise HarnessError(
            f"cannot build {C_SOURCE.name} (is libgearman-dev installed?):\n{built.stderr}"
        )
    os.replace(partial, binary)
    return binary


@dataclasses.dataclass(frozen=True)
class Peer:
    """A Python peer library; its contender script is ``contenders/peer_<name>.py``."""

    distribution: str  # its name in peers-requirements.txt
    module: str  # what the script imports (pygearman's is "gearman")
    kinds: frozenset[str]  # the scenario kinds it takes part in
    note: str = ""  # why it takes part in fewer than it could


PEERS = {
    "gear": Peer("gear", "gear", SERIAL_KINDS),
    "pygearman": Peer("pygearman", "gearman", SERIAL_KINDS),
    "aiogear": Peer(
        "aiogear",
        "aiogear",
        SMALL_KINDS,
        note="skips large: aiogear decodes every payload and result as UTF-8, and the large "
        "payloads are binary",
    ),
}


@dataclasses.dataclass(frozen=True)
class PeersVenv:
    """The peers' virtual environment: its python, and the peers pip could not install."""

    python: Path
    failed: dict[str, str]  # distribution -> why


def requirements(text: str) -> dict[str, str]:
    """The requirement lines of a requirements file, by (lower-case) distribution name."""
    found = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name = re.match(r"[A-Za-z0-9._-]+", line)
        if name:
            found[name.group().lower()] = line
    return found


@functools.cache
def ensure_peers_venv(venv: Path = PEERS_VENV) -> PeersVenv:
    """Create (or refresh) the peers' virtual environment, once per run.

    Each peer is installed on its own, so one that pip cannot install (no
    package index, no build for this Python) leaves out that peer only; it
    is tried again on the next run. HarnessError if the venv itself cannot
    be made.
    """
    python = venv / "bin" / "python"
    stamp = venv / ".bench-stamp"
    wanted_lines = requirements(PEERS_REQUIREMENTS.read_text())
    if peers_venv_is_current(venv):
        failed_before = _read_stamp(stamp)["failed"]
        pending = {name: line for name, line in wanted_lines.items() if name in failed_before}
    else:
        say(f"creating {venv.relative_to(REPO)} with {', '.join(wanted_lines)} (once)")
        base = getattr(sys, "_base_executable", sys.executable)
        _install_step([base, "-m", "venv", "--clear", str(venv)], "python -m venv", fatal=True)
        pending = wanted_lines
    failed = {}
    for name, line in pending.items():
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        problem = _install_step([*pip, line], f"pip install {line}")
        if problem:
            failed[name] = problem
            say(f"{venv.relative_to(REPO)}: {problem.splitlines()[0]}")
    stamp.write_text(json.dumps({"hash": _peers_hash(), "failed": failed}) + "\n")
    return PeersVenv(python, failed)


def _peers_hash() -> str:
    """What a venv made for this requirements file and this Python is stamped with."""
    return hashlib.sha256(PEERS_REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()


def peers_venv_is_current(venv: Path = PEERS_VENV) -> bool:
    """Whether *venv* was made for this requirements file and Python (no rebuild needed).

    Peers that pip could not install then are tried again, but nothing else is.
    """
    python = venv / "bin" / "python"
    return python.exists() and _read_stamp(venv / ".bench-stamp").get("hash") == _peers_hash()


def _read_stamp(stamp: Path) -> dict[str, Any]:
    """What the last ensure_peers_venv wrote ({} if nothing usable)."""
    try:
        state = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) and isinstance(state.get("failed"), dict) else {}


def _install_step(command: list[str], what: str, *, fatal: bool = False) -> str:
    """Run one step of making the venv; return what went wrong with *what* ("" if nothing).

    The problem keeps pip's ERROR lines (the last lines if it printed none).
    With *fatal*, a failure raises HarnessError instead.
    """
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        problem = f"{what}: {error}"
    else:
        if done.returncode == 0:
            return ""
        output = (done.stdout + done.stderr).strip().splitlines()
        errors = [line for line in output if line.startswith("ERROR:")] or output[-3:]
        problem = f"{what} failed: {' / '.join(errors)}"
    if fatal:
        raise HarnessError(problem)
    return problem


def import_problem(python: Path, module: str) -> str:
    """Why *python* cannot import *module* ("" if it can)."""
    try:
        done = subprocess.run(
            [str(python), "-c", f"import {module}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return f"cannot run {python}: {error}"
    if done.returncode == 0:
        return ""
    lines = done.stderr.strip().splitlines()
    return f"import {module} fails: {lines[-1] if lines else f'exit status {done.returncode}'}"


def make_peer(name: str, venv: Callable[[], PeersVenv] = ensure_peers_venv) -> Contender:
    """A Python peer (PEERS) in *venv*; unavailable, with the reason, where it cannot run.

    It is left out when the venv cannot be made, when pip could not install
    its package, or when its module does not import.
    """
    peer = PEERS[name]
    script = CONTENDERS_DIR / f"peer_{name.replace('-', '_')}.py"
    contender = Contender(name, LABELS[name], [], peer.kinds, python_peer=True, note=peer.note)
    try:
        made = venv()
    except HarnessError as error:
        contender.available, contender.reason = False, str(error)
        return contender
    problem = made.failed.get(peer.distribution) or import_problem(made.python, peer.module)
    if problem:
        contender.available, contender.reason = False, problem
        return contender
    contender.command = [str(made.python), str(script)]
    return contender


LABELS = {
    "ours": "gearman-proto (ours)",
    "ours-trio": "gearman-proto trio (ours)",
    "ours-gevent": "gearman-proto gevent (ours)",
    "ours-asyncio": "gearman-proto asyncio (ours)",
    "gear": "gear 0.16",
    "pygearman": "pygearman 0.2.6",
    "aiogear": "aiogear 0.2.6",
    "libgearman": "libgearman (C)",
    "gearman-cli": "gearman CLI",
}


def make_contender(
    name: str, build_dir: Path, checkout: Path | None = None, commit: str | None = None
) -> Contender:
    """One contender; if it cannot run here, marked unavailable with the reason.

    ``ours@REV`` needs *checkout*, the directory REV was extracted to, and its *commit* id.
    """
    if name in BINDINGS:
        return make_ours(name, REPO, describe_working_tree(), BINDINGS[name])
    if is_ours(name):
        if checkout is None or commit is None:
            raise HarnessError(f"{name}: the revision has not been extracted")
        return make_ours(name, checkout, commit, BINDINGS["ours"])
    if name in PEERS:
        return make_peer(name)
    label = LABELS[name]
    kinds = frozenset({"bg", "drain"}) if name == "gearman-cli" else SERIAL_KINDS
    try:
        if name == "libgearman":
            command = [str(build_gmbench(build_dir))]
        else:
            if shutil.which("gearman") is None:
                raise HarnessError("the gearman tool is not installed (gearman-tools)")
            command = [sys.executable, str(CONTENDERS_DIR / "gearman_cli.py")]
    except (HarnessError, OSError, subprocess.SubprocessError) as error:
        return Contender(name, label, [], kinds, available=False, reason=str(error))
    return Contender(name, label, command, kinds)


# ------------------------------------ our bindings, and ours at a git revision


def binding_api(module: str = "") -> dict[str, tuple[str, ...]]:
    """What a contender script uses of ``gearman`` (or of ``gearman.<module>``), per kind.

    Dotted names under ``gearman``; the preflight checks them, importing
    submodules such as ``gearman.trio`` on the way.
    """
    at = f"{module}." if module else ""
    client = (f"{at}GearmanClient", f"{at}GearmanClient.submit_job", "JOB_COMPLETE")
    worker = tuple(
        f"{at}GearmanWorker{member}" for member in ("", ".register_task", ".work", ".after_job")
    )
    return {
        "fg": (*client, *worker),
        "pipe": (*client, f"{at}GearmanClient.submit_multiple_jobs", *worker),
        "conc": (*client, *worker),
        "bg": (f"{at}GearmanClient", f"{at}GearmanClient.submit_job", "JOB_CREATED"),
        "drain": worker,
        "large": (*client, *worker),
    }


#: What contenders/ours.py uses of the python-gearman API, per scenario kind.
#: An older revision that lacks some of it still runs the other scenarios.
OURS_API = binding_api()
# conc: 100 threads share one client. It is thread-safe since the change that gave
# it a runtime_factory (2b33b8f); an older revision lacks that and skips conc.
OURS_API["conc"] += ("GearmanClient.runtime_factory",)


def small_job_api(module: str) -> dict[str, tuple[str, ...]]:
    """binding_api(module) in SMALL_KINDS: where our other bindings take part."""
    return {kind: api for kind, api in binding_api(module).items() if kind in SMALL_KINDS}


@dataclasses.dataclass(frozen=True)
class Binding:
    """One of our bindings as a contender: its script, and what it uses of the API."""

    script: str  # in contenders/
    api: dict[str, tuple[str, ...]]  # scenario kind -> names under gearman (binding_api)


#: ``ours`` and ``ours@REV`` run ours.py; our other bindings (the working tree only)
#: ours_trio.py, ours_gevent.py and ours_asyncio.py.
BINDINGS = {
    "ours": Binding("ours.py", OURS_API),
    "ours-trio": Binding("ours_trio.py", small_job_api("trio")),
    "ours-gevent": Binding("ours_gevent.py", small_job_api("gevent")),
    "ours-asyncio": Binding("ours_asyncio.py", small_job_api("asyncio")),
}


#: Run with a contender's environment: which gearman and gearman_proto it
#: imports, and which names of its binding's API (argv[1]) they lack.
_PREFLIGHT = """
import json, sys
# As in the contender: its sys.path[0] is contenders/, not the current directory.
if sys.path and sys.path[0] == "":
    del sys.path[0]
try:
    import gearman, gearman_proto
except Exception as error:
    print(json.dumps({"error": f"import failed: {type(error).__name__}: {error}"}))
    sys.exit(0)
import importlib, types
import_errors = {}
def has(dotted):
    target = gearman
    for part in dotted.split("."):
        if not hasattr(target, part) and isinstance(target, types.ModuleType):
            module = f"{target.__name__}.{part}"
            try:
                importlib.import_module(module)  # a submodule, such as gearman.trio
            except ModuleNotFoundError as error:
                if error.name != module:  # not a missing submodule: a missing dependency
                    import_errors[module] = f"{type(error).__name__}: {error}"
            except Exception as error:
                import_errors[module] = f"{type(error).__name__}: {error}"
        if not hasattr(target, part):
            return False
        target = getattr(target, part)
    return True
names = sorted({name for api in json.loads(sys.argv[1]).values() for name in api})
print(json.dumps({
    "imports": {"gearman": gearman.__file__, "gearman_proto": gearman_proto.__file__},
    "missing": [name for name in names if not has(name)],
    "import_errors": import_errors,
}))
"""


def source_path(root: Path) -> dict[str, str]:
    """PYTHONPATH for our contender: gearman_proto from *root*, gearman from its bindings/.

    Set for the working tree too: the interpreter's editable install may
    point at another checkout (a worktree sharing one .venv, say).
    """
    return {"PYTHONPATH": os.pathsep.join([str(root), str(root / "bindings")])}


def describe_working_tree() -> str:
    """The working tree's commit, with "-dirty" for uncommitted changes ("" outside git)."""
    return _first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"], default="")


def make_ours(name: str, root: Path, revision: str, binding: Binding) -> Contender:
    """One of our BINDINGS (the working tree, *root* = REPO), or ``ours@REV``
    (*root*: REV extracted).

    The contender script is always the working tree's (``binding.script``);
    only the library it imports comes from *root*. A preflight run checks that
    it really imports gearman and gearman_proto from *root* (not from an
    editable install), and leaves out the scenarios whose API the revision lacks.
    """
    label = LABELS.get(name, name)
    command = [sys.executable, str(CONTENDERS_DIR / binding.script)]
    env = source_path(root)
    kinds = frozenset(binding.api)
    contender = Contender(name, label, command, kinds, env=env, revision=revision)
    where = "the working tree" if name in BINDINGS else f"{name} ({revision[:12]})"
    layout = [part for part in ("gearman_proto", "bindings/gearman") if not (root / part).is_dir()]
    if layout:
        contender.available = False
        contender.reason = (
            f"{where} has no {' and no '.join(f'{part}/' for part in layout)}: "
            "only revisions with gearman_proto/ and bindings/gearman/ can be measured"
        )
        return contender
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PREFLIGHT, json.dumps(binding.api)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=child_env(env),
        )
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, IndexError, json.JSONDecodeError) as error:
        answer = {"error": f"preflight failed: {error}"}
    if "error" in answer:
        contender.available = False
        contender.reason = f"{where}: {answer['error']}"
        return contender
    contender.imports = answer["imports"]
    strays = {
        module: path
        for module, path in contender.imports.items()
        if not Path(path).resolve().is_relative_to(root.resolve())
    }
    if strays:
        contender.available = False
        contender.reason = (
            f"{where} has no importable {', '.join(strays)} under {root} "
            f"(they would come from {', '.join(strays.values())})"
        )
        return contender
    _leave_out_missing_api(contender, binding, answer, where)
    return contender


def _leave_out_missing_api(
    contender: Contender, binding: Binding, answer: dict[str, Any], where: str
) -> None:
    """Narrow *contender* to the scenarios whose API the preflight's *answer* found."""
    missing = set(answer["missing"])
    if not missing:
        return
    lacks = f"gearman lacks {', '.join(sorted(missing))}"
    errors = answer.get("import_errors") or {}
    if errors:
        lacks += f" ({'; '.join(f'{module}: {error}' for module, error in errors.items())})"
    kinds = frozenset(kind for kind, api in binding.api.items() if not missing & set(api))
    if not kinds:
        contender.available = False
        contender.reason = f"{where}: {lacks}"
    else:
        contender.scenarios = kinds
        skipped = ", ".join(sorted(set(binding.api) - kinds))
        contender.note = f"{where}: {lacks}, so it skips {skipped}"


def resolve_revision(revision: str) -> str:
    """The full commit id of *revision* in this repository; HarnessError if there is none."""
    if not revision or revision.startswith("-"):
        raise HarnessError(f"not a git revision: {revision!r}")
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise HarnessError(f"cannot run git to resolve {revision!r}: {error}") from error
    if done.returncode != 0 or not done.stdout.strip():
        raise HarnessError(f"{revision!r} is not a commit of the repository in {REPO}")
    return done.stdout.strip()


@contextlib.contextmanager
def extracted(commit: str) -> Iterator[Path]:
    """*commit*'s files in a fresh temporary directory (``git archive | tar -x``), removed after."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-ours-{commit[:12]}-"))
    try:
        with subprocess.Popen(
            ["git", "-C", str(REPO), "archive", "--format=tar", commit],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as archive:
            untar = subprocess.run(
                ["tar", "-x", "-C", str(root)],
                stdin=archive.stdout,
                capture_output=True,
                timeout=120,
                check=False,
            )
            if archive.stdout is not None:
                archive.stdout.close()
            archive_error = archive.stderr.read() if archive.stderr is not None else b""
            archive.wait(120)
        if archive.returncode != 0 or untar.returncode != 0:
            problem = (archive_error + untar.stderr).decode(errors="replace").strip()
            raise HarnessError(f"cannot extract {commit[:12]} with git archive | tar: {problem}")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------ processes

#: Every process this run started and has not reaped yet; killed on the way out.
_LIVE: set[subprocess.Popen[bytes]] = set()


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill a process we started, with the session (process group) it leads."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    _LIVE.discard(process)


def kill_all() -> None:
    for process in list(_LIVE):
        _kill(process)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a contender process: ours without PYTHONPATH/HOME, plus *extra*."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(extra or {})
    return env


class Child:
    """One contender process: its own session, stdout captured, stderr in a file."""

    def __init__(self, argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
        self.what = what
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by result and kill)
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            start_new_session=True,
            env=child_env(env),
        )
        _LIVE.add(self.process)

    def result(self, timeout: float) -> dict[str, Any]:
        """Wait for the JSON line; raise MeasurementError (and kill) on any failure."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            message = f"{self.what}: no answer within {timeout:g} s{self._stderr_tail()}"
            self.kill()
            raise MeasurementError(message) from None
        _LIVE.discard(self.process)
        lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
        try:
            answer = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            answer = {"error": f"no JSON line in its output {out[-300:]!r}"}
        if "error" in answer or self.process.returncode != 0:
            message = answer.get("error", f"exit status {self.process.returncode}")
            message = f"{self.what}: {message}{self._stderr_tail()}"
            self.stderr.close()
            raise MeasurementError(message)
        self.stderr.close()
        return answer  # type: ignore[no-any-return]

    def kill(self) -> None:
        _kill(self.process)
        self.stderr.close()

    def _stderr_tail(self) -> str:
        self.stderr.seek(0)
        tail = self.stderr.read()[-1500:].decode(errors="replace").strip()
        return f"\n  stderr: {tail}" if tail else ""


# ---------------------------------------------------------------- the server


class Server:
    """The private gearmand, with admin queries and its CPU clock."""

    def __init__(self) -> None:
        # Errors only: gearmand's INFO log costs it time per connection.
        self.gearmand = Gearmand(verbose=None)

    def __enter__(self) -> Server:
        try:
            self.gearmand.start()
        except GearmandError as error:
            raise HarnessError(str(error)) from error
        return self

    def __exit__(self, *exc: object) -> None:
        self.gearmand.close()

    @property
    def address(self) -> str:
        return self.gearmand.address

    def status(self) -> dict[str, tuple[int, int, int]]:
        """Admin ``status``: function -> (jobs queued or running, running, workers)."""
        with socket.create_connection((self.gearmand.host, self.gearmand.port), 10) as conn:
            conn.sendall(b"status\n")
            data = b""
            while not (data == b".\n" or data.endswith(b"\n.\n")):
                chunk = conn.recv(65536)
                if not chunk:
                    raise HarnessError(f"gearmand closed the admin connection: {data!r}")
                data += chunk
        table = {}
        for line in data.decode().splitlines()[:-1]:
            function, total, running, workers = line.split("\t")
            table[function] = (int(total), int(running), int(workers))
        return table

    def cpu_seconds(self) -> float:
        """gearmand's user + system CPU time so far, from /proc."""
        try:
            fields = Path(f"/proc/{self.gearmand.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, GearmandError):
            return float("nan")
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


# ------------------------------------------------------------- measurements


@dataclasses.dataclass
class Sample:
    scenario: str
    contender: str
    rep: int  # -1 for the sizing probe
    n: int
    throughput: float = float("nan")
    client_cpu: float | None = None  # µs per job, or per MiB for "large"
    worker_cpu: float | None = None
    server_cpu: float | None = None  # approximate (whole run, warm-up included)
    elapsed: float = float("nan")
    others_cpu_percent: float | None = None  # other processes' CPU meanwhile, % of one CPU
    error: str | None = None
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)


class Bench:
    """Runs measurements against one server; `helper` queues the drain scenario's jobs."""

    def __init__(self, server: Server, helper: Contender, timeout: float) -> None:
        self.server = server
        self.helper = helper  # queues the drain scenario's jobs; not measured
        self.timeout = timeout

    # -- gearmand's state between measurements

    def fresh_server(self) -> None:
        """Restart gearmand (about 25 ms) so every measurement meets an empty server.

        Nothing is left over from the one before (the bg scenario's queue, a
        failed run's jobs or connections), and every contender gets the
        same server state. The port stays the same.
        """
        try:
            self.server.gearmand.restart()
        except GearmandError as error:
            raise HarnessError(f"cannot restart gearmand: {error}") from error
        status = self.server.status()
        busy = {f: status[f] for f in FUNCTIONS if f in status and any(status[f])}
        if busy:
            raise HarnessError(f"a fresh gearmand is not idle: {busy}")

    def _fill(self, count: int) -> None:
        argv = self.helper.argv(
            "client", "fill", count, self.server.address, SMALL_PAYLOAD, self.timeout
        )
        what = f"helper {self.helper.name} queueing {count} jobs"
        Child(argv, what, self.helper.env).result(self.timeout)
        deadline = time.monotonic() + 10
        while self.server.status().get("reverse", (0, 0, 0))[0] < count:
            if time.monotonic() > deadline:
                raise MeasurementError(f"gearmand does not show the {count} queued jobs")
            time.sleep(0.02)

    # -- one measurement

    def measure(self, scenario: Scenario, contender: Contender, n: int, rep: int) -> Sample:
        sample = Sample(scenario.key, contender.name, rep, n)
        try:
            self.fresh_server()
            # After the restart: the old gearmand is reaped, so its CPU time is
            # in RUSAGE_CHILDREN already; the new one's is read from /proc.
            clocks, wall, server_start = cpu_clocks(), time.monotonic(), self.server.cpu_seconds()
            if scenario.kind == "drain":
                self._fill(n)
            cpu_before = self.server.cpu_seconds()
            answers = self._run(scenario, contender, n)
            server_cpu = self.server.cpu_seconds() - cpu_before
            if scenario.kind == "drain":
                left = self.server.status().get("reverse", (0, 0, 0))[0]
                if left:
                    raise MeasurementError(f"the worker left {left} of {n} jobs in the queue")
        except (MeasurementError, OSError) as error:  # OSError: gearmand unreachable
            sample.error = str(error)
            return sample
        timed = answers["worker" if scenario.kind == "drain" else "client"]
        units = n * scenario.payload_size / MIB if scenario.large else n
        sample.elapsed = timed["elapsed"]
        sample.throughput = units / timed["elapsed"] if timed["elapsed"] > 0 else float("inf")
        for side, answer in answers.items():
            cpu = (answer["utime"] + answer["stime"]) / units * 1e6
            setattr(sample, f"{side}_cpu", cpu)
        sample.server_cpu = server_cpu / units * 1e6
        sample.raw = answers
        busy, _, own = (end - start for end, start in zip(cpu_clocks(), clocks, strict=True))
        own += self.server.cpu_seconds() - server_start
        sample.others_cpu_percent = round(max(0.0, busy - own) / (time.monotonic() - wall) * 100)
        return sample

    def _run(self, scenario: Scenario, contender: Contender, n: int) -> dict[str, dict[str, Any]]:
        address = self.server.address
        what = f"{contender.name} {scenario.key}"
        children: dict[str, Child] = {}
        try:
            for side in ("worker", "client"):  # the worker first: it has to register
                if side in scenario.sides:
                    argv = contender.argv(
                        side, scenario.kind, n, address, scenario.payload_size, self.timeout
                    )
                    children[side] = Child(argv, f"{what} {side}", contender.env)
            answers: dict[str, dict[str, Any]] = {}
            for side in ("client", "worker"):
                if side in children:
                    answers[side] = children[side].result(self.timeout + 10)
            return answers
        finally:
            for child in children.values():
                child.kill()


# ------------------------------------------------------------------ the run


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(samples: list[Sample]) -> dict[str, dict[str, dict[str, Any]]]:
    """scenario -> contender -> medians of the repetitions (probes excluded)."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for sample in samples:
        if sample.rep < 0:
            continue
        entry = summary.setdefault(sample.scenario, {}).setdefault(
            sample.contender, {"ok": [], "errors": []}
        )
        (entry["errors"] if sample.error else entry["ok"]).append(sample)
    for per_contender in summary.values():
        for name, entry in per_contender.items():
            ok: list[Sample] = entry["ok"]
            figures: dict[str, Any] = {"n": ok[0].n if ok else None}
            for field in ("throughput", "client_cpu", "worker_cpu", "server_cpu"):
                values = [getattr(s, field) for s in ok if getattr(s, field) is not None]
                figures[field] = median(values)
                # The run-to-run spread: the slowest and fastest repetition.
                figures[f"{field}_min"] = min(values, default=None)
                figures[f"{field}_max"] = max(values, default=None)
            figures["samples"] = len(ok)
            figures["errors"] = [s.error for s in entry["errors"]]
            per_contender[name] = figures
    return summary


def run_parser(seconds: float) -> dict[str, Any]:
    """benchmarks/parser.py's figures (the core alone, no sockets)."""
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "parser.json"
        command = [
            sys.executable,
            str(HERE / "parser.py"),
            "--seconds",
            f"{seconds:g}",
            "--json",
            str(target),
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=child_env(source_path(REPO)),  # the working tree's core
        )
        if done.returncode != 0:
            return {"error": done.stderr.strip()[-1500:] or f"exit status {done.returncode}"}
        return json.loads(target.read_text())  # type: ignore[no-any-return]


def machine_info(peers_python: str | None) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "gearmand": _first_line(["gearmand", "--version"], ["/usr/sbin/gearmand", "--version"]),
        "libgearman": _first_line(["dpkg-query", "-W", "-f", "${Version}", "libgearman-dev"]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if peers_python:
        info.update(peer_versions(peers_python))
    return info


#: Prints the installed version of each distribution named in argv[1:] ("" if none).
_VERSIONS = """
import importlib.metadata as m, json, sys
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return ""
print(json.dumps({name: version(name) for name in sys.argv[1:]}))
"""


def peer_versions(peers_python: str) -> dict[str, str]:
    """Distribution -> version of the PEERS installed in the peers' venv."""
    names = [peer.distribution for peer in PEERS.values()]
    answer = _first_line([peers_python, "-c", _VERSIONS, *names], default="{}")
    try:
        versions = json.loads(answer)
    except ValueError:
        return {}
    return {name: version for name, version in versions.items() if version}


def _first_line(*commands: list[str], default: str = "unknown") -> str:
    for command in commands:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
            if done.returncode == 0 and done.stdout.strip():
                return done.stdout.strip().splitlines()[0].split(" - ")[0]
    return default


def cpu_clocks() -> tuple[float, float, float]:
    """(machine busy CPU s, steal s, this run's CPU s: harness + reaped children)."""
    busy = steal = 0.0
    with contextlib.suppress(OSError, ValueError):
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        user, nice, system, _idle, _iowait, _irq, _softirq, stolen = fields
        ticks = os.sysconf("SC_CLK_TCK")
        # irq and softirq time is left out: loopback traffic puts ours there too.
        busy = (user + nice + system) / ticks
        steal = stolen / ticks
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        own += usage.ru_utime + usage.ru_stime
    return busy, steal, own


@contextlib.contextmanager
def low_latency(enabled: bool) -> Iterator[str]:
    """Keep idle CPUs polling instead of halting while the run lasts.

    Holds a PM QoS request for 0 µs CPU wake-up latency (``/dev/cpu_dma_latency``,
    as cyclictest and tuned's latency-performance profile do); closing the file
    drops it, also when the process is killed. Ping-pong traffic between
    processes otherwise pays for waking halted CPUs (on a VM: a halt exit and
    an interrupt per wake-up), and that cost changes with whatever else runs:
    the figures would then say more about the machine's idle state than about
    the libraries. Yields "on", "off" or why it is unavailable.
    """
    if not enabled:
        yield "off"
        return
    try:
        handle = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    except OSError as error:
        say(f"low-latency mode unavailable: /dev/cpu_dma_latency: {error.strerror}")
        yield f"unavailable ({error.strerror})"
        return
    try:
        os.write(handle, struct.pack("i", 0))
        yield "on"
    finally:
        os.close(handle)


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def size_runs(
    bench: Bench,
    scenarios: list[Scenario],
    contenders: list[Contender],
    options: argparse.Namespace,
    samples: list[Sample],
) -> dict[tuple[str, str], int]:
    """n per (scenario, contender): fixed, or sized from probes.

    A probe of ``--probe-n`` jobs (1 for large payloads) gives a rate; while a
    probe is much shorter than the target and n can still grow, a bigger one
    refines it (a 40-job probe of a fast contender mostly measures its start).
    Then n = rate x ``--target-seconds``, at least ``--min-n`` and at most
    ``--n`` (``--large-n`` for large payloads).
    """
    sizes: dict[tuple[str, str], int] = {}
    probed: set[tuple[str, str]] = set()  # sized from a successful probe
    for scenario in scenarios:
        top = options.large_n if scenario.large else options.n
        floor = 1 if scenario.large else min(options.min_n, top)
        for contender in contenders:
            if scenario.kind not in contender.scenarios or not contender.available:
                continue
            key = (scenario.key, contender.name)
            if options.target_seconds <= 0:
                sizes[key] = top
                continue
            n = min(1 if scenario.large else options.probe_n, top)
            while True:
                probe = bench.measure(scenario, contender, n, rep=-1)
                samples.append(probe)
                if probe.error:
                    say(f"probe failed, {contender.name} {scenario.key}: {probe.error}")
                    rate = float("nan")
                    break
                rate = n / probe.elapsed if probe.elapsed > 0 else float(top)
                if probe.elapsed >= options.target_seconds / 4 or n >= top:
                    break
                n = min(top, max(4 * n, int(rate * options.target_seconds / 3)))
            sized = floor if math.isnan(rate) else int(rate * options.target_seconds)
            sizes[key] = max(floor, min(top, sized))
            if not math.isnan(rate):
                probed.add(key)
            say(
                f"probe {scenario.key:<11} {contender.name:<11} {rate:>10.1f} jobs/s "
                f"-> n = {sizes[key]}"
            )
        # ours and ours@REV are compared with each other: give them the same n
        # (the smallest sized one), so both measure the same work.
        family = [key for key in probed if key[0] == scenario.key and is_ours(key[1])]
        if len(family) > 1:
            shared = min(sizes[key] for key in family)
            for key in sizes:
                if key[0] == scenario.key and is_ours(key[1]):
                    sizes[key] = shared
            say(f"probe {scenario.key:<11} ours and ours@REV share n = {shared}")
    return sizes


def run(options: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as checkouts:
        # Each ours@REV once per run, removed when the run ends, however it ends.
        extracted_at = {
            name: checkouts.enter_context(extracted(commit))
            for name, commit in options.revisions.items()
        }
        for name, root in extracted_at.items():
            say(f"{name}: {options.revisions[name][:12]} extracted to {root}")
        return _run(options, extracted_at)


def _run(options: argparse.Namespace, extracted_at: dict[str, Path]) -> dict[str, Any]:
    started = time.monotonic()
    scenarios = build_scenarios(options.scenarios, options.large_sizes)
    contenders = [
        make_contender(name, options.build_dir, extracted_at.get(name), options.revisions.get(name))
        for name in options.contenders
    ]
    for contender in contenders:
        if not contender.available:
            say(f"{contender.name} is left out: {contender.reason}")
        elif contender.note:
            say(f"{contender.name}: {contender.note}")
    usable = [c for c in contenders if c.available]
    if not usable:
        raise HarnessError("no contender can run")
    helper = next((c for c in usable if c.name == "libgearman"), None)
    if helper is None:
        helper = make_contender("ours", options.build_dir)
    peers_python = next((c.command[0] for c in usable if c.python_peer and c.command), None)

    load_start = os.getloadavg()[0]
    if load_start > 0.5:
        say(
            f"warning: load average {load_start:.2f} before the start: something else runs "
            "on this machine, and the figures will be noisy"
        )
    clocks_start, wall_start = cpu_clocks(), time.monotonic()
    samples: list[Sample] = []
    with low_latency(options.low_latency) as latency_mode, Server() as server:
        say(f"gearmand on {server.address}; helper for queues: {helper.name}")
        bench = Bench(server, helper, options.timeout)
        sizes = size_runs(bench, scenarios, usable, options, samples)
        for rep in range(options.repeat):
            for scenario in scenarios:
                takers = [c for c in usable if (scenario.key, c.name) in sizes]
                shift = rep % len(takers) if takers else 0
                for contender in takers[shift:] + takers[:shift]:
                    n = sizes[(scenario.key, contender.name)]
                    sample = bench.measure(scenario, contender, n, rep)
                    samples.append(sample)
                    if sample.error:
                        say(
                            f"[{rep + 1}/{options.repeat}] {scenario.key} {contender.name}: "
                            f"FAILED {sample.error}"
                        )
                    else:
                        say(
                            f"[{rep + 1}/{options.repeat}] {scenario.key:<11} "
                            f"{contender.name:<11} n={n:<6} {sample.throughput:>10.1f} "
                            f"{scenario.unit}"
                        )

    parser_figures = run_parser(options.parser_seconds) if options.parser_seconds > 0 else None
    busy, steal, own = (end - start for end, start in zip(cpu_clocks(), clocks_start, strict=True))
    wall = time.monotonic() - wall_start
    others = max(0.0, busy - own) / wall * 100
    if others > 10:
        say(f"warning: other processes used {others:.0f}% of a CPU during the run")
    return {
        "meta": {
            "machine": machine_info(peers_python),
            "config": {
                "n": options.n,
                "large_n": options.large_n,
                "repeat": options.repeat,
                "target_seconds": options.target_seconds,
                "large_sizes": options.large_sizes,
                "timeout": options.timeout,
                "low_latency": latency_mode,
                "command": " ".join(["benchmarks/run", *options.argv]),
            },
            "duration_s": round(time.monotonic() - started, 1),
            # Noise indicators: others_cpu_percent is the CPU time that processes
            # outside this run took meanwhile, in % of one CPU (100 = a whole core).
            "load": {
                "loadavg_1min_at_start": round(load_start, 2),
                "others_cpu_percent": round(others, 1),
                "steal_percent": round(steal / wall * 100, 1),
            },
        },
        "contenders": [
            {
                "name": c.name,
                "label": c.label,
                "available": c.available,
                "reason": c.reason,
                "python_peer": c.python_peer,
                "scenarios": sorted(c.scenarios),
                "note": c.note,
            }
            | ({"revision": c.revision, "imports": c.imports} if c.revision is not None else {})
            for c in contenders
        ],
        "scenarios": [dataclasses.asdict(s) | {"unit": s.unit} for s in scenarios],
        "summary": summarize(samples),
        "parser": parser_figures,
        "samples": [dataclasses.asdict(s) for s in samples],
    }


# -------------------------------------------------------------- command line


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run",
        description="End-to-end Gearman benchmark: this project's bindings (blocking, "
        "trio, gevent, asyncio) against gear, pygearman, aiogear, libgearman (C) and the "
        "gearman CLI, on a private gearmand.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--n", type=int, default=20000, help="most jobs per measurement (small-payload scenarios)"
    )
    parser.add_argument(
        "--large-n", type=int, default=64, help="most jobs per measurement of the large scenarios"
    )
    parser.add_argument(
        "--large-sizes",
        type=_sizes,
        default=[MIB, 16 * MIB],
        help="payload sizes of the large scenario, comma-separated bytes",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="repetitions; each figure is their median"
    )
    parser.add_argument(
        "--target-seconds",
        type=float,
        default=1.5,
        help="size each measurement to about this long from a probe's rate "
        "(0: always --n / --large-n jobs, no probes)",
    )
    parser.add_argument(
        "--min-n", type=int, default=40, help="fewest jobs of a sized small-payload measurement"
    )
    parser.add_argument("--probe-n", type=int, default=40, help="jobs of a sizing probe")
    parser.add_argument(
        "--contenders",
        type=_contender_names,
        default=list(CONTENDER_NAMES),
        help="comma-separated; ours@REV is our binding at git revision REV (for example "
        "ours,ours@HEAD~1: before and after a change, interleaved in one run)",
    )
    parser.add_argument(
        "--scenarios",
        type=_names(SCENARIO_NAMES),
        default=list(SCENARIO_NAMES),
        help="comma-separated",
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds one contender process may take"
    )
    parser.add_argument(
        "--parser-seconds",
        type=float,
        default=2.0,
        help="benchmarks/parser.py --seconds (0: skip it)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where latest.md, latest.json and latest.png go",
    )
    parser.add_argument(
        "--build-dir", type=Path, default=BUILD_DIR, help="where the C contender is compiled"
    )
    parser.add_argument("--no-chart", action="store_true", help="skip latest.png")
    parser.add_argument(
        "--no-low-latency",
        dest="low_latency",
        action="store_false",
        help="let idle CPUs halt (by default the run holds /dev/cpu_dma_latency at 0)",
    )
    parser.add_argument(
        "--update-readme", action="store_true", help="also put the table into benchmarks/README.md"
    )
    options = parser.parse_args(argv)
    options.argv = list(sys.argv[1:] if argv is None else argv)
    if min(options.n, options.large_n, options.repeat, options.min_n, options.probe_n) < 1:
        parser.error("--n, --large-n, --repeat, --min-n and --probe-n must be at least 1")
    options.revisions = {}  # ours@REV -> the commit id REV names
    for name in options.contenders:
        if name.startswith("ours" + AT):
            try:
                options.revisions[name] = resolve_revision(name[len("ours" + AT) :])
            except HarnessError as error:
                parser.error(f"--contenders {name}: {error}")
    return options


def _contender_names(text: str) -> list[str]:
    """--contenders: the known names, and ours@REV for any git revision REV."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [
        name
        for name in names
        if name not in CONTENDER_NAMES and not (is_ours(name) and len(name) > len("ours" + AT))
    ]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {', '.join(unknown) or 'empty list'}; choose from "
            f"{', '.join(CONTENDER_NAMES)}, ours@REV"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"named more than once: {', '.join(repeated)}")
    return names


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of byte counts: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def _names(known: Sequence[str]) -> Any:
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(known)}"
            )
        return names

    return parse


@contextlib.contextmanager
def _cleanup_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the run like Ctrl-C: children killed, gearmand stopped."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        kill_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_arguments(argv)
    try:
        with _cleanup_on_signals():
            results = run(options)
    except HarnessError as error:
        say(f"error: {error}")
        return 2
    except KeyboardInterrupt:
        say("interrupted; every process this run started has been stopped")
        return 130
    output: Path = options.output_dir
    output.mkdir(parents=True, exist_ok=True)
    (output / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = report.markdown(results)
    (output / "latest.md").write_text(report.document(table))
    print(table, end="")
    if not options.no_chart:
        problem = report.chart(results, output / "latest.png")
        if problem:
            say(f"no chart: {problem}")
    if options.update_readme:
        report.update_readme(README, table)
    say(f"results in {output}; {results['meta']['duration_s']} s in all")
    failures = sum(len(e["errors"]) for per in results["summary"].values() for e in per.values())
    if failures:
        say(f"{failures} measurements failed; see 'errors' in latest.json")
    return 0
