"""Guest mode (Bot API 10.0): a user summons the bot into a chat it has not joined
(``Update.guest_message``, a Message carrying ``guest_query_id``) and the bot answers once,
with ``answerGuestQuery``: the answer goes into that chat as one message, from the bot.

Each query is a conversation of its own: its key is the chat's, with the thread
``guest-<query id>``, so the model sees the query and nothing the chat said before (not even
the same person's earlier guest queries), while the chat's allowlist rules, quotas and usage
apply as to any message from that chat. The query and its answer are stored under that key
like any turn. Nothing streams (a guest answer cannot be edited into place): the core's
writer fills a stream that sends nothing until its final write, which answers the query.
The first write answers it — the answer, or a refusal or quota notice instead of one; later
writes have nowhere to go and are dropped. The answer carries no buttons (presses on an
inline message would come back without a chat to act in).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Bot, InlineQueryResultArticle, InputTextMessageContent, LinkPreviewOptions, Message
from telegram.error import BadRequest, TelegramError

from adapters.telegram import render
from adapters.telegram.budgets import Budgets
from adapters.telegram.calls import call
from adapters.telegram.normalise import PLATFORM, BotIdentity, ignore_sender
from bot.platform import (
    ConversationKey,
    MessageRef,
    Priority,
    ReplySurface,
    Step,
    SurfaceGone,
    SurfaceLimits,
    Write,
    utf16_len,
)

log = logging.getLogger(__name__)

GUEST_UPDATE = "guest_message"
THREAD_PREFIX = "guest-"
WHOLE = 10**9  # the core never cuts a guest answer into pages: it is one message
CUT_NOTE = "\n\n… (cut: the whole answer is longer than one Telegram message)"
TITLE = "Answer"


def guest_key(me: BotIdentity, message: Message) -> ConversationKey:
    """The query's own conversation: the chat's key with the query's thread."""
    assert message.guest_query_id
    return ConversationKey(PLATFORM, str(me.id), str(message.chat.id), THREAD_PREFIX + message.guest_query_id)


def query_of(key: ConversationKey) -> str | None:
    """The guest query a key belongs to, or None for any other conversation."""
    return key.thread.removeprefix(THREAD_PREFIX) if key.thread.startswith(THREAD_PREFIX) else None


def problem_of(message: Message) -> str | None:
    """Why a guest message cannot be answered (logged, then dropped), or None."""
    if not isinstance(message.guest_query_id, str) or not message.guest_query_id:
        return "no guest_query_id"
    if getattr(message, "chat", None) is None:
        return "no chat"
    if message.from_user is None:
        return "no sender"
    if ignore_sender(message):
        return "sent by a bot"  # bots summoning bots: no loops, as with messages
    return None


def one_message(text: str, reasoning: str = "") -> render.Rendered:
    """The answer rendered as one message: cut at a good boundary if it is longer."""
    pages = render.markdown(text, reasoning=reasoning)
    if len(pages) == 1:
        return pages[0]
    first = pages[0]
    [head, *_] = render.split(first.text, list(first.entities), render.TEXT_LIMIT - utf16_len(CUT_NOTE))
    return render.Rendered(head.text + CUT_NOTE, head.entities)


class GuestSurface(ReplySurface):
    """The one message that answers a guest query."""

    def __init__(self, bot: Bot, budgets: Budgets, chat_id: int, query_id: str) -> None:
        self.bot = bot
        self.budgets = budgets
        self.chat_id = chat_id
        self.query_id = query_id
        self.limits = SurfaceLimits(max_chars=WHOLE, edit_interval=budgets.pacing.private, measure=utf16_len)
        self.answered: MessageRef | None = None

    async def post(self, text: str, write: Write) -> MessageRef:
        if not write.final:  # a streaming write: nothing is shown before the answer is whole
            return MessageRef("")
        return await self.answer(text, write)

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        return await self.post(text, write)

    async def set_status(self, status: str) -> None:
        return None  # no typing action in a chat the bot is not in

    async def open_stream(self, turn_id: int) -> GuestStream | None:
        return None if self.answered is not None else GuestStream(self)

    async def show_steps(self, turn_id: int, steps: Sequence[Step]) -> bool:
        return True  # nothing to draw them on; the status line is not shown either

    async def answer(self, text: str, write: Write) -> MessageRef:
        if self.answered is not None:
            log.info("telegram: guest query already answered; a later write is dropped")
            return self.answered
        page = one_message(text, write.reasoning)
        result = InlineQueryResultArticle(
            "answer",
            TITLE,
            InputTextMessageContent(
                page.text,
                entities=list(page.entities) or None,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            ),
        )
        budget = self.budgets.messages(self.chat_id, group=self.chat_id < 0)
        try:
            sent = await call(
                budget,
                self.budgets.bot,
                lambda: self.bot.answer_guest_query(self.query_id, result),
                "answerGuestQuery",
                Priority.FINAL,
            )
        except BadRequest as exc:  # too old, already answered: nothing more can be written
            raise SurfaceGone(f"answerGuestQuery: {exc.message}") from exc
        except TelegramError as exc:
            log.warning("telegram: answerGuestQuery failed: %s", exc)
            raise
        self.answered = MessageRef(sent.inline_message_id if sent is not None else "")
        return self.answered


class GuestStream:
    """The core's native stream for a guest answer: keeps the text, sends it when final."""

    def __init__(self, surface: GuestSurface) -> None:
        self.surface = surface
        self.limits = surface.limits

    @property
    def ref(self) -> MessageRef | None:
        return self.surface.answered

    async def update(self, text: str, write: Write) -> None:
        return None  # shown only when whole

    async def close(self, text: str, write: Write) -> MessageRef:
        return await self.surface.answer(text, write)
