"""The end of a run: the exit code and the summary (counts per status, then failures).

Exit codes (also in ``--help`` and the README). Whether a result is ok is the SDK's one
rule, :attr:`zoho_async.SyncResult.ok`, so ``report.ok`` is True exactly when this exits 0
(short of exits 3 and 130):

==== =====================================================================================
0    every result ok: STARTED or ALREADY_RUNNING (with ``--wait``: and finished "Success"),
     SKIPPED (Local Drive, Snapshot), QUOTA_EXHAUSTED (re-running cannot fix these two) or
     CLAIMED (another run sharing the ``--shared`` store has the target)
1    some result not ok: FAILED, CANCELLED (``--deadline``), UNCONFIRMED (may have
     started; not re-sent), or with ``--wait`` finished with another outcome or did not
     finish in time
2    usage or input error (bad ids, unreadable targets or results file, unknown data centre)
3    authentication failure (the access token could not be obtained or was refused)
130  interrupted (Ctrl-C, SIGINT), after writing a result for every target
143  terminated (SIGTERM: ``timeout``, cron, CI), after writing a result for every target
==== =====================================================================================
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table

from zoho_async import SyncResult, SyncStatus

from ._config import REDACTOR

__all__ = [
    "AUTH_ERROR_TYPES",
    "EXIT_AUTH",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "exit_code",
    "print_summary",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, what shells report for a process killed by it

AUTH_ERROR_TYPES = frozenset(
    {"AuthError", "TokenError", "TokenRefreshError", "TokenThrottledError"}
)
_SHOWN_FAILURES = 20


#: Whether a result that is not ok was expected all the same (the demo's forbidden
#: datasource): such a result neither fails the exit code nor reads as a surprise.
Expected = Callable[[SyncResult], bool]


def _never(_result: SyncResult) -> bool:
    return False


def exit_code(
    results: Sequence[SyncResult],
    *,
    wait: bool,
    interrupted: bool,
    terminated: bool = False,
    expected: Expected = _never,
) -> int:
    """The documented exit code of a run (see the module docstring).

    ``wait`` is kept for callers; a waited result says so itself (``SyncResult.waited``),
    so the rule is :attr:`SyncResult.ok` alone, the same as ``SyncReport.ok``, except for
    results the caller ``expected`` to fail. ``terminated`` (SIGTERM) wins over
    ``interrupted``: 143 instead of 130.
    """
    if terminated:
        return EXIT_TERMINATED
    if interrupted:
        return EXIT_INTERRUPTED
    if any(r.error_type in AUTH_ERROR_TYPES for r in results):
        return EXIT_AUTH
    if not all(r.ok or expected(r) for r in results):
        return EXIT_FAILED
    return EXIT_OK


def _counts_table(results: Sequence[SyncResult]) -> Table:
    tally = Counter(r.status for r in results)
    table = Table(title="Sync results", title_justify="left")
    table.add_column("status")
    table.add_column("count", justify="right")
    for status in SyncStatus:
        table.add_row(status.value, str(tally.get(status, 0)))
    table.add_row("total", str(len(results)), style="bold")
    return table


def _outcomes_table(results: Sequence[SyncResult]) -> Table:
    tally = Counter(r.outcome or "no final status" for r in results if r.status.syncing)
    table = Table(title="Outcomes (--wait)", title_justify="left")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for outcome, count in tally.most_common():
        table.add_row(outcome, str(count))
    return table


_ZOHO_PREFIX = re.compile(r"^Zoho error \d+ (\([A-Z0-9_]+\) )?(\[HTTP \d+\])?: ")


def _message(result: SyncResult) -> str:
    # the code has its own column: keep Zoho's words, drop "Zoho error 7301 (...) [HTTP 403]: "
    return REDACTOR(_ZOHO_PREFIX.sub("", result.error_message or "") or "-")


def _failures_table(failures: Sequence[SyncResult], expected: Expected) -> Table:
    surprises = sum(1 for r in failures if not expected(r))
    title = f"Failures ({len(failures)})"
    if surprises < len(failures):
        title = f"Failures ({len(failures)}, {len(failures) - surprises} expected)"
    table = Table(title=title, title_justify="left")
    # ids are copied, never folded; the workspace and the interval are what a user needs
    # to find the datasource in Zoho and to name the target again with --targets
    table.add_column("workspace", no_wrap=True)
    table.add_column("datasource", no_wrap=True)
    table.add_column("interval", no_wrap=True)
    table.add_column("name")
    table.add_column("status")
    table.add_column("code")  # Zoho's code, or the error class for network errors
    table.add_column("message", ratio=1)
    for r in failures[:_SHOWN_FAILURES]:
        t = r.target
        table.add_row(
            t.workspace_id,
            t.datasource_id or "-",
            t.sync_interval_id or "-",
            t.name or "-",
            _status(r) + (" (expected)" if expected(r) else ""),
            str(r.error_code) if r.error_code is not None else (r.error_type or "-"),
            _message(r),
        )
    return table


def _status(r: SyncResult) -> str:
    return r.status.value if not r.status.ok else f"outcome: {r.outcome or 'unknown'}"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def print_summary(
    console: Console,
    results: Sequence[SyncResult],
    *,
    wait: bool,
    duration: float,
    http_requests: int,
    token_requests: int,
    output: str | None,
    interrupted: bool,
    terminated: bool = False,
    expected: Expected = _never,
    errors_only: bool = False,
) -> None:
    """Counts per status, outcomes (``--wait``), failures with codes and messages.

    ``errors_only`` (``--quiet``): the Failures table alone, and only when a result is not
    ok and was not ``expected``; a run that went as planned prints nothing.
    """
    failures = [r for r in results if not r.ok]
    if errors_only:
        if any(not expected(r) for r in failures):
            console.print(_failures_table(failures, expected))
            _more(console, failures, output)
        return
    console.print(_counts_table(results))
    if wait and any(r.status.syncing for r in results):
        console.print(_outcomes_table(results))
    if failures:
        console.print(_failures_table(failures, expected))
        _more(console, failures, output)
    line = (
        f"{_n(len(results), 'target')} in {duration:.1f} s, {_n(http_requests, 'HTTP request')}, "
        f"{_n(token_requests, 'token request')}"
    )
    if output:
        line += f"; results in {output}"
    if terminated:
        line = "Terminated (SIGTERM): " + line
    elif interrupted:
        line = "Interrupted: " + line
    console.print(line, soft_wrap=True)


def _more(console: Console, failures: Sequence[SyncResult], output: str | None) -> None:
    if len(failures) > _SHOWN_FAILURES:
        more = len(failures) - _SHOWN_FAILURES
        where = f"see {output}" if output else "use --output FILE to keep them all"
        console.print(f"... and {more} more ({where})")
