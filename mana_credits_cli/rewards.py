"""`mana-credits credits reward`: what the internal grant route does, from a shell."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .runtime import (
    DatabaseUrl,
    JsonOutput,
    NewUser,
    console,
    creditable,
    open_services,
    print_json,
    run,
)

if TYPE_CHECKING:
    from mana_credits_core.rewards import Reward


def reward(
    user: Annotated[str, typer.Argument(metavar="USER", help="The user id.")],
    amount: Annotated[
        str, typer.Argument(metavar="AMOUNT", help="Credits (a whole number, 1..100000000).")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why, 1..64 characters.")],
    reference: Annotated[
        str,
        typer.Option(
            "--reference",
            help="What is rewarded (1..128 characters): USER gets it once per reference.",
        ),
    ],
    description: Annotated[
        str | None, typer.Option(help="Text of the entry (≤ 256; default: the reason).")
    ] = None,
    new_user: NewUser = False,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Reward USER once per --reference (a community grant).

    The entry is a `grant` on the `community` app. Repeating a reference changes
    nothing and shows the original grant.

    \b
    Example:
      mana-credits credits reward alice 50 --reason feedback --reference fb-4711
    """
    from .credits import amount_of  # not at import time: `credits` registers this command

    async def work() -> Reward:
        async with open_services(database_url) as services:
            await creditable(services, user, new_user)
            return await services.credits.reward(
                user, amount_of(amount), reason, reference, description=description
            )

    done = run(work, {"referenceId": "--reference"})
    e = done.entry
    if json:
        print_json(
            {
                "userId": e.user_id,
                "alreadyGranted": done.already_granted,
                "amount": e.amount,
                "newBalance": done.balance_after,
                "transactionId": e.id,
            }
        )
    elif done.already_granted:
        console.print(
            f"{e.user_id}: {reference} was already rewarded ({e.amount:+d}), nothing changed; "
            f"balance after that grant {done.balance_after}",
            markup=False,
            highlight=False,
        )
    else:
        console.print(
            f"{e.user_id}: grant {e.amount:+d} for {reference}, balance {done.balance_after}",
            markup=False,
            highlight=False,
        )
