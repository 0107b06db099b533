"""Copywriting turns: /style, /copy, plain briefs once a style is set, and refinements.

The style lives on the conversation (shared by everyone in a group) and goes into the
stable system prompt. Copy answers are structured output rendered as numbered variants,
never raw JSON; the variants are stored with the answer so a button can refine one later.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.copywriting.flow import write_variants
from bot.copywriting.refine import ACTIONS, REFINE_VARIANTS, UnknownAction, refine_message, translation_style
from bot.copywriting.styles import custom_style, interpret_style_args, resolve_style, style_list_markdown
from bot.copywriting.variants import Variant
from bot.messages import Author, IncomingMessage
from bot.store.models import Part, Turn
from bot.store.repo import NewPart
from bot.surface import ReplySurface

if TYPE_CHECKING:
    from bot.core.service import ChatService, _TurnRunner

COPY_PART = "copy"  # a part of the answer message: {"style": stored style, "variants": [...]}


async def style_command(service: "ChatService", msg: IncomingMessage, surface: ReplySurface, args: str) -> None:
    conv = await service.store.conversation(msg.key, shared=msg.group)
    assert conv is not None
    choice = interpret_style_args(args)
    current = resolve_style(conv.style)
    if choice.action == "list":
        text = style_list_markdown(current)
        await service.notify(surface, f"{choice.message}\n\n{text}" if choice.message else text)
    elif choice.action == "show":
        await service.notify(surface, f"Current style: {current.display_name}." if current
                             else "No style is set. " + style_list_markdown())
    elif choice.action == "clear":
        await service.store.set_style(conv.id, None)
        await service.notify(surface, "Style cleared: I'm back to normal conversation.")
    else:
        assert choice.style is not None
        await service.store.set_style(conv.id, choice.style.stored())
        n = service.settings.copy_variants
        await service.notify(surface, (
            f"Style set for this conversation: **{choice.style.display_name}**. "
            f"Send a brief (or `/copy <brief>`) and I'll write {n} variants; "
            "`/style off` goes back to normal chat."))


DEFAULT_COPY_STYLE = ("General marketing copy for the brief's product and audience, in the language of "
                      "the brief: a hook, concrete benefits, a call to action")


def encode_extra(extra: dict) -> dict:
    """A turn's copy options as JSON, stored with the turn so Regenerate can redo it."""
    out = {k: v for k, v in extra.items() if k != "variant"}
    if isinstance(extra.get("variant"), Variant):
        out["variant"] = extra["variant"].to_dict()
    return out


def decode_extra(data: dict) -> dict:
    extra = dict(data)
    if isinstance(extra.get("variant"), dict):
        extra["variant"] = Variant.from_dict(extra["variant"])
    return extra


async def copy_command(service: "ChatService", msg: IncomingMessage, surface: ReplySurface, args: str) -> None:
    conv = await service.store.conversation(msg.key, shared=msg.group)
    assert conv is not None
    if not args.strip() and not msg.attachments:
        await service.notify(surface, "Tell me what to write after /copy, e.g. `/copy 一款桂花乌龙茶的种草笔记`.")
        return
    # Without a conversation style, /copy still writes variants, in a general style.
    extra = None if conv.style else {"style": custom_style(DEFAULT_COPY_STYLE).stored()}
    brief = IncomingMessage(key=msg.key, author=msg.author, text=args, message_id=msg.message_id,
                            attachments=msg.attachments, addressed=True, group=msg.group,
                            reply_to=msg.reply_to, notes=msg.notes)
    notices = await service._store_user_message(conv, brief)
    for notice in notices:
        await service.notify(surface, notice)
    await service._answer_pending(conv, msg.group, surface, kind="copy", extra=extra)


async def refine_command(service: "ChatService", msg: IncomingMessage, surface: ReplySurface, args: str) -> None:
    """Console form of the refinement buttons: ``/refine 2 shorter``."""
    parts = args.split()
    conv = await service.store.conversation(msg.key, shared=msg.group)
    assert conv is not None
    async with service.store.db.read() as conn:
        turn_id = (await conn.execute(
            select(Turn.id).where(Turn.conversation_id == conv.id, Turn.kind.in_(("copy", "refine")),
                                  Turn.status == "complete").order_by(Turn.id.desc()).limit(1))).scalar()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in ACTIONS or turn_id is None:
        await service.notify(surface, "Use `/refine <variant number> <action>` after a copy answer; actions: "
                             + ", ".join(ACTIONS) + ".")
        return
    await refine(service, turn_id, int(parts[0]), parts[1], surface, author=msg.author)


async def _stored_copy(service: "ChatService", message_id: int | None) -> dict | None:
    if message_id is None:
        return None
    async with service.store.db.read() as conn:
        data = (await conn.execute(select(Part.data).where(
            Part.message_id == message_id, Part.kind == COPY_PART))).scalar()
    return data


async def refine(service: "ChatService", turn_id: int, number: int, action: str, surface: ReplySurface,
                 *, author: Author | None = None) -> None:
    turn = await service.store.turn(turn_id)
    copy = await _stored_copy(service, turn["response_message_id"]) if turn else None
    if turn is None or copy is None:
        await service.notify(surface, "I can't find those variants any more.")
        return
    variants = copy.get("variants") or []
    if not 1 <= number <= len(variants):
        await service.notify(surface, f"There is no variant {number}; pick 1–{len(variants)}.")
        return
    style = resolve_style(copy.get("style"))
    if style is None:
        await service.notify(surface, "That answer has no style to refine with.")
        return
    conv = await service.store.conversation(turn["key"])
    assert conv is not None
    variant = Variant.from_dict(variants[number - 1])
    try:
        instruction = refine_message(action, variant, style, number)
    except UnknownAction:
        await service.notify(surface, f"I don't know how to “{action}” a variant.")
        return
    await service.store.add_message(conv.id, "user", [NewPart("text", text=instruction)], status="pending",
                                    author_id=author.id if author else "",
                                    author_name=author.name if author else "")
    await service._answer_pending(conv, conv.shared, surface, kind="refine",
                                  extra={"style": copy.get("style"), "action": action, "variant": variant})


async def produce_copy(runner: "_TurnRunner") -> None:
    """The model part of a copy or refine turn: variants through structured output."""
    settings = runner.settings
    stored = runner.extra.get("style") or runner.conv.style
    style = resolve_style(stored)
    if style is None:  # style cleared in the meantime: answer as a normal chat
        runner.kind = "chat"
        await runner._produce()
        return
    n = settings.copy_variants
    if runner.kind == "refine":
        n = REFINE_VARIANTS
        if runner.extra.get("action") == "translate":
            style = translation_style(style, runner.extra["variant"])
    await runner._status(f"writing {n} variant{'s' if n > 1 else ''}…" if n > 1 else "rewriting…")
    result = await write_variants(runner.gateway, runner.messages,  # issue-11 hook: was runner.s.gateway
                                  style, n, settings,
                                  progress=runner._status)
    runner.reasoning_parts.append(result.reasoning)
    usage = result.usage
    runner.usage = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                    "cached_tokens": usage.cached_tokens}
    runner.finish_reason = result.finish_reason or "stop"
    if runner.ttft is None:
        import time

        runner.ttft = time.monotonic() - runner.started
    if result.ok:
        runner.extra_parts.append(NewPart(COPY_PART, data={"style": style.stored() if runner.kind != "refine"
                                                            else stored, "variants": result.variant_dicts()}))
        runner.variant_count = len(result.variants)
    runner.writer.feed(result.markdown)
