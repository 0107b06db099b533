"""Who may talk to the bot: admins (``BOT_ADMINS``), allowlists, blocked users.

``Access.decide`` is called for every incoming message before anything else happens. It
never imports the core or an adapter: callers pass plain ids, and the platform's own
allowlist verdict (``Admission``: each platform declares its rule with its settings).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.platform.base import ADMITTED, Admission, Gate
from bot.store.db import Database
from bot.store.usage import UsageStore

log = logging.getLogger(__name__)

BLOCKED_TEXT = (
    "Sorry — you can't use this assistant at the moment. "
    "If you think this is a mistake, please contact the people who run it."
)
# The blocked list is kept in memory and re-read in the background once it is this old, so
# deciding about a message needs no database round trip (only the very first one waits for
# the load). A block made through this ``Access`` applies at once; one made by another
# process applies within about this many seconds.
BLOCKED_TTL = 5.0
NOT_ALLOWED_TEXT = (
    "Sorry — this assistant is private and isn't available to you here. "
    "Ask the people who run it to add you or this channel."
)


class Verdict(StrEnum):
    ALLOW = "allow"
    ADMIN = "admin"  # allowed, exempt from quotas, may see everyone's usage
    REFUSE = "refuse"  # not answered; ``text`` says so politely (once a day per chat)
    IGNORE = "ignore"  # silence: a workspace the bot does not serve


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    # What to tell the user. For REFUSE it is given once per user, chat and day; "" after
    # that, so a blocked user is told, not flooded.
    text: str = ""
    reason: str = ""  # for the log: blocked, user not allowlisted, …

    @property
    def allowed(self) -> bool:
        return self.verdict in (Verdict.ALLOW, Verdict.ADMIN)

    @property
    def admin(self) -> bool:
        return self.verdict is Verdict.ADMIN


class Admins:
    """``BOT_ADMINS``: "telegram:123, slack:U0ABC" or a bare id (any platform)."""

    def __init__(self, spec: str) -> None:
        self.scoped: set[tuple[str, str]] = set()
        self.bare: set[str] = set()
        for item in (p.strip() for p in spec.split(",") if p.strip()):
            platform, sep, user = item.partition(":")
            if sep and platform and user:
                self.scoped.add((platform.lower(), user))
            else:
                self.bare.add(item)

    def __contains__(self, who: tuple[str, str]) -> bool:
        platform, user_id = who
        return bool(user_id) and (user_id in self.bare or (platform.lower(), user_id) in self.scoped)

    def listed(self) -> list[str]:
        return sorted([f"{p}:{u}" for p, u in self.scoped] + [f"any:{u}" for u in self.bare])


class Access:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.store = UsageStore(db)
        self.admins = Admins(settings.admins)
        self._blocked: frozenset[tuple[str, str]] | None = None
        self._loaded = 0.0
        self._refresh: asyncio.Task | None = None

    def is_admin(self, platform: str, user_id: str) -> bool:
        return (platform, user_id) in self.admins

    async def decide(
        self,
        platform: str,
        workspace: str,
        chat: str,
        user_id: str,
        *,
        addressed: bool = True,
        admission: Admission = ADMITTED,
    ) -> Decision:
        """Whether to answer ``user_id`` writing in ``chat``. Admins pass every check;
        ``admission`` is the platform's allowlist verdict. ``addressed=False`` (group chatter
        the bot only listens to): a refusal stays silent and does not use up the day's one
        refusal text."""
        if self.is_admin(platform, user_id):
            return Decision(Verdict.ADMIN)
        if admission.gate is Gate.SILENT:
            return Decision(Verdict.IGNORE, reason=admission.reason)
        if admission.gate is Gate.CLOSED:
            return await self._refuse(platform, chat, user_id, NOT_ALLOWED_TEXT, admission.reason, addressed)
        if user_id and await self.is_blocked(platform, user_id):
            return await self._refuse(platform, chat, user_id, BLOCKED_TEXT, "blocked", addressed)
        return Decision(Verdict.ALLOW)

    async def _refuse(
        self, platform: str, chat: str, user_id: str, text: str, reason: str, addressed: bool
    ) -> Decision:
        day = datetime.now(ZoneInfo(self.settings.timezone)).strftime("%Y-%m-%d")
        first = addressed and await self.store.claim_once(f"refused:{platform}:{chat}:{user_id}:{day}")
        return Decision(Verdict.REFUSE, text if first else "", reason)

    async def is_blocked(self, platform: str, user_id: str) -> bool:
        if self._blocked is None:
            await self._load()
        elif time.monotonic() - self._loaded > BLOCKED_TTL and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._load())
        assert self._blocked is not None
        return (platform, user_id) in self._blocked

    async def _load(self) -> None:
        try:
            rows = await self.store.blocked_users()  # a short list: read it whole
        except Exception:
            log.warning("access: reading the blocked users failed", exc_info=True)
            if self._blocked is None:
                raise
            return
        self._blocked = frozenset((r.platform, r.user_id) for r in rows)
        self._loaded = time.monotonic()

    # --- blocking, from the admin page ---
    async def block(self, platform: str, user_id: str, *, reason: str = "", by: str = "admin") -> None:
        await self.store.block(platform, user_id, reason, by)
        self._blocked = None

    async def unblock(self, platform: str, user_id: str) -> None:
        await self.store.unblock(platform, user_id)
        self._blocked = None
