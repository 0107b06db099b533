"""The terminal's settings (``CONSOLE_*``): ``bot chat`` starts it, ``bot run`` never does."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from bot.platform import ADMITTED, Admission, Gate, PlatformSettings, id_set

APP = "chatbot"  # the folder name under the user's data and state directories


class ConsoleSettings(PlatformSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONSOLE_", env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    # Login names that may chat here (comma-separated; empty: anyone with a shell), for a
    # shared server whose database holds the team's conversations.
    allowed_users: str = ""
    # Where files the bot sends (an exported character card) are written; empty: the
    # directory `bot chat` runs in.
    files_dir: str = ""
    # What you typed, kept across runs for ↑ and Ctrl-R ("off": kept for this run only).
    # Default: the user's data directory, e.g. ~/.local/share/chatbot/chat_history.
    history_file: str = ""
    # Where an interactive `bot chat` writes its log (warnings stay out of the conversation).
    # Default: the user's state directory, e.g. ~/.local/state/chatbot/chat.log.
    log_file: str = ""

    def admits(self, workspace: str, chat: str, user: str) -> Admission:
        allowed = id_set(self.allowed_users)
        if allowed and user not in allowed:
            return Admission(Gate.CLOSED, "user not allowlisted")
        return ADMITTED

    def history_path(self) -> Path | None:
        import platformdirs  # here: `bot run` reads these settings too, and never needs it

        if self.history_file.strip().lower() == "off":
            return None
        return (
            Path(self.history_file).expanduser()
            if self.history_file
            else platformdirs.user_data_path(APP) / "chat_history"
        )

    def log_path(self) -> Path:
        import platformdirs

        return Path(self.log_file).expanduser() if self.log_file else platformdirs.user_state_path(APP) / "chat.log"
