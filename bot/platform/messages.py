"""The normalised incoming message every adapter produces.

The core never sees a platform SDK object: an adapter turns a Slack event, a Telegram
update or a console line into an ``IncomingMessage`` and hands it to the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Where a conversation lives. ``/new`` starts a fresh thread under the same key."""

    platform: str  # "telegram", "slack", "console"
    workspace: str  # Slack team id, Telegram bot id, "local"
    chat: str  # channel / chat id
    thread: str = ""  # Slack thread_ts, Telegram forum topic id, "" for the whole chat

    def __str__(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.chat}:{self.thread}"


@dataclass(frozen=True, slots=True)
class Author:
    id: str
    name: str
    is_bot: bool = False


@dataclass(frozen=True, slots=True)
class Attachment:
    """An image or a document, already downloaded by the adapter."""

    data: bytes
    mime: str
    filename: str = ""

    @property
    def is_image(self) -> bool:
        return self.mime.startswith("image/")


@dataclass(slots=True)
class IncomingMessage:
    key: ConversationKey
    author: Author
    text: str
    message_id: str = ""  # the platform's id of this message
    attachments: list[Attachment] = field(default_factory=list)
    addressed: bool = True  # the bot was addressed (private chat, mention, reply, command)
    group: bool = False  # several people share the conversation: prefix their names
    reply_to: str | None = None  # platform id of the message this one replies to
    # The text of the message this one replies to (or the part of it the user quoted), where
    # the platform hands it over: what "/check" or "/brand set" sent as a reply works on.
    quoted: str = ""
    # Where ``quoted`` was written, when that is another conversation than ``key`` (a Slack
    # message picked from its menu sits in a thread of its own): its style applies to a check.
    quoted_in: ConversationKey | None = None
    # Problems the adapter met while normalising (file too big, unsupported type…),
    # worded for the user; the core stores them with the message and tells the model.
    notes: list[str] = field(default_factory=list)

    @property
    def images(self) -> list[Attachment]:
        return [a for a in self.attachments if a.is_image]

    @property
    def documents(self) -> list[Attachment]:
        return [a for a in self.attachments if not a.is_image]
