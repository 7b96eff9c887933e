"""The README's headline claims name the tests that hold them: those tests must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# "tests/test_x.py::test_name", or "::test_name" for another test of the file named before
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?::(\w+)`")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_test_the_readme_names_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    current: str | None = None
    named: list[tuple[str, str]] = []
    for match in REFERENCE.finditer(text):
        current = match.group(1) or current
        assert current is not None, f"{match.group(0)} names no file"
        named.append((current, match.group(2)))
    assert len(named) >= 8  # the headline list names its tests
    missing = [f"{file}::{name}" for file, name in named if name not in _test_names(ROOT / file)]
    assert not missing, missing
