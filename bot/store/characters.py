"""SQL for characters (issue 17): the characters a chat can use, by name, created, edited and
deleted, and the one a conversation speaks as. Each method is one short transaction.

Where a character lives: a chat (a private chat or a group: ``chat`` set) or a whole
workspace (``chat`` empty). A chat can use its own and its workspace's; where both have the
same name, the chat's wins.

A card waiting for its one-tap confirmation (a draft the model wrote, a card sent as a file)
is a part of the bot's message that offered it (``OFFER_PART``): durable, in the
conversation it belongs to, and gone with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.characters.character import Character, CharacterError, name_key, prompt_tokens
from bot.platform.messages import ConversationKey
from bot.store.db import Database
from bot.store.models import AttachmentRecord, CharacterRecord, Conversation, Message, Part, utcnow

_CH, _C = CharacterRecord.__table__, Conversation.__table__
_M, _P, _A = Message.__table__, Part.__table__, AttachmentRecord.__table__
OFFER_PART = "char_offer"  # a message part: {"card": Character.to_dict(), "by": user id, …}, avatar as its blob
_LISTED = (
    _CH.c.id,
    _CH.c.platform,
    _CH.c.workspace,
    _CH.c.chat,
    _CH.c.scope,
    _CH.c.owner,
    _CH.c.card,
    _CH.c.prompt_tokens,
    _CH.c.revision,
    _CH.c.created_at,
    _CH.c.updated_at,
    _CH.c.avatar.is_not(None).label("has_avatar"),
)  # never the avatar itself


class CharacterScope(StrEnum):
    WORKSPACE = "workspace"  # every chat of the workspace
    GROUP = "group"  # one group chat (or channel)
    CHAT = "chat"  # one private chat


class NameTaken(CharacterError):
    def __init__(self, name: str) -> None:
        super().__init__(f"There is already a character called “{name}” here; pick another name, or edit that one.")


class StaleEdit(CharacterError):
    def __init__(self, name: str) -> None:
        super().__init__(f"“{name}” was changed by someone else in the meantime; look at it again and retry.")


@dataclass(frozen=True, slots=True)
class Offer:
    """A card offered for saving: where, what, and its picture."""

    message_id: int
    key: ConversationKey  # the conversation the offer was made in
    data: dict[str, Any]
    avatar: bytes | None


@dataclass(frozen=True, slots=True)
class SavedCharacter:
    id: int
    platform: str
    workspace: str
    chat: str  # "" for a workspace-wide character
    scope: CharacterScope
    owner: str  # platform user id of whoever created it
    character: Character
    prompt_tokens: int
    revision: int
    has_avatar: bool
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.character.name


def _saved(row: Any) -> SavedCharacter:
    return SavedCharacter(
        row.id,
        row.platform,
        row.workspace,
        row.chat,
        CharacterScope(row.scope),
        row.owner,
        Character.from_dict(row.card),
        row.prompt_tokens,
        row.revision,
        bool(row.has_avatar),
        row.created_at,
        row.updated_at,
    )


def _here(key: ConversationKey) -> Any:
    """Characters usable in ``key``'s chat: the chat's own and the workspace's."""
    return (
        (_CH.c.platform == key.platform)
        & (_CH.c.workspace == key.workspace)
        & or_(_CH.c.chat == key.chat, _CH.c.chat == "")
    )


class CharacterStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def usable(self, key: ConversationKey) -> list[SavedCharacter]:
        """What ``/character`` lists: the chat's characters, then the workspace's, by name; a
        workspace character hidden by a chat one of the same name is left out."""
        async with self.db.read() as conn:
            rows = (await conn.execute(select(*_LISTED, _CH.c.name_key).where(_here(key)))).all()
        mine = {row.name_key for row in rows if row.chat}
        kept = [row for row in rows if row.chat or row.name_key not in mine]
        kept.sort(key=lambda row: (row.chat == "", row.name_key))
        return [_saved(row) for row in kept]

    async def find(self, key: ConversationKey, name: str) -> SavedCharacter | None:
        """The character called ``name`` (any case) usable in ``key``'s chat."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(*_LISTED).where(_here(key), _CH.c.name_key == name_key(name)).order_by(_CH.c.chat.desc())
                )
            ).all()
        return _saved(rows[0]) if rows else None

    async def get(self, character_id: int) -> SavedCharacter | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(*_LISTED).where(_CH.c.id == character_id))).first()
        return _saved(row) if row is not None else None

    async def avatar(self, character_id: int) -> bytes | None:
        async with self.db.read() as conn:
            return (await conn.execute(select(_CH.c.avatar).where(_CH.c.id == character_id))).scalar()

    async def create(
        self,
        key: ConversationKey,
        scope: CharacterScope,
        owner: str,
        character: Character,
        *,
        avatar: bytes | None = None,
    ) -> SavedCharacter:
        """Store a (checked) character in ``key``'s chat, or its workspace for
        ``Scope.WORKSPACE``. ``NameTaken`` when the name is used there already."""
        now = utcnow()
        values = dict(
            platform=key.platform,
            workspace=key.workspace,
            chat="" if scope is CharacterScope.WORKSPACE else key.chat,
            scope=scope.value,
            owner=owner,
            name=character.name,
            name_key=character.key,
            card=character.to_dict(),
            prompt_tokens=prompt_tokens(character),
            avatar=avatar,
            revision=1,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.db.write() as conn:
                new_id = (await conn.execute(insert(_CH).values(**values).returning(_CH.c.id))).scalar_one()
        except IntegrityError:
            raise NameTaken(character.name) from None
        saved = await self.get(new_id)
        assert saved is not None
        return saved

    async def update(
        self, character_id: int, character: Character, *, revision: int | None = None, avatar: bytes | None = None
    ) -> SavedCharacter:
        """Replace the card (a rename included). With ``revision``, only if nobody changed it
        since that revision was read (``StaleEdit`` otherwise). ``avatar`` replaces the
        picture when given."""
        values: dict[str, Any] = dict(
            name=character.name,
            name_key=character.key,
            card=character.to_dict(),
            prompt_tokens=prompt_tokens(character),
            revision=_CH.c.revision + 1,
            updated_at=utcnow(),
        )
        if avatar is not None:
            values["avatar"] = avatar
        where = [_CH.c.id == character_id]
        if revision is not None:
            where.append(_CH.c.revision == revision)
        try:
            async with self.db.write() as conn:
                changed = (await conn.execute(update(_CH).where(*where).values(**values))).rowcount
        except IntegrityError:
            raise NameTaken(character.name) from None
        saved = await self.get(character_id)
        if saved is None:
            raise CharacterError(f"“{character.name}” no longer exists.")
        if not changed:
            raise StaleEdit(saved.name)
        return saved

    async def delete(self, character_id: int) -> bool:
        """Delete a character; conversations speaking as it go back to no character."""
        async with self.db.write() as conn:
            await conn.execute(update(_C).where(_C.c.character_id == character_id).values(character_id=None))
            return bool((await conn.execute(delete(_CH).where(_CH.c.id == character_id))).rowcount)

    async def set_active(self, conversation_id: int, character_id: int | None) -> None:
        """``/character use`` (an id) or ``/character off`` (None) for a conversation; ``/new``
        carries it over (``Store.new_epoch``)."""
        async with self.db.write() as conn:
            await conn.execute(update(_C).where(_C.c.id == conversation_id).values(character_id=character_id))

    async def active(self, conversation_id: int) -> SavedCharacter | None:
        """The character a conversation speaks as, if any (and if it still exists)."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(*_LISTED)
                    .select_from(_C.join(_CH, _CH.c.id == _C.c.character_id))
                    .where(_C.c.id == conversation_id)
                )
            ).first()
        return _saved(row) if row is not None else None

    async def everything(
        self, *, platform: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[SavedCharacter]:
        """Every stored character (the admin page), newest edits first."""
        query = select(*_LISTED).order_by(_CH.c.updated_at.desc(), _CH.c.id.desc()).limit(limit).offset(offset)
        if platform:
            query = query.where(_CH.c.platform == platform)
        async with self.db.read() as conn:
            return [_saved(row) for row in (await conn.execute(query)).all()]

    async def set_scope(self, character_id: int, scope: CharacterScope, chat: str) -> SavedCharacter:
        """Move a character to a chat (``chat``) or to its whole workspace (``Scope.WORKSPACE``)."""
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    update(_CH)
                    .where(_CH.c.id == character_id)
                    .values(
                        scope=scope.value,
                        chat="" if scope is CharacterScope.WORKSPACE else chat,
                        revision=_CH.c.revision + 1,
                        updated_at=utcnow(),
                    )
                )
        except IntegrityError:
            saved = await self.get(character_id)
            raise NameTaken(saved.name if saved else "?") from None
        saved = await self.get(character_id)
        if saved is None:
            raise CharacterError("That character no longer exists.")
        return saved

    # --- offers waiting for a confirmation, and what a turn asked for ---
    async def offer(self, message_id: int) -> Offer | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(_P.c.data, _A.c.data.label("avatar"), _C.c.platform, _C.c.workspace, _C.c.chat, _C.c.thread)
                    .select_from(
                        _P.join(_M, _M.c.id == _P.c.message_id)
                        .join(_C, _C.c.id == _M.c.conversation_id)
                        .outerjoin(_A, _A.c.id == _P.c.attachment_id)
                    )
                    .where(_P.c.message_id == message_id, _P.c.kind == OFFER_PART)
                    .limit(1)
                )
            ).first()
        if row is None or not isinstance(row.data, dict):
            return None
        return Offer(
            message_id, ConversationKey(row.platform, row.workspace, row.chat, row.thread), row.data, row.avatar
        )

    async def latest_offer(self, conversation_id: int) -> int | None:
        """The newest offer's message in a conversation (``/character save`` where nothing can be tapped)."""
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(_M.c.id)
                    .select_from(_M.join(_P, _P.c.message_id == _M.c.id))
                    .where(_M.c.conversation_id == conversation_id, _P.c.kind == OFFER_PART)
                    .order_by(_M.c.seq.desc())
                    .limit(1)
                )
            ).scalar()

    async def request_of(self, conversation_id: int, seq: int) -> dict[str, Any] | None:
        """The request a user message carries (``messages.request``), if any."""
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(_M.c.request).where(
                        _M.c.conversation_id == conversation_id, _M.c.seq == seq, _M.c.role == "user"
                    )
                )
            ).scalar()
