"""Tools the model can call: definitions in OpenAI ``tools`` format, third-party tools from
the ``chatbot.tools`` entry-point group, and running a turn's calls.

``run_calls`` never raises for a tool's sake: unknown tools, bad arguments, exceptions and
timeouts all come back as result text the model can read and react to. Calls of one turn
run concurrently; results come back in the order of the calls.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any, Protocol

from bot.platform.surface import Step, StepState
from bot.tools.context import CallContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "chatbot.tools"
MAX_RESULT_CHARS = 20_000  # a tool result beyond this is cut (it costs context on every later turn)

Progress = Callable[[str], Awaitable[None]]
StepsReport = Callable[[Sequence[Step]], Awaitable[None]]

# The running call's way to say what it waits for (an admin's approval): set by run_calls
# around each call, used by the tool itself through ``report_step``.
_STEP: contextvars.ContextVar[Callable[[StepState, str], None] | None] = contextvars.ContextVar(
    "tool_step", default=None
)


def report_step(state: StepState, detail: str = "") -> None:
    """From inside a tool: show its step as ``state`` with ``detail`` (e.g. pending,
    "waiting for an admin's approval"). Does nothing outside ``run_calls``."""
    update = _STEP.get()
    if update is not None:
        update(state, detail)


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
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class ToolSource(Protocol):
    """Tools that depend on who asks and where (MCP servers): asked once per turn."""

    def tools_for(self, context: CallContext) -> Sequence[Tool]:
        """The tools this turn may offer the model, bound to ``context``."""


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
        self._sources: list[ToolSource] = []
        for tool in tools:
            self.add(tool)

    def add_source(self, source: ToolSource) -> None:
        """Tools that depend on who asks and where (MCP servers), added per turn by ``for_turn``."""
        self._sources.append(source)

    def for_turn(self, context: CallContext) -> ToolRegistry:
        """The tools one turn may use: these, plus what each source permits in ``context``
        (a source's tool never replaces one of these)."""
        if not self._sources:
            return self
        turn = ToolRegistry(self._tools.values())
        for source in self._sources:
            for tool in source.tools_for(context):
                turn.add(tool)
        return turn

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

    async def run_calls(
        self, calls: Sequence[Any], timeout: float, progress: Progress | None = None, steps: StepsReport | None = None
    ) -> list[str]:
        """Run a turn's tool calls (objects with ``name`` and ``arguments``, like
        ``bot.gateway.events.ToolCall``) concurrently. Returns one result text per call, in
        the order of ``calls``. ``progress`` gets a short line as calls start and finish;
        the caller clears the status afterwards. ``steps`` gets every call as a ``Step``
        (id = the call's id) each time one starts, waits, ends or fails."""
        if not calls:
            return []
        if steps is not None:
            return await self._run_with_steps(calls, timeout, steps)
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

    async def _run_with_steps(self, calls: Sequence[Any], timeout: float, report: StepsReport) -> list[str]:
        board = [Step(str(c.id or i), self._label(c.name), "running") for i, c in enumerate(calls)]
        redraws: set[asyncio.Task] = set()  # kept until done (a task nobody holds may vanish)

        async def show() -> None:
            try:
                await report(tuple(board))
            except Exception:
                log.debug("steps callback failed", exc_info=True)

        async def one(index: int, call: Any) -> str:
            def update(state: StepState, detail: str) -> None:
                board[index] = replace(board[index], state=state, detail=detail)
                task = asyncio.get_running_loop().create_task(show())
                redraws.add(task)
                task.add_done_callback(redraws.discard)

            _STEP.set(update)  # this task's own context: each call sees only its step
            started = time.monotonic()
            result = await self.run_call(call.name, call.arguments, timeout)
            failed = result.startswith("Error:")
            detail = _short_error(result) if failed else f"{time.monotonic() - started:.1f} s"
            board[index] = replace(board[index], state="error" if failed else "done", detail=detail)
            await show()
            return result

        await show()
        return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(calls))))

    def _label(self, name: str) -> str:
        tool = self._tools.get(name)
        return (tool.label or tool.name) if tool else name


def _short_error(result: str) -> str:
    """A failed call's result as one short line for people ("did not finish within 5 seconds")."""
    text = result.removeprefix("Error:").strip().splitlines()[0] if result.strip() != "Error:" else "failed"
    return text[:80].rstrip(".")
