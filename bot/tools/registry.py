"""Tools the model can call: definitions in OpenAI ``tools`` format, third-party tools from
the ``chatbot.tools`` entry-point group, and running a turn's calls.

``run_calls`` never raises for a tool's sake: unknown tools, bad arguments, exceptions and
timeouts all come back as result text the model can read and react to. Calls of one turn
run concurrently; results come back in the order of the calls.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "chatbot.tools"
MAX_RESULT_CHARS = 20_000  # a tool result beyond this is cut (it costs context on every later turn)

Progress = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call. ``func`` takes the arguments as keyword arguments and
    returns text (or anything JSON-serialisable); it may be async or a plain function (plain
    functions run in a worker thread). ``timeout`` overrides the registry's per-tool timeout."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object
    func: Callable[..., Any]
    timeout: float | None = None
    label: str = ""  # shown in progress lines; defaults to the name

    def definition(self) -> dict[str, Any]:
        # No "strict" key: the gateway rejects it.
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


class ToolError(Exception):
    """Raise from a tool to send a short, deliberate message back to the model."""


def _as_tools(value: Any, source: str) -> list[Tool]:
    if callable(value) and not isinstance(value, Tool):
        value = value()  # an entry point may name a factory
    if isinstance(value, Tool):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict)):
        tools = list(value)
        if all(isinstance(t, Tool) for t in tools):
            return tools
    raise TypeError(f"{source} gave {type(value).__name__}, not a Tool or a list of Tools")


def load_entry_point_tools(group: str = ENTRY_POINT_GROUP) -> list[Tool]:
    """Tools from installed packages. A broken plug-in is logged and skipped, never fatal."""
    tools: list[Tool] = []
    for ep in entry_points(group=group):
        try:
            tools.extend(_as_tools(ep.load(), f"entry point {ep.name!r} ({ep.value})"))
        except Exception:
            log.exception("tool plug-in %s (%s) could not be loaded; skipped", ep.name, ep.value)
    return tools


def _parse_arguments(text: str) -> dict[str, Any]:
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        import json_repair  # rarely needed, and loaded only then (memory at start)

        value = json_repair.loads(text)
    if not isinstance(value, dict):
        raise ToolError("the arguments must be a JSON object")
    return value


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(value)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"\n[result cut at {MAX_RESULT_CHARS} characters]"
    return text


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            log.warning("tool %r defined twice; keeping the first", tool.name)
            return
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def definitions(self) -> list[dict[str, Any]] | None:
        """The ``tools`` list for a request, or None when there are none (never ``[]``).
        Sorted by name, so the bytes stay identical for prompt caching."""
        if not self._tools:
            return None
        return [self._tools[name].definition() for name in sorted(self._tools)]

    async def run_call(self, name: str, arguments: str, timeout: float) -> str:
        """One call's result text (errors and timeouts included, never raised)."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return f"Error: there is no tool named {name!r} (available: {known})."
        limit = tool.timeout or timeout
        try:
            args = _parse_arguments(arguments)
            missing = [p for p in tool.parameters.get("required", []) if p not in args]
            if missing:
                raise ToolError(f"missing required argument(s): {', '.join(missing)}")
            async with asyncio.timeout(limit):
                if inspect.iscoroutinefunction(tool.func):
                    value = await tool.func(**args)
                else:
                    value = await asyncio.to_thread(tool.func, **args)
                    if inspect.isawaitable(value):
                        value = await value
            return _to_text(value)
        except TimeoutError:
            log.warning("tool %s timed out after %.1f s", name, limit)
            return f"Error: the tool {name} did not finish within {limit:g} seconds."
        except ToolError as exc:
            return f"Error: {exc}"
        except TypeError as exc:  # usually wrong or unexpected argument names
            return f"Error: bad arguments for {name}: {exc}"
        except Exception as exc:
            log.exception("tool %s failed", name)
            return f"Error: the tool {name} failed ({type(exc).__name__}: {exc})."

    async def run_calls(self, calls: Sequence[Any], timeout: float, progress: Progress | None = None) -> list[str]:
        """Run a turn's tool calls (objects with ``name`` and ``arguments``, like
        ``bot.gateway.events.ToolCall``) concurrently. Returns one result text per call, in
        the order of ``calls``. ``progress`` gets a short line as calls start and finish;
        the caller clears the status afterwards."""
        if not calls:
            return []
        pending = [self._label(c.name) for c in calls]
        done = 0

        async def report() -> None:
            if progress is None:
                return
            running = ", ".join(dict.fromkeys(p for p in pending if p))
            line = f"using {running}… ({done}/{len(calls)} done)" if len(calls) > 1 else f"using {running}…"
            try:
                await progress(line)
            except Exception:
                log.debug("progress callback failed", exc_info=True)

        async def one(index: int, call: Any) -> str:
            nonlocal done
            try:
                return await self.run_call(call.name, call.arguments, timeout)
            finally:
                pending[index] = ""
                done += 1
                if done < len(calls):
                    await report()

        await report()
        return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(calls))))

    def _label(self, name: str) -> str:
        tool = self._tools.get(name)
        return (tool.label or tool.name) if tool else name
