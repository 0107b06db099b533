"""``bot mcp list``: each configured server, whether it connects, and its tools as the model
sees them (with whether a call asks an admin first, and which chats may use the server)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.config import Settings
from bot.mcp.connection import McpServer
from bot.mcp.servers_config import ServerConfig, load_config


def _chats(config: ServerConfig) -> str:
    allow = config.allow
    platforms = ", ".join(allow.platforms) if allow.platforms is not None else "every platform"
    groups = (
        "all groups" if allow.groups is True else (f"groups {', '.join(allow.groups)}" if allow.groups else "no groups")
    )
    private = "private chats" if allow.private else "no private chats"
    return f"{platforms}; {private}, {groups}"


async def list_servers(settings: Settings) -> list[dict[str, Any]]:
    config = load_config(settings.mcp_config)
    servers = [McpServer(s, ping_interval=3600) for s in config.servers if not s.disabled]
    for server in servers:
        server.start()
    try:
        await asyncio.gather(*(s.wait_attempted(s.config.connect_timeout + 5) for s in servers))
    finally:
        await asyncio.gather(*(s.stop_listing() for s in servers))
    by_name = {s.name: s for s in servers}
    report = []
    for entry in config.servers:
        live = by_name.get(entry.name)
        tools = []
        if live is not None:
            for tool in sorted(live.tools.values(), key=lambda t: t.model_name):
                policy = entry.confirm_for(tool.name).value
                asks = policy == "always" or (policy == "auto" and not tool.read_only)
                tools.append(
                    {
                        "name": tool.model_name,
                        "server_name": tool.name,
                        "read_only": tool.read_only,
                        "destructive": tool.destructive,
                        "asks_admin": asks,
                        "description": tool.description[:200],
                    }
                )
        report.append(
            {
                "server": entry.name,
                "transport": entry.transport,
                "disabled": entry.disabled,
                "state": "disabled" if live is None else live.state.value,
                "error": live.error if live is not None else "",
                "chats": _chats(entry),
                "tools": tools,
                "left_out": live.hidden_tools if live is not None else [],
            }
        )
    return report


def render(report: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False, indent=2) + "\n"
    lines = []
    for server in report:
        head = f"{server['server']} ({server['transport']}): {server['state']}"
        if server["error"]:
            head += f" — {server['error']}"
        lines += [head, f"  used in: {server['chats']}"]
        for tool in server["tools"]:
            kind = "read-only" if tool["read_only"] else ("destructive" if tool["destructive"] else "may write")
            ask = ", asks an admin" if tool["asks_admin"] else ""
            lines.append(f"  {tool['name']}  [{kind}{ask}]  {tool['description'][:70]}")
        if server["left_out"]:
            lines.append(f"  left out by include/exclude: {', '.join(server['left_out'])}")
        lines.append("")
    return "\n".join(lines)
