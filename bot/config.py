"""Settings from the environment and ``.env``, validated once at start.

``load_settings`` turns every problem into one readable line (``SettingsError.lines``)
instead of a traceback. Secrets are ``SecretStr`` so they never print by accident.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_TOKENS_CAP = 16384  # the gateway's maximum for max_tokens


class Settings(BaseSettings):
    # An empty value (``.env.example``'s ``BYTESPIKE_API_KEY=`` copied as is) means unset: it
    # must be reported as missing, not used as an empty key or token.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    # --- the gateway and the model ---
    api_key: SecretStr | None = Field(None, alias="BYTESPIKE_API_KEY")
    base_url: str = Field("https://llm.bytespike.ai", alias="BYTESPIKE_BASE_URL")
    model: str = Field("minimax-m2.7", alias="BOT_MODEL")
    max_tokens: int = Field(4096, alias="BOT_MAX_TOKENS", ge=1)
    temperature: float = Field(1.0, alias="BOT_TEMPERATURE", gt=0, le=2)
    top_p: float = Field(0.95, alias="BOT_TOP_P", gt=0, le=1)
    context_tokens: int = Field(200_000, alias="BOT_CONTEXT_TOKENS", ge=1000)
    system_prompt: str = Field("", alias="BOT_SYSTEM_PROMPT")
    vision: bool = Field(True, alias="BOT_VISION")
    tools: bool = Field(True, alias="BOT_TOOLS")
    structured_output: bool = Field(True, alias="BOT_STRUCTURED_OUTPUT")
    max_images: int = Field(4, alias="BOT_MAX_IMAGES", ge=0)
    show_reasoning: bool = Field(False, alias="BOT_SHOW_REASONING")
    connect_timeout: float = Field(10.0, alias="BOT_CONNECT_TIMEOUT", gt=0)
    read_timeout: float = Field(120.0, alias="BOT_READ_TIMEOUT", gt=0)
    # The whole wait for an answer to begin, across connects, retries and backoffs.
    answer_start_timeout: float = Field(60.0, alias="BOT_ANSWER_START_TIMEOUT", gt=0)
    # Seconds without a sign from the model before the status line says it is waiting.
    slow_start_status: float = Field(5.0, alias="BOT_SLOW_START_STATUS", gt=0)
    max_retries: int = Field(2, alias="BOT_MAX_RETRIES", ge=0, le=10)
    retry_base_delay: float = Field(0.5, alias="BOT_RETRY_BASE_DELAY", ge=0)
    retry_max_delay: float = Field(8.0, alias="BOT_RETRY_MAX_DELAY", ge=0)
    retry_after_cap: float = Field(60.0, alias="BOT_RETRY_AFTER_CAP", ge=0)
    checkpoint_interval: float = Field(2.0, alias="BOT_CHECKPOINT_INTERVAL", ge=0)
    # Several processes: how often each looks for answers a dead process left and for
    # conversations nobody is answering.
    sweep_interval: float = Field(3.0, alias="BOT_SWEEP_INTERVAL", gt=0)
    timezone: str = Field("UTC", alias="BOT_TIMEZONE")
    # Seconds within which a file sent without text and the same person's text (either order)
    # are answered as one turn (docs/platform-features.md); 0 turns merging off.
    burst_window: float = Field(2.0, alias="BOT_BURST_WINDOW", ge=0)

    # --- copywriting and tools ---
    copy_variants: int = Field(3, alias="BOT_COPY_VARIANTS", ge=1, le=10)
    tool_timeout: float = Field(15.0, alias="BOT_TOOL_TIMEOUT", gt=0)
    tool_chain_limit: int = Field(6, alias="BOT_TOOL_CHAIN_LIMIT", ge=1)
    web_reader: bool = Field(False, alias="BOT_WEB_READER")
    # An operator's own compliance rule files (*.toml: words, exceptions, rules switched off;
    # docs/compliance.md), added to the built-in lists. Empty: the built-in lists only.
    compliance_rules_dir: str = Field("", alias="BOT_COMPLIANCE_RULES_DIR")
    # Tools from MCP servers (docs/tools.md): a JSON file in the common "mcpServers" shape.
    mcp_config: str = Field("", alias="BOT_MCP_CONFIG")
    # Seconds an admin has to approve a tool that may change things; then it is denied.
    mcp_approval_timeout: float = Field(120.0, alias="BOT_MCP_APPROVAL_TIMEOUT", gt=0)
    # Seconds between pings of an idle MCP server (a dead one is noticed and restarted).
    mcp_ping_interval: float = Field(15.0, alias="BOT_MCP_PING_INTERVAL", gt=0)

    # --- storage and service ---
    database_url: str = Field("sqlite+aiosqlite:///bot.db", alias="DATABASE_URL")
    port: int = Field(8000, alias="PORT", ge=1, le=65535)
    host: str = Field("0.0.0.0", alias="HOST")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")
    metrics_token: SecretStr | None = Field(None, alias="METRICS_TOKEN")  # bearer token for /metrics
    # SIGTERM: running answers get this long to finish before they are ended as interrupted.
    shutdown_grace: float = Field(20.0, alias="BOT_SHUTDOWN_GRACE", ge=0)
    # Every platform's rate windows and pacing intervals are multiplied by this: 1 is the
    # platforms' real limits; tests shrink time with it (and so do their fake servers).
    platform_time_scale: float = Field(1.0, alias="PLATFORM_TIME_SCALE", gt=0, le=1)
    # PostgreSQL: how often the liveness-lock connection is checked (and re-taken if dropped).
    # A dead owner is confirmed after two checks 2 × this apart (a takeover within 10 s).
    liveness_interval: float = Field(2.0, alias="BOT_LIVENESS_INTERVAL", gt=0)
    # Several processes: platform budgets counted in Redis, so together they keep the
    # platforms' limits. Unset: each process counts its own (right for one process).
    redis_url: SecretStr | None = Field(None, alias="REDIS_URL")

    # --- operators: prices, quotas, admins, the admin page (issue 11) ---
    price_input: float = Field(0.0, alias="BOT_PRICE_INPUT", ge=0)  # per million prompt tokens
    price_cached_input: float | None = Field(None, alias="BOT_PRICE_CACHED_INPUT", ge=0)  # default: input
    price_output: float = Field(0.0, alias="BOT_PRICE_OUTPUT", ge=0)  # per million completion tokens
    currency: str = Field("USD", alias="BOT_CURRENCY", min_length=1, max_length=8)
    # Budgets: "200000 tokens", "2.50 USD" (the currency or "cost"), or both, comma-separated.
    quota_user_daily: str = Field("", alias="BOT_QUOTA_USER_DAILY")
    quota_user_monthly: str = Field("", alias="BOT_QUOTA_USER_MONTHLY")
    quota_conversation_daily: str = Field("", alias="BOT_QUOTA_CONVERSATION_DAILY")
    quota_conversation_monthly: str = Field("", alias="BOT_QUOTA_CONVERSATION_MONTHLY")
    quota_global_daily: str = Field("", alias="BOT_QUOTA_GLOBAL_DAILY")
    quota_global_monthly: str = Field("", alias="BOT_QUOTA_GLOBAL_MONTHLY")
    # "platform:user_id" (or a bare user id, any platform), comma-separated.
    admins: str = Field("", alias="BOT_ADMINS")
    admin_page: bool = Field(True, alias="BOT_ADMIN_PAGE")
    admin_password_hash: SecretStr | None = Field(None, alias="BOT_ADMIN_PASSWORD_HASH")
    admin_session_secret: SecretStr | None = Field(None, alias="BOT_ADMIN_SESSION_SECRET")
    admin_session_hours: float = Field(12.0, alias="BOT_ADMIN_SESSION_HOURS", gt=0)
    admin_trust_proxy: bool = Field(False, alias="BOT_ADMIN_TRUST_PROXY")
    admin_login_rate: str = Field("5/minute", alias="BOT_ADMIN_LOGIN_RATE")

    # --- long documents (issue 21): scanned pages read by the model's vision, documents past the
    # window answered in parts ---
    # Tokens of document text per part (each part is one gateway call); capped by the window.
    doc_part_tokens: int = Field(60_000, alias="BOT_DOC_PART_TOKENS", ge=2_000)
    # How long each part's notes may be, in tokens (fewer when many parts must share the window).
    doc_summary_tokens: int = Field(1_500, alias="BOT_DOC_SUMMARY_TOKENS", ge=200, le=8_000)
    # Gateway calls one document turn makes at a time (parts, or batches of scanned pages).
    doc_concurrency: int = Field(4, alias="BOT_DOC_CONCURRENCY", ge=1, le=32)
    # Scanned pages read through vision per document (the quota left may lower it), and per call.
    doc_vision_pages: int = Field(50, alias="BOT_DOC_VISION_PAGES", ge=0)
    doc_vision_batch: int = Field(3, alias="BOT_DOC_VISION_BATCH", ge=1, le=10)
    # Above this estimate the bot states tokens and cost and asks for a go-ahead first:
    # "500k tokens", "0.50 USD", or both (whichever is passed first); "" never asks.
    doc_confirm_above: str = Field("500k tokens", alias="BOT_DOC_CONFIRM_ABOVE")

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("max_tokens")
    @classmethod
    def _clamp_max_tokens(cls, value: int) -> int:
        return min(value, MAX_TOKENS_CAP)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        # OpenAI-style clients are given the root with /v1; requests add it themselves.
        return value.rstrip("/").removesuffix("/v1")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Accept the URLs hosting platforms hand out and pick the async driver.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value[len("sqlite:///") :]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("compliance_rules_dir")
    @classmethod
    def _rules_dir(cls, value: str) -> str:
        from pathlib import Path

        value = value.strip()
        if not value:
            return ""
        directory = str(Path(value).expanduser())
        if not Path(directory).is_dir():
            raise ValueError("not a directory")
        from bot.compliance.rules import RulesError, rules_for

        try:
            rules_for(directory)  # loaded once per process: a broken file is refused at start
        except RulesError as exc:
            raise ValueError(str(exc)) from None
        return directory

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator(
        "quota_user_daily",
        "quota_user_monthly",
        "quota_conversation_daily",
        "quota_conversation_monthly",
        "quota_global_daily",
        "quota_global_monthly",
    )
    @classmethod
    def _budget_syntax(cls, value: str) -> str:
        from bot.usage.allowance import parse_allowance

        parse_allowance(value)  # raises ValueError with the reason
        return value

    @field_validator("mcp_config")
    @classmethod
    def _mcp_config(cls, value: str) -> str:
        if value:
            from bot.mcp.servers_config import load_config

            load_config(value)  # raises ConfigError (a ValueError) naming every problem
        return value

    @field_validator("doc_confirm_above")
    @classmethod
    def _threshold_syntax(cls, value: str) -> str:
        from bot.usage.allowance import parse_allowance

        parse_allowance(value)  # raises ValueError with the reason
        return value

    @field_validator("admin_login_rate")
    @classmethod
    def _rate_syntax(cls, value: str, info: ValidationInfo) -> str:
        if not info.data.get("admin_page", True):
            return value  # only the admin page reads it: without the page, limits (~2 MB) stays unloaded
        from limits import parse

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError("use a rate such as 5/minute or 20/hour") from exc
        return value

    def secrets(self) -> list[str]:
        """Every secret value, so the log filter can mask them (MCP servers' env and headers too)."""
        values = secret_values(self)
        if self.mcp_config:
            from bot.mcp.servers_config import load_config

            values += load_config(self.mcp_config).secrets()
        return values


def id_set(text: str) -> set[str]:
    """Comma-separated ids (an allowlist setting) as a set; empty: no ids."""
    return {part.strip() for part in text.split(",") if part.strip()}


def secret_values(settings: BaseSettings) -> list[str]:
    """Every secret value a settings model holds (its ``SecretStr`` fields), so the log
    filter can mask them."""
    values = (getattr(settings, name) for name in type(settings).model_fields)
    return [v.get_secret_value() for v in values if isinstance(v, SecretStr) and v.get_secret_value()]


class SettingsError(Exception):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _field(model: type[BaseSettings], name: str) -> FieldInfo | None:
    """A field by its name or its alias (validation errors may name either)."""
    info = model.model_fields.get(name)
    return info or next((f for f in model.model_fields.values() if f.alias == name), None)


def env_name(model: type[BaseSettings], field_name: str) -> str:
    """The environment variable a field is read from (its alias, or prefix + name)."""
    info = _field(model, field_name)
    if info is None:
        return field_name
    if info.alias:
        return info.alias
    return f"{model.model_config.get('env_prefix', '')}{field_name}".upper()


def _is_secret(model: type[BaseSettings], field_name: str) -> bool:
    info = _field(model, field_name)
    return info is not None and "SecretStr" in repr(info.annotation)


def problem_lines(model: type[BaseSettings], exc: ValidationError) -> list[str]:
    """One readable line per problem, named by its environment variable; a secret's value
    is never repeated."""
    lines = []
    for err in exc.errors():
        field_name = str(err["loc"][0]) if err["loc"] else ""
        name = env_name(model, field_name) if field_name else "settings"
        message = err["msg"].removeprefix("Value error, ")
        lines.append(
            f"{name}: {message}" if _is_secret(model, field_name) else f"{name}: {message} (got {err.get('input')!r})"
        )
    return lines


def load_settings(*, require_api_key: bool = True, **overrides: object) -> Settings:
    """Read and validate settings; raise ``SettingsError`` with one line per problem."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(problem_lines(Settings, exc)) from None
    if require_api_key and settings.api_key is None:
        raise SettingsError(["BYTESPIKE_API_KEY: missing; set it to the gateway's API key"])
    return settings
