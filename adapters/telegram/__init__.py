"""Telegram: private chats, groups and forum topics through python-telegram-bot.

Registered as a platform plug-in (``PLUGIN``); python-telegram-bot is imported only when
``TELEGRAM_BOT_TOKEN`` is set and the adapter starts.
"""

from adapters.telegram.settings import TelegramSettings
from bot.platform import PlatformPlugin

PLUGIN = PlatformPlugin(
    name="telegram",
    title="Telegram",
    settings=TelegramSettings,
    adapter="adapters.telegram.app:TelegramAdapter",
    quiet_loggers=("telegram.ext",),
    # python-telegram-bot imports cryptography (~7 MB resident) to decrypt Telegram
    # Passport data when it is installed (mcp's pyjwt[crypto] installs it); the bot
    # asks for no Passport data.
    unused_imports=("cryptography",),
)

__all__ = ["PLUGIN", "TelegramSettings"]
