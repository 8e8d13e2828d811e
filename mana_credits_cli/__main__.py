"""`python -m mana_credits_cli`: the same as the `mana-credits` command."""

from .main import run

run()
