"""The hand-written old database: a few dozen users and every habit of the old service.

Every user's balances row agrees with their ledger (balance = completed amounts minus
credits still reserved; totals = the completed credits and debits) except where a
comment says the old data drifted. The roles are exported as constants by
`tests.legacy.fixture`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .book import Row, at
from .operations import LAUNCH, PLUS, PRO, STARTER, Legacy


@dataclass(frozen=True)
class Story:
    """The rows of every table, and the ids the roles need."""

    tables: dict[str, list[Row]]
    ids: dict[str, str]


def story(*, newest: bool) -> Story:
    """Every row of the old database, newest or older layout."""
    old = Legacy(newest=newest)
    ids = old.ids

    # Everyday users: purchases, app debits with idempotency keys, grants.
    anna = old.customer("u-anna", "anna@example.com", at("2026-02-03 09:58"))
    old.purchase("u-anna", STARTER, at("2026-02-03 10:00"), "pi_legacy_anna_1", customer=anna)
    ids["replay"] = old.use("u-anna", "chat", 12, "2026-02-03 10:20", "chat-anna-0001")
    old.use("u-anna", "chat", 8, "2026-02-03 11:05", "chat-anna-0002")
    old.use("u-anna", "chat", 15, "2026-02-03 18:40", "chat-anna-0003")
    old.use("u-anna", "picture", 40, "2026-02-04 09:00", "picture-anna-0001")
    old.use("u-anna", "chat", 5, "2026-02-10 14:00", "chat-anna-0004")
    old.grant("u-anna", 50, "Bug report", "bug-1042", "2026-03-01 12:00")
    # Either side of midnight UTC: one day in Berlin, two in UTC.
    old.use("u-anna", "memoro", 25, "2026-03-02 23:30", "memoro-anna-0001")
    old.use("u-anna", "memoro", 10, "2026-03-03 00:15", "memoro-anna-0002")

    ben = old.customer("u-ben", "ben@example.com", at("2026-03-12 08:00"))
    old.purchase("u-ben", PLUS, at("2026-03-12 08:01"), "pi_legacy_ben_1", customer=ben)
    old.use("u-ben", "picture", 40, "2026-03-12 09:00", "picture-ben-0001")
    old.use("u-ben", "picture", 40, "2026-03-12 09:05", "picture-ben-0002")
    old.use("u-ben", "chat", 7, "2026-04-01 16:00")  # an old client sent no key
    ids["simple_gift"] = old.make_gift(
        "u-ben",
        "K7PX2M",
        100,
        "2026-10-01 19:00",
        creator_name="ben@example.com",
        expires_at="2026-12-30 19:00",
    )["id"]

    carla = old.customer("u-carla", "carla@example.com", at("2026-04-02 07:55"))
    old.purchase("u-carla", PRO, at("2026-04-02 08:00"), "pi_legacy_carla_1", customer=carla)
    old.use("u-carla", "chat", 22, "2026-04-02 08:30", "chat-carla-0001")
    personalized = old.make_gift(
        "u-carla",
        "QR8FZH",
        250,
        "2026-11-02 20:00",
        creator_name="carla@example.com",
        expires_at="2027-01-31 20:00",
        target_email="Friend@Example.com",
        message="Happy birthday!",
    )
    ids["personalized_gift"] = personalized["id"]
    ids["personalized_entry"] = personalized["reservation_transaction_id"]

    # A gift claimed (code with an L and a U, from the old alphabet), and a late try.
    old.purchase("u-david", STARTER, at("2026-05-01 12:00"), "pi_legacy_david_1")
    claimed = old.make_gift(
        "u-david", "LUCK42", 200, "2026-05-05 18:00",
        creator_name="david@example.com", expires_at="2026-08-03 18:00",
    )  # fmt: skip
    ids["depleted_gift"] = claimed["id"]
    ids["depleted_redemption"] = old.redeem(claimed, "u-emma", "2026-05-07 09:30")
    old.use("u-emma", "chat", 30, "2026-05-07 10:00", "chat-emma-0001")
    old.open("u-clara", at("2026-05-09 11:00"))
    old.redeem(claimed, "u-clara", "2026-05-09 11:00", "failed_depleted")

    # A gift cancelled by its creator: the credits came back as a refund.
    old.purchase("u-felix", PLUS, at("2026-05-20 15:00"), "pi_legacy_felix_1")
    cancelled = old.make_gift(
        "u-felix", "CNCL7W", 300, "2026-06-01 10:00",
        creator_name="felix@example.com", expires_at="2026-08-30 10:00",
    )  # fmt: skip
    ids["cancelled_gift"] = cancelled["id"]
    ids["cancel_refund"] = old.cancel_gift(cancelled, "2026-06-10 10:00")

    # Expired but still active: the old service never gave expired gifts back.
    old.purchase("u-greta", STARTER, at("2026-01-02 09:00"), "pi_legacy_greta_1")
    expired = old.make_gift(
        "u-greta", "EXPD3Y", 150, "2026-01-05 09:00",
        creator_name="greta@example.com", expires_at="2026-02-04 09:00",
    )  # fmt: skip
    ids["expired_gift"] = expired["id"]
    old.grant("u-hugo", 100, "Community event", "event-2026-02", "2026-02-15 18:00")
    old.redeem(expired, "u-hugo", "2026-02-20 08:00", "failed_expired")
    old.use("u-hugo", "chat", 20, "2026-02-21 08:00", "chat-hugo-0001")

    # A custom purchase without a package, and the oldest kind of gift: no expiry, no name.
    old.purchase("u-ida", None, at("2026-01-08 13:00"), "pi_legacy_ida_1", credits=700, price=700)
    ids["no_expiry_gift"] = old.make_gift(
        "u-ida", "NVXA9T", 50, "2026-01-10 13:00", creator_name=None, expires_at=None
    )["id"]

    # Double credits: a webhook delivered twice, two `purchase` entries for one purchase.
    jonas = old.customer("u-jonas", "jonas@example.com", at("2026-07-01 11:58"))
    ids["double_credit"] = old.purchase(
        "u-jonas",
        PLUS,
        at("2026-07-01 12:00"),
        "pi_legacy_jonas_1",
        customer=jonas,
        credited=(at("2026-07-01 12:00:30"), at("2026-07-01 12:00:32")),
    )
    old.use("u-jonas", "picture", 60, "2026-07-02 09:00", "picture-jonas-0001")
    # ...and once more in the older metadata, which names only the payment intent.
    ids["double_credit_by_intent"] = old.purchase(
        "u-kira",
        LAUNCH,
        at("2026-01-20 17:00"),
        "pi_legacy_kira_1",
        credited=(at("2026-01-20 17:00:30"), at("2026-01-20 17:01:10")),
        intent_only=True,
    )
    old.use("u-kira", "chat", 35, "2026-01-21 10:00", "chat-kira-0001")

    # Balances that drifted from the ledger: more, less, and totals alone.
    old.purchase("u-lena", STARTER, at("2026-04-10 10:00"), "pi_legacy_lena_1")
    old.use("u-lena", "chat", 20, "2026-04-11 10:00", "chat-lena-0001")
    old.use("u-lena", "chat", 30, "2026-04-12 10:00", "chat-lena-0002")
    old.purchase("u-max", PLUS, at("2026-04-15 10:00"), "pi_legacy_max_1")
    old.use("u-max", "picture", 80, "2026-04-16 10:00", "picture-max-0001")
    old.purchase("u-nora", STARTER, at("2026-04-20 10:00"), "pi_legacy_nora_1")
    old.use("u-nora", "memoro", 60, "2026-04-21 10:00", "memoro-nora-0001")

    # Transactions, but the balances row never written.
    old.grant("u-oskar", 200, "Translation help", "translation-de-3", "2026-08-01 10:00")
    old.use("u-oskar", "chat", 35, "2026-08-02 10:00", "chat-oskar-0001")
    old.no_balance_row.add("u-oskar")

    # Two debits raced past the balance check: below zero.
    old.purchase("u-paula", STARTER, at("2026-06-05 10:00"), "pi_legacy_paula_1")
    old.use("u-paula", "picture", 300, "2026-06-06 10:00:00", "picture-paula-0001")
    old.use("u-paula", "picture", 250, "2026-06-06 10:00:00.500", "picture-paula-0002")

    # Two debits read the same balance: the second shows a stale balance_before, and
    # the next one does not chain onto it either.
    old.purchase("u-quentin", PLUS, at("2026-08-10 10:00"), "pi_legacy_quentin_1")
    old.use("u-quentin", "chat", 20, "2026-08-11 09:00:00.100", "chat-quentin-0001")
    ids["stale_entry"] = old.entry(
        "u-quentin", "usage", -30, "chat", "chat usage", at("2026-08-11 09:00:00.200"),
        key="chat-quentin-0002", shown_before=1100,
    )  # fmt: skip
    ids["after_stale_entry"] = old.use(
        "u-quentin", "picture", 10, "2026-08-12 09:00", "picture-quentin-0001"
    )

    # Cloud Sync: monthly and active, charged on the 15th.
    rosa = old.customer("u-rosa", "rosa@example.com", at("2026-06-14 07:58"))
    old.purchase("u-rosa", PLUS, at("2026-06-14 08:00"), "pi_legacy_rosa_1", customer=rosa)
    for month in range(6, 12):
        old.sync_charge("u-rosa", 30, f"2026-{month:02d}-15 03:00")
    old.subscription(
        "u-rosa",
        active=True,
        activated="2026-06-15 03:00",
        next_charge="2026-12-15 03:00",
        updated="2026-11-15 03:00",
    )

    # Charged three times in twelve days, then paused when the credits ran out.
    old.grant("u-stefan", 100, "Beta tester", "beta-tester-17", "2026-09-28 09:00")
    old.sync_charge("u-stefan", 30, "2026-10-01 09:00:00")
    ids["duplicate_charge_1"] = old.sync_charge("u-stefan", 30, "2026-10-01 09:00:45")
    ids["duplicate_charge_2"] = old.sync_charge("u-stefan", 30, "2026-10-12 09:00")
    old.use("u-stefan", "chat", 5, "2026-10-20 09:00", "chat-stefan-0001")
    old.subscription(
        "u-stefan",
        active=False,
        activated="2026-10-01 09:00",
        next_charge="2026-11-01 09:00",
        paused="2026-11-01 09:00",
        updated="2026-11-01 09:00",
    )

    # Gifted by an operator: never charged. The balances row holds nothing.
    old.open("u-tara", at("2026-07-01 10:00"))
    old.subscription(
        "u-tara",
        active=True,
        activated="2026-07-01 10:00",
        next_charge=None,
        gifted_by="u-admin-1",
        gifted="2026-07-01 10:00",
        updated="2026-07-01 10:00",
    )

    # Quarterly, active.
    old.purchase("u-uwe", PRO, at("2026-03-09 08:00"), "pi_legacy_uwe_1")
    for month in (3, 6, 9):
        old.sync_charge("u-uwe", 90, f"2026-{month:02d}-10 08:00")
    old.subscription(
        "u-uwe",
        active=True,
        interval="quarterly",
        amount=90,
        activated="2026-03-10 08:00",
        next_charge="2026-12-10 08:00",
        updated="2026-09-10 08:00",
    )

    # Yearly, switched off by the user after one charge.
    old.purchase("u-vera", PLUS, at("2026-01-19 08:00"), "pi_legacy_vera_1")
    old.sync_charge("u-vera", 360, "2026-01-20 08:00")
    old.subscription(
        "u-vera",
        active=False,
        interval="yearly",
        amount=360,
        activated="2026-01-20 08:00",
        next_charge=None,
        updated="2026-02-02 12:00",
    )

    # Reservations: committed, refunded, and one held right now.
    old.purchase("u-wim", STARTER, at("2026-09-01 09:00"), "pi_legacy_wim_1")
    committed = old.hold("u-wim", 25, "Image generation", at("2026-09-03 10:00"))
    ids["committed_entry"] = old.commit(
        committed, "picture", "Image generation", at("2026-09-03 10:01")
    )
    refunded = old.hold("u-wim", 60, "Video transcription", at("2026-10-07 10:00"))
    old.release(refunded, at("2026-10-07 10:02"))
    recent = old.hold("u-wim", 40, "Image generation", at("2026-11-29 16:00"))
    # Held since January and never resolved (the old service had no expiry).
    old.purchase("u-xenia", STARTER, at("2026-01-12 10:00"), "pi_legacy_xenia_1")
    old.use("u-xenia", "chat", 20, "2026-01-13 10:00", "chat-xenia-0001")
    stuck = old.hold("u-xenia", 80, "Video transcription", at("2026-01-14 10:00"))
    ids.update(
        committed_reservation=committed.id,
        refunded_reservation=refunded.id,
        recent_reservation=recent.id,
        stuck_reservation=stuck.id,
    )

    # One gift claimed twice by a race: two successful redemptions, two credits.
    old.purchase("u-alex", STARTER, at("2026-07-01 08:00"), "pi_legacy_alex_1")
    twice = old.make_gift(
        "u-alex", "TWCE5G", 120, "2026-07-10 12:00",
        creator_name="alex@example.com", expires_at="2026-10-08 12:00",
    )  # fmt: skip
    ids["twice_redeemed_gift"] = twice["id"]
    ids["twice_redemption_1"] = old.redeem(twice, "u-yara", "2026-07-20 10:00:00")
    ids["twice_redemption_2"] = old.redeem(twice, "u-zeno", "2026-07-20 10:00:00.300")
    old.use("u-zeno", "chat", 12, "2026-07-21 10:00", "chat-zeno-0001")

    # Someone else tried the personalized gift.
    bruno = old.customer("u-bruno", "bruno@example.com", at("2026-10-20 09:00"))
    old.purchase("u-bruno", STARTER, at("2026-10-20 09:01"), "pi_legacy_bruno_1", customer=bruno)
    old.use("u-bruno", "picture", 45, "2026-10-21 09:00", "picture-bruno-0001")
    old.redeem(personalized, "u-bruno", "2026-11-05 09:00", "failed_wrong_user")

    # Payments that never completed: one failed, one still pending.
    clara = old.customer("u-clara", "clara@example.com", at("2026-11-20 08:59"))
    old.purchase(
        "u-clara", PLUS, at("2026-11-20 09:00"), "pi_legacy_clara_failed",
        status="failed", customer=clara,
    )  # fmt: skip
    ids["pending_purchase"] = old.purchase(
        "u-clara",
        STARTER,
        at("2026-11-28 09:00"),
        "pi_legacy_pending_1",
        status="pending",
        customer=clara,
    )

    # A debit the old service logged as failed (not enough credits): it moved nothing.
    old.purchase("u-dora", STARTER, at("2026-02-14 08:00"), "pi_legacy_dora_1")
    old.use("u-dora", "chat", 20, "2026-02-14 09:00", "chat-dora-0001")
    ids["failed_entry"] = old.entry(
        "u-dora", "usage", -600, "picture", "picture usage", at("2026-02-15 09:00"),
        status="failed",
    )  # fmt: skip
    old.use("u-dora", "picture", 60, "2026-02-15 09:05", "picture-dora-0001")

    # Busy days: many debits in one app on one day, and a few more users.
    old.grant("u-ella", 100, "Welcome", "welcome-ella", "2026-03-20 13:00")
    for minute in range(0, 50, 10):
        old.use("u-ella", "chat", 3, f"2026-03-20 14:{minute:02d}", f"chat-ella-{minute:04d}")
    old.use("u-ella", "chat", 3, "2026-03-21 14:00", "chat-ella-0100")
    for name, month in (("finn", 2), ("gina", 5), ("hans", 8), ("iris", 10)):
        user = f"u-{name}"
        old.purchase(user, STARTER, at(f"2026-{month:02d}-03 12:00"), f"pi_legacy_{name}_1")
        old.use(user, "chat", 10 + month, f"2026-{month:02d}-04 12:00", f"chat-{name}-0001")
        old.use(user, "memoro", month, f"2026-{month:02d}-05 12:00", f"memoro-{name}-0001")

    tables = dict(old.tables)
    tables["balances"] = old.balance_rows(DRIFTS)
    return Story(tables, ids)


DRIFTS: dict[str, dict[str, int]] = {
    # A credit that reached the balance but lost its transaction: 25 too many.
    "u-lena": {"balance": 475},
    # A debit that reached the balance but lost its transaction: 40 too few.
    "u-max": {"balance": 980},
    # The balance is right, the lifetime totals are not.
    "u-nora": {"total_earned": 1000, "total_spent": 0},
}
