"""Telegram message → the core's IncomingMessage (text, key, author, addressed)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import Message, MessageEntity, User

from bot.platform import Attachment, Author, ConversationKey, IncomingMessage

PLATFORM = "telegram"


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """The bot itself, as getMe described it."""

    id: int
    username: str

    @property
    def mention(self) -> str:
        return f"@{self.username}"


def is_private(message: Message) -> bool:
    return message.chat.type == "private"


def topic_of(message: Message) -> int | None:
    """The forum topic a message belongs to (replies in plain groups have thread ids too)."""
    if message.is_topic_message and message.message_thread_id is not None:
        return message.message_thread_id
    return None


def conversation_key(me: BotIdentity, message: Message) -> ConversationKey:
    topic = topic_of(message)
    return ConversationKey(PLATFORM, str(me.id), str(message.chat.id), "" if topic is None else str(topic))


def author_of(user: User | None) -> Author:
    if user is None:
        return Author("", "someone")
    name = " ".join(p for p in (user.first_name, user.last_name) if p) or user.username or str(user.id)
    return Author(str(user.id), name, bool(user.is_bot))


def sender_of(message: Message) -> Author:
    """Who wrote a message. Anonymous group admins (``from`` = GroupAnonymousBot), people
    posting as a channel and channel posts auto-forwarded into the linked discussion group
    all carry ``sender_chat``: they are named after that chat, and are not bots."""
    chat = message.sender_chat
    if chat is not None:
        return Author(str(chat.id), chat.title or chat.username or str(chat.id), False)
    return author_of(message.from_user)


def ignore_sender(message: Message) -> bool:
    """True for messages the bot must not read: other bots, and messages with no sender.

    ``from.is_bot`` alone is not enough: Telegram puts a service bot in ``from`` when an
    admin posts anonymously or someone posts as a channel; ``sender_chat`` then names the
    real author, a person or a channel, whose message counts."""
    user = message.from_user
    if user is None:
        return True
    return bool(user.is_bot) and message.sender_chat is None


def body_of(message: Message) -> tuple[str, tuple[MessageEntity, ...]]:
    # PTB keeps a field of the wrong type as it came (a list for "text"): treat it as absent.
    if isinstance(message.text, str):
        return message.text, message.entities
    return (message.caption if isinstance(message.caption, str) else ""), message.caption_entities


def _entity_text(text: str, entity: MessageEntity) -> str:
    raw = text.encode("utf-16-le")
    return raw[entity.offset * 2 : (entity.offset + entity.length) * 2].decode("utf-16-le", "replace")


def command_of(me: BotIdentity, message: Message) -> tuple[str, bool] | None:
    """(command, for us) when the message starts with a bot command."""
    text, entities = body_of(message)
    for e in entities:
        if e.type == MessageEntity.BOT_COMMAND and e.offset == 0:
            name, _, target = _entity_text(text, e).partition("@")
            return name.lower(), (not target or target.lower() == me.username.lower())
    if text.startswith("/") and re.match(r"/[A-Za-z0-9_]+(@\w+)?(\s|$)", text):
        name, _, target = text.split()[0].partition("@")
        return name.lower(), (not target or target.lower() == me.username.lower())
    return None


def mentions_me(me: BotIdentity, message: Message) -> bool:
    text, entities = body_of(message)
    for e in entities:
        if e.type == MessageEntity.MENTION and _entity_text(text, e).lower() == me.mention.lower():
            return True
        if e.type == MessageEntity.TEXT_MENTION and e.user is not None and e.user.id == me.id:
            return True
    # Some clients send no entities; a plain-text mention still counts.
    return re.search(rf"(?<!\w){re.escape(me.mention)}(?!\w)", text, re.IGNORECASE) is not None


def replies_to_me(me: BotIdentity, message: Message) -> bool:
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        return False  # in a forum every topic message "replies" to the topic's first message
    return replied.from_user is not None and replied.from_user.id == me.id


def is_addressed(me: BotIdentity, message: Message) -> bool:
    if is_private(message):
        return True
    command = command_of(me, message)
    if command is not None:
        return command[1]
    return mentions_me(me, message) or replies_to_me(me, message)


def clean_text(me: BotIdentity, message: Message) -> str:
    """The text for the model: "/cmd@bot args" → "/cmd args", a leading @bot removed."""
    text, _ = body_of(message)
    command = command_of(me, message)
    if command is not None and command[1] and text.strip():
        # Split at any whitespace: "/copy@bot\nbrief" must keep the whole brief.
        head, *rest = text.strip().split(maxsplit=1)
        return " ".join([head.split("@")[0], *rest]).strip()
    stripped = re.sub(rf"^\s*{re.escape(me.mention)}\b[\s,:，：]*", "", text, flags=re.IGNORECASE)
    if stripped.strip() or message.caption is None:
        return stripped.strip() or text.strip()
    # A photo or file captioned with the mention alone is a file without text: it can wait
    # for the question that follows it (a burst), like an uncaptioned one.
    return ""


def normalise(
    me: BotIdentity,
    message: Message,
    *,
    text: str | None = None,
    attachments: list[Attachment] | None = None,
    notes: list[str] | None = None,
) -> IncomingMessage:
    replied = message.reply_to_message
    reply_to, quoted = None, ""
    if replied is not None and replied.forum_topic_created is None:
        reply_to = str(replied.message_id)
        # The part the user quoted, else the whole replied-to text or caption.
        quote = message.quote.text if message.quote is not None and isinstance(message.quote.text, str) else ""
        quoted = quote or body_of(replied)[0]
    return IncomingMessage(
        key=conversation_key(me, message),
        author=sender_of(message),
        text=clean_text(me, message) if text is None else text,
        message_id=str(message.message_id),
        attachments=attachments or [],
        addressed=is_addressed(me, message),
        group=not is_private(message),
        reply_to=reply_to,
        quoted=quoted,
        notes=notes or [],
    )
