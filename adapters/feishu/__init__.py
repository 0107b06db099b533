"""Feishu / Lark: private chats, groups and topic threads, answers streamed into CardKit cards.

Registered as a platform plug-in (``PLUGIN``); lark-oapi is imported only when
``FEISHU_APP_ID`` and ``FEISHU_APP_SECRET`` are set and the adapter starts. Setup: docs/feishu.md.
"""

from adapters.feishu.settings import FeishuSettings
from bot.platform import PlatformPlugin

PLUGIN = PlatformPlugin(
    name="feishu",
    title="Feishu / Lark",
    settings=FeishuSettings,
    adapter="adapters.feishu.adapter:FeishuAdapter",
    quiet_loggers=("Lark",),
)

__all__ = ["FeishuSettings", "PLUGIN"]
