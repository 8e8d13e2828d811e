"""The docs' examples hold: the library example in docs/library.md runs (and a second run
changes nothing), and cli.md's `prices list` sample is what the command prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import invoke

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


@pytest.mark.sqlite
def test_the_prices_list_sample_is_the_real_output(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    sample = re.search(r"\$ mana-credits prices list\n(.*?)```", text, re.DOTALL)
    assert sample is not None
    # The sample shows some rows of the seeded list and `…` for the rest.
    shown = [line for line in sample.group(1).splitlines() if "…" not in line]
    assert any("bulk_import" in line for line in shown)
    url = ["--database-url", f"sqlite:///{tmp_path / 'c.db'}"]
    assert invoke("db", "upgrade", *url)[0] == 0
    code, out = invoke("prices", "list", *url)
    assert code == 0, out
    printed = out.splitlines()
    assert [line for line in shown if line not in printed] == []
