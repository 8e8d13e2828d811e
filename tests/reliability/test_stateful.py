"""A model-based test: Hypothesis drives the real server on PostgreSQL and compares
every answer with a model of balances, keys and reservations; after every step the
reconcile invariants hold and each balance the server reports is the model's.

CI runs a fixed (derandomized) set of examples; `nox -s stateful` runs many more
(`MANA_CREDITS_STATEFUL_EXAMPLES`, random seeds).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql.store import SqlStore
from mana_credits_core.services import Services
from mana_credits_http import create_app

from ..conftest import truncate

pytestmark = pytest.mark.postgres

T = TypeVar("T")
KEY = "stateful-service-key"
USERS = ("ann", "bob", "cy")
EXAMPLES = int(os.environ.get("MANA_CREDITS_STATEFUL_EXAMPLES", "25"))
DERANDOMIZE = os.environ.get("MANA_CREDITS_STATEFUL_RANDOM") != "1"


class LiveServer:
    """The app on a loopback port, in a thread with its own event loop."""

    def __init__(self, url: str, home: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.settings = Settings(
            DATABASE_URL=url,
            MANA_CREDITS_HOME=home,
            MANA_SERVICE_KEY=KEY,
            MANA_AUTH_URL="http://127.0.0.1:9",  # no user routes are driven here
            MANA_CREDITS_BILLING_ENABLED=False,
        )
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.services, self.base, self._stop = self.call(self._start())

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=60)

    async def _start(self) -> tuple[Services, str, Any]:
        context = bootstrap(self.settings, migrate=True)
        services = await context.__aenter__()
        runner = web.AppRunner(create_app(self.settings, services=services))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]

        async def stop() -> None:
            await runner.cleanup()
            await context.__aexit__(None, None, None)

        return services, f"http://127.0.0.1:{port}", stop

    def close(self) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"X-Service-Key": KEY, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Answer(response.status, json.loads(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, json.loads(error.read()))


@dataclass
class Answer:
    status: int
    body: Any


@pytest.fixture(scope="module")
def live(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(pg_url, tmp_path_factory.mktemp("stateful"))
    yield server
    server.close()


@dataclass
class Reservation:
    id: str
    user: str
    amount: int
    state: str = "pending"


@dataclass
class Model:
    balances: dict[str, int] = field(default_factory=dict)
    keys: dict[tuple[str, str], tuple[str, str, int]] = field(default_factory=dict)
    steps: int = 0


amounts = st.integers(min_value=1, max_value=60)
users = st.sampled_from(USERS)
keys = st.sampled_from(["k1", "k2", "k3", "k4"])


class CreditsMachine(RuleBasedStateMachine):
    """The service as its clients see it, against a model of what it must do."""

    server: LiveServer
    reservations = Bundle("reservations")

    def __init__(self) -> None:
        super().__init__()
        store = self.server.services.store
        assert isinstance(store, SqlStore)
        self.server.call(truncate(store))
        self.model = Model()

    # Money in.

    @rule(user=users, amount=amounts, key=st.none() | keys)
    def refund(self, user: str, amount: int, key: str | None) -> None:
        body: dict[str, Any] = {"userId": user, "amount": amount, "description": "refund"}
        if key is not None:
            body["idempotencyKey"] = "r-" + key
        answer = self.server.request("POST", "/api/v1/internal/credits/refund", body)
        prior = None if key is None else self.model.keys.get((user, "r-" + key))
        if prior is not None and prior[1:] != ("refund", amount):
            assert answer.status == 409, answer
            return
        assert answer.status == 200, answer
        if prior is not None:
            assert answer.body["transaction"]["id"] == prior[0]
            return
        self.model.balances[user] = self.model.balances.get(user, 0) + amount
        assert answer.body["newBalance"]["balance"] == self.model.balances[user]
        if key is not None:
            self.model.keys[(user, "r-" + key)] = (
                answer.body["transaction"]["id"],
                "refund",
                amount,
            )

    @rule(user=users)
    def init(self, user: str) -> None:
        answer = self.server.request("POST", "/api/v1/internal/credits/init", {"userId": user})
        assert answer.status == 200, answer
        self.model.balances.setdefault(user, 0)
        assert answer.body["balance"] == self.model.balances[user]

    # Money out.

    @rule(user=users, amount=amounts, key=st.none() | keys)
    def debit(self, user: str, amount: int, key: str | None) -> None:
        body: dict[str, Any] = {
            "userId": user,
            "amount": amount,
            "appId": "chat",
            "description": "answer",
        }
        if key is not None:
            body["idempotencyKey"] = key
        answer = self.server.request("POST", "/api/v1/internal/credits/use", body)
        prior = None if key is None else self.model.keys.get((user, key))
        if prior is not None:
            if prior[1:] == ("use", amount):
                assert answer.status == 200, answer
                assert answer.body["transaction"]["id"] == prior[0]
            else:
                assert answer.status == 409, answer
            return
        if user not in self.model.balances:
            assert answer.status == 404, answer
            return
        if self.model.balances[user] < amount:
            assert answer.status == 402, answer
            assert answer.body["details"]["available"] == self.model.balances[user]
            return
        assert answer.status == 200, answer
        self.model.balances[user] -= amount
        assert answer.body["newBalance"]["balance"] == self.model.balances[user]
        if key is not None:
            self.model.keys[(user, key)] = (answer.body["transaction"]["id"], "use", amount)

    # Two-phase debits.

    @rule(target=reservations, user=users, amount=amounts)
    def reserve(self, user: str, amount: int) -> Reservation | None:
        body = {"userId": user, "amount": amount, "reason": "render"}
        answer = self.server.request("POST", "/api/v1/internal/credits/reserve", body)
        available = self.model.balances.get(user)
        if available is None:
            assert answer.status == 404, answer
            return None
        if available < amount:
            assert answer.status == 402, answer
            return None
        assert answer.status == 200, answer
        self.model.balances[user] -= amount
        assert answer.body["balance"] == self.model.balances[user]
        return Reservation(answer.body["reservationId"], user, amount)

    @rule(held=reservations)
    def commit(self, held: Reservation | None) -> None:
        if held is None:
            return
        body = {"reservationId": held.id, "description": "done"}
        answer = self.server.request("POST", "/api/v1/internal/credits/commit", body)
        if held.state != "pending":  # the contract's answer to a second attempt
            assert answer.status == 400, answer
            assert answer.body["code"] == "reservation_not_pending"
            return
        assert answer.status == 200, answer
        held.state = "committed"

    @rule(held=reservations)
    def release(self, held: Reservation | None) -> None:
        if held is None:
            return
        body = {"reservationId": held.id}
        answer = self.server.request("POST", "/api/v1/internal/credits/refund-reservation", body)
        if held.state != "pending":  # the contract's answer to a second attempt
            assert answer.status == 400, answer
            assert answer.body["code"] == "reservation_not_pending"
            return
        assert answer.status == 200, answer
        held.state = "refunded"
        self.model.balances[held.user] += held.amount
        assert answer.body["balance"] == self.model.balances[held.user]

    @precondition(lambda self: self.model.steps > 0)
    @rule(held=consumes(reservations))
    def forget(self, held: Reservation | None) -> None:
        """Drop a reservation from the pool of ids the machine reuses (keeps it varied)."""

    # What must hold after every step.

    @invariant()
    def every_balance_is_the_models(self) -> None:
        self.model.steps += 1
        for user, expected in self.model.balances.items():
            answer = self.server.request("GET", f"/api/v1/internal/credits/balance/{user}")
            assert answer.status == 200, answer
            assert answer.body["balance"] == expected, (user, answer.body, expected)

    @invariant()
    def the_ledger_reconciles(self) -> None:
        report = self.server.call(self.server.services.reconcile.run())
        assert report.ok, report


def test_the_server_behaves_like_the_model(live: LiveServer) -> None:
    CreditsMachine.server = live
    machine = settings(
        max_examples=EXAMPLES,
        stateful_step_count=30,
        derandomize=DERANDOMIZE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )(CreditsMachine)
    machine.TestCase().runTest()
