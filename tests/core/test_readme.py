"""The README's core example runs and does what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    assert first_block is not None
    assert first_block.group(1).split() == ["./scripts/demo", "./scripts/test"]
    assert README.read_text().startswith("```sh")


def test_readme_core_example_runs() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(python_blocks()[0], {})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("JobCreated(handle=b'H:vm:1', request=SubmitJob(")
    assert lines[1] == "WorkComplete(handle=b'H:vm:1', payload=b'!dlroW olleH')"
    assert len(lines) == 3
    assert lines[2].startswith("ConnectionClosed(")
