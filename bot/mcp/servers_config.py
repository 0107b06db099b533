"""``BOT_MCP_CONFIG``: the MCP servers the bot connects to, in the common ``mcpServers`` shape.

    {"mcpServers": {
      "cms": {"command": "cms-mcp", "args": ["--stdio"], "env": {"CMS_TOKEN": "${CMS_TOKEN}"},
              "include": ["search_*", "get_*"], "exclude": ["*_delete"], "timeout": 20,
              "allow": {"platforms": ["slack"], "groups": ["C0MARKETING"], "private": true},
              "confirm": {"publish_*": "always", "get_*": "never"}},
      "analytics": {"url": "https://analytics.example/mcp", "headers": {"Authorization": "Bearer ${AN_TOKEN}"}}
    }}

``command``/``args``/``env``/``cwd`` start a stdio server; ``url``/``headers`` reach a
streamable-HTTP one. ``${NAME}`` in ``env`` and ``headers`` values is taken from the bot's
environment (so the file needs no secrets), and those values are masked in logs. Unknown
keys are refused — a misspelt ``exclude`` must not silently let every tool through — except
the few that other clients write (``type``, ``disabled``, ``description``, ``autoApprove``…).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SERVER_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Confirm(StrEnum):
    """Whether a tool runs only after an admin's approval in the chat."""

    AUTO = "auto"  # by the tool's own hints: destructive, or not marked read-only, asks
    ALWAYS = "always"
    NEVER = "never"


class Allow(BaseModel):
    """Which chats may use a server (the config's default; the admin page's rules win).

    ``None`` means any platform or workspace. Groups are off unless ``groups`` is true (every
    group) or lists the group and channel ids; private chats are on unless ``private`` is false."""

    model_config = ConfigDict(extra="forbid")

    platforms: list[str] | None = None
    workspaces: list[str] | None = None
    groups: bool | list[str] = False
    private: bool = True


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = ""
    # stdio
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    # streamable HTTP
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # ours
    include: list[str] = Field(default_factory=list)  # tool-name globs; empty: every tool
    exclude: list[str] = Field(default_factory=list)
    timeout: float | None = Field(None, gt=0)  # seconds per call; default BOT_TOOL_TIMEOUT
    connect_timeout: float = Field(20.0, gt=0, alias="connectTimeout")
    max_calls_per_turn: int = Field(8, ge=1, alias="maxCallsPerTurn")
    max_result_chars: int = Field(8000, ge=200, le=100_000, alias="maxResultChars")
    allow: Allow = Field(default_factory=Allow)
    confirm: dict[str, Confirm] = Field(default_factory=dict)  # tool-name glob → policy; first match wins
    disabled: bool = False
    # What other clients write in the same file; accepted and ignored.
    type: Literal["stdio", "http", "streamable-http", "streamable_http", "streamableHttp"] | None = None
    description: str = ""
    auto_approve: list[str] | None = Field(None, alias="autoApprove")
    always_allow: list[str] | None = Field(None, alias="alwaysAllow")

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("give either command (a stdio server) or url (a streamable-HTTP server)")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return self

    @field_validator("include", "exclude")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        return [g.strip() for g in value if g.strip()]

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command else "http"

    def offers(self, tool: str) -> bool:
        """Whether the include/exclude globs let ``tool`` (the server's own name) through."""
        if self.include and not any(fnmatchcase(tool, g) for g in self.include):
            return False
        return not any(fnmatchcase(tool, g) for g in self.exclude)

    def confirm_for(self, tool: str) -> Confirm:
        for glob, policy in self.confirm.items():
            if fnmatchcase(tool, glob):
                return policy
        return Confirm.AUTO

    def admits(self, platform: str, workspace: str, chat: str, group: bool) -> bool:
        """The config's own verdict for a chat (before the admin page's rules)."""
        allow = self.allow
        if allow.platforms is not None and platform not in allow.platforms:
            return False
        if allow.workspaces is not None and workspace not in allow.workspaces:
            return False
        if group:
            return allow.groups is True or (isinstance(allow.groups, list) and chat in allow.groups)
        return allow.private

    def resolved_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        return {k: expand(v, environ) for k, v in self.env.items()}

    def resolved_headers(self, environ: Mapping[str, str]) -> dict[str, str]:
        return {k: expand(v, environ) for k, v in self.headers.items()}

    def secrets(self, environ: Mapping[str, str]) -> list[str]:
        """Values to mask in logs: every env and header value (tokens live there)."""
        values = [*self.resolved_env(environ).values(), *self.resolved_headers(environ).values()]
        secrets = []
        for value in values:
            secrets.append(value)
            if value.lower().startswith(("bearer ", "basic ", "token ")):
                secrets.append(value.split(" ", 1)[1])
        return [s for s in secrets if len(s) >= 6]


def expand(value: str, environ: Mapping[str, str]) -> str:
    """``${NAME}`` → the bot's environment variable NAME ("" when unset)."""
    return _VARIABLE.sub(lambda m: environ.get(m.group(1), ""), value)


@dataclass(frozen=True, slots=True)
class McpConfig:
    servers: tuple[ServerConfig, ...]
    path: str = ""

    def get(self, name: str) -> ServerConfig | None:
        return next((s for s in self.servers if s.name == name), None)

    def secrets(self, environ: Mapping[str, str] | None = None) -> list[str]:
        env = os.environ if environ is None else environ
        return [s for server in self.servers for s in server.secrets(env)]


class ConfigError(ValueError):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def parse_config(data: Any, path: str = "") -> McpConfig:
    """The servers of a decoded ``mcpServers`` document; ``ConfigError`` lists every problem."""
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise ConfigError(['the file must hold an object with "mcpServers": {name: server, …}'])
    problems: list[str] = []
    servers: list[ServerConfig] = []
    for name, entry in data["mcpServers"].items():
        if not SERVER_NAME.fullmatch(name):
            problems.append(f"server {name!r}: names are 1-32 letters, digits, _ or - (they prefix tool names)")
            continue
        if "__" in name:
            problems.append(f"server {name!r}: a name must not contain '__' (it separates server and tool)")
            continue
        if not isinstance(entry, dict):
            problems.append(f"server {name!r}: must be an object")
            continue
        try:
            servers.append(ServerConfig.model_validate({**entry, "name": name}))
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "entry"
                problems.append(f"server {name!r}: {where}: {err['msg'].removeprefix('Value error, ')}")
    if problems:
        raise ConfigError(problems)
    return McpConfig(tuple(servers), path)


def load_config(path: str | Path) -> McpConfig:
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {file}: {exc.strerror or exc}"]) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError([f"{file} is not valid JSON: {exc}"]) from None
    return parse_config(data, str(file))
