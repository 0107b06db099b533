"""Telegram's settings (``TELEGRAM_*``) and its allowlist rule."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from bot.platform import ADMITTED, Admission, Gate, PlatformSettings, id_set

MIN_WEBHOOK_SECRET = 16


class TelegramSettings(PlatformSettings):
    model_config = SettingsConfigDict(
        env_prefix="TELEGRAM_", env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    bot_token: SecretStr | None = None
    api_url: str = "https://api.telegram.org"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    # Chat or user ids (comma-separated) the bot answers; empty: everyone.
    allowed_chats: str = ""
    album_window: float = Field(1.0, ge=0)  # seconds to wait for an album's other items
    private_edit_interval: float = Field(1.1, ge=0)
    group_edit_interval: float = Field(3.1, ge=0)
    drafts: bool = True  # stream with sendMessageDraft in private chats
    poll_timeout: float = Field(10.0, gt=0, le=50)  # seconds a getUpdates long poll waits

    @field_validator("api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _secret_token_chars(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        # Telegram accepts 1 character, but the operator invents this secret: a short one can
        # be guessed by anyone who finds the webhook URL, and a log filter cannot mask a
        # two-letter string without garbling every line. So a floor here, one clear line.
        if value is not None and len(value.get_secret_value()) < MIN_WEBHOOK_SECRET:
            raise ValueError(
                f"must be at least {MIN_WEBHOOK_SECRET} characters; generate one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    def configured(self) -> bool:
        return self.bot_token is not None and bool(self.bot_token.get_secret_value())

    def problems(self) -> list[str]:
        if self.webhook_url and not self.webhook_secret:
            return ["TELEGRAM_WEBHOOK_SECRET: missing; webhook mode needs a secret token"]
        return []

    @property
    def allowed(self) -> set[str]:
        return id_set(self.allowed_chats)

    def admits(self, workspace: str, chat: str, user: str) -> Admission:
        """An allowlisted chat, or an allowlisted user anywhere."""
        allowed = self.allowed
        if allowed and chat not in allowed and user not in allowed:
            return Admission(Gate.CLOSED, "chat not allowlisted")
        return ADMITTED
