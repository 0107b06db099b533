"""One turn from prompt to stored result: the kind's producer streams the answer through
the pacing engine; the end is worked out once (``outcome``), written to the platform
with the controls the core chose, and stored."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.core import texts
from bot.core.kinds import TurnContext, TurnKindHandler
from bot.core.outcome import GONE_ERROR, Outcome, StopReason, failed, finished
from bot.core.pacing import AnswerWriter
from bot.core.turns import TurnState
from bot.platform.controls import answer_controls, streaming_controls
from bot.platform.surface import Ending, ReplySurface, Step
from bot.process import metrics
from bot.store.repo import ConversationRow, FinishedTurn, NewPart, Store
from bot.usage.meter import MeteredGateway

log = logging.getLogger(__name__)
SAVE_ATTEMPTS = 5


@dataclass
class ActiveTurn:
    """The turn a conversation is streaming right now (what Stop acts on)."""

    turn_id: int
    conversation_id: int
    task: asyncio.Task[None] | None = None  # the model call; Stop cancels it
    stopped: StopReason | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)  # written and stored
    shown: Callable[[], bool] = lambda: False  # anything of the answer (text, a tool step) is visible

    def give_way(self) -> bool:
        """Stop so the question is asked again with what joined it (a burst), but only while
        the user has seen nothing of the answer: a status line is fine to lose, text is not."""
        if self.stopped is not None or self.shown():
            return False
        self.stop(StopReason.MERGED)
        return True

    def stop(self, reason: StopReason = StopReason.USER) -> None:
        self.stopped = self.stopped or reason
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def interrupt(self) -> None:
        """End the turn now as interrupted (its text so far kept, with the marker)."""
        self.stop(StopReason.SHUTDOWN)


@dataclass(frozen=True, slots=True)
class TurnPlan:
    """What the worker decided to answer, and how."""

    conversation: ConversationRow
    surface: ReplySurface
    kind: str
    extra: dict[str, Any]
    turn_id: int
    answer_seq: int
    messages: list[dict[str, Any]]
    estimated_tokens: int
    answered_seqs: list[int]
    asker: str = ""  # the author of the newest message answered


class TurnRunner:
    def __init__(
        self,
        plan: TurnPlan,
        active: ActiveTurn,
        *,
        settings: Settings,
        store: Store,
        gateway: MeteredGateway,
        kinds: dict[str, TurnKindHandler],
    ) -> None:
        self.plan = plan
        self.active = active
        self.settings = settings
        self.store = store
        self.kinds = kinds
        self.message_id: int | None = None
        self._waiting: asyncio.Task[None] | None = None  # the "waiting for the model" status call
        self._last_checkpoint = 0.0
        self._saved_pages: list[str] = []
        self.writer = AnswerWriter(
            plan.surface,
            plan.turn_id,
            on_write=self._checkpoint,
            streaming_controls=streaming_controls(plan.turn_id),
            on_gone=lambda: active.stop(StopReason.GONE),
        )
        self.turn = TurnContext(
            turn_id=plan.turn_id,
            kind=plan.kind,
            extra=plan.extra,
            conversation=plan.conversation,
            messages=plan.messages,
            settings=settings,
            gateway=gateway,
            writer=self.writer,
            show_status=self._show_status,
            produce_as=self._produce,
            asker=plan.asker,
            draw_steps=self._draw_steps,
        )
        active.shown = lambda: self.writer.has_text or bool(self.turn.steps)

    async def run(self) -> None:
        turn, active = self.turn, self.active
        # A model slow to start (the gateway bounds the wait: BOT_ANSWER_START_TIMEOUT) is
        # said early on the status line, instead of nothing at all until the bound.
        waiting = asyncio.get_running_loop().call_later(self.settings.slow_start_status, self._say_waiting)
        try:
            active.task = asyncio.ensure_future(self._produce(turn.kind))
            if active.stopped is not None:  # stopped before it began (a burst grew the question)
                active.task.cancel()
            await active.task
            outcome = finished(turn.finish_reason)
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - the user gets an answer whatever broke
            outcome = failed(exc, turn.turn_id, has_text=bool(self.writer.text.strip()), stopped=active.stopped)
        finally:
            waiting.cancel()
            if self._waiting is not None:
                await asyncio.gather(self._waiting, return_exceptions=True)
            active.task = None
            turn.end_steps()
            await turn.status("")  # cleared beside the final write, not before it
        if active.stopped is StopReason.MERGED:
            await self._set_aside()
            await turn.status_settled()
            return
        await self._finish(outcome)
        await turn.status_settled()

    def _say_waiting(self) -> None:
        turn = self.turn
        if turn.ttft is None and not turn.reasoning and not turn.status_shown and self.active.task is not None:
            self._waiting = asyncio.ensure_future(turn.status(texts.WAITING_FOR_MODEL))

    async def _produce(self, kind: str) -> None:
        self.turn.kind = kind
        await self.kinds[kind].produce(self.turn)

    async def _show_status(self, text: str) -> None:
        try:
            await self.plan.surface.set_status(text)
        except Exception:
            log.warning("turn %s: set_status failed", self.plan.turn_id, exc_info=True)

    async def _draw_steps(self, steps: Sequence[Step]) -> bool:
        try:
            return await self.plan.surface.show_steps(self.plan.turn_id, steps)
        except Exception:
            log.warning("turn %s: show_steps failed", self.plan.turn_id, exc_info=True)
            return False

    async def _checkpoint(self, text: str, pages: list[str]) -> None:
        """Save the answer: created at its first write, then at most once per interval.

        A database hiccup must never hold up or repeat what the user sees: it is logged and
        the next write tries again (the final save retries on its own)."""
        plan = self.plan
        now = time.monotonic()
        if not self._saved_pages and self.message_id is None:  # the first write that shows text
            metrics.answer_shown(self.turn.started, self.turn.ttft)
        try:
            if self.message_id is None:
                self.message_id = await self.store.open_answer(
                    plan.conversation.id, plan.turn_id, plan.answer_seq, text, pages
                )
                self._last_checkpoint, self._saved_pages = now, pages
            elif now - self._last_checkpoint >= self.settings.checkpoint_interval:
                self._last_checkpoint = now
                await self.store.checkpoint(
                    plan.turn_id, self.message_id, text, pages if pages != self._saved_pages else None
                )
                self._saved_pages = pages
        except Exception:
            log.warning("turn %s: checkpoint failed; will retry at the next write", plan.turn_id, exc_info=True)

    async def _finish(self, outcome: Outcome) -> None:
        turn, plan = self.turn, self.plan
        if self.writer.gone and outcome.state is TurnState.DONE:  # written to a chat that went away
            outcome = Outcome(TurnState.INTERRUPTED, error=GONE_ERROR)
        text = self.writer.text.strip()
        notice_only = outcome.notice_only
        if notice_only:
            final = outcome.marker
        elif not text and outcome.state is TurnState.DONE:
            final, notice_only = texts.EMPTY_ANSWER, True
        else:
            final = f"{text}\n\n{outcome.marker}" if outcome.marker and text else (text or outcome.marker)
        reasoning = "".join(turn.reasoning)
        usage = turn.usage
        metrics.turn_finished(
            outcome.state.value,
            ttft=turn.ttft,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
        )
        # The kind's own rows (a copy answer's refinements) only on an answer that ended well.
        own = tuple(turn.controls) if outcome.state is TurnState.DONE else ()
        controls = () if notice_only else (*own, *answer_controls(plan.turn_id))
        pages = await self.writer.finish(
            final,
            reasoning=reasoning if self.settings.show_reasoning else "",
            notice=notice_only,
            controls=controls,
            ending=_ending(outcome.state, notice_only),
        )
        parts = ([NewPart("reasoning", text=reasoning)] if reasoning else []) + turn.parts
        await self._save(
            FinishedTurn(
                turn_id=plan.turn_id,
                conversation_id=plan.conversation.id,
                message_id=self.message_id,
                seq=plan.answer_seq,
                text="" if notice_only else final,
                extra_parts=parts,
                pages=pages,
                state=outcome.state,
                finish_reason=turn.finish_reason,
                usage=turn.usage,
                ttft_ms=int(turn.ttft * 1000) if turn.ttft is not None else None,
                duration_ms=int((time.monotonic() - turn.started) * 1000),
                error=outcome.error,
                answered_seqs=plan.answered_seqs,
                token_ratio=self._token_ratio(),
            )
        )

    async def _set_aside(self) -> None:
        """A turn stopped for a merge wrote nothing: it is stored as stopped with no answer,
        its question stays waiting (answered again, with what joined it), its usage kept."""
        plan, turn = self.plan, self.turn
        await self._save(
            FinishedTurn(
                turn_id=plan.turn_id,
                conversation_id=plan.conversation.id,
                message_id=None,
                seq=plan.answer_seq,
                text="",
                extra_parts=[],
                pages=[],
                state=TurnState.STOPPED,
                finish_reason=None,
                usage=turn.usage,
                ttft_ms=None,
                duration_ms=int((time.monotonic() - turn.started) * 1000),
                error="set aside: the question grew before any answer showed",
                answered_seqs=[],
                token_ratio=None,
            )
        )

    def _token_ratio(self) -> float | None:
        """The conversation's usage/estimate ratio, kept conservative: it follows usage up
        quickly and down slowly; None when it did not move enough to be worth a write."""
        prompt, estimated = self.turn.usage.prompt_tokens, self.plan.estimated_tokens
        if not prompt or not estimated:
            return None
        current = self.plan.conversation.token_ratio
        observed = prompt / estimated
        ratio = max(observed, current * 0.9 + observed * 0.1)
        return None if abs(ratio - current) < 0.02 * current else ratio

    async def _save(self, done: FinishedTurn) -> None:
        """The final save, retried: the user has the whole answer, so must the history."""
        for attempt in range(SAVE_ATTEMPTS):
            try:
                await self.store.finish_answer(done)
                return
            except Exception:
                if attempt == SAVE_ATTEMPTS - 1:
                    raise
                log.warning("turn %s: saving the answer failed, retrying", done.turn_id, exc_info=True)
                await asyncio.sleep(0.2 * 2**attempt)


def _ending(state: TurnState, notice_only: bool) -> Ending:
    """What the surface is told of the turn's end (an empty answer is no answer)."""
    if state is TurnState.DONE and not notice_only:
        return Ending.ANSWERED
    return Ending.STOPPED if state is TurnState.STOPPED else Ending.FAILED
