"""Feishu / Lark settings (``FEISHU_*``) and its allowlist rule.

Nothing here imports lark-oapi: the plug-in reads these settings in every ``bot run``,
and the SDK (seconds to import, ~160 MB) is loaded only when Feishu is configured.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from bot.platform import ADMITTED, Admission, Gate, PlatformSettings, id_set

DOMAINS = {"feishu": "https://open.feishu.cn", "lark": "https://open.larksuite.com"}


class FeishuSettings(PlatformSettings):
    model_config = SettingsConfigDict(
        env_prefix="FEISHU_", env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    app_id: str = ""  # cli_…: a self-built app with the bot capability
    app_secret: SecretStr | None = None
    # "feishu" (open.feishu.cn, China), "lark" (open.larksuite.com, elsewhere), or a base URL.
    domain: str = "feishu"
    # The long connection needs no public URL; "webhook" takes events at /feishu/events.
    connection: Literal["websocket", "webhook"] = "websocket"
    verification_token: SecretStr | None = None  # the console's Verification Token (webhook)
    encrypt_key: SecretStr | None = None  # the console's Encrypt Key: bodies encrypted and signed
    # Allowlists (comma-separated; empty: everyone). Another tenant is ignored without a word;
    # with chats or users listed, whoever is in neither list gets one polite refusal a day.
    allowed_tenants: str = ""  # tenant keys
    allowed_chats: str = ""  # oc_… chat ids: everyone in them is served
    allowed_users: str = ""  # ou_… open ids: served in any chat, private chats included
    # Group messages that @ the bot in the main chat are answered there, quoting the question;
    # with FEISHU_GROUP_THREADS each opens a thread (话题) of its own instead.
    group_threads: bool = False
    # Answers stream into CardKit cards; off (or refused by Feishu): a card message patched in place.
    cardkit: bool = True
    stream_interval: float = Field(0.7, gt=0)  # seconds between two pushes to one streaming card
    # A card holds at most this many bytes of answer (JSON-escaped UTF-8); Feishu refuses cards
    # over 30 KB, and buttons and settings take the rest. A longer answer continues on a new card.
    card_text_bytes: int = Field(20_000, ge=2_000, le=28_000)
    # Streaming mode ends 10 minutes after a card opens it: continue on a new card before then.
    stream_max_age: float = Field(540.0, gt=0, le=590)
    # Bytes; larger /feishu/events bodies are refused unread (events are a few KB).
    max_body: int = Field(1024 * 1024, ge=64 * 1024)
    # Files larger than this are not downloaded (the gateway takes images up to 10 MB).
    max_file_mb: int = Field(20, ge=1, le=100)

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in DOMAINS:
            return value.lower()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be feishu, lark, or a base URL starting with http:// or https://")
        return value.rstrip("/")

    @property
    def base_url(self) -> str:
        return DOMAINS.get(self.domain, self.domain)

    def configured(self) -> bool:
        return bool(self.app_id.strip()) and self.app_secret is not None and bool(self.app_secret.get_secret_value())

    def problems(self) -> list[str]:
        if self.connection == "webhook" and self.verification_token is None:
            return [
                "FEISHU_VERIFICATION_TOKEN: missing; the HTTP callback (FEISHU_CONNECTION=webhook) needs it "
                "to tell Feishu's deliveries from anyone else's"
            ]
        return []

    def admits(self, workspace: str, chat: str, user: str) -> Admission:
        """Another tenant is ignored; with either list set, a listed chat (everyone in it) or a
        listed person (in any chat, private ones included) is served, and nobody else."""
        tenants, chats, users = id_set(self.allowed_tenants), id_set(self.allowed_chats), id_set(self.allowed_users)
        if tenants and workspace not in tenants:
            return Admission(Gate.SILENT, "tenant not allowlisted")
        if (chats or users) and chat not in chats and user not in users:
            return Admission(Gate.CLOSED, "neither the chat nor the person is allowlisted")
        return ADMITTED
