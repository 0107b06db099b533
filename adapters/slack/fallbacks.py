"""Catch-all listeners, registered after every real one.

Bolt answers a request no listener matched with 404, and Slack then shows the user an error
("this app is not responding") for a button, shortcut, modal or slash command. Bolt runs the
first matching listener in registration order, so these only see what nothing else took:
each is acknowledged (and logged at debug level) so the user sees no error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)

ANY = re.compile(r"(?s).*")


async def _ack(ack: Any, body: dict) -> None:
    await ack()
    log.debug("slack: acknowledged an unhandled %s", body.get("type") or "request")


async def _ack_options(ack: Any) -> None:
    await ack(options=[])  # an empty menu rather than an error in the select


async def _ignore_event() -> None:
    return None


def register_fallbacks(app: AsyncApp, unknown_command: Callable[[str], str]) -> None:
    """Call last in the app's set-up. ``unknown_command`` words the answer to a slash command
    the bot does not have (shown only to the user who typed it)."""

    async def _ack_command(ack: Any, body: dict) -> None:
        await ack(text=unknown_command(str(body.get("command") or "")[:64]))

    app.action(ANY)(_ack)  # block actions, legacy attachment buttons, dialogs
    app.shortcut(ANY)(_ack)  # global and message shortcuts
    app.view(ANY)(_ack)  # view submissions
    app.view({"type": "view_closed", "callback_id": ANY})(_ack)
    app.options(ANY)(_ack_options)  # block suggestions and dialog suggestions
    app.command(ANY)(_ack_command)
    app.event(ANY)(_ignore_event)  # events the app subscribes to but does not use
