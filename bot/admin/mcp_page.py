"""The admin page's "Tools" section (issue 19): each MCP server with its state and tools,
which chats may use it (rules set here beat the config file), and every call recorded.

Registered by ``bot.admin.site.AdminPage.routes``; reads the live servers from the running
``McpHub`` when the page runs in the bot's process, else the config file alone.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.admin.auth import Session
from bot.mcp.policy import ANY, GROUPS, PRIVATE
from bot.mcp.records import ServerRule, ToolRecords
from bot.mcp.servers_config import ServerConfig, load_config
from bot.store.models import utcnow

if TYPE_CHECKING:
    from bot.mcp.hub import McpHub

log = logging.getLogger(__name__)
PATH = "/tools"


def _allow_text(config: ServerConfig) -> str:
    allow = config.allow
    where = "any platform" if allow.platforms is None else ", ".join(allow.platforms)
    if allow.workspaces is not None:
        where += f" (workspaces {', '.join(allow.workspaces)})"
    groups = (
        "every group"
        if allow.groups is True
        else (f"groups {', '.join(allow.groups)}" if allow.groups else "no groups")
    )
    return f"{where}: {'private chats' if allow.private else 'no private chats'}, {groups}"


class McpPage:
    def __init__(self, page: Any, hub: McpHub | None, prefix: str) -> None:
        self.page = page  # bot.admin.site.AdminPage: its login wrapper, settings, database, templates
        self.hub = hub
        self.prefix = prefix
        self.records = ToolRecords(page.db)

    def routes(self) -> list[Route]:
        return [
            Route(PATH, self.page.page(self.show), name="tools"),
            Route(PATH + "/rules", self.page.page(self.set_rule), methods=["POST"]),
        ]

    def _servers(self) -> list[dict[str, Any]]:
        settings = self.page.settings
        if self.hub is not None:
            configs = list(self.hub.config.servers)
        elif settings.mcp_config:
            try:
                configs = list(load_config(settings.mcp_config).servers)
            except ValueError:
                configs = []
        else:
            configs = []
        out = []
        for config in configs:
            hub = self.hub
            live = hub.servers.get(config.name) if hub is not None else None
            tools = []
            if hub is not None and live is not None:
                for tool in sorted(live.tools.values(), key=lambda t: t.model_name):
                    asks, _ = hub.needs_approval(config, tool)
                    tools.append(
                        dict(
                            name=tool.model_name,
                            title=tool.title,
                            read_only=tool.read_only,
                            destructive=tool.destructive,
                            asks=asks,
                            description=tool.description[:160],
                        )
                    )
            out.append(
                dict(
                    name=config.name,
                    transport=config.transport,
                    disabled=config.disabled,
                    state="disabled" if config.disabled else (live.state.value if live else "unknown"),
                    error=live.error if live else "",
                    tools=tools,
                    allow=_allow_text(config),
                    left_out=live.hidden_tools if live else [],
                    timeout=config.timeout or settings.tool_timeout,
                    max_calls=config.max_calls_per_turn,
                    restarts=max(0, live.connects - 1) if live else 0,
                )
            )
        return out

    async def show(self, request: Request, session: Session) -> Response:
        q = request.query_params
        server, outcome = q.get("server", "").strip(), q.get("outcome", "").strip()
        calls = await self.records.recent(200, server=server, outcome=outcome)
        week = await self.records.outcomes(utcnow() - timedelta(days=7))
        totals: dict[str, dict[str, int]] = {}
        for (name, result), count in week.items():
            totals.setdefault(name, {})[result] = count
        return self.page.render(
            request,
            "tools.html",
            csrf=session.csrf,
            nav="tools",
            servers=self._servers(),
            rules=await self.records.rules(),
            calls=calls,
            totals=totals,
            q={"server": server, "outcome": outcome},
            notice=q.get("notice", ""),
            approval_minutes=self.page.settings.mcp_approval_timeout / 60,
        )

    async def set_rule(self, request: Request, session: Session) -> Response:
        form: FormData = request.state.form
        server = str(form.get("server", "")).strip() or ANY
        platform = str(form.get("platform", "")).strip() or ANY
        workspace = str(form.get("workspace", "")).strip() or ANY
        chat = str(form.get("chat", "")).strip() or ANY
        kind = str(form.get("chat_kind", "")).strip()
        if kind in (GROUPS, PRIVATE):
            chat = kind
        known = {s["name"] for s in self._servers()}
        if server != ANY and known and server not in known:
            return self._back(f"There is no server named {server!r}.")
        action = str(form.get("action", "allow"))
        if action == "remove":
            await self.records.remove_rule(server, platform, workspace, chat)
            text = f"Rule for {server} in {platform}/{workspace}/{chat} removed."
        elif action in ("allow", "deny"):
            await self.records.set_rule(ServerRule(server, platform, workspace, chat, action == "allow", "admin page"))
            text = f"{server} is {'allowed' if action == 'allow' else 'off'} in {platform}/{workspace}/{chat}."
        else:
            return self._back("Choose allow, deny or remove.")
        if self.hub is not None:
            await self.hub.policy.load()  # this process applies it at once; others within seconds
        log.info("admin: MCP access rule %s: %s %s/%s/%s", action, server, platform, workspace, chat)
        return self._back(text)

    def _back(self, notice: str) -> Response:
        return RedirectResponse(f"{self.prefix}{PATH}?{urlencode({'notice': notice})}", status_code=303)
