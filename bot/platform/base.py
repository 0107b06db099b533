"""What a platform is to the bot: a plug-in with its own settings, allowlist and health,
and an adapter that translates its events for the core and writes answers back.

A platform package declares a ``PlatformPlugin`` and names it in the ``chatbot.platforms``
entry-point group (``pyproject.toml``); ``bot run`` starts every plug-in whose settings
say it is configured. The adapter subclasses ``Platform``:

- transport: ``routes()`` (webhook routes for the web app) and/or ``start()``/``stop()``;
  ``pause()`` stops taking new events at shutdown while answers finish;
- intake: each event is acknowledged, then handed to its ``Inbox`` at once (messages with
  ``receive``, clicks with ``click``, membership changes with ``membership``);
- rendering: a ``ReplySurface`` whose ``post``/``edit`` render Markdown and draw
  ``Write.controls``, and ``open_stream`` where the platform streams natively; platform
  calls through ``bot.platform.guarded`` with budgets for the platform's limits;
- ``surface_for`` so the core can repair interrupted answers and answer stored messages.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Self

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.config import SettingsError, problem_lines, secret_values
from bot.lean import refused
from bot.platform.inbox import Inbox
from bot.platform.messages import ConversationKey
from bot.platform.surface import ReplySurface

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


class Gate(StrEnum):
    OPEN = "open"  # may talk to the bot
    CLOSED = "closed"  # refused, politely (once a day per person and chat)
    SILENT = "silent"  # not the bot's to serve at all (another workspace): ignored without a word


@dataclass(frozen=True, slots=True)
class Admission:
    """A platform's allowlist verdict on one sender in one chat."""

    gate: Gate
    reason: str = ""  # for the log: "channel not allowlisted"


ADMITTED = Admission(Gate.OPEN)


class PlatformSettings(BaseSettings):
    """A platform's own settings, read from the environment and ``.env`` under its prefix
    (``model_config = SettingsConfigDict(env_prefix="TELEGRAM_")`` in a subclass)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    def configured(self) -> bool:
        """Whether ``bot run`` should start this platform (its credentials are set)."""
        return False

    def problems(self) -> list[str]:
        """Problems no single field shows (a webhook without its secret), one line each."""
        return []

    def admits(self, workspace: str, chat: str, user: str) -> Admission:
        """The allowlist: whether ``user`` writing in ``chat`` may talk to the bot."""
        return ADMITTED

    def secrets(self) -> list[str]:
        return secret_values(self)

    @classmethod
    def load(cls, **values: object) -> Self:
        """Read and validate; ``SettingsError`` with one line per problem."""
        try:
            settings = cls(**values)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise SettingsError(problem_lines(cls, exc)) from None
        if settings.configured() and (problems := settings.problems()):
            raise SettingsError(problems)
        return settings


@dataclass(frozen=True, slots=True)
class Health:
    """How a platform's connection is now, for ``/readyz`` and the admin page."""

    connected: bool
    detail: str = ""  # "long polling as @copy_bot", "Socket Mode", "reconnecting (attempt 3)"


class Platform(ABC):
    """An adapter: one platform's transport, intake and rendering."""

    name: ClassVar[str]  # ConversationKey.platform

    def __init__(self, settings: PlatformSettings, inbox: Inbox) -> None:
        self.settings = settings
        self.inbox = inbox

    def routes(self) -> list[BaseRoute]:
        """Webhook routes to mount on the web app (none by default)."""
        return []

    @abstractmethod
    async def start(self) -> None:
        """Connect (long polling, a socket, setWebhook…) without blocking; call
        ``inbox.attach(self)`` once answers can be written."""

    async def pause(self) -> None:  # noqa: B027 - optional: most transports stop in stop()
        """Take no new events (shutdown); answers already taken keep writing."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect. The core has already let answers finish (or ended them)."""

    async def drain(self) -> None:
        """Return once every event this process took in was handled and answered (tests,
        benchmarks: deterministic, no sleeps)."""
        await self.inbox.drain()

    def health(self) -> Health:
        """Connected now? (``/readyz`` turns 503 while a started platform is not.)"""
        return Health(True)

    @abstractmethod
    def surface_for(self, key: ConversationKey, *, reply_to: str = "", user: str = "") -> ReplySurface | None:
        """Where to answer in ``key``'s conversation (see ``bot.platform.inbox.Surfaces``)."""


@dataclass(frozen=True, slots=True)
class PlatformPlugin:
    """What a platform package registers under the ``chatbot.platforms`` entry points.
    Light on purpose: the adapter (and its SDK) is imported only when configured."""

    name: str  # "telegram": ConversationKey.platform, and what logs and the admin page say
    title: str  # "Telegram"
    settings: type[PlatformSettings]
    adapter: str  # "adapters.telegram.app:TelegramAdapter"
    served_by_run: bool = True  # False: started by another command (the console, by `bot chat`)
    # Loggers of the platform's SDK that are chatty at INFO (and may log URLs with tokens).
    quiet_loggers: tuple[str, ...] = ()
    # Optional extras the SDK imports when installed and the adapter never uses: refused while
    # the adapter loads (``bot.lean``), so they cost no memory.
    unused_imports: tuple[str, ...] = ()

    def load(self) -> type[Platform]:
        module, _, attribute = self.adapter.partition(":")
        with refused(*self.unused_imports):
            adapter = getattr(importlib.import_module(module), attribute)
        assert isinstance(adapter, type) and issubclass(adapter, Platform), self.adapter
        return adapter
