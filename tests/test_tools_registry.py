"""The tool registry: definitions, concurrent calls in order, timeouts and errors as results,
and third-party tools through the ``chatbot.tools`` entry-point group."""

from __future__ import annotations

import asyncio
import importlib
import json
import textwrap
from pathlib import Path

import pytest

from bot.config import Settings
from bot.gateway.events import ToolCall
from bot.tools import ENTRY_POINT_GROUP, Tool, ToolError, ToolRegistry, build_registry, load_entry_point_tools

OBJ = {"type": "object", "properties": {}}


def call(name: str, args: dict | str = "{}", i: int = 0) -> ToolCall:
    return ToolCall(id=f"call_{i}", name=name, arguments=args if isinstance(args, str) else json.dumps(args), index=i)


def test_definitions_are_openai_tools_without_strict_and_none_when_empty() -> None:
    assert ToolRegistry().definitions() is None

    async def f() -> str:
        return "x"

    reg = ToolRegistry([Tool("zeta", "z", OBJ, f), Tool("alpha", "a", OBJ, f)])
    defs = reg.definitions()
    assert [d["function"]["name"] for d in defs] == ["alpha", "zeta"]  # stable order for caching
    assert defs[0] == {"type": "function", "function": {"name": "alpha", "description": "a", "parameters": OBJ}}
    assert "strict" not in json.dumps(defs)


async def test_parallel_calls_overlap_and_results_keep_call_order() -> None:
    a_in, b_in = asyncio.Event(), asyncio.Event()

    async def a() -> str:
        a_in.set()
        await b_in.wait()  # only finishes if b runs at the same time
        await asyncio.sleep(0)
        return "result A"

    async def b() -> str:
        b_in.set()
        await a_in.wait()
        return "result B"  # finishes before a

    reg = ToolRegistry([Tool("a", "", OBJ, a), Tool("b", "", OBJ, b)])
    results = await reg.run_calls([call("a", i=0), call("b", i=1)], timeout=5)
    assert results == ["result A", "result B"]


async def test_timeout_and_errors_come_back_as_results() -> None:
    never = asyncio.Event()

    async def hang() -> str:
        await never.wait()
        return "unreachable"

    async def boom() -> str:
        raise RuntimeError("disk on fire")

    async def refuse() -> str:
        raise ToolError("that city is not supported")

    async def echo(text: str) -> str:
        return text

    reg = ToolRegistry(
        [
            Tool("hang", "", OBJ, hang),
            Tool("boom", "", OBJ, boom),
            Tool("refuse", "", OBJ, refuse),
            Tool(
                "echo", "", {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}, echo
            ),
        ]
    )
    results = await reg.run_calls(
        [
            call("hang"),
            call("boom"),
            call("refuse"),
            call("echo", {"text": "hi"}),
            call("nope"),
            call("echo", "{not json"),
            call("echo", {}),
            call("echo", {"text": "x", "extra": 1}),
            call("echo", '{"text": "repaired",}'),
        ],
        timeout=0.05,
    )
    assert results[0] == "Error: the tool hang did not finish within 0.05 seconds."
    assert results[1] == "Error: the tool boom failed (RuntimeError: disk on fire)."
    assert results[2] == "Error: that city is not supported"
    assert results[3] == "hi"
    assert results[4].startswith("Error: there is no tool named 'nope'") and "echo" in results[4]
    assert results[5].startswith("Error:")
    assert results[6] == "Error: missing required argument(s): text"
    assert results[7].startswith("Error: bad arguments for echo") and "extra" in results[7]
    assert results[8] == "repaired"


async def test_sync_tools_json_results_long_results_and_per_tool_timeout() -> None:
    def add(a: int, b: int) -> dict:
        return {"sum": a + b}

    async def slow() -> str:
        await asyncio.sleep(30)
        return "late"

    async def huge() -> str:
        return "x" * 50_000

    reg = ToolRegistry(
        [Tool("add", "", OBJ, add), Tool("slow", "", OBJ, slow, timeout=0.01), Tool("huge", "", OBJ, huge)]
    )
    results = await reg.run_calls([call("add", {"a": 2, "b": 3}), call("slow"), call("huge")], timeout=60)
    assert results[0] == '{"sum": 5}'
    assert "did not finish within 0.01 seconds" in results[1]
    assert len(results[2]) < 21_000 and results[2].endswith("[result cut at 20000 characters]")


async def test_progress_lines_name_the_tools() -> None:
    lines: list[str] = []

    async def progress(line: str) -> None:
        lines.append(line)

    async def quick() -> str:
        return "ok"

    reg = ToolRegistry([Tool("calculator", "", OBJ, quick, label="calculator"), Tool("clock", "", OBJ, quick)])
    await reg.run_calls([call("calculator"), call("clock")], timeout=1, progress=progress)
    assert lines[0] == "using calculator, clock… (0/2 done)"
    assert len(lines) == 2 and "1/2 done" in lines[1]
    assert await reg.run_calls([], timeout=1, progress=progress) == []


PLUGIN = """
from bot.tools import Tool

async def _shout(text: str) -> str:
    return text.upper()

def tools():
    return [Tool("shout", "Upper-cases text", {"type": "object", "properties": {"text": {"type": "string"}}}, _shout)]

single = Tool("whisper", "Lower-cases text", {"type": "object", "properties": {}}, lambda text="": text.lower())
"""


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed distribution (a dist-info on sys.path) declaring chatbot.tools entry points."""
    (tmp_path / "fake_plugin_tools.py").write_text(textwrap.dedent(PLUGIN))
    info = tmp_path / "fake_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nshout = fake_plugin_tools:tools\nwhisper = fake_plugin_tools:single\n"
        "broken = fake_plugin_tools:missing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


async def test_entry_point_tools_load_and_a_broken_one_is_skipped(plugin_dist: Path) -> None:
    names = sorted(t.name for t in load_entry_point_tools())
    assert names == ["shout", "whisper"]
    reg = build_registry(Settings(_env_file=None))  # type: ignore[call-arg]
    assert {"shout", "whisper", "calculator", "current_time", "text_stats"} <= set(reg.names)
    assert "read_web_page" not in reg.names  # off by default
    assert await reg.run_calls([call("shout", {"text": "hi"})], timeout=1) == ["HI"]


def test_web_reader_is_registered_only_when_switched_on() -> None:
    reg = build_registry(Settings(_env_file=None, BOT_WEB_READER=True), plugins=False)  # type: ignore[call-arg]
    assert "read_web_page" in reg.names
