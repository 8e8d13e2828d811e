"""Row 1: the database's own limit, measured by pgbench running one debit's SQL."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

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


def pgbench_debits(db: BenchDatabase, clients: int, users: int, seconds: float) -> float:
    """Transactions per second of `pgbench -M prepared` at `clients` connections."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "debit.sql"
        script.write_text(DEBIT_SCRIPT.format(users=users))
        script.chmod(0o644)
        Path(folder).chmod(0o755)
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
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed: {result.stderr.strip()}")
    found = re.search(r"tps = ([0-9.]+)", result.stdout)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps: {result.stdout}")
    return float(found.group(1))
