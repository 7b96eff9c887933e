"""What to sync: ids from the command line, targets files, and previous results files.

A targets file is CSV (``workspace_id,datasource_id[,org_id,sync_interval_id]``, header
optional) or JSON Lines (one object per line with those keys). Blank lines and lines
starting with ``#`` are ignored. An empty ``datasource_id`` means "every syncable datasource
of the workspace". A results file (``--output``) is JSON Lines with the same keys, so it is
also a valid targets file.

Every problem is an :class:`InvalidInputError` naming the file and line, raised before any
request, so a typo on line 900 never costs the quota of lines 1-899.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from zoho_async import (
    InvalidInputError,
    Journal,
    JournalState,
    SyncStatus,
    SyncTarget,
    check_id,
    is_ok,
)

__all__ = [
    "Key",
    "PreviousRun",
    "TargetSpec",
    "previous_run",
    "read_results",
    "read_targets",
    "spec_from_arguments",
    "target_key",
]


def target_key(target: SyncTarget) -> Key:
    """A target's identity across runs (:attr:`SyncTarget.key`)."""
    return target.key


Key = tuple[str, str | None, str | None]  # zoho_async._journal.Key
Workspace = tuple[str | None, str]  # (org_id, workspace_id)

_COLUMNS = ("workspace_id", "datasource_id", "org_id", "sync_interval_id")
_JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


def check_optional_id(value: str | None, what: str) -> str | None:
    """Like :func:`check_id`, but ``None`` (not given) passes through."""
    return None if value is None else check_id(value, what)


@attrs.frozen
class TargetSpec:
    """Whole workspaces to discover, and explicit targets, in the order given."""

    workspaces: tuple[Workspace, ...] = ()
    targets: tuple[SyncTarget, ...] = ()

    def __add__(self, other: TargetSpec) -> TargetSpec:
        # a workspace named twice is listed (and synced) once
        seen = dict.fromkeys(self.workspaces + other.workspaces)
        targets = dict.fromkeys(self.targets + other.targets)
        return TargetSpec(tuple(seen), tuple(targets))

    @property
    def empty(self) -> bool:
        return not self.workspaces and not self.targets


def spec_from_arguments(
    ids: Iterable[str],
    workspaces: Iterable[str],
    *,
    sync_interval_id: str | None = None,
) -> TargetSpec:
    """``WORKSPACE_ID [DATASOURCE_ID ...]`` plus ``--workspace`` options."""
    ids = list(ids)
    interval = check_optional_id(sync_interval_id, "--sync-interval-id")
    found: list[Workspace] = [(None, check_id(w, "--workspace")) for w in workspaces]
    targets: list[SyncTarget] = []
    if ids:
        ws = check_id(ids[0], "WORKSPACE_ID")
        if len(ids) == 1:
            found.insert(0, (None, ws))
        for ds in ids[1:]:
            targets.append(SyncTarget(ws, check_id(ds, "DATASOURCE_ID"), sync_interval_id=interval))
    return TargetSpec(tuple(dict.fromkeys(found)), tuple(dict.fromkeys(targets)))


# -- targets files --------------------------------------------------------------------


def _open_text(path: str) -> str:
    """The whole text of ``path`` (``-`` is stdin); a one-line error when unreadable."""
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8-sig")  # Excel writes a BOM
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInputError(f"cannot read {path}: {reason}") from None


def _meaningful(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, line


def _is_jsonl(path: str, text: str) -> bool:
    suffix = Path(path).suffix.lower() if path != "-" else ""
    if suffix == ".csv":
        return False
    if suffix in _JSON_SUFFIXES:
        return True
    first = next(_meaningful(text), (0, ""))[1]
    return first.lstrip().startswith("{")


def _row_target(
    where: str, values: Mapping[str, Any], default_interval: str | None
) -> SyncTarget | Workspace:
    def get(name: str) -> str | None:
        value = values.get(name)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise InvalidInputError(f"{where}: {name} must be a string of digits")
        return value.strip() or None

    try:
        ws = check_id(get("workspace_id") or "", "workspace_id")
        ds = check_optional_id(get("datasource_id"), "datasource_id")
        org = check_optional_id(get("org_id"), "org_id")
        interval = check_optional_id(get("sync_interval_id"), "sync_interval_id")
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None
    if ds is None:
        return (org, ws)
    name = values.get("name")
    return SyncTarget(
        ws,
        ds,
        org,
        sync_interval_id=interval or default_interval,
        name=name if isinstance(name, str) and name else None,
    )


def _csv_rows(path: str, text: str) -> Iterator[tuple[str, dict[str, str]]]:
    header: list[str] | None = None
    for number, line in _meaningful(text):
        where = f"{path} line {number}"
        try:
            cells = [c.strip() for c in next(csv.reader(io.StringIO(line)))]
        except (csv.Error, StopIteration) as exc:
            raise InvalidInputError(f"{where}: not valid CSV ({exc})") from None
        if header is None and "workspace_id" in (c.lower() for c in cells):
            header = [c.lower() for c in cells]
            continue
        if header is not None:
            yield where, dict(zip(header, cells, strict=False))
            continue
        if not 1 <= len(cells) <= len(_COLUMNS):
            raise InvalidInputError(
                f"{where}: expected workspace_id,datasource_id[,org_id,sync_interval_id], "
                f"got {len(cells)} columns"
            )
        yield where, dict(zip(_COLUMNS, cells, strict=False))


def _jsonl_rows(path: str, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in _meaningful(text):
        where = f"{path} line {number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise InvalidInputError(f"{where}: expected a JSON object")
        if "kind" in value:
            continue  # a journal's own line (run, baseline, intent): not a target
        yield where, value


def read_targets(path: str, *, sync_interval_id: str | None = None) -> TargetSpec:
    """Parse a targets file (``-`` for stdin), CSV or JSON Lines; see the module doc."""
    default_interval = check_optional_id(sync_interval_id, "--sync-interval-id")
    text = _open_text(path)
    rows = _jsonl_rows(path, text) if _is_jsonl(path, text) else _csv_rows(path, text)
    workspaces: list[Workspace] = []
    targets: list[SyncTarget] = []
    for where, values in rows:
        found = _row_target(where, values, default_interval)
        if isinstance(found, SyncTarget):
            targets.append(found)
        else:
            workspaces.append(found)
    if not workspaces and not targets:
        raise InvalidInputError(f"{path}: no targets in the file")
    return TargetSpec(tuple(dict.fromkeys(workspaces)), tuple(dict.fromkeys(targets)))


# -- results files ----------------------------------------------------------------------


@attrs.frozen
class PreviousRun:
    """The last recorded result of each target of a results file (later lines win)."""

    latest: Mapping[Key, Mapping[str, Any]]

    def done(self) -> frozenset[Key]:
        """Targets ``--resume`` skips: STARTED or ALREADY_RUNNING, and UNCONFIRMED, which
        may have started (a re-send could spend a second manual sync)."""
        keep = {
            SyncStatus.STARTED.value,
            SyncStatus.ALREADY_RUNNING.value,
            SyncStatus.UNCONFIRMED.value,
        }
        return frozenset(
            k for k, row in self.latest.items() if row.get("status") in keep and k[1] is not None
        )

    def unconfirmed(self) -> tuple[Key, ...]:
        """UNCONFIRMED targets: ``--resume`` and ``--only-failed`` never re-send them."""
        value = SyncStatus.UNCONFIRMED.value
        return tuple(k for k, row in self.latest.items() if row.get("status") == value)

    def failed(self) -> TargetSpec:
        """The targets ``--only-failed`` re-runs: the rows that are not ok (the SDK's
        :func:`~zoho_async.is_ok`) except UNCONFIRMED ones and waits that ended without an
        outcome, which may have started or still be running.

        So FAILED and CANCELLED rows, and STARTED / ALREADY_RUNNING rows whose ``--wait``
        outcome was a failure (that sync has ended, so a re-send cannot overlap it). A
        failed row without a datasource id is a workspace whose listing failed: the whole
        workspace is listed again.
        """
        workspaces: list[Workspace] = []
        targets: list[SyncTarget] = []
        for (ws, ds, interval), row in self.latest.items():
            if not _rerun(row):
                continue
            org = row.get("org_id") if isinstance(row.get("org_id"), str) else None
            if ds is None:
                workspaces.append((org, ws))
            else:
                name = row.get("name")
                targets.append(
                    SyncTarget(
                        ws,
                        ds,
                        org,
                        sync_interval_id=interval,
                        name=name if isinstance(name, str) else None,
                    )
                )
        return TargetSpec(tuple(dict.fromkeys(workspaces)), tuple(targets))


def _rerun(row: Mapping[str, Any]) -> bool:
    """Whether ``--only-failed`` sends this results row again (see PreviousRun.failed)."""
    try:
        status = SyncStatus(row.get("status"))
    except ValueError:
        return False  # a status this version does not know: never guess a re-send
    if status is SyncStatus.UNCONFIRMED:
        return False
    outcome = row.get("outcome")
    if not isinstance(outcome, str):
        # no outcome: without --wait that is fine; after one, the sync may still be
        # running, so it is never re-sent (and is_ok without waited=True keeps it)
        outcome = None
    return not is_ok(status, outcome)


def read_results(path: str, *, warn: Callable[[str], None]) -> PreviousRun:
    """Read a results file (a journal) without taking it. A missing or unreadable file is
    an error (never an empty run: a typo must not resync everything); a torn last line (a
    killed run) is skipped with a warning; a bad line elsewhere is an error naming the
    line. Intent and baseline lines are not results."""
    state = Journal.read(path, warn)
    return previous_run(state)


def previous_run(state: JournalState) -> PreviousRun:
    """The results of a journal (opened by the run that resumes it)."""
    return PreviousRun(state.results)
