"""`./run serve` installs the checkout as it is now, not what an earlier build left.

The real script runs in a copy of the checkout whose virtual environment holds stand-ins
for its python (recording what the checkout held when it was asked to install) and for
`mana-credits`: installing for real needs the package index, which tests do not reach.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PYTHON = """#!/bin/sh
case "$*" in
    *"pip install"*)
        for left in "{root}/build" "{root}/mana_credits.egg-info"; do
            if [ -e "$left" ]; then echo "present $left"; else echo "absent $left"; fi
        done >>"{root}/install.log"
        echo "install $*" >>"{root}/install.log" ;;
esac
exit 0
"""


def stand_in(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def test_serve_removes_earlier_builds_before_installing(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy2(ROOT / "run", root / "run")
    stale = root / "build" / "lib" / "mana_credits_cli"
    stale.mkdir(parents=True)
    (stale / "deleted_from_source.py").write_text("")
    (root / "mana_credits.egg-info").mkdir()
    (root / "mana_credits.egg-info" / "SOURCES.txt").write_text("deleted_from_source.py\n")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    stand_in(bin_dir / "python", PYTHON.format(root=root))
    stand_in(bin_dir / "mana-credits", '#!/bin/sh\necho "mana-credits $*"\n')

    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    result = subprocess.run(
        [str(root / "run"), "serve", "--port", "0"],
        env=env | {"PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "mana-credits serve --port 0\n"
    log = (root / "install.log").read_text().splitlines()
    assert log[:2] == [f"absent {root}/build", f"absent {root}/mana_credits.egg-info"]
    assert log[2].endswith(f"install --quiet --disable-pip-version-check {root}")
    assert (root / "run").exists()
