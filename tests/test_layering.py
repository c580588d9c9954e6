"""The package's import layering: imports run one way (no cycle, function-level imports
included), and the plain networks in `sgvideo.models` depend on nothing above them."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sgvideo", "stylegan2_ops")
# what `sgvideo.models` may not import: training, data and everything built on them
ABOVE_MODELS = (
    "sgvideo.lit",
    "sgvideo.data",
    "sgvideo.inference",
    "sgvideo.evaluation",
    "sgvideo.app",
    "sgvideo.cli",
    "sgvideo.demo",
    "sgvideo.generate",
    "sgvideo.edit",
    "sgvideo.evaluate",
    "sgvideo.judge",
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The package modules `path` imports anywhere in its body (`from a import b` counts as
    importing `a.b` when that is a module, else `a`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in modules else base)
    return {t for t in targets if t in modules and t != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_import_graph_sees_function_level_imports() -> None:
    graph = _graph()
    assert "sgvideo.audio" in graph["sgvideo.cli"]  # imported inside a function
    assert "sgvideo.checkpoints.stage" in graph["sgvideo.checkpoints"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle() -> None:
    assert _cycle(_graph()) is None


def test_models_import_nothing_above_them() -> None:
    for name, imported in _graph().items():
        if name.startswith("sgvideo.models"):
            above = {m for m in imported if m.startswith(ABOVE_MODELS)}
            assert not above, f"{name} imports {sorted(above)}"
