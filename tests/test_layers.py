"""The house rules, checked: no import cycles, layers that point down, no forged values."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import zoho_async
from zoho_async import InvalidInputError, SyncConfig
from zoho_async._bulk import RunOptions

PACKAGE = Path(zoho_async.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_imports(path: Path) -> set[str]:
    """The zoho_async modules a module imports when it runs (not under TYPE_CHECKING)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("zoho_async"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("zoho_async"):
                # `from . import x` names submodules: the edge goes to them, not to the
                # package, whose __init__ is already being imported
                subs = {f"{module}.{a.name}" for a in node.names} & MODULES.keys()
                found.update(subs or {module})
        for inner in ast.iter_child_nodes(node):
            visit(inner)

    visit(tree)
    found.discard(name)
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: _runtime_imports(path) for name, path in MODULES.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_no_import_cycle_inside_the_package() -> None:
    assert _find_cycle(GRAPH) is None, " -> ".join(_find_cycle(GRAPH) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_relative_imports() -> None:
    assert "zoho_async._bulk._run" in GRAPH["zoho_async._bulk._iterator"]
    assert "zoho_async._protocol" in GRAPH["zoho_async._bulk._context"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("zoho_async._bulk")))
def test_the_bulk_engine_does_not_reach_up_into_the_session(module: str) -> None:
    above = {"zoho_async", "zoho_async._session"} | {
        m for m in MODULES if m.startswith(("zoho_async.cli", "zoho_async.testing"))
    }
    assert not GRAPH[module] & above


def test_the_core_never_imports_the_cli_or_the_fake() -> None:
    # __main__ is the command line's entry point, a shim in front of zoho_async.cli
    shells = ("zoho_async.cli", "zoho_async.testing", "zoho_async.__main__")
    core = [m for m in MODULES if not m.startswith(shells)]
    for module in core:
        bad = {m for m in GRAPH[module] if m.startswith(("zoho_async.cli", "zoho_async.testing"))}
        assert not bad, f"{module} imports {bad}"


def test_run_options_are_validated_once_when_built() -> None:
    assert RunOptions().wait_seconds == 3600.0
    assert RunOptions(wait_timeout=5).wait_seconds == 5
    with pytest.raises(InvalidInputError, match="poll_interval"):
        RunOptions(poll_interval=0)
    with pytest.raises(InvalidInputError, match="deadline"):
        RunOptions(deadline=-1)
    with pytest.raises(InvalidInputError, match="config"):
        RunOptions(config={"scheduleId": "1"})  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="stop"):
        RunOptions(stop=True)  # type: ignore[arg-type]
    assert RunOptions(config=SyncConfig(user_name="u")).config is not None
