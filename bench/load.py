"""Rows 3 and 4: the real server (`mana-credits serve`) driven by wrk on loopback."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mana_credits_adapters.identity.dev import SigningKey

from .machine import busy_seconds
from .setup import BenchDatabase, free_port, kill_group, popen, run, user

SERVICE_KEY = "bench-service-key"
ISSUER_PATH = "api/auth/jwks"

DEBIT_SCRIPT = """
local users, tag, counter = {users}, "{tag}", 0
local headers = {{["Content-Type"] = "application/json", ["X-Service-Key"] = "{key}",
                  ["X-App-Id"] = "bench"}}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)  -- a global of that thread: keys never repeat across threads
end
request = function()
  counter = counter + 1
  local body = string.format(
    '{{"userId":"user-%d","amount":1,"appId":"bench","description":"debit",' ..
    '"idempotencyKey":"%s-%d-%d"}}', math.random(1, users), tag, id, counter)
  return wrk.format("POST", "/api/v1/internal/credits/use", headers, body)
end
"""

READ_SCRIPT = """
local tokens = {{{tokens}}}
request = function()
  local token = tokens[math.random(1, #tokens)]
  return wrk.format("GET", "{path}", {{["Authorization"] = "Bearer " .. token}})
end
"""


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mb: float
    cpu_us_per_request: float  # the server's CPU time (user + system, every process)
    machine_cpu_us: float = 0.0  # busy CPU of the whole machine (wrk, server, database)


@contextmanager
def jwks_endpoint(key: SigningKey) -> Iterator[str]:
    """The auth service's JWKS as a static file on loopback; yields the issuer URL."""
    import json

    with tempfile.TemporaryDirectory() as root:
        document = Path(root) / ISSUER_PATH
        document.parent.mkdir(parents=True)
        document.write_text(json.dumps(key.jwks()))
        port = free_port()
        server = popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(f"http://127.0.0.1:{port}/{ISSUER_PATH}")
            yield f"http://127.0.0.1:{port}"
        finally:
            kill_group(server.pid)
            server.wait(timeout=30)


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        """Resident memory of the server and its worker processes."""
        total = 0
        for pid in [self.process.pid, *children(self.process.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            found = re.search(r"VmRSS:\s+(\d+) kB", status)
            total += int(found.group(1)) if found else 0
        return total / 1024

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its worker processes."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in [self.process.pid, *children(self.process.pid)]:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (after pid, comm)
        return total / ticks


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@contextmanager
def server(
    db: BenchDatabase,
    issuer: str,
    workers: int,
    *,
    code: Path | None = None,
    settings: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`mana-credits serve` on `db`; `code`: a checkout whose code to serve instead of
    this one; `settings`: environment variables set on top of the benchmark's."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db.url,
        "MANA_AUTH_URL": issuer,
        "MANA_SERVICE_KEY": SERVICE_KEY,
        # Configured as production is; no call reaches the payment provider here.
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": "whsec_bench",
        "MANA_CREDITS_BILLING_ENABLED": "false",
        "MANA_CREDITS_DB_POOL_SIZE": "20",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        **(settings or {}),
    }
    if code is not None:
        # `-m` puts the working directory first on the path: the checkout's packages.
        env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-m", "mana_credits_cli", "serve", "--port", str(port)]
    process = popen([*command, "--workers", str(workers)], env=env, cwd=code)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", timeout=120)
        yield Server(process, port)
    finally:
        process.terminate()  # SIGTERM: the parent stops its workers gracefully
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        kill_group(process.pid)  # what is left of the group, workers included
        process.wait(timeout=30)


def wrk(
    target: Server, script: str, clients: int, seconds: float, profile: str | None = None
) -> LoadResult:
    """Run wrk with a Lua script; sample the server's memory meanwhile, and its CPU time
    from start to end. `profile`: a file for a py-spy flame graph (SVG) of the server,
    every process of it, recorded during the run."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.25):
            peak = max(peak, target.rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    sampler.start()
    recorder = None if profile is None else py_spy(target, profile, seconds)
    cpu_before = target.cpu_seconds()
    busy_before = busy_seconds()
    try:
        result = run(
            [
                binary,
                "--latency",
                "-t",
                str(min(2, clients)),
                "-c",
                str(clients),
                "-d",
                f"{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                file.name,
                target.base,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 120,  # wrk stops itself after `seconds`
        )
        cpu = target.cpu_seconds() - cpu_before
        busy = busy_seconds() - busy_before
    finally:
        done.set()
        sampler.join()
        os.unlink(file.name)
        if recorder is not None:
            recorder.wait(timeout=seconds + 60)
    return parse_wrk(result.stdout, peak, cpu, busy)


def py_spy(target: Server, output: str, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy recording the server for the middle of a run of `seconds` (a second of
    warm-up and of wind-down left out): a flame graph for `output` ending in .svg, a
    speedscope profile for .json, collapsed stacks (one line per stack) otherwise."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    duration = max(1, round(seconds) - 2)
    kind = {".svg": "flamegraph", ".json": "speedscope"}.get(Path(output).suffix, "raw")
    return popen(
        [binary, "record", "--pid", str(target.process.pid), "--subprocesses",
         "--rate", "500", "--duration", str(duration), "--format", kind,
         "--output", output, "--nonblocking"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def parse_wrk(
    output: str, peak_rss_mb: float, cpu_seconds: float = 0.0, machine_seconds: float = 0.0
) -> LoadResult:
    def latency(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([0-9.]+)(us|ms|s)\s*$", output, re.M)
        if found is None:
            raise RuntimeError(f"wrk printed no {label}th percentile:\n{output}")
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    done = re.search(r"(\d+) requests in", output)
    requests = int(done.group(1)) if done else 0
    cpu_us = cpu_seconds / requests * 1e6 if requests else 0.0
    machine_us = machine_seconds / requests * 1e6 if requests else 0.0
    return LoadResult(
        float(rate.group(1)),
        latency("50"),
        latency("99"),
        errors,
        peak_rss_mb,
        cpu_us,
        machine_us,
    )


def debit_script(users: int) -> str:
    return DEBIT_SCRIPT.format(users=users, tag=uuid.uuid4().hex[:8], key=SERVICE_KEY)


READERS = 1_000  # users reading in row 4, each with a bearer token
READ_PATHS = {"balance": "/api/v1/credits/balance", "history": "/api/v1/credits/transactions"}


def reader_tokens(key: SigningKey, issuer: str) -> list[str]:
    """Bearer tokens of users 1 .. READERS, signed by `key` for `issuer`."""
    return [key.mint(user(n), issuer=issuer) for n in range(1, READERS + 1)]


def read_script(path: str, tokens: list[str]) -> str:
    return READ_SCRIPT.format(path=path, tokens=",".join(f'"{t}"' for t in tokens))
