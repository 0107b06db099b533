"""The core's own kind of turn: a plain chat answer, with tool rounds when tools are on."""

from __future__ import annotations

from typing import Any

from bot.core import texts
from bot.core.kinds import TurnContext
from bot.core.turns import TurnKind
from bot.gateway.events import ChatRequest, Finish, ReasoningDelta, TextDelta, ToolCall, Usage
from bot.store.repo import ConversationRow, NewPart, Store
from bot.tools.context import CallContext, Where
from bot.tools.registry import ToolRegistry


class ChatKind:
    kind = TurnKind.CHAT

    def __init__(self, store: Store, tools: ToolRegistry | None) -> None:
        self.store = store
        self.tools = tools  # None: tools are off

    def takes_plain_messages(self, conversation: ConversationRow) -> bool:
        return True

    def system_addition(self, conversation: ConversationRow) -> str:
        return ""

    async def produce(self, turn: TurnContext) -> None:
        settings = turn.settings
        registry = None
        if self.tools is not None and settings.tools:
            # Tools from outside (MCP servers) depend on who asks and where: bound per turn.
            registry = self.tools.for_turn(self.call_context(turn))
        tools = registry.definitions() if registry is not None else None
        for step in range(settings.tool_chain_limit + 1):
            calls, step_text, step_reasoning = await self._stream_once(
                turn, tools if step < settings.tool_chain_limit else None
            )
            if not calls:
                return
            await self._run_tools(turn, registry, calls, step_text, step_reasoning)

    @staticmethod
    def call_context(turn: TurnContext) -> CallContext:
        conv = turn.conversation
        key = conv.key
        return CallContext(
            Where(key.platform, key.workspace, key.chat, conv.shared),
            turn.asker,
            conv.id,
            turn.turn_id,
            turn.writer.surface,
        )

    async def _stream_once(
        self, turn: TurnContext, tools: list[dict[str, Any]] | None
    ) -> tuple[list[ToolCall], str, str]:
        """One model call. Returns its tool calls and, for them, its text and reasoning."""
        calls: list[ToolCall] = []
        text_parts: list[str] = []
        reasoning_parts: list[str] = []
        writer = turn.writer
        async for event in turn.gateway.stream(ChatRequest(messages=turn.messages, tools=tools or None)):
            if isinstance(event, TextDelta):
                turn.first_text()
                if turn.status_shown:
                    await turn.status("")
                if not text_parts and not writer.has_text and not event.text.strip():
                    continue
                _keep(text_parts, event.text)
                writer.feed(event.text)
            elif isinstance(event, ReasoningDelta):
                _keep(reasoning_parts, event.text)
                _keep(turn.reasoning, event.text)
                if not text_parts and not turn.status_shown:
                    await turn.status(texts.THINKING)
            elif isinstance(event, ToolCall):
                calls.append(event)
            elif isinstance(event, Usage):
                turn.usage.add(event.prompt_tokens, event.completion_tokens, event.cached_tokens)
            elif isinstance(event, Finish):
                turn.finish_reason = event.reason
        return calls, "".join(text_parts), "".join(reasoning_parts)

    async def _run_tools(
        self, turn: TurnContext, registry: Any, calls: list[ToolCall], step_text: str, step_reasoning: str
    ) -> None:
        call_dicts = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
        ]
        # MiniMax wants the whole assistant message back, reasoning included (interleaved thinking).
        content = f"<think>{step_reasoning}</think>\n\n{step_text}" if step_reasoning else step_text
        turn.messages.append({"role": "assistant", "content": content, "tool_calls": call_dicts})
        # Each call is shown while it runs and when it ends or fails (the surface's steps,
        # or the status line); after the round the steps stay until the answer's text comes.
        results = await registry.run_calls(calls, timeout=turn.settings.tool_timeout, steps=turn.show_steps)
        for call, result in zip(calls, results):
            turn.messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        assistant_parts = (
            ([NewPart("reasoning", text=step_reasoning)] if step_reasoning else [])
            + ([NewPart("text", text=step_text)] if step_text else [])
            + [NewPart("tool_call", data=d) for d in call_dicts]
        )
        result_parts = [
            NewPart("tool_result", text=r, data={"id": c.id, "name": c.name}) for c, r in zip(calls, results)
        ]
        await self.store.add_tool_messages(turn.conversation.id, turn.turn_id, assistant_parts, result_parts)
        if step_text and not turn.writer.text.endswith("\n"):
            turn.writer.feed("\n\n")


KEEP_JOINED = 64  # pieces: then joined into one


def _keep(parts: list[str], text: str) -> None:
    """Append a streamed piece, joining the list into one string every ``KEEP_JOINED``. A
    piece is a token or so: kept one by one, an answer's pieces cost ~15 times its text
    (a str object each), ~60 KB per streaming 800-token answer."""
    parts.append(text)
    if len(parts) >= KEEP_JOINED:
        parts[:] = ["".join(parts)]
