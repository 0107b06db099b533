"""Which chats may use which MCP server: the admin page's rules, then the config file.

The most specific matching rule of the admin page decides (a chat's own id, then every group
or every private chat, then anything; within that a workspace, then a platform, then a named
server over ``*``). With no rule, the server's ``allow`` entry decides — by default a server
is on in private chats and off in groups. Rules are kept in memory and re-read in the
background once they are ``TTL`` seconds old, so offering tools costs no query per turn; a
change made on this process's admin page applies at once, another process's within ``TTL``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot.mcp.records import ServerRule, ToolRecords
from bot.mcp.servers_config import ServerConfig
from bot.tools.context import Where

log = logging.getLogger(__name__)
TTL = 5.0
GROUPS, PRIVATE, ANY = "@groups", "@private", "*"


def _matches(rule: ServerRule, server: str, where: Where) -> bool:
    if rule.server not in (ANY, server) or rule.platform not in (ANY, where.platform):
        return False
    if rule.workspace not in (ANY, where.workspace):
        return False
    if rule.chat == ANY or rule.chat == where.chat:
        return True
    return rule.chat == (GROUPS if where.group else PRIVATE)


def _specificity(rule: ServerRule) -> tuple[int, int, int, int]:
    chat = 0 if rule.chat == ANY else 1 if rule.chat in (GROUPS, PRIVATE) else 2
    return (chat, rule.workspace != ANY, rule.platform != ANY, rule.server != ANY)


def decide(rules: list[ServerRule], config: ServerConfig, where: Where) -> tuple[bool, str]:
    """Whether ``config``'s server may be used in ``where``, and what decided it."""
    matching = [r for r in rules if _matches(r, config.name, where)]
    if matching:
        rule = max(matching, key=_specificity)
        return rule.allowed, f"admin rule {rule.platform}/{rule.workspace}/{rule.chat}"
    return config.admits(where.platform, where.workspace, where.chat, where.group), "config"


class AccessPolicy:
    def __init__(self, records: ToolRecords | None) -> None:
        self.records = records
        self._rules: list[ServerRule] = []
        self._loaded = 0.0
        self._refresh: asyncio.Task | None = None

    async def load(self) -> None:
        if self.records is None:
            return
        try:
            self._rules = await self.records.rules()
            self._loaded = time.monotonic()
        except Exception:
            log.warning("mcp: reading the access rules failed; keeping the last ones", exc_info=True)

    @property
    def rules(self) -> list[ServerRule]:
        if (
            self.records is not None
            and time.monotonic() - self._loaded > TTL
            and (self._refresh is None or self._refresh.done())
        ):
            self._refresh = asyncio.get_running_loop().create_task(self.load())
        return self._rules

    def permits(self, config: ServerConfig, where: Where) -> bool:
        return decide(self.rules, config, where)[0]

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)
