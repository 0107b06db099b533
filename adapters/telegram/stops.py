"""A user's stop on a streamed draft (Bot API 10.3): ``can_stop`` on drafts, and the
``stopped_message_generation`` update that comes back when the user taps stop.

The update names only the chat, the topic and the draft, so a draft's id carries its turn:
``turn_id * DRAFT_SLOTS + n`` (n in 1…DRAFT_SLOTS-1 tells a turn's drafts apart; a long
answer has one draft per page). Any process can then stop the turn, with no table of drafts
to share. ``keep_on_stop`` is set: the text shown so far stays on screen, as the Stop button
keeps it, until the turn's final message (that text, formatted, marked stopped) replaces the
draft like every draft is replaced by the bot's next message.

PTB 22.8 knows neither field (Bot API 10.0): ``can_stop`` goes in ``api_kwargs`` and the
update is read from ``Update.api_kwargs``. A Telegram that refuses ``can_stop`` (an older
local Bot API server) gets drafts without it from then on.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

from telegram import Bot
from telegram.error import BadRequest

log = logging.getLogger(__name__)

STOPPED_UPDATE = "stopped_message_generation"
DRAFT_SLOTS = 256  # drafts one turn may open before their ids repeat
STOP_KWARGS = {"can_stop": True, "keep_on_stop": True}

_drafts = itertools.count()


def draft_id_for(turn_id: int) -> int:
    """A non-zero draft id that names ``turn_id`` (0 for a write outside any turn)."""
    return max(turn_id, 0) * DRAFT_SLOTS + next(_drafts) % (DRAFT_SLOTS - 1) + 1


def turn_of(draft_id: int) -> int:
    """The turn a draft id names; 0: none (not one of ours, or a write outside a turn)."""
    return draft_id // DRAFT_SLOTS if draft_id > 0 else 0


@dataclass
class DraftStops:
    """Whether this bot's Telegram takes ``can_stop`` (one answer for the whole bot)."""

    supported: bool = True


async def send_draft(
    bot: Bot, stops: DraftStops, chat_id: int, draft_id: int, text: str, thread_id: int | None
) -> None:
    """sendMessageDraft with a stop button where Telegram takes one.

    A draft refused with ``can_stop`` is sent once more without it: accepted, the refusal was
    about the button (remembered, never offered again); refused again, it is about drafts,
    and that refusal is raised as it was."""
    if stops.supported:
        try:
            await bot.send_message_draft(chat_id, draft_id, text, message_thread_id=thread_id, api_kwargs=STOP_KWARGS)
            return
        except BadRequest as first:
            try:
                await bot.send_message_draft(chat_id, draft_id, text, message_thread_id=thread_id)
            except BadRequest:
                raise first from None
            stops.supported = False
            log.warning("telegram: drafts with a stop button refused (%s); streaming drafts without it", first.message)
            return
    await bot.send_message_draft(chat_id, draft_id, text, message_thread_id=thread_id)


@dataclass(frozen=True, slots=True)
class DraftStopped:
    """A ``stopped_message_generation`` update, checked."""

    chat_id: int
    chat_name: str
    draft_id: int
    thread_id: int | None

    @property
    def turn_id(self) -> int:
        return turn_of(self.draft_id)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_stopped(data: object) -> DraftStopped | None:
    """The update's fields (MessageGenerationStopped: chat, draft_id, message_thread_id?),
    or None for a shape that is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("chat"), dict):
        return None
    chat = data["chat"]
    chat_id, draft_id = _int(chat.get("id")), _int(data.get("draft_id"))
    thread = data.get("message_thread_id")
    if chat_id is None or not draft_id or (thread is not None and _int(thread) is None):
        return None
    name = " ".join(str(p) for p in (chat.get("first_name"), chat.get("last_name")) if p) or str(chat_id)
    return DraftStopped(chat_id, name, draft_id, _int(thread))
