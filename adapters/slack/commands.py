"""Slack slash commands → the core's commands, in a thread of their own.

Slack does not let users run an app's slash commands inside a thread (the composer answers
"not supported in threads"), and a slash command posts nothing visible. So a command run
in a channel or DM gets an anchor message from the bot ("@alice used `/style …`") and the
thread under it is the conversation: the core's reply goes there, the style is stored on
it, and everyone who replies in that thread shares it. Inside an existing thread the text
forms work instead: ``@bot /style …`` or ``!style …``.

Because a slash command always starts a fresh thread (which has no style yet), ``/copy``
may name the style first: ``/copy xiaohongshu 桂花乌龙茶`` (the core's /copy takes a style
named first, and a conversation without one keeps it).

Which commands Slack delivers is the app manifest's list (``manifest.*.json``); every one
goes to the core, which answers a command it does not know as such.

A command the core offers on messages (``CommandInfo.on_message``: /check) is also a message
shortcut (the message's ⋯ menu): it runs on the picked message's text, where a slash command
could not reach it, and its answer is shown to the person who picked it alone, in that
message's thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ANCHOR_ARGS_MAX = 200  # characters of the arguments repeated in the anchor message
SHORTCUT_PREFIX = "cmd_"  # a message shortcut's callback_id: "cmd_check" runs /check
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|[^>]*)?>")


@dataclass(frozen=True, slots=True)
class SlashCommand:
    team: str
    channel: str
    user: str
    command: str  # "/style"
    text: str  # what follows it
    trigger_id: str = ""

    @property
    def is_dm(self) -> bool:
        return self.channel.startswith("D")

    @property
    def core_text(self) -> str:
        """What the core's command parser gets."""
        return f"{self.command} {self.text}".strip()

    def anchor_text(self) -> str:
        """The bot's top-level message that the command's thread hangs under (mrkdwn)."""
        args = " ".join(self.text.split())
        if len(args) > ANCHOR_ARGS_MAX:
            args = args[: ANCHOR_ARGS_MAX - 1] + "…"
        shown = _escape(f"{self.command} {args}".strip()).replace("`", "'")
        return f"<@{self.user}> used `{shown}` · replies in this thread go to me"


def parse(body: dict) -> SlashCommand | None:
    """The command in a slash-command payload, or None if it is malformed."""
    command = str(body.get("command") or "").strip().lower()
    channel, user = body.get("channel_id") or "", body.get("user_id") or ""
    if not command.startswith("/") or len(command) < 2 or not channel or not user:
        return None
    team = body.get("team_id") or ""
    return SlashCommand(
        team=team,
        channel=channel,
        user=user,
        command=command,
        text=str(body.get("text") or "").strip(),
        trigger_id=body.get("trigger_id") or "",
    )


def shortcut_id(command: str) -> str:
    """The message shortcut's callback_id for a core command ("check" → "cmd_check")."""
    return SHORTCUT_PREFIX + command


@dataclass(frozen=True, slots=True)
class MessageShortcut:
    """A core command run on a message from its ⋯ menu."""

    command: str  # "check"
    team: str
    channel: str
    user: str
    text: str  # the picked message's text, as plain text
    thread_ts: str  # the thread the message is in (its own ts at the top level)
    trigger_id: str = ""

    @property
    def is_dm(self) -> bool:
        return self.channel.startswith("D")


def parse_shortcut(body: dict) -> MessageShortcut | None:
    """The command in a ``message_action`` payload whose callback_id is ours, or None."""
    callback = str(body.get("callback_id") or "")
    channel = (body.get("channel") or {}).get("id") or ""
    user = (body.get("user") or {}).get("id") or ""
    message = body.get("message") or {}
    ts = message.get("ts") or body.get("message_ts") or ""
    if not callback.startswith(SHORTCUT_PREFIX) or not channel or not user or not isinstance(ts, str) or not ts:
        return None
    team = body.get("team") or {}
    return MessageShortcut(
        command=callback.removeprefix(SHORTCUT_PREFIX),
        team=(team.get("id") if isinstance(team, dict) else team) or "",
        channel=channel,
        user=user,
        text=plain_text(str(message.get("text") or "")),
        thread_ts=str(message.get("thread_ts") or ts),
        trigger_id=str(body.get("trigger_id") or ""),
    )


def plain_text(mrkdwn: str) -> str:
    """A message's text as its author wrote it: links unwrapped, Slack's escapes undone (a
    check must see the URL and the characters, not ``<https://…|…>`` or ``&lt;``)."""
    text = _LINK.sub(r"\1", mrkdwn)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _escape(text: str) -> str:
    # Slack's mrkdwn reserves these three characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


CANT_POST = (
    "I can't post in this conversation, so I couldn't start a thread for `{command}`. "
    "Invite me first (`/invite @{name}`), or mention me in a thread instead: "
    "`@{name} {command} …` (or `!{bare} …`)."
)
