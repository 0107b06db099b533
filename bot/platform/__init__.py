"""What platforms see of the bot: the one package adapters import from ``bot``."""
