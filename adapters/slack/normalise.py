"""Slack events → what the core should do with them (pure functions, no I/O).

Policy:
- Channels: an @mention is answered in a thread under it (the thread is the conversation).
  Later messages in a thread the bot has joined are answered without a mention, except
  ones that @mention someone else and not the bot: those are talk between people, kept as
  shared context. Authors are attributed (``group=True``).
- DMs: each thread is a conversation; a top-level DM starts one.
- Ignored: the bot's own and other bots' messages, edits, deletions and other subtypes.
  A channel message that mentions the bot is left to its ``app_mention`` event (Slack
  sends both), so it is answered once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.platform import ConversationKey

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
ANSWERED_SUBTYPES = {None, "", "file_share", "thread_broadcast"}


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """The bot, from auth.test at start (never looked up per request)."""

    team_id: str
    user_id: str
    bot_id: str
    name: str = "bot"
    commands: frozenset[str] = frozenset()  # the registered commands ("!style" means "/style")


RouteMode = Literal["answer", "joined", "context"]


@dataclass(frozen=True, slots=True)
class Route:
    """An event the adapter acts on."""

    key: ConversationKey
    user: str
    text: str
    ts: str
    thread_ts: str
    group: bool
    # "answer": addressed to the bot; "joined": answered if the bot is in the thread;
    # "context": stored, not answered (only if the bot is in the thread)
    mode: RouteMode
    files: tuple = ()
    user_team: str = ""


def mentions(text: str) -> set[str]:
    return set(_MENTION.findall(text or ""))


def strip_mention(text: str, bot_user_id: str, commands: frozenset[str] = frozenset()) -> str:
    """Remove the bot's own mention; turn ``!cmd`` (a registered command) into ``/cmd``:
    Slack does not let a slash command be typed inside a thread."""
    cleaned = re.sub(rf"<@{bot_user_id}(?:\|[^>]*)?>", "", text or "").strip()
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
    if cleaned.startswith("!"):
        word = cleaned[1:].split(" ", 1)[0].lower()
        if word in commands:
            cleaned = "/" + cleaned[1:]
    return cleaned


def is_from_bot(event: dict, me: BotIdentity) -> bool:
    return (
        bool(event.get("bot_id") or event.get("bot_profile"))
        or event.get("user") == me.user_id
        or not event.get("user")
    )


def _route(event: dict, team: str, me: BotIdentity, thread: str, *, group: bool, mode: RouteMode) -> Route:
    return Route(
        ConversationKey("slack", team, event["channel"], thread),
        event["user"],
        strip_mention(event.get("text", ""), me.user_id, me.commands),
        event["ts"],
        thread,
        group=group,
        mode=mode,
        files=tuple(event.get("files") or ()),
        user_team=event.get("user_team") or team,
    )


def _well_formed(event: dict) -> bool:
    """The fields a route reads have the types Slack documents (anything else is dropped)."""
    return (
        all(isinstance(event.get(k), str) for k in ("channel", "ts", "user"))
        and all(
            isinstance(event.get(k), str) or event.get(k) is None
            for k in ("text", "thread_ts", "subtype", "channel_type", "user_team")
        )
        and isinstance(event.get("files") or [], list)
    )


def _answerable(event: dict, me: BotIdentity) -> bool:
    """A person's own new message with a place (malformed events are dropped, not raised on)."""
    return (
        _well_formed(event)
        and event.get("subtype") in ANSWERED_SUBTYPES
        and not is_from_bot(event, me)
        and bool(event.get("channel"))
        and bool(event.get("ts"))
    )


def route_mention(event: dict, team: str, me: BotIdentity) -> Route | None:
    if not _answerable(event, me):
        return None
    return _route(event, team, me, event.get("thread_ts") or event["ts"], group=True, mode="answer")


def route_message(event: dict, team: str, me: BotIdentity) -> Route | None:
    if not _answerable(event, me):
        return None
    channel_type = event.get("channel_type") or ("im" if event["channel"].startswith("D") else "channel")
    if channel_type == "im":
        return _route(event, team, me, event.get("thread_ts") or event["ts"], group=False, mode="answer")
    thread = event.get("thread_ts")
    named = mentions(event.get("text", ""))
    if me.user_id in named or not thread:
        return None  # the app_mention event answers it; top-level chatter is not ours
    return _route(event, team, me, thread, group=True, mode="context" if named else "joined")


_LINK = re.compile(r"<(?:#[CG][A-Z0-9]+\|([^>]*)|(?:https?|mailto):[^>|]*\|([^>]*)|((?:https?|mailto):[^>]*))>")
_FORMATTING = re.compile(r"[*_~`]+|^[>#\s]+")
_WIDE = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]")  # CJK: each character about two wide


def title_for(text: str, limit: int = 40) -> str:
    """A thread's title from its first message, as a list of conversations shows it: the first
    line that says something, Slack's markup reduced to what it shows (a link's label, a
    channel's name), cut at a word where there are words (Chinese has none), "" for nothing."""
    plain = _MENTION.sub("", text or "")
    plain = _LINK.sub(lambda m: f"#{m[1]}" if m[1] else m[2] or m[3] or "", plain)
    line = next((ln for ln in (_FORMATTING.sub("", raw).strip() for raw in plain.splitlines()) if ln), "")
    flat = " ".join(line.split())
    if len(_WIDE.findall(flat)) > len(flat) // 2:
        limit //= 2
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut and flat[limit - 1] != " ":
        cut = cut[: cut.rfind(" ")] if cut.rfind(" ") > limit // 2 else cut
    return cut.rstrip(" ,.;:，。；：") + "…"
