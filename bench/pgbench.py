"""Row 1: the database's own limit, measured by pgbench running one debit's SQL."""

from __future__ import annotations

import re
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .machine import busy_seconds
from .setup import BenchDatabase, run

# What one debit costs the database, nothing more: the conditional balance update, the
# ledger entry (with its idempotency key, as apps send one) and the day's usage counter,
# in one transaction. `\gset` carries the new balance into the entry like the service does.
DEBIT_SCRIPT = """
\\set uid random(1, {users})
BEGIN;
UPDATE credits.balances SET balance = balance - 1, total_spent = total_spent + 1,
       updated_at = now()
 WHERE user_id = 'user-' || :uid AND balance >= 1 RETURNING balance AS after \\gset
INSERT INTO credits.transactions (id, user_id, type, status, amount, balance_before,
       balance_after, app_id, description, idempotency_key, created_at, completed_at)
VALUES (gen_random_uuid()::text, 'user-' || :uid, 'usage', 'completed', -1,
        CAST(:after AS bigint) + 1,
        CAST(:after AS bigint), 'bench', 'debit', gen_random_uuid()::text, now(), now());
INSERT INTO credits.usage_stats AS u (user_id, app_id, day, credits_used, operations)
VALUES ('user-' || :uid, 'bench', current_date, 1, 1)
ON CONFLICT (user_id, app_id, day) DO UPDATE
   SET credits_used = u.credits_used + 1, operations = u.operations + 1;
END;
"""


@dataclass(frozen=True, slots=True)
class PgbenchResult:
    tps: float
    p50_ms: float  # latency of one transaction, from pgbench's per-transaction log
    p99_ms: float
    machine_cpu_us: float  # busy CPU of the whole machine per transaction


def pgbench_debits(db: BenchDatabase, clients: int, users: int, seconds: float) -> PgbenchResult:
    """`pgbench -M prepared` at `clients` connections: transactions per second, the
    latency percentiles of its per-transaction log and the machine's CPU per one."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "debit.sql"
        script.write_text(DEBIT_SCRIPT.format(users=users))
        script.chmod(0o644)
        Path(folder).chmod(0o755)
        busy_before = busy_seconds()
        result = run(
            [
                str(db.cluster.bindir / "pgbench"),
                "-n",
                "-M",
                "prepared",
                "-f",
                str(script),
                "-c",
                str(clients),
                "-j",
                str(min(clients, 2)),
                "-T",
                str(max(1, round(seconds))),
                "--log",
                f"--log-prefix={Path(folder) / 'latency'}",
                "-h",
                "127.0.0.1",
                "-p",
                str(db.cluster.port),
                "-U",
                db.cluster.user,
                db.name,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 300,  # the run itself, connecting and the closing report
        )
        busy = busy_seconds() - busy_before
        latencies = sorted(transaction_latencies(Path(folder)))
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed: {result.stderr.strip()}")
    found = re.search(r"tps = ([0-9.]+)", result.stdout)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps: {result.stdout}")
    if not latencies:
        raise RuntimeError(f"pgbench logged no transactions: {result.stdout}")
    cut = statistics.quantiles(latencies, n=100, method="inclusive")
    return PgbenchResult(
        float(found.group(1)), cut[49] / 1000, cut[98] / 1000, busy / len(latencies) * 1e6
    )


def transaction_latencies(folder: Path) -> list[int]:
    """Microseconds of every transaction in pgbench's logs (`--log`: one file per
    thread, lines `client transaction latency_us script epoch_s epoch_us`)."""
    found: list[int] = []
    for log in folder.glob("latency*"):
        with log.open() as lines:
            found.extend(int(line.split(maxsplit=3)[2]) for line in lines)
    return found
