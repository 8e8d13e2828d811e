"""The price list: what each paid operation of the suite costs, and how costs below a
credit are charged exactly.

Prices are kept in milli-credits (1 credit = 1,000 milli-credits = 1 euro cent), as
integers: a price is given in credits with up to three decimals ("0.1", "5", "0.25")
and no float ever takes part. An operation may be priced per call or per `unit_size`
units of something (`bulk_import`: 0.2 credits per 10 items).

Costs below a credit accrue per user (`accrue`): a debit adds its cost in
milli-credits to what the user has accrued, charges the whole credits now due and
carries the remainder (0..999 milli-credits) to the next debit, whatever app it comes
from. Ten calls at 0.1 credits cost exactly 1 credit, a thousand exactly 100
(docs/pricing.md has a worked example).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput

if TYPE_CHECKING:  # ledger imports this module
    from .ledger import OperationUsage

MILLI = 1_000
"""Milli-credits per credit."""
MAX_PRICE_MILLI = 100_000 * MILLI
"""The dearest price: 100,000 credits (1,000 euros) per call or unit."""
MAX_QUANTITY = 1_000_000
"""The most units one debit or reservation may count."""
MAX_UNIT_SIZE = 1_000_000
MAX_OPERATION = 64
MAX_NAME = 100
MAX_PRICE_DESCRIPTION = 500
MAX_UNIT = 32
PRICING_KEY = "pricing"
"""The key of a priced ledger entry's metadata that records how it was priced
(`Priced.record`); a client's own metadata on a debit may not use it."""

SYNC_OPERATION = "cloud_sync"
"""The price list's entry for Cloud Sync: its price is what one month of the
subscription costs (`SyncService` charges it per period, in whole credits); it is not
debited by operation and cannot be retired."""
SYNC_APP = "sync"
"""The app of Cloud Sync's entries and of its price."""

_OPERATION = re.compile(rf"[a-z][a-z0-9_]{{0,{MAX_OPERATION - 1}}}")
_CREDITS = re.compile(r"[0-9]+(\.[0-9]{1,3})?")  # ASCII digits only: not `\d`
_SHOWN = 24  # characters of a refused value an error quotes


@dataclass(frozen=True, slots=True)
class Price:
    """One operation of the price list.

    `price_milli` is milli-credits per `unit_size` units of `unit` (None: per call, and
    `unit_size` is 1). A retired price (`retired_at` set) prices nothing any more but
    stays listed for the records of the entries that used it.
    """

    operation: str
    app_id: str
    name: str
    description: str
    price_milli: int
    unit: str | None
    unit_size: int
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.retired_at is None


class PriceAction(enum.StrEnum):
    """What a change to the price list did."""

    CREATED = "created"
    CHANGED = "changed"
    RETIRED = "retired"
    RESTORED = "restored"  # a retired operation priced again


@dataclass(frozen=True, slots=True)
class PriceChange:
    """One change to the price list, kept for good: who made it, when, why, and the
    price before and after (milli-credits; None where there was or is none)."""

    id: str
    operation: str
    action: PriceAction
    old_price_milli: int | None
    new_price_milli: int | None
    operator: str
    reason: str | None
    at: datetime
    # The other fields the change set, as they were before it ({} for a new price).
    before: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Priced:
    """How one debit or reservation is priced: `quantity` units of `operation` at
    `price_milli` per `unit_size` units cost `cost_milli` milli-credits."""

    operation: str
    quantity: int
    price_milli: int
    unit_size: int
    cost_milli: int

    @property
    def most_credits(self) -> int:
        """The whole credits the cost can make due at most, whatever was accrued
        before (`accrue` never charges more): what a debit may need, what a
        reservation holds."""
        return -(-self.cost_milli // MILLI)

    def with_quantity(self, quantity: int) -> Priced:
        """The same price for another quantity."""
        return priced_at(self.operation, self.price_milli, self.unit_size, quantity)

    def record(self, accrued_milli: int) -> dict[str, Any]:
        """The entry's `pricing` metadata: this pricing and `accrued_milli`, the user's
        accrued milli-credits carried after the entry."""
        return {
            "operation": self.operation,
            "quantity": self.quantity,
            "priceMilli": self.price_milli,
            "unitSize": self.unit_size,
            "costMilli": self.cost_milli,
            "accruedMilli": accrued_milli,
        }


def cost_milli(price_milli: int, quantity: int, unit_size: int = 1) -> int:
    """What `quantity` units cost at `price_milli` per `unit_size` units, in
    milli-credits, rounded up to a whole milli-credit (a thousandth of a cent)."""
    return -(-(price_milli * quantity) // unit_size)


def priced_at(operation: str, price_milli: int, unit_size: int, quantity: int) -> Priced:
    return Priced(
        operation, quantity, price_milli, unit_size, cost_milli(price_milli, quantity, unit_size)
    )


def price_of(price: Price, quantity: int) -> Priced:
    """`quantity` units of an active `price`. Raises `InvalidInput` (field `operation`)
    for a retired price, and for Cloud Sync, which its subscription bills."""
    if price.operation == SYNC_OPERATION:
        raise InvalidInput(
            "operation",
            f"operation {SYNC_OPERATION} is billed by the Cloud Sync subscription "
            "(POST /api/v1/sync/activate), not debited by operation",
        )
    if not price.active:
        raise InvalidInput("operation", f"operation {price.operation} is retired and has no price")
    return priced_at(price.operation, price.price_milli, price.unit_size, quantity)


def accrue(accrued_milli: int, cost: int) -> tuple[int, int]:
    """(whole credits now due, milli-credits carried) when a cost of `cost`
    milli-credits meets `accrued_milli` (0..999) accrued before. The credits due are
    never more than `Priced.most_credits` of the cost."""
    total = accrued_milli + cost
    return total // MILLI, total % MILLI


def parse_credits(value: object, field: str = "price") -> int:
    """Credits as text or an integer ("0.1", "5", 2) in milli-credits (100, 5000, 2000).

    Up to three decimals, at least 0.001 and at most `MAX_PRICE_MILLI`; floats are
    refused (0.1 is not exactly a tenth as a float). Raises `InvalidInput` naming
    `field`.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(field, f'{field} must be credits as text, e.g. "0.1" or "5"')
    # No blanks trimmed: as amounts, a price is exactly what it says.
    text = str(value)
    shown = text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
    if not _CREDITS.fullmatch(text):
        raise InvalidInput(
            field,
            f"{field} must be credits in ASCII digits with at most 3 decimals, e.g. 0.1 or 5"
            f" (got {shown!r})",
        )
    whole = text.partition(".")[0].lstrip("0")
    # Length first: a 5,000-digit number is not worth converting.
    too_big = len(whole) > len(str(MAX_PRICE_MILLI // MILLI))
    milli = 0 if too_big else int(Decimal(text) * MILLI)
    if too_big or not 1 <= milli <= MAX_PRICE_MILLI:
        raise InvalidInput(
            field, f"{field} must be 0.001..{MAX_PRICE_MILLI // MILLI} credits (got {shown})"
        )
    return milli


def format_credits(milli: int) -> str:
    """Milli-credits as credits in the fewest decimals: 100 -> "0.1", 5000 -> "5"."""
    whole, part = divmod(milli, MILLI)
    if part == 0:
        return str(whole)
    return f"{whole}.{part:03d}".rstrip("0")


_UNIT = re.compile(rf"[a-z]{{1,{MAX_UNIT}}}")


def reads_as_plural(word: str) -> bool:
    """Whether `word` reads as a regular plural: it ends in s, but not in ss, us or is
    (items, boxes, entries; not class, bus, analysis). The rule that keeps units
    singular (`unit_name`); a few singulars ending in a lone s (gas, lens) fall under it
    too and need another word."""
    return word.endswith("s") and not word.endswith(("ss", "us", "is"))


def unit_name(value: object, field: str = "unit") -> str:
    """What a price counts, as one lower-case word of 1..32 ASCII letters, singular
    ("item", "month", "page"): it is read after a number ("per 10 items"), so a word
    that reads as a plural (`reads_as_plural`) is refused. Raises `InvalidInput`."""
    if not isinstance(value, str) or not _UNIT.fullmatch(value):
        raise InvalidInput(
            field, f"{field} must be one lower-case word, singular, e.g. item, page or month"
        )
    if value == "call":
        raise InvalidInput(field, f'a price per call has no {field}; give "" for per call')
    if reads_as_plural(value):
        raise InvalidInput(
            field,
            f"{field} {value} reads as a plural; units are singular, give the word for one"
            " (item, not items)",
        )
    return value


def plural(noun: str) -> str:
    """A regular English noun's plural (box -> boxes, entry -> entries, page -> pages):
    units are such words (`unit_name`). A word that reads as a plural already (a unit
    stored before units were checked) stays as it is: never "boxeses"."""
    if reads_as_plural(noun):
        return noun
    if noun.endswith("is"):  # analysis -> analyses, basis -> bases
        return noun[:-2] + "es"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + "s"


def counted(count: int, noun: str) -> str:
    """`count` of a regular `noun`: "1 credit", "3 credits", "2 boxes"."""
    return f"{count} {noun if count == 1 else plural(noun)}"


def unit_text(unit: str | None, unit_size: int = 1) -> str:
    """How a price counts: "per call", "per month", "per 10 items"."""
    if unit is None:
        return "per call"
    return f"per {unit}" if unit_size == 1 else f"per {counted(unit_size, unit)}"


def price_text(price_milli: int, unit: str | None = None, unit_size: int = 1) -> str:
    """A price as people read it: "1 credit per call", "0.2 credits per 10 items"."""
    noun = "credit" if price_milli == MILLI else "credits"
    return f"{format_credits(price_milli)} {noun} {unit_text(unit, unit_size)}"


def operation_id(value: object, field: str = "operation") -> str:
    """An operation id: lower-case letters, digits and `_`, starting with a letter,
    1..64 characters. Raises `InvalidInput`."""
    if not isinstance(value, str) or not _OPERATION.fullmatch(value):
        raise InvalidInput(
            field,
            f"{field} must be an operation id: a-z, 0-9 and _, starting with a letter, "
            f"at most {MAX_OPERATION} characters",
        )
    return value


def quantity(value: object, field: str = "quantity") -> int:
    """A quantity of units: an integer 1..`MAX_QUANTITY` (None: 1). Raises
    `InvalidInput`."""
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"{field} must be an integer")
    if not 1 <= value <= MAX_QUANTITY:
        raise InvalidInput(field, f"{field} must be 1..{MAX_QUANTITY}")
    return value


@dataclass(frozen=True, slots=True)
class SeedPrice:
    operation: str
    app_id: str
    name: str
    description: str
    price_milli: int
    unit: str | None = None
    unit_size: int = 1


SEED_PRICES: tuple[SeedPrice, ...] = (
    SeedPrice("ai_chat_gpt4", "chat", "Chat (GPT-4)", "One chat answer from GPT-4.", 5000),
    SeedPrice("ai_chat_claude", "chat", "Chat (Claude)", "One chat answer from Claude.", 5000),
    SeedPrice("ai_chat_gemini", "chat", "Chat (Gemini)", "One chat answer from Gemini.", 2000),
    SeedPrice("ai_chat_qwen", "chat", "Chat (Qwen)", "One chat answer from Qwen.", 2000),
    SeedPrice(
        "ai_chat_ollama", "chat", "Chat (local model)", "One chat answer from a local model.", 100
    ),
    SeedPrice("ai_image_generation", "picture", "Image generation", "One generated image.", 10000),
    SeedPrice("ai_image_upscale", "picture", "Image upscale", "One upscaled image.", 5000),
    SeedPrice("ai_research_quick", "research", "Quick research", "One quick research.", 5000),
    SeedPrice("ai_research_deep", "research", "Deep research", "One deep research.", 25000),
    SeedPrice("ai_deck_generation", "cards", "Deck generation", "One generated deck.", 20000),
    SeedPrice("ai_card_generation", "cards", "Card generation", "One generated card.", 2000),
    SeedPrice("ai_quote_explanation", "quotes", "Quote explanation", "One explained quote.", 2000),
    SeedPrice("ai_guide_generation", "guides", "Guide generation", "One generated guide.", 5000),
    SeedPrice("notes_import_url", "notes", "Import from URL", "One page imported as a note.", 1000),
    SeedPrice(
        "ai_smart_scheduling", "calendar", "Smart scheduling", "One scheduling proposal.", 2000
    ),
    SeedPrice("ai_suggestions", "todo", "Suggestions", "One set of suggestions.", 2000),
    SeedPrice("ai_enrichment", "contacts", "Enrichment", "One enriched record.", 2000),
    SeedPrice(
        SYNC_OPERATION, SYNC_APP, "Cloud Sync", "Cloud Sync for one month.", 30000, "month", 1
    ),
    SeedPrice("bulk_import", "notes", "Bulk import", "Items imported in bulk.", 200, "item", 10),
    SeedPrice("pdf_export", "documents", "PDF export", "One document exported as PDF.", 1000),
    SeedPrice("premium_theme", "themes", "Premium theme", "One premium theme unlocked.", 3000),
)
"""The price list a new store starts with (operators change it with `prices set`)."""


def seeded(now: datetime) -> list[Price]:
    """`SEED_PRICES` as prices created at `now`."""
    return [
        Price(
            s.operation,
            s.app_id,
            s.name,
            s.description,
            s.price_milli,
            s.unit,
            s.unit_size,
            now,
            now,
        )
        for s in SEED_PRICES
    ]


@dataclass(slots=True)
class OperationTotal:
    """One operation's priced usage over a period: calls, units, cost in
    milli-credits; `price` is its entry in the price list (None: not listed)."""

    operation: str
    price: Price | None
    calls: int = 0
    quantity: int = 0
    cost_milli: int = 0

    @property
    def app_id(self) -> str | None:
        return None if self.price is None else self.price.app_id


def operation_totals(rows: list[OperationUsage], prices: list[Price]) -> list[OperationTotal]:
    """Usage rows (per operation and day) summed per operation, dearest first, then
    by operation id; `prices` (retired ones included) names each operation's app."""
    listed = {p.operation: p for p in prices}
    found: dict[str, OperationTotal] = {}
    for row in rows:
        total = found.get(row.operation)
        if total is None:
            total = found[row.operation] = OperationTotal(row.operation, listed.get(row.operation))
        total.calls += row.calls
        total.quantity += row.quantity
        total.cost_milli += row.cost_milli
    return sorted(found.values(), key=lambda t: (-t.cost_milli, t.operation))
