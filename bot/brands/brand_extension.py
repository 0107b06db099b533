"""``/brand`` and ``/check`` in every chat, the brand-draft turn kind, the Save control, and the
profile in the prompt — registered with the core as one ``Extension`` (``brands_extension``).

- ``/brand`` shows the chat's profile; ``/brand set <free text>`` is a turn of kind ``brand``
  (metered, quota-checked, stoppable like any answer): the model fills the profile, the code
  checks it, and the draft is shown with a Save control (``Press("brand", turn, ("save",))``).
  The draft is stored with the answer (a ``brand`` part), so Save works minutes or days later and
  from any process; ``/brand save`` is the console's form. ``/brand edit FIELD: value`` changes
  one field, ``/brand clear`` removes the profile.
- The profile goes into every turn's system prompt in that chat (a prompt hook: the same bytes
  until it changes), so ``/copy`` and refinements follow it; copy is checked against it too
  (``bot.copywriting``).
- ``/check TEXT`` (or a replied-to message, or an attached document) lints text against the
  law, the style's platform rules and the brand, without calling the model.
"""

from __future__ import annotations

import functools
import logging
import re
from enum import StrEnum
from typing import Any

from bot import documents
from bot.brands.profile import EDIT_USAGE, apply_edit, language_of, markdown, prompt_section
from bot.brands.profile_draft import INSTRUCTION, SYSTEM, Drafted, parse_profile, response_format, retry_instruction
from bot.compliance.brand import BrandError, BrandProfile
from bot.compliance.engine import check
from bot.compliance.report import check_report, finding_line
from bot.compliance.rules import rules_for
from bot.copywriting.flow import MAX_QUOTED_ANSWER, with_instruction
from bot.copywriting.refine import language_of as text_language
from bot.copywriting.structured import strip_reasoning
from bot.copywriting.styles import STYLES, Style, find_style, resolve_style
from bot.core.kinds import Command, CommandCall, Core, Extension, PromptAddition, TurnContext
from bot.core.turns import TurnRequest, TurnState
from bot.gateway.events import ChatRequest
from bot.platform.controls import Action, Button, Press
from bot.platform.inbox import CommandInfo
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.platform.surface import ReplySurface
from bot.store.brands import BrandStore, StaleBrand
from bot.store.repo import ConversationRow, NewPart, StoredMessage

log = logging.getLogger(__name__)

BRAND_KIND = "brand"  # the turn kind that drafts a profile
BRAND_PART = "brand"  # the draft, stored with its answer: {"profile": {...}, "revision": base revision}
BRAND_PRESS = "brand"  # Press("brand", turn, ("save",))
SAVE = "save"
SAVE_LABEL = {True: "✅ 保存", False: "✅ Save"}  # by "the profile is in Chinese"

USAGE = (
    "`/brand` shows this chat's brand profile · `/brand set <about the brand: name, products, prices, "
    "specifications, audience, tone, words you use or never use>` drafts one for you to save · "
    "`/brand edit FIELD: value` changes a field · `/brand clear` removes it."
)
CHECK_USAGE = (
    "Send `/check <text>` (or reply `/check` to a message, or attach a document) and I'll check it "
    "against advertising law, the platform's rules and this chat's brand profile; "
    "`/check xiaohongshu <text>` checks it for a style."
)
# Style words /check takes in front of the text (a pasted draft may well start with 标题 or 卖点).
_CHECK_STYLE_WORDS = {"xhs", "小红书", "rednote", "抖音", "朋友圈", "微博"}


def who(key: ConversationKey, author: Author) -> str:
    return f"{key.platform}:{author.id}"


async def _profile(brands: BrandStore, key: ConversationKey) -> BrandProfile | None:
    try:
        return await brands.profile(key)
    except BrandError:  # a stored profile that no longer reads: as if there were none
        log.warning("the brand profile of %s:%s could not be read", key.platform, key.chat)
        return None


# --- the profile in the prompt --------------------------------------------------------------------


class BrandPrompt:
    """The chat's profile in the stable system prompt of every turn (``PromptHook``)."""

    def __init__(self, brands: BrandStore) -> None:
        self.brands = brands

    async def __call__(
        self, conversation: ConversationRow, kind: str, history: list[StoredMessage]
    ) -> PromptAddition | None:
        profile = await _profile(self.brands, conversation.key)
        return PromptAddition(system=prompt_section(profile)) if profile is not None else None


# --- /brand set: the draft turn ---------------------------------------------------------------------


class BrandDraftKind:
    """The model fills a profile from the newest message; shown with a Save control."""

    kind = BRAND_KIND

    def __init__(self, brands: BrandStore) -> None:
        self.brands = brands

    def takes_plain_messages(self, conversation: ConversationRow) -> bool:
        return False

    def system_addition(self, conversation: ConversationRow) -> str:
        return ""

    async def produce(self, turn: TurnContext) -> None:
        await turn.status("drafting the brand profile…")
        newest = next((m for m in reversed(turn.messages) if m.get("role") == "user"), None)
        convo = [
            {"role": "system", "content": SYSTEM},
            *with_instruction([newest] if newest is not None else [], INSTRUCTION),
        ]
        drafted, answer = await self._ask(turn, convo)
        if not drafted.ok:
            log.info("brand: unusable draft (%d problem(s)); retrying once", len(drafted.problems))
            await turn.status("retrying…")
            retry = convo + ([{"role": "assistant", "content": answer[:MAX_QUOTED_ANSWER]}] if answer else [])
            retry.append({"role": "user", "content": retry_instruction(drafted.problems)})
            drafted, _ = await self._ask(turn, retry)
        if drafted.profile is None:
            newest_text = str(newest.get("content", "")) if newest else ""
            turn.feed(drafted.reason(text_language(newest_text) == "zh"))
            return
        current = await self.brands.get(turn.conversation.key)
        turn.parts.append(
            NewPart(
                BRAND_PART, data={"profile": drafted.profile.to_dict(), "revision": current.revision if current else 0}
            )
        )
        zh = language_of(drafted.profile) == "zh"
        turn.controls.append((Button(SAVE_LABEL[zh], Press(BRAND_PRESS, turn.turn_id, (SAVE,)), "primary"),))
        turn.feed(
            draft_text(drafted.profile, replaces=current is not None, rules_dir=turn.settings.compliance_rules_dir)
        )

    async def _ask(self, turn: TurnContext, messages: list[dict[str, Any]]) -> tuple[Drafted, str]:
        fmt = response_format() if turn.settings.structured_output else None
        reply = await turn.gateway.complete(ChatRequest(messages=messages, response_format=fmt))
        if reply.reasoning:
            turn.reasoning.append(reply.reasoning)
        if reply.usage is not None:
            turn.usage.add(reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.cached_tokens)
        else:
            turn.usage.calls += 1
        turn.finish_reason = reply.finish_reason or "stop"
        return parse_profile(reply.text or ""), strip_reasoning(reply.text or "")


def draft_text(profile: BrandProfile, *, replaces: bool, rules_dir: str = "") -> str:
    """The draft as shown: the profile, what the compliance check says of its own selling points
    and preferred words (every copy would repeat them), and how to save it."""
    zh = language_of(profile) == "zh"
    lines = [markdown(profile, title="品牌资料草稿" if zh else "Draft brand profile")]
    own = "\n".join([*profile.words_to_use, *(s for p in profile.products for s in p.selling_points)])
    findings = check(own, brand=profile, rules=rules_for(rules_dir)) if own else []
    if findings:
        lines += [
            "",
            "⚠️ 这些卖点或常用词本身会被合规检查标出："
            if zh
            else "⚠️ The compliance check flags these selling points or preferred words themselves:",
        ]
        lines += [f"- {finding_line(f, 'zh' if zh else 'en')}" for f in findings]
    if zh:
        lines += [
            "",
            f"点「{SAVE_LABEL[True]}」（或发送 `/brand save`）把它设为本聊天的品牌资料"
            + ("，替换现有资料" if replaces else "")
            + "；之后可用 `/brand edit 字段: 内容` 修改。",
        ]
    else:
        lines += [
            "",
            f"Tap “{SAVE_LABEL[False]}” (or send `/brand save`) to make it this chat's brand profile"
            + (", replacing the current one" if replaces else "")
            + "; `/brand edit FIELD: value` changes "
            "a field later.",
        ]
    return "\n".join(lines)


class Saved(StrEnum):
    """What Save did, as the acknowledgement the one who tapped sees."""

    SAVED = "Saved ✓"
    ALREADY = "Already saved ✓"
    STALE = "Not saved"
    MISSING = "Draft not found"


async def save_draft(core: Core, brands: BrandStore, turn_id: int, surface: ReplySurface, author: Author) -> Saved:
    """Save the draft of ``turn_id`` as its chat's profile (told in the chat)."""
    await core.wait_turn(turn_id)
    turn = await core.store.turn(turn_id)
    data = None
    if turn is not None and turn.response_message_id is not None and turn.state is TurnState.DONE:
        data = await core.store.part_data(turn.response_message_id, BRAND_PART)
    if turn is None or not data:
        await core.notify(surface, "I can't find that draft any more; `/brand set …` makes a new one.")
        return Saved.MISSING
    profile = BrandProfile.from_dict(data["profile"])
    current = await brands.get(turn.key)
    if current is not None and current.profile == profile:
        return Saved.ALREADY
    try:
        await brands.save(turn.key, profile, by=who(turn.key, author), revision=int(data.get("revision", 0)))
    except StaleBrand:
        await core.notify(
            surface,
            "The brand profile was changed after this draft was made, so I didn't save it: "
            "`/brand` shows the current one; `/brand set …` drafts a new one.",
        )
        return Saved.STALE
    if language_of(profile) == "zh":
        said = f"✅ 已保存（{author.name}）：**{profile.name}** 是本聊天的品牌资料，之后的文案都按它来写、按它检查。"
    else:
        said = (
            f"✅ Saved by {author.name}: **{profile.name}** is this chat's brand profile; copy written here "
            "now follows it and is checked against it."
        )
    await core.notify(surface, said)
    return Saved.SAVED


async def on_brand_press(action: Action, surface: ReplySurface, core: Core, brands: BrandStore) -> str | None:
    if action.press.args != (SAVE,):
        return None  # not a press this feature wrote
    return str(await save_draft(core, brands, action.press.turn_id, surface, action.user))


# --- /brand -------------------------------------------------------------------------------------------

_SUBCOMMANDS = {
    "show": ("", "show", "查看", "显示"),
    "set": ("set", "new", "设置", "新建"),
    "edit": ("edit", "修改", "编辑"),
    "clear": ("clear", "off", "delete", "remove", "清除", "删除"),
    "save": ("save", "保存"),
}


async def brand_command(call: CommandCall, brands: BrandStore) -> None:
    core, msg, surface = call.core, call.msg, call.surface
    match = re.match(r"\s*(\S*)\s*(.*)\Z", call.args, re.DOTALL)
    head, rest = (match[1].lower(), match[2].strip()) if match else ("", "")
    sub = next((name for name, words in _SUBCOMMANDS.items() if head in words), None)
    if sub == "show":
        saved = await brands.get(msg.key)
        if saved is None:
            await core.notify(surface, "This chat has no brand profile yet. " + USAGE)
        else:
            await core.notify(surface, markdown(saved.profile) + "\n\n" + USAGE)
    elif sub == "set":
        text = rest or msg.quoted
        if not text.strip() and not msg.attachments:
            await core.notify(
                surface,
                "Tell me about the brand after `/brand set`, e.g. `/brand set 山茶集，主打山茶花"
                "精华（30ml，129元），面向25–35岁女性，语气温和真诚，禁用词：便宜货、平替`.",
            )
            return
        await core.submit(
            IncomingMessage(
                key=msg.key,
                author=msg.author,
                text=text,
                message_id=msg.message_id,
                attachments=msg.attachments,
                addressed=True,
                group=msg.group,
                reply_to=msg.reply_to,
                notes=msg.notes,
            ),
            surface,
            TurnRequest(BRAND_KIND),
        )
    elif sub == "edit":
        await _edit(core, brands, msg, surface, rest)
    elif sub == "clear":
        cleared = await brands.clear(msg.key)
        await core.notify(
            surface,
            "Brand profile removed: copy here no longer follows one." if cleared else "This chat has no brand profile.",
        )
    elif sub == "save":
        conv = await core.store.conversation(msg.key, shared=msg.group)
        assert conv is not None
        turn_id = await core.store.latest_turn(conv.id, (BRAND_KIND,), TurnState.DONE)
        if turn_id is None:
            await core.notify(surface, "There is no draft to save; `/brand set …` makes one.")
        else:
            if await save_draft(core, brands, turn_id, surface, msg.author) is Saved.ALREADY:
                await core.notify(surface, "That draft is already this chat's brand profile.")
    else:
        await core.notify(surface, USAGE)


async def _edit(core: Core, brands: BrandStore, msg: IncomingMessage, surface: ReplySurface, args: str) -> None:
    saved = await brands.get(msg.key)
    if saved is None:
        await core.notify(surface, "This chat has no brand profile yet: `/brand set …` drafts one.")
        return
    if not args:
        await core.notify(surface, EDIT_USAGE)
        return
    try:
        edited = apply_edit(saved.profile, args)
        await brands.save(msg.key, edited, by=who(msg.key, msg.author), revision=saved.revision)
    except BrandError as exc:  # StaleBrand included
        await core.notify(surface, f"Not changed: {exc}")
        return
    await core.notify(surface, "✅ " + markdown(edited))


# --- /check -------------------------------------------------------------------------------------------


def _leading_style(text: str) -> tuple[Style | None, str]:
    """``xiaohongshu 文案…`` → (the style, the text); otherwise (None, the text)."""
    head, _, rest = text.partition(" ")
    if not rest.strip():
        head, _, rest = text.partition("\n")
    style = find_style(head) if rest.strip() else None
    if style is not None and (head.lower() in STYLES or head.lower() in _CHECK_STYLE_WORDS):
        return style, rest.strip()
    return None, text


async def check_command(call: CommandCall, brands: BrandStore) -> None:
    core, msg, surface = call.core, call.msg, call.surface
    named, text = _leading_style(call.args.strip())
    if not text.strip():
        text = msg.quoted
    notes: list[str] = []
    for attachment in msg.documents:  # an attached draft: its text is checked
        parts, notices = await documents.to_parts(attachment, core.settings)
        text = "\n\n".join(filter(None, [text, *(p.text for p in parts if p.kind == "document" and p.text)]))
        notes += notices
    if msg.images and not text.strip():
        notes.append("I check text only; the words inside an image are not read.")
    if not text.strip():
        await core.notify(surface, "\n".join([*notes, CHECK_USAGE]))
        return
    conv = await core.store.conversation(msg.key, shared=msg.group)
    style_id = conv.style if conv is not None else None
    if not style_id and msg.quoted_in is not None:  # the picked message's thread may have a style
        there = await core.store.conversation(msg.quoted_in, create=False)
        style_id = there.style if there is not None else None
    style = named or resolve_style(style_id)
    brand = await _profile(brands, msg.key)
    findings = check(
        text,
        style=style.id if style and not style.is_custom else None,
        brand=brand,
        rules=rules_for(core.settings.compliance_rules_dir),
    )
    language = text_language(text)
    context = " · ".join(filter(None, [style.display_name if style else "", brand.name if brand else ""]))
    report = check_report(findings, language, context=context)
    await core.notify(surface, "\n".join([*notes, report]) if notes else report)


def brands_extension(brands: BrandStore) -> Extension:
    return Extension(
        kinds=(BrandDraftKind(brands),),
        commands=(
            Command(
                CommandInfo(
                    "brand",
                    "Show, draft or edit this chat's brand profile · 品牌资料",
                    "[set <about the brand> | edit FIELD: value | clear]",
                ),
                functools.partial(brand_command, brands=brands),
                in_line=True,
            ),
            Command(
                CommandInfo(
                    "check",
                    "Check copy against advertising law and platform rules · 合规检查",
                    "[style] <text>",
                    on_message="Check copy · 合规检查",
                ),
                functools.partial(check_command, brands=brands),
            ),
        ),
        presses={BRAND_PRESS: functools.partial(on_brand_press, brands=brands)},
        prompt=(BrandPrompt(brands),),
    )
