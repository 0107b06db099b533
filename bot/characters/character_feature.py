"""Characters in the conversation core: what the commands, offers and turn kinds share, and
the two hooks that make a character speak — the prompt hook (the voice, every turn) and the
addressing hook (a character called by name in a group).

The voice, turn after turn:
- the card's block goes into the system prompt and its example dialogue right after it, as
  few-shot turns: the stable prefix, rendered from the stored card alone (cached by card id
  and revision), so the gateway's prompt cache matches it byte for byte every turn;
- lore the newest messages touch on and the post-history reminder go on the newest user
  message only (volatile text never enters a later turn's prefix);
- the core counts all three before it trims history, so trimming never cuts the card.
A copy request (a copywriting turn) in a chat with a character is written in its voice,
unless the brief asks for another.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from bot.characters import show, voice_prompt
from bot.characters.character import DEFAULT_LIMITS, CardLimits
from bot.characters.voice_prompt import CharacterPrompt
from bot.core.kinds import Addressed, Core, PromptAddition
from bot.core.pacing import AnswerWriter
from bot.core.turns import TurnKind, TurnRequest
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.platform.surface import ReplySurface
from bot.store.characters import CharacterScope, CharacterStore, SavedCharacter
from bot.store.repo import ConversationRow, NewPart, Store, StoredMessage

DRAFT_KIND = "chardraft"  # a turn: the model drafts a card (/character new)
SCENE_KIND = "scene"  # a turn: a scene between characters (/scene)
OWN_PROMPT = (DRAFT_KIND, SCENE_KIND)  # kinds that build their prompt themselves
ADDRESSED_EXTRA = "character"  # TurnRequest.extra key: the character a group message called by name
NAMES_TTL = 10.0  # seconds a chat's character names are kept for the addressing hook
RENDERS_KEPT = 256


def voice_for_task(name: str) -> str:
    return (
        f"[Write this in {name}'s voice (its vocabulary, catchphrases, punctuation and emoji habits) "
        "unless the request asks for a different voice or a neutral tone; keep the format asked for.]"
    )


@dataclass(frozen=True, slots=True)
class CharacterChat:
    """A chat as characters see it: its key, and whether several people share it."""

    key: ConversationKey
    group: bool

    @property
    def chat_key(self) -> ConversationKey:
        """The chat as a whole (its thread "" conversation): new threads start from its character."""
        return ConversationKey(self.key.platform, self.key.workspace, self.key.chat, "")

    @property
    def scope(self) -> CharacterScope:
        return CharacterScope.GROUP if self.group else CharacterScope.CHAT


class CharacterFeature:
    """State the pieces share: the stores, the render cache, the chats' names."""

    def __init__(self, store: Store, limits: CardLimits = DEFAULT_LIMITS) -> None:
        self.store = store
        self.characters = CharacterStore(store.db)
        self.limits = limits
        self._renders: OrderedDict[tuple[int, int], CharacterPrompt] = OrderedDict()
        self._names: dict[tuple[str, str, str], tuple[float, list[SavedCharacter]]] = {}

    # --- the prefix, rendered once per card revision ---
    def render(self, saved: SavedCharacter) -> CharacterPrompt:
        key = (saved.id, saved.revision)
        rendered = self._renders.get(key)
        if rendered is None:
            rendered = self._renders[key] = voice_prompt.render(saved.character)
            while len(self._renders) > RENDERS_KEPT:
                self._renders.popitem(last=False)
        else:
            self._renders.move_to_end(key)
        return rendered

    # --- who may do what ---
    def may_change(self, core: Core, key: ConversationKey, user_id: str, saved: SavedCharacter) -> bool:
        """Edit, delete: the card's owner or a bot admin."""
        return saved.owner == user_id or core.ops.access.is_admin(key.platform, user_id)

    async def may_switch(self, core: Core, conv: ConversationRow, user_id: str) -> SavedCharacter | None:
        """Whom a group member needs to be to change which character the group speaks as:
        None when they may; else the active character whose owner (or an admin) must do it.
        In a private chat the person is the chat's own."""
        if not conv.shared or conv.character_id is None or core.ops.access.is_admin(conv.key.platform, user_id):
            return None
        active = await self.characters.get(conv.character_id)
        return active if active is not None and active.owner != user_id else None

    # --- taking a character up (/character use, "Save & use") ---
    async def take_up(
        self, core: Core, where: CharacterChat, saved: SavedCharacter | None, author: Author, surface: ReplySurface
    ) -> None:
        """Make the conversation (and the chat's new threads) speak as ``saved`` (None: as
        nobody), and show the first message."""
        conv = await core.store.conversation(where.key, shared=where.group)
        assert conv is not None
        character_id = saved.id if saved is not None else None
        await self.characters.set_active(conv.id, character_id)
        if where.key.thread:
            chat = await core.store.conversation(where.chat_key, shared=where.group)
            assert chat is not None
            await self.characters.set_active(chat.id, character_id)
        if saved is None:
            await core.notify(surface, "Back to my own voice here. (`/character use NAME` picks a character again.)")
            return
        name = saved.name
        await core.notify(
            surface,
            f"🎭 Speaking as **{name}** here from now on — also after /new. "
            "`/character off` goes back to the plain assistant.",
        )
        greeting = show.greeting(saved.character, author.name)
        if greeting:
            # The greeting is the character's first line of the conversation: history, not a notice.
            await core.store.add_message(conv.id, "assistant", [NewPart("text", text=greeting)], status="complete")
            await AnswerWriter(surface, 0, native=False).finish(greeting)

    # --- names in a chat (for the addressing hook), kept briefly ---
    async def usable(self, key: ConversationKey) -> list[SavedCharacter]:
        chat = (key.platform, key.workspace, key.chat)
        cached = self._names.get(chat)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        found = await self.characters.usable(key)
        if len(self._names) > 10_000:
            self._names.clear()
        self._names[chat] = (time.monotonic() + NAMES_TTL, found)
        return found

    def changed(self, key: ConversationKey | None = None) -> None:
        """Characters were created, edited or deleted (in ``key``'s chat, or anywhere)."""
        if key is None:
            self._names.clear()
        else:
            self._names.pop((key.platform, key.workspace, key.chat), None)

    # --- hooks ---
    async def addressed(self, msg: IncomingMessage) -> Addressed | None:
        """A group message that calls a character by name (``Mochi, …``, ``@Mochi``) is for
        the bot; it is answered by that character even if the chat speaks as another."""
        if not msg.group or not msg.text.strip():
            return None
        saved = await self.usable(msg.key)
        if not saved:
            return None
        found = show.addressed(msg.text, [s.character for s in saved])
        if found is None:
            return None
        chosen = next(s for s in saved if s.character.key == found.key)
        conv = await self.store.conversation(msg.key, create=False)
        if conv is not None and conv.character_id == chosen.id:
            return Addressed()
        return Addressed(TurnRequest(TurnKind.CHAT, {ADDRESSED_EXTRA: chosen.id}))

    async def prompt_addition(
        self, conversation: ConversationRow, kind: str, history: list[StoredMessage]
    ) -> PromptAddition | None:
        if kind in OWN_PROMPT:
            return None
        character_id = conversation.character_id
        if conversation.shared and history:
            newest = max((m.seq for m in history if m.role == "user"), default=None)
            request = await self.characters.request_of(conversation.id, newest) if newest is not None else None
            called = ((request or {}).get("extra") or {}).get(ADDRESSED_EXTRA)
            if isinstance(called, int):
                character_id = called
        if character_id is None:
            return None
        saved = await self.characters.get(character_id)
        if saved is None:
            return None
        rendered = self.render(saved)
        character = saved.character
        recent = [m.text for m in history if m.role in ("user", "assistant") and m.text]
        lore = voice_prompt.lore_text(character, voice_prompt.triggered_lore(character, recent), rendered.user_label)
        reminder = f"[{rendered.post_history}]" if kind == TurnKind.CHAT else voice_for_task(rendered.name)
        return PromptAddition(
            system=rendered.system_block,
            examples=rendered.examples,
            newest="\n\n".join(t for t in (lore, reminder) if t),
        )
