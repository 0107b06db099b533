"""The conversation core: one entry point for every adapter.

A turn: store the user's message first, assemble the prompt, call the model, stream the
visible answer through the pacing engine, store the answer and the turn. One conversation
answers one message at a time; messages that arrive mid-answer stay pending and are
answered next, together.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bot import documents
from bot.config import Settings
from bot.copywriting.styles import style_instructions
from bot.core import texts
from bot.core.pacing import AnswerWriter
from bot.core.prompt import build_prompt, images_wanted
from bot.gateway.errors import GatewayError, StreamInterrupted
from bot.gateway.events import ChatRequest, Finish, ReasoningDelta, TextDelta, ToolCall, Usage
from bot.images import ImageRejected, prepare_image
from bot.messages import Author, ConversationKey, IncomingMessage
from bot.store.repo import ConversationRow, NewPart, RecoveredAnswer, Store
from bot.surface import ReplySurface, Write
from bot.usage.operators import Operators  # issue-11 hook

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant in a team chat. Answer in the language the user writes in. "
    "Use Markdown for structure when it helps. In group conversations each user message "
    "starts with the sender's name in brackets; address people by name when useful."
)


@dataclass
class _Request:
    """A reason to answer: plain messages ("chat"), a /copy, a refinement, a regeneration."""

    kind: str
    extra: dict | None
    surface: ReplySurface


@dataclass
class _ConversationState:
    """In-process bookkeeping for one conversation: who is answering, what waits."""

    running: bool = False
    queue: deque = field(default_factory=deque)  # of _Request, answered in order
    surface: ReplySurface | None = None
    group: bool = False
    turn_id: int | None = None
    stream_task: asyncio.Task | None = None  # the model call of the current turn (Stop cancels it)
    stop_requested: bool = False


class ChatService:
    def __init__(self, settings: Settings, store: Store, gateway: Any, *, tools: Any = None) -> None:
        self.settings = settings
        self.store = store
        self.gateway = gateway
        self.tools = tools  # a bot.tools registry, or None
        self._states: dict[int, _ConversationState] = {}
        self._by_turn: dict[int, _ConversationState] = {}
        self._recovered: list[RecoveredAnswer] = []
        self.ops = Operators.from_settings(settings, store.db)  # issue-11 hook

        from bot.core.commands import Commands

        self.commands = Commands(self)

    # --- lifecycle ---
    async def start(self) -> None:
        """Finalise turns a dead process left streaming (adapters repair their messages)."""
        await self.store.db.hold_liveness_lock()
        # Platforms retry an event within minutes; a week of ids is ample for dedupe and
        # keeps the table from growing for ever.
        await self.store.prune_events()
        self._recovered = await self.store.recover_streaming(texts.RESTART_MARKER)
        if self._recovered:
            log.warning("finalised %d answer(s) interrupted by a restart", len(self._recovered))

    async def take_recovered(self, platform: str) -> list[RecoveredAnswer]:
        mine = [r for r in self._recovered if r.key.platform == platform]
        self._recovered = [r for r in self._recovered if r.key.platform != platform]
        return mine

    async def close(self) -> None:
        """Nothing of its own to release; answers in flight belong to their callers."""

    # --- adapter entry points ---
    async def claim_event(self, platform: str, event_id: str) -> bool:
        return await self.store.claim_event(platform, event_id)

    async def has_conversation(self, key: ConversationKey) -> bool:
        return await self.store.conversation(key, create=False) is not None

    @property
    def system_prompt(self) -> str:
        return self.settings.system_prompt or DEFAULT_SYSTEM_PROMPT

    async def handle(self, msg: IncomingMessage, surface: ReplySurface) -> None:
        # issue-11 hook: admins, allowlists and blocked users, before anything is stored
        decision = await self.ops.access.decide(msg.key.platform, msg.key.workspace, msg.key.chat,
                                                msg.author.id, addressed=msg.addressed)
        if not decision.allowed:
            if decision.text:
                await self.notify(surface, decision.text)
            return
        text = msg.text.strip()
        if text.startswith("/") and self.commands.is_command(text):
            await self.commands.run(msg, surface)
            return
        conv = await self.store.conversation(msg.key, shared=msg.group)
        assert conv is not None
        notices = await self._store_user_message(conv, msg)
        if not msg.addressed:
            return
        for notice in notices:
            await self.notify(surface, notice)
        await self._answer_pending(conv, msg.group, surface)

    async def _store_user_message(self, conv: ConversationRow, msg: IncomingMessage) -> list[str]:
        """Store the message before anything else can fail. Returns notices for the user."""
        parts: list[NewPart] = []
        notices: list[str] = []
        if msg.text.strip():
            parts.append(NewPart("text", text=msg.text))
        for note in msg.notes:
            parts.append(NewPart("note", text=note))
            notices.append(note)
        images = msg.images
        if images and not self.settings.vision:
            notices.append(texts.VISION_OFF)
        for att in images:
            try:
                img = prepare_image(att.data, att.filename)
            except ImageRejected as exc:
                parts.append(NewPart("note", text=f"image not used: {exc}"))
                notices.append(f"I couldn't use {exc}.")
                continue
            parts.append(NewPart("image", blob=img.data, mime=img.mime,
                                 data={"filename": att.filename, "width": img.width, "height": img.height}))
        for att in msg.documents:
            doc_parts, doc_notices = await documents.to_parts(att, self.settings)
            parts.extend(doc_parts)
            notices.extend(doc_notices)
        if not parts:
            parts.append(NewPart("text", text=""))
        await self.store.add_message(
            conv.id, "user", parts, status="pending" if msg.addressed else "context",
            author_id=msg.author.id, author_name=msg.author.name,
            platform_message_id=msg.message_id)
        return notices

    async def notify(self, surface: ReplySurface, text: str) -> None:
        """A short message in the bot's own voice (errors, refusals, command replies)."""
        writer = AnswerWriter(surface, 0, native=False)
        await writer.finish(text, notice=True)

    # --- answering ---
    def _state(self, conversation_id: int) -> _ConversationState:
        state = self._states.get(conversation_id)
        if state is None:
            state = self._states[conversation_id] = _ConversationState()
        return state

    async def _answer_pending(self, conv: ConversationRow, group: bool, surface: ReplySurface,
                              *, kind: str = "chat", extra: dict | None = None) -> None:
        state = self._state(conv.id)
        state.group = state.group or group
        if kind == "chat" and state.queue and state.queue[-1].kind == "chat":
            state.queue[-1].surface = surface  # plain messages waiting are answered together,
        else:                                  # where the newest of them was asked
            state.queue.append(_Request(kind, extra, surface))
        if state.running:
            return
        state.running = True
        try:
            first = True
            while state.queue:
                request = state.queue.popleft()
                state.surface = request.surface
                if not first:  # a turn may have trimmed history or set a style meanwhile
                    conv = await self.store.conversation(conv.key) or conv
                first = False
                await self._run_turn(conv, state, kind=request.kind, extra=request.extra)
        finally:
            state.running = False
            if state.turn_id is not None:
                self._by_turn.pop(state.turn_id, None)
            state.turn_id = None
            self._states.pop(conv.id, None)

    async def _run_turn(self, conv: ConversationRow, state: _ConversationState, *,
                        kind: str, extra: dict | None) -> None:
        surface = state.surface
        assert surface is not None
        history = await self.store.history(conv.id, conv.history_start)
        pending = [m.seq for m in history if m.role == "user" and m.status == "pending"]
        if not pending and kind == "chat":
            return
        # issue-11 hook: a reached quota stops the turn before the model is called
        asker = await self.ops.meter.author_of(conv.id, max(pending) if pending else
                                               (history[-1].seq if history else 0))
        refusal = await self.ops.quotas.check(conv.id, conv.key.platform, asker)
        if refusal is not None:
            await self.store.set_message_status([m.id for m in history if m.seq in pending], "refused")
            await self.notify(surface, refusal.text)
            return
        if kind == "chat" and conv.style:
            kind = "copy"  # once a style is set, a plain message is a brief
        wanted = images_wanted(history, self.settings.max_images) if self.settings.vision else []
        images = await self.store.attachment_data(wanted)
        system = self.system_prompt
        if conv.style:
            system = system + "\n\n" + style_instructions(conv.style)
        prompt = build_prompt(
            system, history, images, budget_tokens=self.settings.context_tokens - self.settings.max_tokens,
            max_images=self.settings.max_images, token_ratio=conv.token_ratio, group=state.group or conv.shared,
            vision=self.settings.vision)
        if prompt.new_history_start is not None:
            await self.store.set_history_start(conv.id, prompt.new_history_start)
        options = {"max_tokens": self.settings.max_tokens, "temperature": self.settings.temperature,
                   "top_p": self.settings.top_p}
        if extra:  # what a regeneration needs to redo this turn the same way
            from bot.core.copy_turns import encode_extra

            options["extra"] = encode_extra(extra)
        request_seq = max(pending) if pending else (history[-1].seq if history else 0)
        turn_id, answer_seq = await self.store.start_turn(
            conv.id, request_seq, self.settings.model, options, kind, prompt.estimated_tokens)
        state.turn_id = turn_id
        state.stop_requested = False
        self._by_turn[turn_id] = state
        runner = _TurnRunner(self, conv, surface, turn_id, answer_seq, prompt.messages,
                             prompt.estimated_tokens, pending, kind=kind, extra=extra or {})
        # issue-11 hook: every gateway call of the turn is priced, stored and counted
        runner.gateway = self.ops.meter.for_turn(self.gateway, turn_id, conv.id, conv.key.platform, asker, kind)
        await runner.run(state)

    # --- controls ---
    async def stop(self, turn_id: int) -> bool:
        state = self._by_turn.get(turn_id)
        if state is None or state.turn_id != turn_id:
            return False
        state.stop_requested = True
        if state.stream_task is not None and not state.stream_task.done():
            state.stream_task.cancel()
        return True

    async def regenerate(self, turn_id: int, surface: ReplySurface) -> None:
        turn = await self.store.turn(turn_id)
        if turn is None:
            await self.notify(surface, texts.NOTHING_TO_REGENERATE)
            return
        conv = await self.store.conversation(turn["key"])
        assert conv is not None
        if turn["conversation_id"] != conv.id:
            await self.notify(surface, "That answer belongs to an earlier conversation (after /new).")
            return
        state = self._state(conv.id)
        if state.running:
            await self.notify(surface, "I'm still answering; press Regenerate once I'm done.")
            return
        # The old answer stays in the chat but leaves the history; its question is asked anew,
        # the same way (a refinement stays a refinement).
        if turn["response_message_id"] is not None:
            await self.store.supersede(turn["response_message_id"])
        await self.store.reopen_question(conv.id, turn["request_seq"])
        kind, extra = turn["kind"], None
        if turn["options"].get("extra"):
            from bot.core.copy_turns import decode_extra

            extra = decode_extra(turn["options"]["extra"])
        await self._answer_pending(conv, conv.shared, surface, kind=kind, extra=extra)

    async def feedback(self, turn_id: int, user_id: str, value: int) -> None:
        await self.store.set_feedback(turn_id, user_id, max(-1, min(1, value)))

    async def refine(self, turn_id: int, variant: int, action: str, surface: ReplySurface,
                     *, author: Author | None = None) -> None:
        """A one-tap refinement; ``author`` (who tapped) is named in group prompts."""
        from bot.core.copy_turns import refine

        await refine(self, turn_id, variant, action, surface, author=author)

    async def usage_text(self, key: ConversationKey) -> str:
        conv = await self.store.conversation(key)
        assert conv is not None
        u = await self.store.usage(conv.id)
        share = f" ({u.cached_tokens * 100 // u.prompt_tokens}% from the prompt cache)" if u.prompt_tokens else ""
        return (f"This conversation: {u.turns} answer(s), {u.prompt_tokens:,} prompt tokens{share}, "
                f"{u.completion_tokens:,} completion tokens.")


class _TurnRunner:
    """One answer from prompt to stored result."""

    def __init__(self, service: ChatService, conv: ConversationRow, surface: ReplySurface,
                 turn_id: int, answer_seq: int, messages: list[dict], estimated: int,
                 pending: list[int], *, kind: str, extra: dict) -> None:
        self.s = service
        self.gateway = service.gateway  # issue-11 hook: replaced by the metered gateway
        self.settings = service.settings
        self.conv = conv
        self.surface = surface
        self.turn_id = turn_id
        self.answer_seq = answer_seq
        self.messages = messages
        self.estimated = estimated
        self.pending = pending
        self.kind = kind
        self.extra = extra
        self.message_id: int | None = None
        self.extra_parts: list[NewPart] = []  # stored with the answer (e.g. copy variants)
        self.variant_count = 0
        self.reasoning_parts: list[str] = []  # kept as it streams: a stopped turn keeps it too
        self.usage: dict[str, int] = {}
        self.finish_reason: str | None = None
        self.started = time.monotonic()
        self.ttft: float | None = None
        self.status_shown = ""
        self._last_checkpoint = 0.0
        self._saved_refs: list[str] = []
        self.writer = AnswerWriter(surface, turn_id, on_write=self._on_write)

    async def _on_write(self, text: str, refs: list[str]) -> None:
        """Checkpoint the answer: created at its first write, then at most once per interval.

        A database hiccup must never hold up or repeat what the user sees: it is logged and
        the next write tries again (the final save retries on its own)."""
        now = time.monotonic()
        try:
            if self.message_id is None:
                self.message_id = await self.s.store.open_answer(
                    self.conv.id, self.turn_id, self.answer_seq, text, refs)
                self._last_checkpoint, self._saved_refs = now, refs
            elif now - self._last_checkpoint >= self.settings.checkpoint_interval:
                self._last_checkpoint = now
                await self.s.store.checkpoint(self.message_id, text,
                                              refs if refs != self._saved_refs else None)
                self._saved_refs = refs
        except Exception:  # noqa: BLE001
            log.warning("turn %s: checkpoint failed; will retry at the next write", self.turn_id,
                        exc_info=True)

    async def _status(self, text: str) -> None:
        if text == self.status_shown:
            return
        self.status_shown = text
        try:
            await self.surface.set_status(text)
        except Exception:  # noqa: BLE001 - a status is cosmetic; never fail the answer on it
            log.warning("turn %s: set_status failed", self.turn_id, exc_info=True)

    async def run(self, state: _ConversationState) -> None:
        status, error, marker = "complete", None, ""
        notice_only = False
        try:
            state.stream_task = asyncio.ensure_future(self._produce())
            await state.stream_task
            if self.finish_reason == "length":
                marker = texts.LENGTH_CUT
            elif self.finish_reason == "content_filter":
                marker = texts.CONTENT_FILTER
        except asyncio.CancelledError:
            if not state.stop_requested:
                raise
            status, marker = "stopped", texts.STOPPED
        except StreamInterrupted as exc:
            log.warning("turn %s: %s", self.turn_id, exc.log_message)
            status, error = "interrupted", exc.log_message
            marker = texts.INTERRUPTED.format(reason=exc.user_message.rstrip("."))
        except GatewayError as exc:
            log.warning("turn %s: %s", self.turn_id, exc.log_message)
            status, error = "error", exc.log_message
            if self.writer.text.strip():
                marker = texts.INTERRUPTED.format(reason=exc.user_message.rstrip("."))
            else:
                notice_only = True
                marker = exc.user_message
        except Exception as exc:  # noqa: BLE001 - the user gets an answer whatever broke
            log.exception("turn %s failed", self.turn_id)
            status, error = "error", f"{type(exc).__name__}: {exc}"
            if self.writer.text.strip():
                marker = texts.INTERRUPTED.format(reason="an internal error")
            else:
                notice_only, marker = True, texts.INTERNAL_ERROR
        finally:
            state.stream_task = None
            await self._status("")
        text = self.writer.text.strip()
        if notice_only:
            final = marker
        elif not text and status == "complete":
            final, notice_only = texts.EMPTY_ANSWER, True
        else:
            final = f"{text}\n\n{marker}" if marker and text else (text or marker)
        reasoning = "".join(self.reasoning_parts)
        refs = await self.writer.finish(final, reasoning=reasoning if self.settings.show_reasoning else "",
                                        notice=notice_only,
                                        variants=self.variant_count if status == "complete" else 0)
        extra_parts = ([NewPart("reasoning", text=reasoning)] if reasoning else []) + self.extra_parts
        ratio = None
        if self.usage.get("prompt_tokens") and self.estimated:
            # Keep the estimate conservative: follow usage up quickly, down slowly.
            observed = self.usage["prompt_tokens"] / self.estimated
            ratio = max(observed, self.conv.token_ratio * 0.9 + observed * 0.1)
            if abs(ratio - self.conv.token_ratio) < 0.02 * self.conv.token_ratio:
                ratio = None  # not worth a write
        await self._save(
            turn_id=self.turn_id, message_id=self.message_id, conversation_id=self.conv.id,
            seq=self.answer_seq, text=final if not notice_only else "", extra_parts=extra_parts, refs=refs,
            status=status, finish_reason=self.finish_reason, usage=self.usage,
            ttft_ms=int(self.ttft * 1000) if self.ttft is not None else None,
            duration_ms=int((time.monotonic() - self.started) * 1000), error=error,
            answered_seqs=self.pending, token_ratio=ratio)

    async def _save(self, **values: Any) -> None:
        """The final save, retried: the user has the whole answer, so must the history."""
        for attempt in range(5):
            try:
                await self.s.store.finish_answer(**values)
                return
            except Exception:  # noqa: BLE001
                if attempt == 4:
                    raise
                log.warning("turn %s: saving the answer failed, retrying", self.turn_id, exc_info=True)
                await asyncio.sleep(0.2 * 2 ** attempt)

    async def _produce(self) -> None:
        if self.kind in ("copy", "refine"):
            from bot.core.copy_turns import produce_copy

            await produce_copy(self)
            return
        tools = self.s.tools.definitions() if (self.s.tools is not None and self.settings.tools) else None
        for step in range(self.settings.tool_chain_limit + 1):
            calls, step_text, step_reasoning = await self._stream_once(
                tools if step < self.settings.tool_chain_limit else None)
            if not calls:
                return
            await self._run_tools(calls, step_text, step_reasoning)

    async def _stream_once(self, tools: list[dict] | None) -> tuple[list[ToolCall], str, str]:
        """One model call. Returns its tool calls and, for them, its text and reasoning."""
        calls: list[ToolCall] = []
        text_parts: list[str] = []
        reasoning_parts: list[str] = []
        request = ChatRequest(messages=self.messages, tools=tools or None)
        async for event in self.gateway.stream(request):  # issue-11 hook: was self.s.gateway
            if isinstance(event, TextDelta):
                if self.ttft is None:
                    self.ttft = time.monotonic() - self.started
                if self.status_shown:
                    await self._status("")
                if not text_parts and not self.writer.has_text and not event.text.strip():
                    continue
                text_parts.append(event.text)
                self.writer.feed(event.text)
            elif isinstance(event, ReasoningDelta):
                reasoning_parts.append(event.text)
                self.reasoning_parts.append(event.text)
                if not text_parts and not self.status_shown:
                    await self._status(texts.THINKING)
            elif isinstance(event, ToolCall):
                calls.append(event)
            elif isinstance(event, Usage):
                self.usage = {"prompt_tokens": event.prompt_tokens,
                              "completion_tokens": self.usage.get("completion_tokens", 0) + event.completion_tokens,
                              "cached_tokens": event.cached_tokens}
            elif isinstance(event, Finish):
                self.finish_reason = event.reason
        return calls, "".join(text_parts), "".join(reasoning_parts)

    async def _run_tools(self, calls: list[ToolCall], step_text: str, step_reasoning: str) -> None:
        call_dicts = [{"id": c.id, "type": "function",
                       "function": {"name": c.name, "arguments": c.arguments}} for c in calls]
        content = f"<think>{step_reasoning}</think>\n\n{step_text}" if step_reasoning else step_text
        self.messages.append({"role": "assistant", "content": content, "tool_calls": call_dicts})
        names = ", ".join(dict.fromkeys(c.name for c in calls))
        await self._status(f"using {names}…")
        results = await self.s.tools.run_calls(calls, timeout=self.settings.tool_timeout,
                                               progress=self._status)
        for call, result in zip(calls, results):
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        assistant_parts = ([NewPart("reasoning", text=step_reasoning)] if step_reasoning else []) + \
            ([NewPart("text", text=step_text)] if step_text else []) + \
            [NewPart("tool_call", data=d) for d in call_dicts]
        result_parts = [NewPart("tool_result", text=r, data={"id": c.id, "name": c.name})
                        for c, r in zip(calls, results)]
        await self.s.store.add_tool_messages(self.conv.id, self.turn_id, assistant_parts, result_parts)
        if step_text and not self.writer.text.endswith("\n"):
            self.writer.feed("\n\n")
        await self._status(texts.THINKING)
