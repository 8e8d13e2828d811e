"""Payment stories: what happens to one payment at Stripe, and where the purchase must
end up, whatever order the webhooks of the story arrive in.

A story is a list of steps (the buyer pays, the dashboard refunds, a bank disputes, …),
each publishing the one event of it that the story delivers (stories vary the type:
`charge.refunded` or `refund.created`, `charge.dispute.closed` or
`charge.dispute.funds_reinstated`, …). `schedules` enumerates every interleaving of the
steps (in their order) with the deliveries (in any order, each after its step), so the
purchase is settled against every intermediate state Stripe can be in, and the events of
the past arrive late and shuffled. The expected claw-back of each story is worked out
by hand from docs/payments.md, never by the code under test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .stripe_model import Json, StripeModel

CREDITS = 1100  # the package of every story: 1,100 credits for 10.00 €
PRICE = 1000


@dataclass
class Run:
    """One story being played on a model: the ids later steps need."""

    model: StripeModel
    intent_id: str
    refund_ids: list[str] = field(default_factory=list)
    dispute_ids: list[str] = field(default_factory=list)


Step = Callable[[Run], Json]


def _pick(events: list[Json], kind: str) -> Json:
    return next(e for e in events if e["type"] == kind)


def paid(kind: str = "payment_intent.succeeded") -> Step:
    def step(run: Run) -> Json:
        return _pick(run.model.pay(run.intent_id), kind)

    return step


def declined(run: Run) -> Json:
    return _pick(run.model.fail(run.intent_id), "payment_intent.payment_failed")


def refunded(
    amount: int | None = None, *, status: str = "succeeded", kind: str = "charge.refunded"
) -> Step:
    def step(run: Run) -> Json:
        events = run.model.refund(run.intent_id, amount, status=status)
        run.refund_ids.append(_pick(events, "refund.created")["data"]["object"]["id"])
        return _pick(events, kind)

    return step


def refund_failed(kind: str = "refund.updated") -> Step:
    def step(run: Run) -> Json:
        return _pick(run.model.fail_refund(run.refund_ids[-1]), kind)

    return step


def disputed(
    amount: int | None = None,
    *,
    inquiry: bool = False,
    with_intent: bool = True,
    kind: str = "charge.dispute.created",
) -> Step:
    def step(run: Run) -> Json:
        events = run.model.dispute(run.intent_id, amount, inquiry=inquiry, with_intent=with_intent)
        run.dispute_ids.append(events[0]["data"]["object"]["id"])
        return _pick(events, kind)

    return step


def decided(*, won: bool, kind: str = "charge.dispute.closed") -> Step:
    def step(run: Run) -> Json:
        return _pick(run.model.close_dispute(run.dispute_ids[-1], won=won), kind)

    return step


@dataclass(frozen=True)
class Story:
    name: str
    steps: tuple[Step, ...]
    status: str  # the purchase's status in the end
    clawed_back: int  # credits taken back in the end (floor(1100 * returned / 1000))

    @property
    def balance(self) -> int:
        return CREDITS - self.clawed_back if self.status == "completed" else 0


STORIES = [
    Story("paid", (paid(),), "completed", 0),
    Story("paid, seen as a charge", (paid("charge.succeeded"),), "completed", 0),
    Story("declined", (declined,), "failed", 0),
    Story("declined then paid", (declined, paid()), "completed", 0),
    Story("refund of 3.00 €", (paid(), refunded(300)), "completed", 330),
    # 1100 * 333 / 1000 = 366.3: the fraction stays with the buyer.
    Story("refund of 3.33 €", (paid(), refunded(333, kind="refund.created")), "completed", 366),
    Story("full refund", (paid(), refunded()), "completed", 1100),
    Story("pending refund", (paid(), refunded(status="pending")), "completed", 1100),
    Story("partial then full refund", (paid(), refunded(400), refunded()), "completed", 1100),
    Story("refund failed", (paid(), refunded(), refund_failed()), "completed", 0),
    Story(
        "refund failed, seen on the charge",
        (paid(), refunded(400), refund_failed("charge.refund.updated")),
        "completed",
        0,
    ),
    Story(
        "one of two refunds failed",
        (
            paid(),
            refunded(200),
            refunded(500, kind="refund.created"),
            refund_failed("refund.failed"),
        ),
        "completed",
        220,
    ),
    Story("chargeback", (paid(), disputed()), "completed", 1100),
    Story(
        "chargeback, funds withdrawn",
        (paid(), disputed(kind="charge.dispute.funds_withdrawn")),
        "completed",
        1100,
    ),
    Story("chargeback of 6.00 €", (paid(), disputed(600)), "completed", 660),
    Story("inquiry", (paid(), disputed(inquiry=True)), "completed", 0),
    Story("inquiry closed", (paid(), disputed(inquiry=True), decided(won=True)), "completed", 0),
    Story("inquiry lost", (paid(), disputed(inquiry=True), decided(won=False)), "completed", 1100),
    Story("chargeback won", (paid(), disputed(), decided(won=True)), "completed", 0),
    Story(
        "chargeback won, funds reinstated",
        (paid(), disputed(), decided(won=True, kind="charge.dispute.funds_reinstated")),
        "completed",
        0,
    ),
    Story("chargeback lost", (paid(), disputed(), decided(won=False)), "completed", 1100),
    Story("chargeback of 6.00 € won", (paid(), disputed(600), decided(won=True)), "completed", 0),
    Story(
        "chargeback of 6.00 € lost", (paid(), disputed(600), decided(won=False)), "completed", 660
    ),
    Story(
        "dispute naming only the charge",
        (paid(), disputed(with_intent=False), decided(won=False)),
        "completed",
        1100,
    ),
    Story(
        "refund, then a chargeback of the rest lost",
        (paid(), refunded(300), disputed(700), decided(won=False)),
        "completed",
        1100,
    ),
    Story(
        "refund, then an inquiry closed",
        (paid(), refunded(250, kind="refund.created"), disputed(inquiry=True), decided(won=True)),
        "completed",
        275,
    ),
    Story(
        "failed refund, then a partial chargeback",
        (paid(), refunded(), refund_failed(), disputed(500)),
        "completed",
        550,
    ),
]


@dataclass(frozen=True)
class Delivery:
    """Deliver event number `index` of the story (`resend`: again, under a new id)."""

    index: int
    resend: bool = False


Schedule = list["int | Delivery"]  # an int: play step number n


INTERLEAVED_UP_TO = 3  # steps; longer stories deliver after all their steps


def schedules(steps: int) -> Iterator[Schedule]:
    """Every interleaving of the steps, in order, with one delivery of each step's
    event, in any order after its step: (2n - 1)!! of them for n steps. Longer stories
    (more than `INTERLEAVED_UP_TO` steps) keep it bounded: every order of deliveries
    after all the steps, and each delivery right after its step."""
    if steps > INTERLEAVED_UP_TO:
        for order in itertools.permutations(range(steps)):
            yield [*range(steps), *(Delivery(e) for e in order)]
        yield [item for n in range(steps) for item in (n, Delivery(n))]
        return

    def extend(done: int, pending: tuple[int, ...]) -> Iterator[Schedule]:
        if done == steps and not pending:
            yield []
            return
        if done < steps:
            for rest in extend(done + 1, (*pending, done)):
                yield [done, *rest]
        for event in pending:
            for rest in extend(done, tuple(e for e in pending if e != event)):
                yield [Delivery(event), *rest]

    yield from extend(0, ())


def with_duplicates(schedule: Schedule, steps: int) -> Schedule:
    """The schedule, then every event again: the same delivery (Stripe retrying) and
    a resend under a new id, newest first."""
    again: list[int | Delivery] = []
    for event in reversed(range(steps)):
        again += [Delivery(event), Delivery(event, resend=True)]
    return [*schedule, *again]


def cases() -> Iterator[tuple[Story, Schedule]]:
    """Every story with every schedule, plain and with duplicates."""
    for story in STORIES:
        for schedule in schedules(len(story.steps)):
            yield story, schedule
            yield story, with_duplicates(schedule, len(story.steps))


def resent(event: Json, n: int) -> Json:
    """The same event delivered again by Stripe under another id (a resend)."""
    copy: dict[str, Any] = dict(event)
    copy["id"] = f"{event['id']}_resend{n}"
    return copy
