"""A terminal conversation through the same core and store (``bot chat``)."""

from adapters.console.settings import ConsoleSettings
from bot.platform import PlatformPlugin

PLUGIN = PlatformPlugin(
    name="console",
    title="Terminal",
    settings=ConsoleSettings,
    adapter="adapters.console.chat:ConsoleAdapter",
    served_by_run=False,
)

__all__ = ["PLUGIN", "ConsoleSettings"]
