"""``Journal``: a results file written ahead, so that a killed run resumes without a
second sync.

A bulk run that writes a journal records, in one JSON Lines file:

- a ``{"kind": "run"}`` line when it opens the file (run id, host, pid, time);
- before its first sync of a workspace, a ``{"kind": "baseline"}`` line: the workspace
  listing that settles ambiguous attempts (``syncUsed``, ``totalSyncAllowed``,
  ``lastDataSyncStatus`` and ``lastDataSyncTime`` per datasource and interval);
- before each Sync Data request, a ``{"kind": "intent"}`` line: target, attempt, UTC time;
- after each result, the result line: ``SyncResult.to_dict()``, unchanged, without a
  ``kind``. Readers of results files (``--only-failed``, ``jq 'select(.status)'``) see one
  result per target, as before.

**Durability.** Each line is one ``write(2)`` on a file opened with ``O_APPEND``, written
before the request it announces is sent: a process killed at any moment (SIGKILL, OOM)
leaves whole lines, at worst a torn last one, and the kernel keeps what was written even
though the process is gone. Against a power cut or a kernel crash, lines are ``fsync``-ed
in batches: at most ``sync_every`` seconds (100 ms by default) after they are written, by
the run's flusher, and at the end. ``sync_every=0`` instead ``fsync``-s each intent before
its request goes out (intents written at the same moment share one ``fsync``); that costs
about 40% of the throughput of a run against a fast server (benchmark scenario 10), where
the batches cost a few percent.

**Resuming.** Opening a journal reads it. A target whose last result is STARTED,
ALREADY_RUNNING or UNCONFIRMED is done: a run that meets it again hands back that result
and sends nothing. An intent without a result after it is *pending*: the run that wrote
it was killed between sending (perhaps) and recording. The resuming run waits until
every pending intent is at least the request timeout old (a request is never on the
wire longer), lists each of their workspaces once, and settles each intent against the
baseline journaled before it (``zoho_async._settle.settle``): started - STARTED, not
sent again; not started - sent as usual; cannot tell - UNCONFIRMED. The same listing is
the resuming run's own baseline, so settling costs nothing more than a run needs anyway.

**One run at a time.** The open file holds an exclusive OS lock (``flock``) for the
whole run; a second process opening it gets :class:`JournalInUseError` at once. The
lock dies with its process, so a killed run never leaves a stale lock behind. (``flock``
on a network file system may be local to each host.)

**A torn last line** (a kill in the middle of a write) is ignored with a warning and cut
off the file, so the next line does not run into it. A line broken that way by older
versions (the fragment of a torn line glued to the next line) is read from the intact
line at its end, with a warning.
"""

from __future__ import annotations

import collections
import errno
import json
import logging
import os
import socket
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs

from ._errors import InvalidInputError
from ._results import InvalidTarget, SyncResult, SyncStatus, SyncTarget
from ._settle import DsState, Snapshot

__all__ = [
    "DONE",
    "Intent",
    "Journal",
    "JournalInUseError",
    "JournalState",
    "Key",
    "read_journal",
    "result_from_row",
    "target_key",
]

log = logging.getLogger("zoho_async")

# (workspace_id, datasource_id, sync interval id): a target's identity across runs
Key = tuple[str, str | None, str | None]

# Results after which a target is done: a sync started (or may have), so never re-sent.
DONE = frozenset({SyncStatus.STARTED, SyncStatus.ALREADY_RUNNING, SyncStatus.UNCONFIRMED})


def target_key(target: SyncTarget) -> Key:
    """The identity of a target across runs: :attr:`SyncTarget.key`."""
    return target.key


class JournalInUseError(InvalidInputError):
    """The journal is open in another run (another process holds its lock).

    Example::

        try:
            await session.sync_many(targets, journal="run.jsonl")
        except JournalInUseError as exc:
            print("another run is still writing it:", exc)
    """


# -- reading ---------------------------------------------------------------------------


@attrs.define
class _Base:
    """A journaled baseline, and what the journal says happened since it."""

    snapshot: Snapshot | None
    started: collections.Counter[str] = attrs.field(factory=collections.Counter)
    doubtful: set[str] = attrs.field(factory=set)  # an UNCONFIRMED result since


@attrs.frozen
class Intent:
    """A Sync Data request a run was about to send (or sent) and never recorded the end of.

    ``baseline`` is the workspace listing journaled before it (``None``: none was);
    ``ours`` counts the syncs of the same datasource that the journal shows started since
    that baseline (an earlier interval); ``doubtful`` is True when one of them is
    UNCONFIRMED, so the counters cannot tell this one apart.
    """

    key: Key
    org_id: str | None
    attempt: int
    at: datetime
    line: int
    baseline: Snapshot | None
    ours: int = 0
    doubtful: bool = False


@attrs.frozen
class JournalState:
    """What a journal holds: the last result of each target and the pending intents.

    ``results`` maps a target's :data:`Key` to its last result row (a workspace whose
    listing failed has ``None`` as datasource); ``pending`` the targets whose last intent
    has no result after it. ``owner`` is the last run line (``run``, ``host``, ``pid``,
    ``at``), to name who holds a journal that is in use; ``runs`` the ids of every run
    that wrote the journal (they are also the owners of those runs' claims).
    """

    results: Mapping[Key, Mapping[str, Any]] = attrs.field(factory=dict)
    pending: Mapping[Key, Intent] = attrs.field(factory=dict)
    owner: Mapping[str, Any] | None = None
    runs: frozenset[str] = frozenset()  # the ids of every run that wrote it

    def done(self) -> frozenset[Key]:
        """Targets never sent again: last result STARTED, ALREADY_RUNNING or UNCONFIRMED."""
        values = {status.value for status in DONE}
        return frozenset(
            key
            for key, row in self.results.items()
            if row.get("status") in values and key[1] is not None
        )

    def unconfirmed(self) -> tuple[Key, ...]:
        value = SyncStatus.UNCONFIRMED.value
        return tuple(key for key, row in self.results.items() if row.get("status") == value)


def _lines(data: bytes, path: str, warn: Callable[[str], None]) -> Iterator[tuple[int, Any]]:
    """(line number, JSON value) of every line of ``data`` (which ends with a newline)."""
    for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise InvalidInputError(f"cannot read {path}: line {number} is not UTF-8") from None
        if not text or text.startswith("#"):
            continue
        try:
            yield number, json.loads(text)
            continue
        except json.JSONDecodeError as exc:
            error = exc
        intact = _intact_tail(text)
        if intact is None:
            raise InvalidInputError(f"{path} line {number}: not valid JSON ({error.msg})")
        warn(
            f"{path} line {number}: the fragment of a torn line is glued to its start "
            "(written by an older version); reading the intact line after it"
        )
        yield number, intact


def _intact_tail(text: str) -> Any:
    """The JSON object that ends ``text`` after a torn fragment, or ``None``."""
    start = text.find('{"', 1)
    while start > 0:
        try:
            return json.loads(text[start:])
        except json.JSONDecodeError:
            start = text.find('{"', start + 1)
    return None


def _text(row: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> str | None:
    value = row.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        if required:
            raise InvalidInputError(f"{where}: no {name}")
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}: {name} must be a string")
    return value


def _row_key(row: Mapping[str, Any], where: str) -> Key:
    ws = _text(row, "workspace_id", where, required=True)
    assert ws is not None
    return (ws, _text(row, "datasource_id", where), _text(row, "sync_interval_id", where))


def read_journal(
    data: bytes, path: str, warn: Callable[[str], None] | None = None
) -> tuple[JournalState, int]:
    """Parse a journal (or any results file); returns its state and the length of its
    intact part (everything up to its last newline: a torn last line is left out)."""
    warn = warn or log.warning
    intact = data.rfind(b"\n") + 1
    if intact < len(data) and data[intact:].strip():
        number = data.count(b"\n") + 1
        warn(
            f"{path} line {number}: ignoring an incomplete last line "
            "(a run killed while writing it)"
        )
    results: dict[Key, Mapping[str, Any]] = {}
    intents: dict[Key, tuple[Mapping[str, Any], int, _Base | None]] = {}
    bases: dict[str, list[_Base]] = {}  # workspace -> every baseline journaled for it
    owner: Mapping[str, Any] | None = None
    runs: set[str] = set()
    for number, row in _lines(data[:intact], path, warn):
        where = f"{path} line {number}"
        if not isinstance(row, dict):
            raise InvalidInputError(f"{where}: expected a JSON object")
        kind = row.get("kind")
        if kind == "run":
            owner = row
            if isinstance(row.get("run"), str):
                runs.add(row["run"])
        elif kind == "baseline":
            ws = _text(row, "workspace_id", where, required=True)
            assert ws is not None
            bases.setdefault(ws, []).append(_Base(_snapshot_from_row(row)))
        elif kind == "intent":
            key = _row_key(row, where)
            if key[1] is None:
                raise InvalidInputError(f"{where}: an intent without a datasource_id")
            latest = bases.get(key[0])
            intents[key] = (row, number, latest[-1] if latest else None)
        elif kind is not None:
            continue  # a line of a later version: not ours to judge
        elif "status" in row:
            key = _row_key(row, where)
            results[key] = row
            intents.pop(key, None)
            if key[1] is not None:
                # every baseline of the workspace so far: this start came after each
                for base in bases.get(key[0], ()):
                    if row["status"] == SyncStatus.STARTED.value:
                        base.started[key[1]] += 1
                    elif row["status"] == SyncStatus.UNCONFIRMED.value:
                        base.doubtful.add(key[1])
        else:
            raise InvalidInputError(f"{where}: not a results line (no status)")
    pending = {
        key: _intent(key, row, number, base, f"{path} line {number}")
        for key, (row, number, base) in intents.items()
    }
    return JournalState(results, pending, owner, frozenset(runs)), intact


def _intent(
    key: Key, row: Mapping[str, Any], number: int, base: _Base | None, where: str
) -> Intent:
    try:
        at = datetime.fromisoformat(str(row.get("at")))
    except ValueError:
        raise InvalidInputError(f"{where}: an intent without a valid time") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    attempt = row.get("attempt")
    ds = key[1] or ""
    return Intent(
        key=key,
        org_id=_text(row, "org_id", where),
        attempt=attempt if isinstance(attempt, int) and attempt > 0 else 1,
        at=at,
        line=number,
        baseline=None if base is None else base.snapshot,
        ours=0 if base is None else base.started[ds],
        doubtful=base is not None and ds in base.doubtful,
    )


def _snapshot_row(snapshot: Snapshot) -> dict[str, Any]:
    return {
        ds: {
            "syncUsed": state.sync_used,
            "totalSyncAllowed": state.allowed,
            "lastDataSyncStatus": state.status,
            "lastDataSyncTime": state.text,
            "intervals": {
                interval: {"lastDataSyncStatus": status, "lastDataSyncTime": text}
                for interval, (status, text) in state.intervals.items()
            },
        }
        for ds, state in snapshot.datasources.items()
    }


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _snapshot_from_row(row: Mapping[str, Any]) -> Snapshot | None:
    entries = row.get("datasources")
    if not isinstance(entries, dict):
        return None  # the run's baseline listing failed: nothing to settle against
    states: dict[str, DsState] = {}
    for ds, entry in entries.items():
        if not isinstance(entry, dict):
            continue
        intervals = entry.get("intervals")
        states[str(ds)] = DsState(
            sync_used=_int(entry.get("syncUsed")),
            allowed=_int(entry.get("totalSyncAllowed")),
            status=_str(entry.get("lastDataSyncStatus")),
            text=_str(entry.get("lastDataSyncTime")) or "",
            intervals={
                str(i): (_str(v.get("lastDataSyncStatus")), _str(v.get("lastDataSyncTime")) or "")
                for i, v in (intervals.items() if isinstance(intervals, dict) else ())
                if isinstance(v, dict)
            },
        )
    return Snapshot(0.0, states)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def result_from_row(
    target: SyncTarget | InvalidTarget, index: int, row: Mapping[str, Any]
) -> SyncResult:
    """A journaled result handed back to a run that meets its target again."""
    code = row.get("error_code")
    return SyncResult(
        target,
        index,
        SyncStatus(row.get("status")),
        error_code=_int(code),
        error_message=_str(row.get("error_message")),
        http_status=_int(row.get("http_status")),
        attempts=_int(row.get("attempts")) or 0,
        started_at=_time(row.get("started_at")),
        finished_at=_time(row.get("finished_at")),
        outcome=_str(row.get("outcome")),
        completed_at=_time(row.get("completed_at")),
        error_type=_str(row.get("error_type")),
    )


# -- the file ----------------------------------------------------------------------------


def _lock(fd: int) -> bool:
    """Take the file's exclusive lock without waiting; False when another process has it."""
    if sys.platform == "win32":  # pragma: no cover - not run in CI
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Journal:
    """A results file that is also a write-ahead journal; pass it as ``journal=``.

    ``sync_many``, ``iter_sync`` and ``sync_workspaces`` take a ``Journal`` or a path. The
    run opens it (creating it unless ``create=False``), resumes what it holds (see the
    module docstring: done targets come back with their journaled result, intents without
    a result are settled from a fresh listing), writes ahead as it goes, and closes it at
    the end. ``fresh=True`` starts the file over (once the lock is held). ``redact``
    filters every line before it is written. ``sync_every``: lines reach the disk
    (``fsync``) at most this many seconds after they are written; 0 syncs each intent
    before its request is sent (safer against a power cut, much slower).

    Example::

        report = await session.sync_many(targets, journal="nightly.jsonl")
        # killed half way? the same call again resumes without a second sync
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fresh: bool = False,
        create: bool = True,
        redact: Callable[[str], str] | None = None,
        warn: Callable[[str], None] | None = None,
        sync_every: float = 0.1,
    ) -> None:
        if isinstance(sync_every, bool) or not isinstance(sync_every, int | float):
            raise InvalidInputError("sync_every must be a number of seconds")
        if not 0 <= sync_every <= 60:
            raise InvalidInputError("sync_every must be between 0 and 60 seconds")
        self.sync_every = float(sync_every)
        self.path = Path(path)
        self.fresh = fresh
        self.create = create
        self._redact = redact
        self._warn = warn or log.warning
        self._fd: int | None = None
        self._state: JournalState | None = None
        self.run_id = uuid.uuid4().hex
        self._baselines: set[tuple[str | None, str]] = set()
        self._unsettled: set[Key] = set()
        self._done: frozenset[Key] = frozenset()
        self._written = 0  # lines written by this process
        self._synced = 0  # of which known to be on disk
        self._flushing: anyio.Event | None = None
        self.lines = 0  # lines this run appended (for the benchmarks)

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, open={self._fd is not None})"

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    @property
    def state(self) -> JournalState:
        """What the journal held when it was opened (opens it if needed)."""
        if self._state is None:
            self.open()
        assert self._state is not None
        return self._state

    def open(self) -> JournalState:
        """Lock the file, read it, cut a torn last line, and start this run's part.

        Raises :class:`JournalInUseError` when another process holds the file, and
        ``InvalidInputError`` when it cannot be read or written or is not a journal.
        Opening an open journal returns its state again.
        """
        if self._fd is not None:
            assert self._state is not None
            return self._state
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if self.create else 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except FileNotFoundError as exc:
            raise InvalidInputError(f"cannot read {self.path}: {exc.strerror}") from None
        except OSError as exc:
            raise InvalidInputError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            state = self._take(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._state = fd, state
        # one open is one run's part of the file
        self.run_id = uuid.uuid4().hex
        self._baselines.clear()
        self._unsettled = set(state.pending)
        self._done = state.done()
        try:
            self._append_now(
                {
                    "kind": "run",
                    "run": self.run_id,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "at": _utc_now(),
                }
            )
        except OSError as exc:
            self.close()
            raise InvalidInputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return state

    def _take(self, fd: int) -> JournalState:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            # a pipe or a device (-o /dev/stdout): written, never read back or resumed
            return JournalState()
        if not _lock(fd):
            owner = _owner(self.path)
            raise JournalInUseError(
                f"{self.path} is in use by another run{owner}: a journal belongs to one "
                "run at a time (wait for it to end, or use another file)"
            )
        if self.fresh:
            os.ftruncate(fd, 0)
            return JournalState()
        data = _read_all(fd)
        state, intact = read_journal(data, str(self.path), self._warn)
        if intact < len(data):
            os.ftruncate(fd, intact)  # so the next line does not run into the fragment
        return state

    @staticmethod
    def read(
        path: str | os.PathLike[str], warn: Callable[[str], None] | None = None
    ) -> JournalState:
        """Read a journal (or any results file) without taking it: a snapshot of a file
        another run may still be writing. Raises ``InvalidInputError`` when it cannot be
        read or is not one.

        Example::

            state = Journal.read("nightly.jsonl")
            print(len(state.done()), "done,", len(state.pending), "pending")
        """
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]  # a byte-order mark (an editor's)
        return read_journal(data, os.fspath(path), warn)[0]

    def close(self) -> None:
        """Flush to disk and release the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _fsync(fd)
        except OSError as exc:
            log.warning("journal %s: fsync at close failed: %s", self.path, exc)
        finally:
            os.close(fd)  # releases the lock

    def __enter__(self) -> Journal:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing (the run's side) ----------------------------------------------------------

    def _encode(self, row: Mapping[str, Any]) -> bytes:
        # compact: a journal line per request and per result is most of its cost
        text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        if self._redact is not None:
            text = self._redact(text)
        return (text + "\n").encode("utf-8")

    def _write(self, row: Mapping[str, Any]) -> int:
        """Append one line (one ``write`` unless the kernel takes part of it); its number."""
        return self._append(self._encode(row))

    def _append(self, data: bytes) -> int:
        if self._fd is None:
            raise InvalidInputError(f"journal {self.path} is not open")
        while data:
            written = os.write(self._fd, data)
            data = data[written:]
        self._written += 1
        self.lines += 1
        return self._written

    def _append_now(self, row: Mapping[str, Any]) -> None:
        """Append and fsync in this thread (outside a run: opening, a CLI's last lines)."""
        number = self._write(row)
        assert self._fd is not None
        _fsync(self._fd)
        self._synced = max(self._synced, number)

    async def _durable(self, number: int) -> None:
        """Return once line ``number`` is on disk; concurrent callers share one fsync."""
        while self._synced < number:
            if self._flushing is not None:
                await self._flushing.wait()
                continue
            done = self._flushing = anyio.Event()
            upto, fd = self._written, self._fd
            try:
                if fd is None:
                    raise OSError(f"journal {self.path} was closed")
                await anyio.to_thread.run_sync(_fsync, fd)
                self._synced = max(self._synced, upto)
            finally:
                self._flushing = None
                done.set()

    def is_unsettled(self, key: Key) -> bool:
        """Whether ``key`` has a pending intent this run has not settled: its results are
        not written (the intent must stay pending for the next resume, never be cleared
        by, say, a CANCELLED line)."""
        return key in self._unsettled

    def is_done(self, key: Key) -> bool:
        """Whether ``key`` was done when the journal was opened (see
        :meth:`JournalState.done`): never sent again."""
        return key in self._done

    def settled(self, key: Key) -> None:
        """The run settled ``key``'s pending intent: its results may be written again."""
        self._unsettled.discard(key)

    def wrote_baseline(self, key: tuple[str | None, str]) -> bool:
        return key in self._baselines

    def baseline(self, key: tuple[str | None, str], snapshot: Snapshot | None) -> None:
        """The listing a workspace's attempts are settled against, before its first send.

        Not fsync-ed by itself: the intent that follows it is, and that covers it.
        """
        if key in self._baselines:
            return
        org_id, workspace_id = key
        self._write(
            {
                "kind": "baseline",
                "org_id": org_id,
                "workspace_id": workspace_id,
                "at": _utc_now(),
                "datasources": None if snapshot is None else _snapshot_row(snapshot),
            }
        )
        self._baselines.add(key)

    async def intent(
        self, target: SyncTarget, org_id: str | None, index: int, attempt: int
    ) -> None:
        """Before a Sync Data request is sent: what, which attempt, when. Written before
        it returns; on disk too with ``sync_every=0`` (else within ``sync_every``)."""
        workspace_id, datasource_id, interval = target_key(target)
        text = _intent_line(index, org_id, workspace_id, datasource_id, interval, attempt)
        if text is not None:
            number = self._append(text.encode("ascii"))
        else:
            row = {
                "kind": "intent",
                "index": index,
                "org_id": org_id,
                "workspace_id": workspace_id,
                "datasource_id": datasource_id,
                "sync_interval_id": interval,
                "attempt": attempt,
                "at": _utc_now(),
            }
            number = self._write(row)
        if self.sync_every == 0:
            await self._durable(number)

    async def flush(self) -> None:
        """``fsync`` what was written so far (the run's flusher calls it every
        ``sync_every`` seconds)."""
        if self._synced < self._written:
            await self._durable(self._written)

    def result(self, result: SyncResult) -> bool:
        """A target's result, the line readers of the results file see; False when it is
        not written (a pending intent this run has not settled).

        Written at once, fsync-ed with the next intent or at :meth:`close`: a result lost
        to a power cut leaves its intent pending, and the next resume settles it.
        """
        target = result.target
        if isinstance(target, SyncTarget) and target.datasource_id is not None:
            key = target_key(target)
            # a pending intent this run has not settled stays pending; a target done
            # before is never sent again, so no later line may say otherwise (say, a
            # CANCELLED one for the unpulled rest of a cancelled run)
            if key in self._unsettled or key in self._done:
                return False
        self._write(result.to_dict())
        return True

    def record(self, result: SyncResult) -> None:
        """:meth:`result`, fsync-ed at once: a CLI's results for targets the run never
        reported (interrupted before they were handed to it)."""
        if self.result(result) and self._fd is not None:
            _fsync(self._fd)
            self._synced = self._written


def _fsync(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        # a pipe or a device cannot be synced (and cannot be resumed): nothing to wait for
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EROFS):
            raise


def _utc_now() -> str:
    """Now in UTC as ISO 8601 with milliseconds, as ``datetime.isoformat`` writes it.

    One per intent line: the second's text is kept and only the milliseconds are
    formatted, a third of the cost of ``datetime.now(UTC).isoformat(...)``.
    """
    now = time.time()
    second = int(now)
    if _second_text[0] != second:
        stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_text[:] = [second, stamp]
    return f"{_second_text[1]}.{int((now - second) * 1000):03d}+00:00"


_second_text: list[Any] = [-1, ""]  # the last second's [epoch second, text]


def _digits(value: str | None) -> bool:
    return value is None or (value.isascii() and value.isdigit())


def _intent_line(
    index: int,
    org_id: str | None,
    workspace_id: str,
    datasource_id: str | None,
    interval: str | None,
    attempt: int,
) -> str | None:
    """An intent line formatted by hand, or None when a field needs JSON's escaping.

    There is one per request, and json.dumps plus the caller's redaction was most of the
    journal's CPU cost (issue 12's overhead goal). Fields of ASCII digits need no escaping
    and cannot hold a secret (client ids and tokens have dots), so the line is exactly what
    ``json.dumps(row, separators=(",", ":"))`` writes, without either.
    """
    if datasource_id is None or not (_digits(org_id) and _digits(workspace_id)):
        return None
    if not _digits(datasource_id):
        return None
    if not _digits(interval):
        return None
    org = "null" if org_id is None else f'"{org_id}"'
    sync = "null" if interval is None else f'"{interval}"'
    return (
        f'{{"kind":"intent","index":{index:d},"org_id":{org},'
        f'"workspace_id":"{workspace_id}","datasource_id":"{datasource_id}",'
        f'"sync_interval_id":{sync},"attempt":{attempt:d},"at":"{_utc_now()}"}}\n'
    )


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)  # writes still append: the file is opened O_APPEND
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _owner(path: Path) -> str:
    """`` (pid N on HOST, since T)`` from the journal's last run line, best effort."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    for raw in reversed(data.split(b"\n")):
        if b'"run"' not in raw:
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict) or row.get("kind") != "run":
            continue
        return f" (pid {row.get('pid')} on {row.get('host')}, since {row.get('at')})"
    return ""
