"""The library example in docs/library.md runs, and a second run changes nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.sqlite
def test_library_example_is_idempotent(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "library.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert example is not None
    code = example.group(1).replace("sqlite:///./credits.db", f"sqlite:///{tmp_path / 'c.db'}")
    assert str(tmp_path) in code

    def run() -> str:
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout

    assert run() == "debited 25\n475\n"
    assert run() == "replayed 25\n475\n"
