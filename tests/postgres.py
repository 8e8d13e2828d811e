"""A throwaway PostgreSQL server for the test session, from the machine's binaries."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import tempfile
from pathlib import Path

from .processes import run

DATABASE = "mana_credits_test"
ENV_URL = "MANA_CREDITS_TEST_DATABASE_URL"


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl (newest installed major version)."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = run([pg_config, "--bindir"], capture_output=True, text=True, timeout=60)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if versions:
        return Path(versions[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresCluster:
    """initdb + pg_ctl in a temporary folder, on 127.0.0.1 only, trust auth.

    PostgreSQL refuses to run as root, so as root the server runs as `postgres`.
    """

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.bindir = find_bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mana-credits-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.options = ""  # the server's options, set by `start`

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        # pg_ctl detaches the server into a session of its own: it outlives this group.
        result = run(command, capture_output=True, text=True, cwd=self.root, timeout=300)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed: {result.stdout}{result.stderr}\n{log}".strip()
            )

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:
            ensure_postgres_user()
            shutil.chown(self.root, user=self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8")
        settings = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            "-c max_connections=200",
        ]
        if not self.durable:
            # Test data is thrown away: durability settings only cost time here.
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self.options = " ".join(settings)
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self.options, "-w", "start"
        )
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, DATABASE)
        return self

    def restart_immediately(self) -> None:
        """A crash and a restart: no checkpoint, recovery replays the WAL on start."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "immediate", "-w", "restart"
        )

    def halt(self) -> None:
        """Stop the server (connections refused) and keep its data for `resume`."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server `halt` stopped, on the same port."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self.options, "-w", "start"
        )

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def ensure_postgres_user() -> None:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        run(["useradd", "--system", "--no-create-home", "postgres"], check=True, timeout=60)


def postgres_url() -> tuple[str, PostgresCluster | None]:
    """`MANA_CREDITS_TEST_DATABASE_URL` if set, else a freshly started cluster."""
    configured = os.environ.get(ENV_URL)
    if configured:
        return configured, None
    cluster = PostgresCluster()
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster.url, cluster
