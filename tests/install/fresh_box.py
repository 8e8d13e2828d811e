"""The README's first command on a fresh machine: it must bring the server up.

Reads the command between the README's `first-command` markers and runs it in a fresh
`git clone` of HEAD, with a new empty home, no pip cache, the system's python3 first on
`PATH` (the one that refuses `pip install` on Debian 12+/Ubuntu 24.04+), a free port in
`PORT`, in a process group of its own. Once `/health` answers 200 the whole group is
stopped, and nothing of it may be left running, nor listening on the port. As root it
runs twice: as root and as an unprivileged user (created if missing); otherwise once, as
the current user.

Standard library only, so that the system's python3 runs it:
`python3 tests/install/fresh_box.py [--bound SECONDS] [--keep]`. Exit status 0 when every
run came up and went away cleanly, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
USER = "mana-credits-fresh"
MARKED = re.compile(
    r"<!-- first-command -->\s*```sh\n(?P<command>.+?)\n```\s*<!-- /first-command -->", re.S
)
# What the person running the command would not have on a fresh machine.
DROPPED = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "DATABASE_URL",
           "PIP_USER", "PIP_TARGET", "PIP_PREFIX", "CONDA_PREFIX")  # fmt: skip
DROPPED_PREFIXES = ("MANA_", "XDG_", "UV_", "NOX_", "PYENV_", "STRIPE_")


@dataclass(frozen=True)
class Runner:
    """Who runs the command: a name for the report, and the ids to switch to (None: as is)."""

    name: str
    uid: int | None = None
    gid: int | None = None


def first_command(readme: Path) -> str:
    """The one shell command between the README's markers."""
    found = MARKED.search(readme.read_text(encoding="utf-8"))
    if found is None:
        raise SystemExit(f"error: no <!-- first-command --> block in {readme}")
    lines = [line for line in found["command"].splitlines() if line.strip()]
    if len(lines) != 1:
        raise SystemExit(f"error: the first-command block of {readme} must hold one line")
    return lines[0].strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """A server could bind the port again (SO_REUSEADDR, as servers do)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def unprivileged_user() -> Runner:
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
            check=True,
            timeout=60,
        )
        entry = pwd.getpwnam(USER)
    return Runner(USER, entry.pw_uid, entry.pw_gid)


def environment(home: Path, port: int) -> dict[str, str]:
    """The caller's environment as a fresh login would have it: a new empty home, no pip
    cache, the system's python3 first, nothing of a virtual environment or of our own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in DROPPED and not key.startswith(DROPPED_PREFIXES)
    }
    path = env.get("PATH", "/usr/bin:/bin")
    if Path("/usr/bin/python3").exists():
        path = "/usr/bin:/bin:" + path
    env |= {"HOME": str(home), "PATH": path, "PIP_NO_CACHE_DIR": "1", "PORT": str(port)}
    return env


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process has the group id now: ours are gone
        return False
    return True


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def wait_for_health(process: subprocess.Popen[bytes], port: int, bound: float) -> bool:
    """Poll /health until 200 (True), the command exits or `bound` seconds pass (False)."""
    deadline = time.monotonic() + bound
    url = f"http://127.0.0.1:{port}/health"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(1)
    return False


def stop(process: subprocess.Popen[bytes], grace: float = 30) -> list[str]:
    """SIGTERM to the whole group, SIGKILL to what is left after `grace` seconds; the
    problems found (empty when the group went away at SIGTERM)."""
    problems: list[str] = []
    pgid = process.pid
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_alive(pgid) and time.monotonic() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.2)
    if group_alive(pgid):
        problems.append(f"processes of group {pgid} still ran {grace:.0f} s after SIGTERM")
        signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if group_alive(pgid):
            problems.append(f"processes of group {pgid} survived SIGKILL")
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    return problems


def fresh_run(runner: Runner, bound: float, keep: bool) -> list[str]:
    """Clone HEAD, run its README's first command as `runner`, wait for /health, stop;
    the problems found."""
    workdir = Path(tempfile.mkdtemp(prefix=f"mana-credits-fresh-{runner.name}-"))
    checkout, home, log = workdir / "checkout", workdir / "home", workdir / "output.log"
    try:
        head = git("rev-parse", "HEAD").strip()
        git("clone", "--quiet", "--no-checkout", str(ROOT), str(checkout))
        git("-C", str(checkout), "checkout", "--quiet", head)
        command = first_command(checkout / "README.md")
        home.mkdir()
        if runner.uid is not None:
            for path in (workdir, *workdir.rglob("*")):
                os.chown(path, runner.uid, runner.gid or 0, follow_symlinks=False)
        port = free_port()
        print(f"fresh box, as {runner.name}: `{command}` in {checkout}, port {port}", flush=True)
        started = time.monotonic()
        with log.open("wb") as output:
            process = subprocess.Popen(
                ["/bin/sh", "-c", command],
                cwd=checkout,
                env=environment(home, port),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as a whole
                user=runner.uid,
                group=runner.gid,
                extra_groups=[] if runner.uid is not None else None,
            )
        problems: list[str] = []
        try:
            if wait_for_health(process, port, bound):
                took = time.monotonic() - started
                print(f"  /health answered 200 after {took:.0f} s", flush=True)
            elif process.poll() is not None:
                problems.append(f"the command exited with {process.returncode} before /health")
            else:
                problems.append(f"/health did not answer 200 within {bound:.0f} s")
        finally:
            problems += stop(process)
        deadline = time.monotonic() + 30
        while not port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not port_is_free(port):
            problems.append(f"port {port} is still taken once the command was stopped")
        if not (checkout / ".venv").is_dir():
            problems.append("no .venv in the checkout")
        if problems:
            tail = log.read_text(errors="replace").splitlines()[-40:]
            print("  output (last lines):", *(f"    {line}" for line in tail), sep="\n")
        return [f"as {runner.name}: {problem}" for problem in problems]
    finally:
        if keep:
            print(f"  kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bound", type=float, default=600, help="seconds to wait for /health")
    parser.add_argument("--keep", action="store_true", help="keep the clones and the logs")
    options = parser.parse_args()
    command = first_command(ROOT / "README.md")  # fails early on a README without one
    runners = [Runner(pwd.getpwuid(os.geteuid()).pw_name)]
    if os.geteuid() == 0:
        runners.append(unprivileged_user())
    problems = [p for runner in runners for p in fresh_run(runner, options.bound, options.keep)]
    for problem in problems:
        print(f"error: fresh box: {problem}", file=sys.stderr)
    if not problems:
        print(f"fresh box: `{command}` came up and went away cleanly as "
              + " and as ".join(r.name for r in runners))  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
