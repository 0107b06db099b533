"""Finding platforms: every ``PlatformPlugin`` in the ``chatbot.platforms`` entry-point group.

Telegram, Slack and the console register there in this package's ``pyproject.toml``; an
installed third-party package adds a platform the same way, with no change to the bot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import entry_points

from bot.config import SettingsError
from bot.platform.base import PlatformPlugin, PlatformSettings

log = logging.getLogger(__name__)

GROUP = "chatbot.platforms"


def plugins() -> dict[str, PlatformPlugin]:
    """Every installed platform, by name (a plug-in that fails to load is logged and skipped)."""
    found: dict[str, PlatformPlugin] = {}
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            plugin = entry.load()
        except Exception:
            log.exception("platform plug-in %s could not be loaded", entry.name)
            continue
        if not isinstance(plugin, PlatformPlugin):
            log.error("platform plug-in %s is not a PlatformPlugin (%r)", entry.name, plugin)
            continue
        found[plugin.name] = plugin
    return found


@dataclass(frozen=True, slots=True)
class Configured:
    plugin: PlatformPlugin
    settings: PlatformSettings


def configured(
    available: dict[str, PlatformPlugin] | None = None, **values: object
) -> tuple[list[Configured], list[str]]:
    """The platforms ``bot run`` starts (their settings read and validated), and every
    settings problem found, one line each (all platforms are checked before any starts)."""
    chosen: list[Configured] = []
    problems: list[str] = []
    for plugin in (available if available is not None else plugins()).values():
        if not plugin.served_by_run:
            continue
        try:
            settings = plugin.settings.load(**values)
        except SettingsError as exc:
            problems.extend(exc.lines)
            continue
        if settings.configured():
            chosen.append(Configured(plugin, settings))
    return chosen, problems
