"""Slack: mentions, threads, DMs, the assistant view, images, native streaming.

Registered as a platform plug-in (``PLUGIN``); slack-bolt is imported only when
``SLACK_BOT_TOKEN`` is set. Setup steps: adapters/slack/README.md.
"""

from adapters.slack.settings import SlackSettings
from bot.platform import PlatformPlugin

PLUGIN = PlatformPlugin(
    name="slack",
    title="Slack",
    settings=SlackSettings,
    adapter="adapters.slack.adapter:SlackAdapter",
    quiet_loggers=("slack_bolt", "slack_sdk"),
)

__all__ = ["PLUGIN", "SlackSettings"]
