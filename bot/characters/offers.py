"""Cards waiting for a one-tap confirmation: a draft the model wrote (``/character new``) or
a Character Card sent as a file. Either is shown with Save / Save & use buttons and kept as
a part of the bot's message (``OFFER_PART``), so a tap minutes later — or ``/character
save`` where nothing can be tapped — still finds it, in any process.

An imported card is data: it becomes a ``Character`` and nothing else (no setting of the
bot changes), checked against the size caps before it is offered and again when saved.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from bot.characters.cards import looks_like_card, read_card
from bot.characters.character import Character, CharacterError, check, prompt_tokens
from bot.characters.character_feature import CharacterChat, CharacterFeature
from bot.characters.show import SCOPE_LABELS, card_markdown
from bot.core.kinds import AttachmentCall, Core
from bot.core.pacing import AnswerWriter
from bot.platform.controls import Action, Button, Press, Row
from bot.platform.messages import Author
from bot.platform.surface import ReplySurface
from bot.store.characters import OFFER_PART, NameTaken, Offer
from bot.store.repo import NewPart

log = logging.getLogger(__name__)

PRESS = "chr"  # a control's kind: Press("chr", id, (source, mode))
Source = Literal["draft", "card"]  # id is the draft's turn, or the offering message
Mode = Literal["save", "use"]
SOURCES: tuple[Source, ...] = ("draft", "card")
MODES: tuple[Mode, ...] = ("save", "use")


def offer_controls(source: Source, ident: int) -> Row:
    return (
        Button("✅ Save", Press(PRESS, ident, (source, "save")), "primary"),
        Button("🎭 Save & use", Press(PRESS, ident, (source, "use"))),
    )


def offer_markdown(character: Character, *, heading: str, notes: tuple[str, ...] = ()) -> str:
    """The card as it will be saved, one of its example dialogues, and what to do next."""
    lines = [heading, "", card_markdown(character, max_chars=2_400)]
    sample = next(iter(character.examples), ())
    if sample:
        spoken = [f"> {'🙂' if line.speaker == 'user' else character.name}: {line.text}" for line in sample[:4]]
        lines += [
            "",
            "_How it talks:_",
            *(s.replace("{{char}}", character.name).replace("{{user}}", "🙂") for s in spoken),
        ]
    if notes:
        lines += ["", "_Left out: " + "; ".join(notes) + "._"]
    lines += [
        "",
        f"_About {prompt_tokens(character):,} tokens in every prompt. Tap **Save** (or send "
        "`/character save`) to keep it here._",
    ]
    return "\n".join(lines)


def offer_data(character: Character, by: Author, source: Source, **more: Any) -> dict[str, Any]:
    return {"card": character.to_dict(), "by": by.id, "by_name": by.name, "source": source, **more}


class Offers:
    def __init__(self, feature: CharacterFeature) -> None:
        self.feature = feature

    # --- a card sent as a file ---
    async def claim(self, call: AttachmentCall) -> bool:
        """The core's attachment hook: a Character Card (PNG or JSON) is offered for import
        instead of being read as an image or a document."""
        att = call.attachment
        if not looks_like_card(att.data, att.filename, att.mime):
            return False
        core, msg = call.core, call.msg
        try:
            imported = await asyncio.to_thread(read_card, att.data, att.filename, limits=self.feature.limits)
        except CharacterError as exc:  # worded for the user (unreadable, or over the caps)
            await core.notify(call.surface, f"I couldn't import that character card: {exc}")
            return True
        character = imported.character
        conv = await core.store.conversation(msg.key, shared=msg.group)
        assert conv is not None
        existing = await self.feature.characters.find(msg.key, character.name)
        heading = f"📇 **Import this character?** (a {imported.spec.replace('_', ' ')} card)"
        if existing is not None:
            heading += (
                f"\n_There is already a character called {existing.name} here: delete or rename that one "
                "first, or this one can't be saved._"
            )
        text = offer_markdown(character, heading=heading, notes=imported.notes)
        data = offer_data(character, msg.author, "card", spec=imported.spec, file=att.filename)
        message_id, _ = await core.store.add_message(
            conv.id,
            "assistant",
            [
                NewPart("text", text=text),
                NewPart(OFFER_PART, data=data, blob=imported.avatar, mime="image/png" if imported.avatar else None),
            ],
            status="complete",
        )
        await AnswerWriter(call.surface, 0, native=False).finish(text, controls=(offer_controls("card", message_id),))
        return True

    # --- confirming ---
    async def on_press(self, action: Action, surface: ReplySurface, core: Core) -> str | None:
        args = action.press.args
        if len(args) != 2 or args[0] not in SOURCES or args[1] not in MODES:
            return None  # not a press this feature wrote
        message_id: int | None = action.press.turn_id
        if args[0] == "draft":
            await core.wait_turn(action.press.turn_id)
            turn = await core.store.turn(action.press.turn_id)
            message_id = turn.response_message_id if turn is not None else None
        offer = await self.feature.characters.offer(message_id) if message_id is not None else None
        key = action.key
        if offer is None or (offer.key.platform, offer.key.workspace, offer.key.chat) != (
            key.platform,
            key.workspace,
            key.chat,
        ):
            return None
        return await self.save(core, offer, action.user, surface, use=args[1] == "use")

    async def save_latest(self, core: Core, where: CharacterChat, user: Author, surface: ReplySurface) -> None:
        """``/character save``: the newest offer of this conversation."""
        conv = await core.store.conversation(where.key, create=False)
        message_id = await self.feature.characters.latest_offer(conv.id) if conv is not None else None
        offer = await self.feature.characters.offer(message_id) if message_id is not None else None
        if offer is None:
            await core.notify(
                surface,
                "There is no character waiting to be saved here: draft one with "
                "`/character new NAME: one line`, or send a card file.",
            )
            return
        await self.save(core, offer, user, surface, use=False)

    async def save(self, core: Core, offer: Offer, user: Author, surface: ReplySurface, *, use: bool) -> str:
        """Store the offered card in the chat it was offered in; returns the clicker's toast.
        Only whoever asked for it (or an admin) saves it; the card becomes theirs."""
        feature = self.feature
        by = str(offer.data.get("by") or "")
        if by and by != user.id and not core.ops.access.is_admin(offer.key.platform, user.id):
            text = f"Only {offer.data.get('by_name') or 'the person who asked for it'} or an admin can save this card."
            await core.notify(surface, text)
            return text
        try:
            character = check(Character.from_dict(offer.data.get("card") or {}), feature.limits)
        except CharacterError as exc:
            await core.notify(surface, f"That card can't be saved: {exc}")
            return "Can't save it."
        conv = await core.store.conversation(offer.key, create=False)
        where = CharacterChat(offer.key, bool(conv and conv.shared))
        existing = await feature.characters.find(offer.key, character.name)
        if existing is not None and existing.character == character:
            saved = existing
            await core.notify(surface, f"**{saved.name}** is saved here already.")
        else:
            try:
                saved = await feature.characters.create(
                    offer.key, where.scope, by or user.id, character, avatar=offer.avatar
                )
            except NameTaken as exc:
                await core.notify(surface, str(exc))
                return "Not saved: the name is taken."
            feature.changed(offer.key)
            log.info("characters: saved %s (%s) in %s", saved.id, offer.data.get("source"), offer.key)
            if not use:
                await core.notify(
                    surface,
                    f"Saved **{saved.name}** for {SCOPE_LABELS[saved.scope.value]}. "
                    f"`/character use {saved.name}` makes me speak as {saved.name}.",
                )
        if use:
            blocker = await feature.may_switch(core, conv, user.id) if conv is not None else None
            if blocker is not None:
                await core.notify(
                    surface,
                    f"Saved **{saved.name}**. This group speaks as {blocker.name}; only its "
                    "owner or an admin can switch characters here.",
                )
                return "Saved."
            await feature.take_up(core, where, saved, user, surface)
        return "Saved."
