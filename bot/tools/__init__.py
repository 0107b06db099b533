"""Function calling: the registry, built-in tools, the optional web reader, plug-ins."""

from __future__ import annotations

from bot.config import Settings
from bot.tools.registry import ENTRY_POINT_GROUP, Tool, ToolError, ToolRegistry, load_entry_point_tools

__all__ = ["ENTRY_POINT_GROUP", "Tool", "ToolError", "ToolRegistry", "build_registry", "load_entry_point_tools"]


def build_registry(settings: Settings, *, plugins: bool = True) -> ToolRegistry:
    """Built-in tools, the web reader when BOT_WEB_READER is on, then installed plug-ins
    (a plug-in cannot replace a built-in of the same name)."""
    from bot.tools.builtin import builtin_tools

    registry = ToolRegistry(builtin_tools(settings))
    if getattr(settings, "web_reader", False):
        from bot.tools.web_reader import web_reader_tool

        registry.add(web_reader_tool())
    if plugins:
        for tool in load_entry_point_tools():
            registry.add(tool)
    return registry
