"""The MCP servers as a source of tools: permitted per chat, bounded per turn, confirmed by
an admin where they may change things, recorded, and their results marked as untrusted.

``McpHub.tools_for(context)`` is asked once per chat turn (``ToolRegistry.for_turn``): it
offers the tools of every connected server the chat may use, as ``<server>__<tool>``, each
bound to the turn (who asked, where, how many calls each server has had). A call:

1. counts against the server's ``max_calls_per_turn`` (over it: a tool error, recorded);
2. is written to ``tool_calls`` (arguments with secret-looking values replaced);
3. waits for an admin's approval when the tool is destructive or not marked read-only
   (``confirm`` in the config overrides per tool), see ``bot.mcp.approval``;
4. runs with the server's timeout; a timeout, a crash or a refusal is a tool error the model
   reads, never a failed turn;
5. comes back cleaned of invisible characters, capped and marked as untrusted data.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.core.kinds import Extension, PressHandler, PromptAddition
from bot.mcp.approval import PRESS_KIND, Approvals
from bot.mcp.connection import CallFailed, McpServer, RemoteTool
from bot.mcp.policy import AccessPolicy
from bot.mcp.records import NewCall, ToolRecords
from bot.mcp.redact import redacted_json
from bot.mcp.servers_config import Confirm, McpConfig, ServerConfig, load_config
from bot.mcp.untrusted import SYSTEM_NOTE, strip_hidden, wrap
from bot.store.db import Database
from bot.store.repo import ConversationRow, StoredMessage
from bot.tools.context import CallContext, Where
from bot.tools.registry import Tool, ToolError, report_step
from bot.usage.access import Admins

log = logging.getLogger(__name__)
APPROVAL_MARGIN = 5.0  # seconds a call may take beyond its own timeout and the approval wait


@dataclass
class _TurnCalls:
    """Calls each server had in one turn (the bound is per server, per turn)."""

    counts: dict[str, int] = field(default_factory=dict)


class McpHub:
    def __init__(
        self, config: McpConfig, settings: Settings, db: Database | None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self.config = config
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self.records = ToolRecords(db) if db is not None else None
        self.policy = AccessPolicy(self.records)
        self.admins = Admins(settings.admins)
        self.servers: dict[str, McpServer] = {
            s.name: McpServer(s, ping_interval=settings.mcp_ping_interval, environ=self.environ)
            for s in config.servers
            if not s.disabled
        }
        self.approvals = (
            Approvals(self.records, self.admins, settings.mcp_approval_timeout) if self.records is not None else None
        )

    @classmethod
    def from_settings(cls, settings: Settings, db: Database | None) -> McpHub:
        return cls(load_config(settings.mcp_config), settings, db)

    # --- lifecycle ---
    async def start(self, *, wait: float | None = None) -> None:
        """Connect every server in the background; with ``wait``, return once each one's first
        attempt ended or ``wait`` seconds passed (a slow server never holds up the bot)."""
        await self.policy.load()
        for server in self.servers.values():
            server.start()
        if wait:
            await asyncio.gather(*(s.wait_attempted(wait) for s in self.servers.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.servers.values()), return_exceptions=True)
        await self.policy.close()

    async def wait_ready(self, timeout: float = 30.0) -> bool:
        results = await asyncio.gather(*(s.wait_ready(timeout) for s in self.servers.values()))
        return all(results)

    def extension(self) -> Extension:
        presses: dict[str, PressHandler] = {}
        if self.approvals is not None:
            presses[PRESS_KIND] = self.approvals.on_press
        return Extension(presses=presses, prompt=(self._prompt,))

    # --- what a chat may use ---
    def permitted(self, where: Where) -> list[McpServer]:
        return [s for s in self.servers.values() if self.policy.permits(s.config, where)]

    def tools_for(self, context: CallContext) -> Sequence[Tool]:
        turn = _TurnCalls()
        tools = []
        for server in self.permitted(context.where):
            if not server.ready:
                continue
            for remote in server.tools.values():
                tools.append(self._bind(server, remote, context, turn))
        return tools

    async def _prompt(
        self, conversation: ConversationRow, kind: str, history: list[StoredMessage]
    ) -> PromptAddition | None:
        key = conversation.key
        if not self.settings.tools or not self.permitted(
            Where(key.platform, key.workspace, key.chat, conversation.shared)
        ):
            return None
        return PromptAddition(system=SYSTEM_NOTE)  # the same bytes every turn: cache-friendly

    def call_timeout(self, config: ServerConfig) -> float:
        return config.timeout or self.settings.tool_timeout

    def needs_approval(self, config: ServerConfig, remote: RemoteTool) -> tuple[bool, bool]:
        """(asks, forced): whether a call waits for an admin, and whether the config says so
        rather than the tool's own hints."""
        policy = config.confirm_for(remote.name)
        if policy is Confirm.ALWAYS:
            return True, True
        if policy is Confirm.NEVER:
            return False, False
        return remote.destructive or not remote.read_only, False

    def _bind(self, server: McpServer, remote: RemoteTool, context: CallContext, turn: _TurnCalls) -> Tool:
        config = server.config
        asks, _ = self.needs_approval(config, remote)
        description = remote.description or remote.title or remote.name
        if asks:
            description += " (Runs only after an admin approves it in the chat.)"

        async def call(**arguments: Any) -> str:
            return await self._call(server, remote, context, turn, arguments)

        limit = self.call_timeout(config) + APPROVAL_MARGIN
        if asks:
            limit += self.settings.mcp_approval_timeout
        return Tool(
            name=remote.model_name,
            description=description,
            parameters=remote.schema,
            func=call,
            timeout=limit,
            label=remote.label,
        )

    # --- one call ---
    async def _call(
        self, server: McpServer, remote: RemoteTool, context: CallContext, turn: _TurnCalls, arguments: dict[str, Any]
    ) -> str:
        config = server.config
        started = time.monotonic()
        turn.counts[server.name] = count = turn.counts.get(server.name, 0) + 1
        shown = redacted_json(arguments)
        call_id = await self._record_start(context, remote, shown)
        outcome, error = "ok", ""
        try:
            if count > config.max_calls_per_turn:
                outcome = "limit"
                raise ToolError(
                    f"this answer already made {config.max_calls_per_turn} calls to the {server.name} "
                    "server, its limit per answer; answer with what you have"
                )
            asks, forced = self.needs_approval(config, remote)
            if asks:
                await self._approve(call_id, context, remote, shown, forced)
            report_step("running")
            text, failed = await server.call(remote, arguments, self.call_timeout(config))
            if failed:
                outcome = "error"
                error = strip_hidden(text)[0][:300]
                raise ToolError(
                    f"{remote.label} reported an error: "
                    + wrap(remote.model_name, text, limit=min(config.max_result_chars, 2000))
                )
            return wrap(remote.model_name, text, limit=config.max_result_chars)
        except CallFailed as exc:
            outcome, error = exc.outcome, str(exc)
            raise
        except ToolError as exc:
            if outcome == "ok":
                outcome = "error"
            error = error or str(exc)
            raise
        except asyncio.CancelledError:
            outcome, error = "cancelled", "the answer was stopped"
            raise
        except Exception as exc:
            outcome, error = "error", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            await self._record_end(call_id, outcome, started, error)

    async def _approve(
        self, call_id: int | None, context: CallContext, remote: RemoteTool, shown: str, forced: bool
    ) -> None:
        if self.approvals is None or call_id is None:
            raise CallFailed(f"{remote.label} needs an admin's approval, which cannot be asked for here", "unavailable")
        verdict = await self.approvals.ask(call_id, context, remote, shown, forced=forced)
        if verdict.approved:
            return
        messages = {
            "denied": f"an admin denied running {remote.label}; do not try it again in this answer",
            "unanswered": f"no admin approved running {remote.label} in time, so it was not run",
            "no_admin": (
                f"{remote.label} needs an admin's approval, and no admin is in this private chat; "
                "tell the user to ask an admin"
            ),
        }
        raise CallFailed(messages.get(verdict.outcome, f"{remote.label} could not be approved here"), verdict.outcome)

    async def _record_start(self, context: CallContext, remote: RemoteTool, shown: str) -> int | None:
        if self.records is None:
            return None
        where = context.where
        try:
            return await self.records.start(
                NewCall(
                    where.platform,
                    where.workspace,
                    where.chat,
                    context.user_id,
                    context.conversation_id,
                    context.turn_id,
                    remote.server,
                    remote.name,
                    shown,
                )
            )
        except Exception:
            log.warning("mcp: recording a call failed", exc_info=True)
            return None

    async def _record_end(self, call_id: int | None, outcome: str, started: float, error: str) -> None:
        if self.records is None or call_id is None:
            return
        duration = int((time.monotonic() - started) * 1000)
        log.info("mcp: call %s ended: %s in %d ms", call_id, outcome, duration)
        try:
            await asyncio.shield(self.records.finish(call_id, outcome, duration, error))
        except Exception:
            log.warning("mcp: recording a call's end failed", exc_info=True)
