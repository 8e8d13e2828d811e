"""A throwaway PostgreSQL server for the test session, from the machine's binaries."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import make_url

from .processes import run

DATABASE = "mana_credits_test"
ENV_URL = "MANA_CREDITS_TEST_DATABASE_URL"
CONNECTIONS = 200  # max_connections of a cluster serving one test process

# A watchdog process per cluster: it waits for end of file on a pipe from the test
# process, then stops the cluster and deletes its folder. The pipe closes when the test
# process ends however it ends (killed, a crashed worker, Ctrl-C, `timeout`), so no
# server outlives the run; after a normal `stop` the watchdog finds nothing left to do.
# It runs in a session of its own: a signal to the test run's process group spares it.
WATCHDOG = """
import json, shutil, subprocess, sys
stop, root = json.loads(sys.argv[1]), sys.argv[2]
sys.stdin.buffer.read()
subprocess.run(stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
shutil.rmtree(root, ignore_errors=True)
"""


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

    def __init__(self, *, durable: bool = False, connections: int = CONNECTIONS) -> None:
        self.durable = durable
        self.connections = connections
        self.bindir = find_bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mana-credits-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.options = ""  # the server's options, set by `start`
        self._watchdog: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{DATABASE}"

    def _command(self, *args: str) -> list[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        return command

    def _run(self, *args: str) -> None:
        command = self._command(*args)
        # pg_ctl detaches the server into a session of its own: it outlives this group.
        result = run(command, capture_output=True, text=True, cwd=self.root, timeout=300)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed: {result.stdout}{result.stderr}\n{log}".strip()
            )

    def start(self) -> PostgresCluster:
        self._watch()
        if os.geteuid() == 0:
            ensure_postgres_user()
            shutil.chown(self.root, user=self.user)
        # --no-sync: the files are thrown away with the run, flushing them buys nothing.
        initdb = ("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8")
        self._run(*initdb, "--no-sync")
        settings = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            f"-c max_connections={self.connections}",
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
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog.stdin is not None:
            watchdog.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                watchdog.wait(timeout=60)

    def _watch(self) -> None:
        """Start the WATCHDOG for this cluster, tied to this process by a pipe."""
        stop = self._command("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, json.dumps(stop), str(self.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


def ensure_postgres_user() -> None:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        run(["useradd", "--system", "--no-create-home", "postgres"], check=True, timeout=60)


def postgres_url(*, clients: int = 1) -> tuple[str, PostgresCluster | None]:
    """`MANA_CREDITS_TEST_DATABASE_URL` if set, else a freshly started cluster with room
    for `clients` test processes."""
    configured = os.environ.get(ENV_URL)
    if configured:
        return configured, None
    cluster = PostgresCluster(connections=CONNECTIONS * clients)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster.url, cluster


def create_database(url: str, name: str) -> str:
    """A new, empty database `name` on `url`'s server (one left by an earlier run is
    dropped first); its URL."""
    drop_database(url, name)
    _administer(url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, name: str) -> None:
    """Drop database `name` on `url`'s server, whoever is connected to it."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
    _administer(url, statement.format(sql.Identifier(name)))


def _administer(url: str, statement: sql.Composed) -> None:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(statement)
