"""The terminal's settings (``CONSOLE_*``): ``bot chat`` starts it, ``bot run`` never does."""
from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from bot.platform import ADMITTED, Admission, Gate, PlatformSettings, id_set


class ConsoleSettings(PlatformSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore", env_ignore_empty=True)

    # Login names that may chat here (comma-separated; empty: anyone with a shell), for a
    # shared server whose database holds the team's conversations.
    allowed_users: str = ""
    # Where files the bot sends (an exported character card) are written; empty: the
    # directory `bot chat` runs in.
    files_dir: str = ""

    def admits(self, workspace: str, chat: str, user: str) -> Admission:
        allowed = id_set(self.allowed_users)
        if allowed and user not in allowed:
            return Admission(Gate.CLOSED, "user not allowlisted")
        return ADMITTED
