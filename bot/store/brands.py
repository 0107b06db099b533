"""SQL for brand profiles (issue 18): one per chat — a group, a channel or a private chat —
shared by every thread and topic in it (a conversation's key without its thread). Each method
is one short transaction.

A profile is stored as ``BrandProfile.to_dict()`` (JSON) with a revision: edits from the
chat and from the admin page name the revision they started from, so one never silently
overwrites the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.compliance.brand import BrandError, BrandProfile
from bot.platform.messages import ConversationKey
from bot.store.db import Database
from bot.store.models import BrandRecord, utcnow

_B = BrandRecord.__table__
_COLUMNS = (
    _B.c.id,
    _B.c.platform,
    _B.c.workspace,
    _B.c.chat,
    _B.c.profile,
    _B.c.revision,
    _B.c.updated_by,
    _B.c.created_at,
    _B.c.updated_at,
)


class StaleBrand(BrandError):
    def __init__(self) -> None:
        super().__init__("The brand profile was changed by someone else in the meantime; look at it again and retry.")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a profile lives: a chat, every thread of it."""

    platform: str
    workspace: str
    chat: str

    @classmethod
    def of(cls, key: ConversationKey) -> Place:
        return cls(key.platform, key.workspace, key.chat)

    @classmethod
    def parse(cls, text: str) -> Place | None:
        """``platform:workspace:chat`` (a conversation key's ``platform:workspace:chat:thread``
        too: the thread is ignored); None when it is not one."""
        parts = text.strip().split(":")
        if len(parts) not in (3, 4) or not all(parts[:3]):
            return None
        return cls(*parts[:3])

    def __str__(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.chat}"


@dataclass(frozen=True, slots=True)
class SavedBrand:
    id: int
    place: Place
    profile: BrandProfile
    revision: int
    updated_by: str
    created_at: datetime
    updated_at: datetime


def _saved(row: Any) -> SavedBrand:
    return SavedBrand(
        row.id,
        Place(row.platform, row.workspace, row.chat),
        BrandProfile.from_dict(row.profile),
        row.revision,
        row.updated_by,
        row.created_at,
        row.updated_at,
    )


def _where(place: Place) -> Any:
    return (_B.c.platform == place.platform) & (_B.c.workspace == place.workspace) & (_B.c.chat == place.chat)


class BrandStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, where: ConversationKey | Place) -> SavedBrand | None:
        place = where if isinstance(where, Place) else Place.of(where)
        async with self.db.read() as conn:
            row = (await conn.execute(select(*_COLUMNS).where(_where(place)))).first()
        return _saved(row) if row is not None else None

    async def profile(self, key: ConversationKey) -> BrandProfile | None:
        """The profile of ``key``'s chat, if it has one (what copy and checks use)."""
        saved = await self.get(key)
        return saved.profile if saved is not None else None

    async def by_id(self, brand_id: int) -> SavedBrand | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(*_COLUMNS).where(_B.c.id == brand_id))).first()
        return _saved(row) if row is not None else None

    async def save(
        self, where: ConversationKey | Place, profile: BrandProfile, *, by: str, revision: int | None = None
    ) -> SavedBrand:
        """Create or replace the chat's profile. With ``revision``, only if nobody changed it
        since that revision was read (``StaleBrand`` otherwise; 0: only if there is none yet)."""
        place = where if isinstance(where, Place) else Place.of(where)
        now = utcnow()
        values: dict[str, Any] = dict(
            name=profile.name[:128], profile=profile.to_dict(), updated_by=by[:160], updated_at=now
        )
        for _ in range(2):  # an insert that lost a race becomes an update
            current = await self.get(place)
            if current is None:
                if revision not in (None, 0):
                    raise StaleBrand()
                try:
                    async with self.db.write() as conn:
                        await conn.execute(
                            insert(_B).values(
                                platform=place.platform,
                                workspace=place.workspace,
                                chat=place.chat,
                                revision=1,
                                created_at=now,
                                **values,
                            )
                        )
                except IntegrityError:
                    continue
            else:
                expected = current.revision if revision is None else revision
                async with self.db.write() as conn:
                    changed = (
                        await conn.execute(
                            update(_B)
                            .where(_where(place), _B.c.revision == expected)
                            .values(revision=_B.c.revision + 1, **values)
                        )
                    ).rowcount
                if not changed:
                    raise StaleBrand()
            saved = await self.get(place)
            assert saved is not None
            return saved
        raise StaleBrand()

    async def clear(self, where: ConversationKey | Place) -> bool:
        """Delete the chat's profile; True when there was one."""
        place = where if isinstance(where, Place) else Place.of(where)
        async with self.db.write() as conn:
            return bool((await conn.execute(delete(_B).where(_where(place)))).rowcount)

    async def delete(self, brand_id: int) -> bool:
        async with self.db.write() as conn:
            return bool((await conn.execute(delete(_B).where(_B.c.id == brand_id))).rowcount)

    async def everything(self, *, limit: int = 200, offset: int = 0) -> list[SavedBrand]:
        """Every stored profile (the admin page), newest edits first."""
        query = select(*_COLUMNS).order_by(_B.c.updated_at.desc(), _B.c.id.desc()).limit(limit).offset(offset)
        async with self.db.read() as conn:
            return [_saved(row) for row in (await conn.execute(query)).all()]
