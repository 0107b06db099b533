"""The two kinds of turn characters add: a drafted card (``/character new``) and a scene
(``/scene``). Turns, so the core meters their gateway calls against quotas, Stop ends them,
Regenerate redoes them (another draft, another take of the scene) and pacing is the usual.

Both build their own prompt (the chat history is not what the model needs for either), ask
for structured output, read the answer in code, and retry once with the problems quoted.
A user never sees raw JSON.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.characters import card_draft, scenes
from bot.characters.character_feature import DRAFT_KIND, SCENE_KIND, CharacterFeature
from bot.characters.offers import offer_controls, offer_data, offer_markdown
from bot.copywriting.structured import strip_reasoning
from bot.core.kinds import TurnContext
from bot.gateway.events import ChatRequest
from bot.platform.messages import Author
from bot.store.characters import OFFER_PART
from bot.store.repo import ConversationRow, NewPart

log = logging.getLogger(__name__)
MAX_QUOTED_ANSWER = 6_000  # characters of an unusable answer quoted back in the retry


async def _ask(turn: TurnContext, messages: list[dict[str, Any]], response_format: dict[str, Any] | None) -> str:
    reply = await turn.gateway.complete(ChatRequest(messages=messages, response_format=response_format))
    if reply.reasoning:
        turn.reasoning.append(reply.reasoning)
    if reply.usage is not None:
        turn.usage.add(reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.cached_tokens)
    turn.finish_reason = reply.finish_reason or "stop"
    return reply.text or ""


def _retry(messages: list[dict[str, Any]], answer: str, instruction: str) -> list[dict[str, Any]]:
    visible = strip_reasoning(answer)[:MAX_QUOTED_ANSWER]
    return [
        *messages,
        *([{"role": "assistant", "content": visible}] if visible else []),
        {"role": "user", "content": instruction},
    ]


class DraftKind:
    """The model drafts a whole card from a name and one line; shown for a one-tap Save."""

    kind = DRAFT_KIND

    def __init__(self, feature: CharacterFeature) -> None:
        self.feature = feature

    def takes_plain_messages(self, conversation: ConversationRow) -> bool:
        return False

    def system_addition(self, conversation: ConversationRow) -> str:
        return ""

    async def produce(self, turn: TurnContext) -> None:
        name, line = str(turn.extra.get("name", "")), str(turn.extra.get("line", ""))
        by = Author(str(turn.extra.get("by", "")), str(turn.extra.get("by_name", "")))
        await turn.status(f"drafting {name}…")
        structured = turn.settings.structured_output
        messages = card_draft.draft_messages(name, line, base_system=turn.settings.system_prompt)
        fmt = card_draft.response_format() if structured else None
        answer = await _ask(turn, messages, fmt)
        result = card_draft.parse_draft(answer, name, limits=self.feature.limits, creator=by.name)
        if not result.ok:
            log.info("characters: unusable draft (%d problem(s)); retrying once", len(result.problems))
            await turn.status("drafting again…")
            answer = await _ask(turn, _retry(messages, answer, card_draft.retry_instruction(result.problems)), fmt)
            result = card_draft.parse_draft(answer, name, limits=self.feature.limits, creator=by.name)
        if not result.ok or result.character is None:
            turn.feed(result.reason)
            return
        character = result.character
        turn.parts.append(NewPart(OFFER_PART, data=offer_data(character, by, "draft")))
        turn.controls.append(offer_controls("draft", turn.turn_id))
        turn.feed(
            offer_markdown(character, heading=f"✍️ **A draft of {character.name}** — Regenerate for another take.")
        )


class SceneKind:
    """A dialogue between two or more of the chat's characters, rendered as a script."""

    kind = SCENE_KIND

    def __init__(self, feature: CharacterFeature) -> None:
        self.feature = feature

    def takes_plain_messages(self, conversation: ConversationRow) -> bool:
        return False

    def system_addition(self, conversation: ConversationRow) -> str:
        return ""

    async def produce(self, turn: TurnContext) -> None:
        key = turn.conversation.key
        names = [str(n) for n in turn.extra.get("names") or []]
        situation = str(turn.extra.get("situation", ""))
        found = {name: await self.feature.characters.find(key, name) for name in names}
        missing = [name for name, saved in found.items() if saved is None]
        if missing:
            known = ", ".join(s.name for s in await self.feature.characters.usable(key)) or "none yet"
            turn.feed(
                f"I don't know {', '.join(f'**{m}**' for m in missing)} here. Characters here: {known}. "
                "(`/character new NAME: one line` drafts one.)"
            )
            return
        cast = [saved.character for saved in found.values() if saved is not None]
        seconds = scenes.script_seconds(turn.conversation.style)
        await turn.status("writing the scene…")
        messages = scenes.scene_messages(
            cast, situation, base_system=turn.settings.system_prompt, timing_seconds=seconds
        )
        fmt = scenes.response_format(cast, seconds) if turn.settings.structured_output else None
        answer = await _ask(turn, messages, fmt)
        parsed = scenes.parse_scene(answer, cast, timing_seconds=seconds)
        if not parsed.ok:
            log.info("characters: scene with %d problem(s); retrying once", len(parsed.problems))
            await turn.status("rewriting the scene…")
            second = scenes.parse_scene(
                await _ask(turn, _retry(messages, answer, scenes.retry_instruction(parsed.problems)), fmt),
                cast,
                timing_seconds=seconds,
            )
            if second.scene is not None and (
                second.ok or parsed.scene is None or len(second.problems) <= len(parsed.problems)
            ):
                parsed = second
        if parsed.scene is None:
            turn.feed(
                "Sorry, the model twice failed to write that scene in a usable form. Try again, or describe "
                "the situation differently."
            )
            return
        turn.feed(scenes.render_scene(parsed.scene, timing=bool(seconds)))
