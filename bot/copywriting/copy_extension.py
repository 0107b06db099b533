"""Copywriting in the conversation core: /style, /copy, plain briefs once a style is set,
and refinements — registered with the core as one ``Extension``.

The style lives on the conversation (shared by everyone in a group) and goes into the
stable system prompt. Copy answers are structured output rendered as numbered variants,
never raw JSON; the variants are stored with the answer so a control can refine one later.
Every variant is checked for compliance against the chat's brand profile (a ``BrandSource``,
see ``copywriting_extension``) and repaired once (``flow.py``).
"""

from __future__ import annotations

import functools
import logging
from enum import StrEnum

from bot.compliance.brand import BrandError
from bot.config import Settings
from bot.copywriting.flow import write_variants
from bot.copywriting.refine import (
    ACTIONS,
    ALL_ACTIONS,
    COMPLY,
    REFINE_VARIANTS,
    UnknownAction,
    label,
    language_of,
    refine_message,
    translation_style,
)
from bot.copywriting.review import BrandSource, Checker
from bot.copywriting.styles import (
    STYLES,
    Style,
    custom_style,
    find_style,
    interpret_style_args,
    resolve_style,
    style_instructions,
    style_list_markdown,
)
from bot.copywriting.variants import Variant
from bot.core.kinds import Command, CommandCall, Core, Extension, TurnContext
from bot.core.turns import TurnKind, TurnRequest, TurnState
from bot.platform.controls import Action, Button, Choice, Press, Row
from bot.platform.inbox import CommandInfo
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.platform.surface import ReplySurface
from bot.store.repo import ConversationRow, NewPart

log = logging.getLogger(__name__)


class CopyTurnKind(StrEnum):
    COPY = "copy"  # copywriting variants
    REFINE = "refine"  # one variant reworked


REFINE_PRESS = "refine"  # a control's kind: Press("refine", turn, (variant, action))
COPY_PART = "copy"  # a part of the answer message: {"style": stored style, "variants": [...]}
DEFAULT_COPY_STYLE = (
    "General marketing copy for the brief's product and audience, in the language of "
    "the brief: a hook, concrete benefits, a call to action"
)


async def checker_for(key: ConversationKey, style: Style, settings: Settings, brands: BrandSource | None) -> Checker:
    """The compliance check for copy in ``key``'s chat: the style's platform rules, the chat's
    brand profile, the operator's rules (``BOT_COMPLIANCE_RULES_DIR``, loaded once)."""
    brand = None
    if brands is not None:
        try:
            brand = await brands.profile(key)
        except BrandError:  # a stored profile that no longer reads: check without it
            log.warning("the brand profile of %s:%s could not be read; checking without it", key.platform, key.chat)
    return Checker.for_style(style, brand, settings.compliance_rules_dir)


class CopyKind:
    """Variants of copy in a style: the conversation's, or one the request names."""

    kind = CopyTurnKind.COPY

    def __init__(self, brands: BrandSource | None = None) -> None:
        self.brands = brands

    def takes_plain_messages(self, conversation: ConversationRow) -> bool:
        return bool(conversation.style)  # once a style is set, a plain message is a brief

    def system_addition(self, conversation: ConversationRow) -> str:
        return style_instructions(conversation.style) if conversation.style else ""

    async def produce(self, turn: TurnContext) -> None:
        stored = turn.extra.get("style") or turn.conversation.style
        style = resolve_style(stored)
        if style is None:  # style cleared in the meantime: answer as a normal chat
            await turn.produce_as(TurnKind.CHAT)
            return
        checker = await checker_for(turn.conversation.key, style, turn.settings, self.brands)
        await _write(turn, style, stored, turn.settings.copy_variants, checker)


class RefineKind:
    """One variant reworked by a one-tap refinement."""

    kind = CopyTurnKind.REFINE

    def __init__(self, brands: BrandSource | None = None) -> None:
        self.brands = brands

    def takes_plain_messages(self, conversation: ConversationRow) -> bool:
        return False

    def system_addition(self, conversation: ConversationRow) -> str:
        return ""

    async def produce(self, turn: TurnContext) -> None:
        stored = turn.extra.get("style") or turn.conversation.style
        style = resolve_style(stored)
        if style is None:
            await turn.produce_as(TurnKind.CHAT)
            return
        if turn.extra.get("action") == "translate" and turn.extra.get("variant"):
            style = translation_style(style, Variant.from_dict(turn.extra["variant"]))
        checker = await checker_for(turn.conversation.key, style, turn.settings, self.brands)
        await _write(turn, style, stored, REFINE_VARIANTS, checker)


async def _write(turn: TurnContext, style: Style, stored: str | None, n: int, checker: Checker) -> None:
    await turn.status(f"writing {n} variants…" if n > 1 else "rewriting…")
    result = await write_variants(
        turn.gateway, turn.messages, style, n, turn.settings, progress=turn.status, checker=checker
    )
    turn.reasoning.append(result.reasoning)
    usage = result.usage
    turn.usage.add(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
    turn.usage.calls = max(result.calls, 1)
    turn.finish_reason = result.finish_reason or "stop"
    if result.ok:
        # Each variant's verdict as it was shown (the "fix compliance" action checks again).
        turn.parts.append(
            NewPart(
                COPY_PART,
                data={
                    "style": stored if turn.kind == CopyTurnKind.REFINE else style.stored(),
                    "variants": result.variant_dicts(),
                    "compliance": [result.verdicts[n].to_dict() for n in sorted(result.verdicts)],
                },
            )
        )
        flagged = {n for n, verdict in result.verdicts.items() if verdict.findings}
        turn.controls.extend(refine_controls(turn.turn_id, len(result.variants), language_of(result.markdown), flagged))
    turn.feed(result.markdown)


def refine_controls(turn_id: int, variants: int, language: str = "en", flagged: set[int] | None = None) -> list[Row]:
    """Each copy variant's refinements: a select of actions per variant; "fix compliance" first
    on the variants the compliance check ``flagged``."""
    rows: list[Row] = []
    for number in range(1, variants + 1):
        placeholder = f"方案 {number}：改写…" if language == "zh" else f"Option {number}: refine…"
        actions = (COMPLY, *ACTIONS) if flagged and number in flagged else ACTIONS
        rows.append(
            Choice(
                str(number),
                placeholder,
                tuple(
                    Button(label(action, language), Press(REFINE_PRESS, turn_id, (str(number), action)))
                    for action in actions
                ),
            )
        )
    return rows


# --- commands ---
async def style_command(call: CommandCall) -> None:
    core, surface = call.core, call.surface
    conv = await core.store.conversation(call.msg.key, shared=call.msg.group)
    assert conv is not None
    choice = interpret_style_args(call.args)
    current = resolve_style(conv.style)
    if choice.action == "list":
        text = style_list_markdown(current)
        await core.notify(surface, f"{choice.message}\n\n{text}" if choice.message else text)
    elif choice.action == "show":
        await core.notify(
            surface,
            f"Current style: {current.display_name}." if current else "No style is set. " + style_list_markdown(),
        )
    elif choice.action == "clear":
        await core.store.set_style(conv.id, None)
        await core.notify(surface, "Style cleared: I'm back to normal conversation.")
    else:
        assert choice.style is not None
        await core.store.set_style(conv.id, choice.style.stored())
        n = core.settings.copy_variants
        await core.notify(
            surface,
            (
                f"Style set for this conversation: **{choice.style.display_name}**. "
                f"Send a brief (or `/copy <brief>`) and I'll write {n} variants; "
                "`/style off` goes back to normal chat."
            ),
        )


async def copy_command(call: CommandCall) -> None:
    core, msg = call.core, call.msg
    conv = await core.store.conversation(msg.key, shared=msg.group)
    assert conv is not None
    if not call.args.strip() and not msg.attachments:
        await core.notify(call.surface, "Tell me what to write after /copy, e.g. `/copy 一款桂花乌龙茶的种草笔记`.")
        return
    # "/copy xiaohongshu 桂花乌龙茶": a style named first is this request's; a conversation
    # without a style keeps it, so follow-up briefs and refinements stay in it.
    text = call.args.strip()
    head, _, rest = text.partition(" ")
    named = find_style(head) if rest.strip() else None
    if named is not None:
        text = rest.strip()
        extra = {"style": named.stored()}
        if not conv.style:
            await core.store.set_style(conv.id, named.stored())
    else:  # without a conversation style, /copy still writes variants, in a general style
        extra = {} if conv.style else {"style": custom_style(DEFAULT_COPY_STYLE).stored()}
    brief = IncomingMessage(
        key=msg.key,
        author=msg.author,
        text=text,
        message_id=msg.message_id,
        attachments=msg.attachments,
        addressed=True,
        group=msg.group,
        reply_to=msg.reply_to,
        notes=msg.notes,
    )
    await core.submit(brief, call.surface, TurnRequest(CopyTurnKind.COPY, extra))


async def refine_command(call: CommandCall, brands: BrandSource | None = None) -> None:
    """Console form of the refinement controls: ``/refine 2 shorter``, ``/refine 1 comply``."""
    core = call.core
    parts = call.args.split()
    conv = await core.store.conversation(call.msg.key, shared=call.msg.group)
    assert conv is not None
    turn_id = await core.store.latest_turn(conv.id, (CopyTurnKind.COPY, CopyTurnKind.REFINE), TurnState.DONE)
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in ALL_ACTIONS or turn_id is None:
        await core.notify(
            call.surface,
            "Use `/refine <variant number> <action>` after a copy answer; actions: " + ", ".join(ALL_ACTIONS) + ".",
        )
        return
    await refine(core, turn_id, int(parts[0]), parts[1], call.surface, call.msg.author, brands)


async def on_refine_press(
    action: Action, surface: ReplySurface, core: Core, brands: BrandSource | None = None
) -> str | None:
    args = action.press.args
    if len(args) != 2 or not args[0].isdigit() or args[1] not in ALL_ACTIONS:
        return None  # not a press this feature wrote
    started = await refine(core, action.press.turn_id, int(args[0]), args[1], surface, action.user, brands)
    return "On it…" if started else "Nothing to do."


async def refine(
    core: Core,
    turn_id: int,
    number: int,
    action: str,
    surface: ReplySurface,
    author: Author,
    brands: BrandSource | None = None,
) -> bool:
    """Ask for variant ``number`` of ``turn_id``'s answer reworked by ``action``; ``author``
    (who tapped) is named in group prompts. False when nothing was asked (told why)."""
    await core.wait_turn(turn_id)
    turn = await core.store.turn(turn_id)
    copy = None
    if turn is not None and turn.response_message_id is not None:
        copy = await core.store.part_data(turn.response_message_id, COPY_PART)
    if turn is None or copy is None:
        await core.notify(surface, "I can't find those variants any more.")
        return False
    variants = copy.get("variants") or []
    if not 1 <= number <= len(variants):
        await core.notify(surface, f"There is no variant {number}; pick 1–{len(variants)}.")
        return False
    style = resolve_style(copy.get("style"))
    if style is None:
        await core.notify(surface, "That answer has no style to refine with.")
        return False
    variant = Variant.from_dict(variants[number - 1])
    findings = []
    if action == COMPLY:  # checked again now: the brand profile or the rules may have changed since
        findings = (await checker_for(turn.key, style, core.settings, brands)).findings(variant)
        if not findings:
            await core.notify(
                surface,
                f"方案 {number} 没有发现需要修改的用语。"
                if style.language == "zh"
                else f"The compliance check finds nothing to fix in option {number}.",
            )
            return False
    try:
        instruction = refine_message(action, variant, style, number, findings)
    except UnknownAction:
        await core.notify(surface, f"I don't know how to “{action}” a variant.")
        return False
    conv = await core.store.conversation(turn.key)
    assert conv is not None
    await core.submit(
        IncomingMessage(key=turn.key, author=author, text=instruction, group=conv.shared),
        surface,
        TurnRequest(CopyTurnKind.REFINE, {"style": copy.get("style"), "action": action, "variant": variant.to_dict()}),
    )
    return True


# --- completion (a terminal completes what follows these commands) ---
async def complete_style(_key: ConversationKey, words: list[str]) -> list[str]:
    """``/style <id>``, ``/style off``, ``/style custom …``."""
    return [*STYLES, "off", "custom", "show"] if not words else []


async def complete_copy(_key: ConversationKey, words: list[str]) -> list[str]:
    """``/copy [style] <brief>``: a style may come first."""
    return list(STYLES) if not words else []


async def complete_refine(_key: ConversationKey, words: list[str]) -> list[str]:
    """``/refine <variant> <action>``."""
    return list(ACTIONS) if len(words) == 1 else []


def copywriting_extension(brands: BrandSource | None = None) -> Extension:
    """Copywriting, its copy checked against the brand profiles ``brands`` gives (none: law and
    platform rules only)."""
    return Extension(
        kinds=(CopyKind(brands), RefineKind(brands)),
        commands=(
            Command(
                CommandInfo("style", "List, set or clear a copywriting style · 选择文案风格", "[name | off]"),
                style_command,
                in_line=True,
                complete=complete_style,
            ),
            Command(
                CommandInfo("copy", "Write copy variants · 写几版文案", "[style] <brief>"),
                copy_command,
                in_line=True,
                complete=complete_copy,
            ),
            Command(
                CommandInfo("refine", "Rework a copy variant", "<variant> <action>", menu=False),
                functools.partial(refine_command, brands=brands),
                complete=complete_refine,
            ),
        ),
        presses={REFINE_PRESS: functools.partial(on_refine_press, brands=brands)},
    )


COPYWRITING = copywriting_extension()
