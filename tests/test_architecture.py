"""The shape of the code: no import cycles between our modules (function-level and
TYPE_CHECKING imports count too), the core imports no platform SDK and names no platform,
adapters never import each other and reach the bot only through ``bot.platform``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "adapters")
PLATFORM_SDKS = ("telegram", "slack_bolt", "slack_sdk", "telegramify_markdown", "aiohttp", "lark_oapi")
COMPOSITION_ROOT = ("cli.py",)  # `bot chat` starts the console adapter


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Every module of ours ``path`` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from pkg import mod" imports pkg.mod when it is a module, else pkg itself.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # Importing a.b.c runs a/__init__ and a/b/__init__ first: those are imports too.
            while target:
                if target != name and target in modules and not name.startswith(target + "."):
                    out.add(target)
                target = target.rpartition(".")[0]
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycles_between_our_modules() -> None:
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_core_imports_no_platform_sdk_and_adapters_stay_apart() -> None:
    for path in (ROOT / "bot").rglob("*.py"):
        if path.parent == ROOT / "bot" / "process" and path.name in COMPOSITION_ROOT:
            continue
        tree = ast.parse(path.read_text())
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {n for n in names if n.split(".")[0] in PLATFORM_SDKS or n.startswith("adapters")}, path
    graph = _graph()
    for name, targets in graph.items():
        if name.startswith("adapters."):
            mine = name.split(".")[1]
            others = {t for t in targets if t.startswith("adapters.") and t.split(".")[1] != mine}
            assert not others, f"{name} imports {others}"


def _bot_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    found |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level}
    return {name for name in found if name == "bot" or name.startswith("bot.")}


def test_adapters_reach_the_bot_only_through_bot_platform() -> None:
    """One door: whatever an adapter needs is named in ``bot.platform`` (function-level and
    TYPE_CHECKING imports included)."""
    stray = {
        str(path.relative_to(ROOT)): sorted(names - {"bot.platform"})
        for path in (ROOT / "adapters").rglob("*.py")
        if (names := _bot_imports(path)) - {"bot.platform"}
    }
    assert stray == {}


def test_the_check_above_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "adapter.py"
    sample.write_text("from bot.platform import Inbox\nfrom bot.core.service import ChatService\n")
    assert _bot_imports(sample) - {"bot.platform"} == {"bot.core.service"}


PLATFORM_WORDS = re.compile(r"\b(telegram|slack|feishu|lark)\b|TELEGRAM_|SLACK_", re.IGNORECASE)


def test_the_core_holds_no_platform_setting_or_name() -> None:
    """Settings, access, the admin page and the runner name no platform: platforms are plug-ins.
    (Docstrings and comments may mention them as examples; code may not.)"""
    offenders = []
    for path in (ROOT / "bot").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and not _is_docstring(node, tree):
                if PLATFORM_WORDS.search(node.value):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}")
            elif isinstance(node, ast.Name | ast.Attribute | ast.arg):
                name = (
                    node.id
                    if isinstance(node, ast.Name)
                    else node.attr
                    if isinstance(node, ast.Attribute)
                    else node.arg
                )
                if PLATFORM_WORDS.search(name):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert offenders == []


def _is_docstring(node: ast.Constant, tree: ast.Module) -> bool:
    for parent in ast.walk(tree):
        if isinstance(parent, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and parent.body:
            first = parent.body[0]
            if isinstance(first, ast.Expr) and first.value is node:
                return True
    return False


def _duplicates(names: list[str]) -> list[str]:
    return sorted({name for name in names if names.count(name) > 1})


def test_no_two_modules_or_classes_of_the_bot_share_a_name() -> None:
    """A name says which module or class it is: ``runner.py`` beside ``core/runner.py`` or two
    ``Budget`` classes made readers (and imports) guess. Package markers (``__init__``,
    ``__main__``) are the only repeats."""
    paths = [p for p in (ROOT / "bot").rglob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert _duplicates([p.stem for p in paths]) == []
    classes = [
        node.name for p in paths for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.ClassDef)
    ]
    assert _duplicates(classes) == []


def test_the_duplicate_finder_finds_a_duplicate() -> None:
    assert _duplicates(["Budget", "Inbox", "Budget"]) == ["Budget"]
