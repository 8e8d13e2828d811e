"""Payment gateways: Stripe (official SDK) and the dev gateway of the embedded default."""
