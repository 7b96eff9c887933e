"""Writing results and listings: the results file, stdout formats, and tables.

The results file and the ``jsonl``/``csv`` stdout formats are written line by line as
results arrive and flushed each time: a run killed at any moment leaves complete lines
(at worst a partial last one, which ``--resume`` skips). ``json`` and ``table`` need the
whole run, so they are printed at the end.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from zoho_async import ROW_FIELDS, InvalidInputError, SyncResult

from ._config import REDACTOR

__all__ = [
    "FORMATS",
    "Column",
    "ResultStream",
    "ResultsFile",
    "console_for",
    "print_rows",
    "stdout_console",
    "stdout_guard",
]

FORMATS = ("table", "json", "jsonl", "csv")
Column = tuple[str, str]  # (key, title)


def _line(result: SyncResult) -> str:
    # the SDK never puts secrets in results; the redactor is the last line of defence
    return REDACTOR(json.dumps(result.to_dict(), ensure_ascii=False)) + "\n"


@contextlib.contextmanager
def stdout_guard() -> Iterator[None]:
    """Survive a reader that left (``| head``): the rest of stdout goes to /dev/null, so
    neither the run nor Python's final flush trips over the closed pipe."""
    try:
        yield
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())


class ResultsFile:
    """``--output``: JSON Lines, one ``SyncResult.to_dict()`` per line, flushed per line."""

    def __init__(self, path: str, *, append: bool) -> None:
        self.path = path
        try:
            self._file: IO[str] = Path(path).open(  # noqa: SIM115 - closed in close()
                "a" if append else "w", encoding="utf-8", newline="\n"
            )
        except OSError as exc:
            raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}") from None

    def write(self, result: SyncResult) -> None:
        self._file.write(_line(result))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ResultStream:
    """Results on stdout as they arrive (``jsonl``, ``csv``); other formats print nothing."""

    def __init__(self, fmt: str, out: IO[str]) -> None:
        self.fmt = fmt
        self._out = out
        self._csv: Any = None
        if fmt == "csv":
            self._csv = csv.DictWriter(out, fieldnames=ROW_FIELDS, lineterminator="\n")
            with stdout_guard():
                self._csv.writeheader()
                out.flush()

    def write(self, result: SyncResult) -> None:
        if self.fmt not in ("jsonl", "csv"):
            return
        with stdout_guard():
            if self.fmt == "jsonl":
                self._out.write(_line(result))
            else:
                data = result.to_dict()
                self._csv.writerow({k: REDACTOR(_cell(data.get(k))) for k in ROW_FIELDS})
            self._out.flush()
            return
        self.fmt = "gone"  # the pipe closed: stop writing to it, keep running


def console_for(stream: IO[str]) -> Console:
    """A console on ``stream``; wide when it is not a terminal, so tables in pipes and CI
    logs are not folded into 80 columns."""
    console = Console(file=stream, highlight=False)
    if not console.is_terminal:
        console = Console(file=stream, highlight=False, width=200, color_system=None)
    return console


def stdout_console() -> Console:
    """:func:`console_for` the current stdout (looked up now: test runners swap it)."""
    return console_for(sys.stdout)


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    fmt: str,
    *,
    title: str | None = None,
) -> None:
    """A listing on stdout: a table, a JSON array, JSON Lines, or CSV with a header."""
    with stdout_guard():
        _print_rows(rows, columns, fmt, title)


def _print_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], fmt: str, title: str | None
) -> None:
    out = sys.stdout
    keys = [key for key, _ in columns]
    if fmt == "json":
        out.write(json.dumps([dict(r) for r in rows], indent=2, ensure_ascii=False) + "\n")
    elif fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(dict(row), ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in keys})
    else:
        table = Table(title=title, title_justify="left")
        for _, heading in columns:
            table.add_column(heading, overflow="fold")
        for row in rows:
            table.add_row(*(_cell(row.get(k)) or "-" for k in keys))
        stdout_console().print(table)
    out.flush()
