"""Every setting the bot reads — the core's and every installed platform's — is documented
in docs/configuration.md (a new setting without a row fails here)."""

from __future__ import annotations

from pathlib import Path

from bot.config import Settings, env_name
from bot.platform.discovery import plugins

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_every_setting_has_a_row_in_the_configuration_page() -> None:
    text = DOC.read_text()
    names = [env_name(Settings, field) for field in Settings.model_fields]
    for plugin in plugins().values():
        names += [env_name(plugin.settings, field) for field in plugin.settings.model_fields]
    assert [name for name in names if f"`{name}`" not in text] == []
