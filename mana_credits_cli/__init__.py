"""mana-credits admin CLI."""
