"""What the core calls for issue 11, built once from settings: ``Operators.from_settings``.

When to call what (plain ids, no platform objects):

- ``access.decide(platform, workspace, chat, user_id, addressed=...)`` first, for every
  incoming message and button press. Not ``allowed``: send ``decision.text`` if it is not
  empty, store nothing, call nothing.
- ``quotas.check(conversation_id, platform, user_id)`` after the user's message is stored
  and before the model is called (for chat, /copy, refinements, regenerations alike;
  ``user_id`` is the author of the newest message the turn answers, see
  ``meter.author_of``). A ``QuotaRefusal``: mark the waiting messages ``refused``, send
  ``refusal.text``, call nothing.
- ``meter.for_turn(gateway, turn_id, conversation_id, platform, user_id, kind)`` once a turn
  is opened: use the object it returns instead of the gateway for every call of the turn.
- ``usage_text(...)`` for ``/usage`` (``all_users`` for ``/usage all``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.store.db import Database
from bot.usage.access import Access
from bot.usage.meter import Meter
from bot.usage.quotas import Quotas
from bot.usage.reports import usage_report


@dataclass
class Operators:
    settings: Settings
    db: Database
    access: Access
    quotas: Quotas
    meter: Meter

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> Operators:
        access = Access(settings, db)
        quotas = Quotas(settings, db, access.admins)
        return cls(settings, db, access, quotas, Meter(settings, db, quotas))

    async def usage_text(
        self, conversation_id: int | None, platform: str, user_id: str, *, all_users: bool = False
    ) -> str:
        return await usage_report(
            self.db,
            self.settings,
            conversation_id,
            platform,
            user_id,
            all_users=all_users,
            admin=self.access.is_admin(platform, user_id),
        )
