"""An admin's one-tap approval in the chat before a tool that may change things runs.

The bot posts the request with Approve and Deny (a press of kind ``mcp``: the call's id and
the answer, well under 64 bytes) where the turn answers. Only admins (``BOT_ADMINS``) may
answer; anyone else's tap is told so and changes nothing. No answer within
``BOT_MCP_APPROVAL_TIMEOUT`` (2 minutes) denies. The decision is written once on the call's
row in ``tool_calls``, so a tap that reaches another process counts too: the waiting turn
is woken at once in its own process and otherwise sees the row within ``poll`` seconds.

In a private chat whose user is not an admin nobody could answer, so the call is refused at
once instead of after two minutes; the model is told an admin must ask (or allow the tool
without approval in the config).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Literal

from bot.core.kinds import Core
from bot.mcp.connection import RemoteTool
from bot.mcp.records import ToolRecords
from bot.platform.controls import Action, Button, Press
from bot.platform.inbox import Ack
from bot.platform.surface import MessageRef, ReplySurface, Write
from bot.tools.context import CallContext
from bot.tools.registry import report_step
from bot.usage.access import Admins

log = logging.getLogger(__name__)

PRESS_KIND = "mcp"
APPROVE, DENY = "y", "n"
Outcome = Literal["approved", "denied", "unanswered", "no_admin", "unavailable"]


@dataclass(frozen=True, slots=True)
class ApprovalVerdict:
    outcome: Outcome
    by: str = ""

    @property
    def approved(self) -> bool:
        return self.outcome == "approved"


def _duration(seconds: float) -> str:
    if seconds >= 90:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:g} seconds"


def _why(tool: RemoteTool, forced: bool) -> str:
    if forced:
        return "The operator asks for approval of this tool."
    if tool.destructive:
        return "The server says this tool can change or delete data."
    return "The server does not mark this tool as read-only."


class Approvals:
    def __init__(self, records: ToolRecords, admins: Admins, timeout: float, *, poll: float = 1.0) -> None:
        self.records = records
        self.admins = admins
        self.timeout = timeout
        self.poll = poll
        self._events: dict[int, asyncio.Event] = {}

    async def ask(
        self, call_id: int, context: CallContext, tool: RemoteTool, shown_arguments: str, *, forced: bool = False
    ) -> ApprovalVerdict:
        where = context.where
        surface = context.surface
        if surface is None:
            return ApprovalVerdict("unavailable")
        if not where.group and (where.platform, context.user_id) not in self.admins:
            return ApprovalVerdict("no_admin")
        report_step("pending", "waiting for an admin's approval")
        event = self._events[call_id] = asyncio.Event()
        text = (
            f"🔐 **Approval needed**: the assistant wants to run **{tool.label}** with\n"
            f"`{shown_arguments}`\n{_why(tool, forced)} An admin can approve or deny; "
            f"with no answer in {_duration(self.timeout)} it is not run."
        )
        buttons = (
            (
                Button("✅ Approve", Press(PRESS_KIND, context.turn_id, (str(call_id), APPROVE)), "primary"),
                Button("✖ Deny", Press(PRESS_KIND, context.turn_id, (str(call_id), DENY)), "danger"),
            ),
        )
        ref: MessageRef | None = None
        try:
            ref = await surface.post(text, Write(0, final=True, notice=True, controls=buttons))
            verdict = await self._wait(call_id, event)
        except Exception:
            log.exception("mcp: asking for an approval failed")
            verdict = ApprovalVerdict("unavailable")
        finally:
            self._events.pop(call_id, None)
        if ref is not None:
            await self._settle(surface, ref, text, verdict)
        return verdict

    async def _wait(self, call_id: int, event: asyncio.Event) -> ApprovalVerdict:
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(self.poll, left))
            decision, by = await self.records.decision(call_id)
            if decision is not None:
                return ApprovalVerdict("approved" if decision == "approved" else "denied", by)
        if await self.records.close_undecided(call_id, "expired"):
            return ApprovalVerdict("unanswered")
        decision, by = await self.records.decision(call_id)  # a tap landed at the last moment
        return ApprovalVerdict("approved" if decision == "approved" else "denied", by)

    async def _settle(self, surface: ReplySurface, ref: MessageRef, text: str, verdict: ApprovalVerdict) -> None:
        """The request's message shows how it ended, without its buttons."""
        ending = {
            "approved": f"✅ Approved by {verdict.by}.",
            "denied": f"✖ Denied by {verdict.by}.",
            "unanswered": f"⌛ No answer in {_duration(self.timeout)}: not run.",
        }.get(verdict.outcome, "Not run.")
        try:
            await surface.edit(ref, f"{text}\n\n{ending}", Write(0, final=True, notice=True))
        except Exception:  # cosmetic: the call goes on either way
            log.warning("mcp: could not update the approval message", exc_info=True)

    async def on_press(self, action: Action, surface: ReplySurface, core: Core) -> str | Ack | None:
        """A tap on Approve or Deny: the toast text for the person who tapped (None: not ours)."""
        press = action.press
        if len(press.args) != 2 or not press.args[0].isdigit() or press.args[1] not in (APPROVE, DENY):
            return None
        key, user = action.key, action.user
        if (key.platform, user.id) not in self.admins:
            return Ack("Only an admin of this assistant can approve or deny tools.", personal=True)
        call_id = int(press.args[0])
        decision = "approved" if press.args[1] == APPROVE else "denied"
        by = user.name or user.id
        if not await self.records.decide(call_id, press.turn_id, decision, by):
            return Ack("This request was already answered.", personal=True)
        event = self._events.get(call_id)
        if event is not None:
            event.set()
        log.info("mcp: call %s %s by %s:%s", call_id, decision, key.platform, user.id)
        return "Approved: running it." if decision == "approved" else "Denied: it will not run."
