"""The command line's pure parts: targets files, results files, exit codes, redaction;
and that it imports only the public API."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from zoho_async import InvalidInputError, SyncResult, SyncStatus, SyncTarget
from zoho_async.cli._config import Redactor
from zoho_async.cli._summary import exit_code
from zoho_async.cli._targets import read_results, read_targets, spec_from_arguments


def result(
    status: SyncStatus,
    *,
    outcome: str | None = None,
    error_type: str | None = None,
    waited: bool = False,
) -> SyncResult:
    return SyncResult(
        SyncTarget("1", "2"), 0, status, outcome=outcome, error_type=error_type, waited=waited
    )


@pytest.mark.parametrize(
    ("statuses", "wait", "expected"),
    [
        ([SyncStatus.STARTED, SyncStatus.ALREADY_RUNNING], False, 0),
        ([SyncStatus.STARTED, SyncStatus.SKIPPED, SyncStatus.QUOTA_EXHAUSTED], False, 0),
        ([SyncStatus.STARTED, SyncStatus.FAILED], False, 1),
        ([SyncStatus.CANCELLED], False, 1),
        ([], False, 0),
    ],
)
def test_exit_code_by_status(statuses: list[SyncStatus], wait: bool, expected: int) -> None:
    assert exit_code([result(s) for s in statuses], wait=wait, interrupted=False) == expected


def test_exit_code_with_wait_auth_and_interrupt() -> None:
    ok = result(SyncStatus.STARTED, outcome="Success")
    assert exit_code([ok], wait=True, interrupted=False) == 0
    assert exit_code([result(SyncStatus.STARTED, outcome="Failed")], wait=True, interrupted=False)
    # a wait that ended without a final status (the waiter marks what it waited for)
    unknown = result(SyncStatus.STARTED, waited=True)
    assert exit_code([unknown], wait=True, interrupted=False) == 1
    auth = result(SyncStatus.FAILED, error_type="TokenRefreshError")
    assert exit_code([ok, auth], wait=False, interrupted=False) == 3
    assert exit_code([ok], wait=False, interrupted=True) == 130


def test_arguments_workspace_alone_or_with_datasources() -> None:
    spec = spec_from_arguments(["11"], ["22", "22"])
    assert spec.workspaces == ((None, "11"), (None, "22"))
    assert spec.targets == ()
    spec = spec_from_arguments(["11", "5", "6"], [], sync_interval_id="9")
    assert spec.workspaces == ()
    assert [(t.datasource_id, t.sync_interval_id) for t in spec.targets] == [("5", "9"), ("6", "9")]


def test_csv_with_and_without_header(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("11,22\n11,23,77,99\n33,\n")
    spec = read_targets(str(plain))
    assert [
        (t.workspace_id, t.datasource_id, t.org_id, t.sync_interval_id) for t in spec.targets
    ] == [
        ("11", "22", None, None),
        ("11", "23", "77", "99"),
    ]
    assert spec.workspaces == ((None, "33"),)  # no datasource: the whole workspace
    headed = tmp_path / "headed.csv"
    headed.write_text("datasource_id,workspace_id,name\n22,11,Sales\n")
    (target,) = read_targets(str(headed)).targets
    assert (target.workspace_id, target.datasource_id, target.name) == ("11", "22", "Sales")


def test_targets_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("11,22\n\n11,22,1,2,3\n")
    with pytest.raises(InvalidInputError, match=r"t\.csv line 3: expected"):
        read_targets(str(bad))
    empty = tmp_path / "e.csv"
    empty.write_text("# nothing\n")
    with pytest.raises(InvalidInputError, match="no targets"):
        read_targets(str(empty))
    lines = tmp_path / "t.jsonl"
    lines.write_text('{"workspace_id": "1", "datasource_id": "2"}\n[1, 2]\n')
    with pytest.raises(InvalidInputError, match="line 2: expected a JSON object"):
        read_targets(str(lines))


def _row(ws: str, ds: str | None, status: str, interval: str | None = None) -> str:
    return json.dumps(
        {"workspace_id": ws, "datasource_id": ds, "sync_interval_id": interval, "status": status}
    )


def test_results_file_later_lines_win(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        "\n".join(
            [
                _row("1", "2", "FAILED"),
                _row("1", "2", "STARTED"),
                _row("1", "3", "STARTED", interval="8"),
                _row("1", "4", "CANCELLED"),
                _row("5", None, "FAILED"),
                _row("1", None, "SKIPPED"),
            ]
        )
        + "\n"
    )
    previous = read_results(str(path), warn=pytest.fail)
    assert previous.done() == {("1", "2", None), ("1", "3", "8")}
    failed = previous.failed()
    assert [t.datasource_id for t in failed.targets] == ["4"]
    assert failed.workspaces == ((None, "5"),)  # a failed listing: list it again


def test_results_file_truncated_last_line_warns_bad_middle_line_fails(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(_row("1", "2", "STARTED") + "\n" + _row("1", "3", "STARTED")[:20])
    warnings: list[str] = []
    assert read_results(str(path), warn=warnings.append).done() == {("1", "2", None)}
    assert "line 2" in warnings[0]
    path.write_text("{oops\n" + _row("1", "2", "STARTED") + "\n")
    with pytest.raises(InvalidInputError, match="line 1: not valid JSON"):
        read_results(str(path), warn=warnings.append)


def test_redactor_masks_longest_first() -> None:
    redact = Redactor()
    redact.add("abcd1234", "abcd1234efgh", None, "ab")  # too short values are ignored
    assert redact("x abcd1234efgh y abcd1234 ab") == "x *** y *** ab"


# -- the command line uses the public API only ---------------------------------------------

CLI_DIR = Path(__file__).resolve().parents[1] / "zoho_async" / "cli"
CLI_PACKAGE = "zoho_async.cli"


def _imported(tree: ast.AST, package: str) -> Iterator[tuple[int, str]]:
    """Every (line, dotted name) a module imports: modules, and names taken from them."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def private_core_imports(source: str, package: str = CLI_PACKAGE) -> list[str]:
    """Imports of a private part of zoho_async (``zoho_async._x``, ``zoho_async.testing._x``,
    also written ``.._x`` or ``from zoho_async import _x``), outside the cli package."""
    found = []
    for line, name in _imported(ast.parse(source), package):
        parts = name.split(".")
        if parts[0] != "zoho_async" or name == CLI_PACKAGE or name.startswith(CLI_PACKAGE + "."):
            continue
        if any(p.startswith("_") and not p.endswith("__") for p in parts[1:]):
            found.append(f"line {line}: {name}")
    return found


@pytest.mark.parametrize(
    ("source", "private"),
    [
        ("from zoho_async import AnalyticsSession, __version__", False),
        ("from zoho_async.testing import FakeZoho", False),
        ("import zoho_async.testing", False),
        ("from ._config import REDACTOR\nfrom . import _run", False),
        ("from zoho_async.cli._targets import check_id", False),
        ("from zoho_async._dispatch import Prepared", True),
        ("import zoho_async._errors", True),
        ("from zoho_async import _session", True),
        ("from .._validation import check_id", True),
        ("from .. import _models", True),
        ("from ..testing._fake import FakeZoho", True),
        ("from zoho_async.testing import _faults", True),
        ("import typing\nif typing.TYPE_CHECKING:\n    from .._session import X", True),
    ],
)
def test_private_import_detector(source: str, private: bool) -> None:
    assert bool(private_core_imports(source)) is private


def test_cli_imports_only_the_public_api() -> None:
    modules = sorted(CLI_DIR.glob("*.py"))
    assert len(modules) > 5  # the scan found the package
    offenders = {
        path.name: found
        for path in modules
        if (found := private_core_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
