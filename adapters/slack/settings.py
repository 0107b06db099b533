"""Slack's settings (``SLACK_*``) and its allowlist rule."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from bot.platform import ADMITTED, Admission, Gate, PlatformSettings, id_set


class SlackSettings(PlatformSettings):
    model_config = SettingsConfigDict(
        env_prefix="SLACK_", env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    bot_token: SecretStr | None = None
    app_token: SecretStr | None = None  # Socket Mode
    signing_secret: SecretStr | None = None  # the HTTP Events API
    api_url: str = "https://slack.com/api/"
    # Streams expire after ~300 s: an answer still writing by then stops its stream and goes on
    # with chat.update in the same message.
    stream_max_age: float = Field(270.0, gt=0)
    native_streaming: bool = True
    # Allowlists (comma-separated ids; empty: everyone). Workspaces outside are ignored;
    # people or channels outside get one polite refusal.
    allowed_workspaces: str = ""
    allowed_channels: str = ""
    allowed_users: str = ""
    # Bytes; larger /slack/events bodies are refused unread (Slack's payloads are far smaller).
    max_body: int = Field(1024 * 1024, ge=64 * 1024)

    @field_validator("api_url")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") + "/"

    def configured(self) -> bool:
        return self.bot_token is not None and bool(self.bot_token.get_secret_value())

    def problems(self) -> list[str]:
        if not (self.app_token or self.signing_secret):
            return [
                "SLACK_SIGNING_SECRET: missing; the HTTP Events API needs it (or set SLACK_APP_TOKEN for Socket Mode)"
            ]
        return []

    def admits(self, workspace: str, chat: str, user: str) -> Admission:
        workspaces, channels, users = (
            id_set(self.allowed_workspaces),
            id_set(self.allowed_channels),
            id_set(self.allowed_users),
        )
        if workspaces and workspace not in workspaces:
            return Admission(Gate.SILENT, "workspace not allowlisted")
        # Direct messages are governed by the user allowlist alone.
        if channels and not chat.startswith("D") and chat not in channels:
            return Admission(Gate.CLOSED, "channel not allowlisted")
        if users and user not in users:
            return Admission(Gate.CLOSED, "user not allowlisted")
        return ADMITTED
