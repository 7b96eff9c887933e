"""Bulk-sync value types: what to sync, what happened to each, and the run's report."""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import (
    ApiError,
    InvalidInputError,
    SyncInProgressError,
    SyncQuotaExceededError,
    ZohoError,
)
from ._models import SyncConfig
from ._validation import check_id, check_optional_id

if TYPE_CHECKING:
    from ._executor import CallResult

__all__ = [
    "BulkSyncError",
    "InvalidTarget",
    "PlanEntry",
    "PlannedTarget",
    "SyncPlan",
    "SyncReport",
    "SyncResult",
    "SyncStatus",
    "SyncTarget",
    "coerce_target",
    "is_ok",
    "outcome_succeeded",
    "result_from_call",
]


def _workspace_id(value: object) -> str:
    return check_id(value, "workspace_id")


def _datasource_id(value: object) -> str | None:
    return check_optional_id(value, "datasource_id")


def _org_id(value: object) -> str | None:
    return check_optional_id(value, "org_id")


def _interval_id(value: object) -> str | None:
    return check_optional_id(value, "sync_interval_id")


def _config(value: object) -> SyncConfig | None:
    if value is None or isinstance(value, SyncConfig):
        return value
    raise InvalidInputError(f"config must be a SyncConfig or None, got {type(value).__name__}")


@attrs.frozen
class SyncTarget:
    """One datasource to sync: workspace, datasource, and optionally org, config, interval.

    ``datasource_id`` is ``None`` only for entries discovered without one (Local Drive,
    Snapshot), which are reported as SKIPPED. ``name`` is for display.

    Example::

        SyncTarget("35130000001055707", "1767024000004595194", org_id="55522777")
    """

    workspace_id: str = attrs.field(converter=_workspace_id)
    datasource_id: str | None = attrs.field(converter=_datasource_id)
    org_id: str | None = attrs.field(default=None, converter=_org_id)
    config: SyncConfig | None = attrs.field(default=None, converter=_config)
    sync_interval_id: str | None = attrs.field(default=None, converter=_interval_id)
    name: str | None = attrs.field(default=None, eq=False)

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """The target's identity across runs: (workspace, datasource, sync interval).

        What a :class:`~zoho_async.Journal` and ``--resume`` match results by.
        """
        interval = self.sync_interval_id or (
            self.config.sync_interval_id if self.config is not None else None
        )
        return (self.workspace_id, self.datasource_id, interval)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (the config's credentials are never included)."""
        out: dict[str, Any] = {
            "workspace_id": self.workspace_id,
            "datasource_id": self.datasource_id,
            "org_id": self.org_id,
            "sync_interval_id": self.sync_interval_id
            or (self.config.sync_interval_id if self.config else None),
        }
        if self.name is not None:
            out["name"] = self.name
        return out


_TARGET_KEYS = frozenset(
    {"workspace_id", "datasource_id", "org_id", "config", "sync_interval_id", "name"}
)


def coerce_target(item: object) -> SyncTarget:
    """A ``SyncTarget`` from a target, a mapping with ``workspace_id`` and
    ``datasource_id`` (and optionally the other fields of :class:`SyncTarget`), or a
    ``(workspace_id, datasource_id[, org_id[, config]])`` tuple."""
    if isinstance(item, SyncTarget):
        return item
    if isinstance(item, Mapping):
        unknown = set(item) - _TARGET_KEYS
        if unknown or "workspace_id" not in item or "datasource_id" not in item:
            raise InvalidInputError(
                "a target mapping needs workspace_id and datasource_id and takes only "
                f"{sorted(_TARGET_KEYS)}; got the keys {sorted(map(str, item))}"
            )
        return SyncTarget(**{str(key): value for key, value in item.items()})
    if isinstance(item, tuple | list) and 2 <= len(item) <= 4:
        return SyncTarget(*item)
    raise InvalidInputError(
        "a target must be a SyncTarget, a (workspace_id, datasource_id) tuple or a mapping "
        f"with those keys, got {type(item).__name__}"
    )


@attrs.frozen
class InvalidTarget:
    """An input item that is not a valid target, kept so that it still gets its result.

    It is never sent. ``raw`` is a short ``repr`` of the item; ``workspace_id`` and
    ``datasource_id`` are the item's first two values as text (when it has them), so
    results files still show which row was wrong.

    Example::

        InvalidTarget.from_item(("ws", "not-an-id")).raw  # "('ws', 'not-an-id')"
    """

    raw: str
    workspace_id: str | None = None
    datasource_id: str | None = None
    org_id: None = None
    config: None = None
    sync_interval_id: None = None
    name: None = None

    @classmethod
    def from_item(cls, item: object) -> InvalidTarget:
        values: list[object] = list(item) if isinstance(item, tuple | list) else [item]
        shown = [None if v is None else str(v)[:64] for v in values[:2]]
        shown += [None] * (2 - len(shown))
        return cls(repr(item)[:200], shown[0], shown[1])

    def to_dict(self) -> dict[str, Any]:
        """The same keys as :meth:`SyncTarget.to_dict`."""
        return {
            "workspace_id": self.workspace_id,
            "datasource_id": self.datasource_id,
            "org_id": None,
            "sync_interval_id": None,
        }


@attrs.frozen
class PlannedTarget:
    """A target with what discovery already knows about it.

    What :meth:`AnalyticsSession.discover` yields, and what ``sync_many`` / ``iter_sync``
    accept beside plain targets. ``preset`` decides the result without a sync call
    (SKIPPED: no datasource id; QUOTA_EXHAUSTED: the listing showed no manual syncs left;
    FAILED or CANCELLED: the workspace could not be listed, with the error in ``reason``,
    ``error_code``, ``error_type`` and ``http_status``). ``baseline`` is the
    ``lastDataSyncTime`` text the listing showed before the sync, used to recognise the
    new sync's outcome with ``wait=True``.

    Example::

        async for planned in session.discover(["35130000001055707"]):
            print(planned.target.datasource_id, planned.preset)
    """

    target: SyncTarget
    preset: SyncStatus | None = None
    reason: str | None = None
    error_code: int | None = None
    error_type: str | None = None
    http_status: int | None = None
    baseline: str | None = None


class SyncStatus(enum.Enum):
    """What happened to one target.

    Whether a status is *ok* is decided by :func:`is_ok` (see :attr:`ok`); the table is
    in the README's "What counts as ok".
    """

    STARTED = "STARTED"
    ALREADY_RUNNING = "ALREADY_RUNNING"
    QUOTA_EXHAUSTED = "QUOTA_EXHAUSTED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    # The request may have reached Zoho and its listing could not tell whether the sync
    # started; it was not sent again (see RetryPolicy.resend_unconfirmed).
    UNCONFIRMED = "UNCONFIRMED"
    # Another run sharing the coordinator holds this target's claim: it syncs it (or did,
    # moments ago), so this run made no call. Not a failure.
    CLAIMED = "CLAIMED"

    @property
    def ok(self) -> bool:
        """Whether this status alone is ok: not FAILED, CANCELLED or UNCONFIRMED.

        SKIPPED (nothing to sync) and QUOTA_EXHAUSTED (no manual sync left today) are ok:
        re-running cannot change them. A STARTED or ALREADY_RUNNING *result* can still be
        not ok because of its wait; use :attr:`SyncResult.ok` for a result.
        """
        return self not in _NOT_OK_STATUSES

    @property
    def syncing(self) -> bool:
        """STARTED and ALREADY_RUNNING: a sync of the datasource was (being) run, so with
        ``wait=True`` the result carries its outcome."""
        return self in (SyncStatus.STARTED, SyncStatus.ALREADY_RUNNING)


_NOT_OK_STATUSES = frozenset({SyncStatus.FAILED, SyncStatus.CANCELLED, SyncStatus.UNCONFIRMED})

# lastDataSyncStatus texts that mean the sync finished well, compared case-insensitively.
# Anything else that is final ("Failed", "Error", "Partial Success", ...) is a failed
# outcome: a list of good words fails safe when Zoho adds a new bad one.
SUCCESS_OUTCOMES = frozenset({"success", "successful", "succeeded", "completed"})


def outcome_succeeded(outcome: str) -> bool:
    """Whether Zoho's final ``lastDataSyncStatus`` text means the sync succeeded."""
    return outcome.strip().casefold() in SUCCESS_OUTCOMES


def is_ok(status: SyncStatus, outcome: str | None = None, *, waited: bool = False) -> bool:
    """The one definition of "ok", used by results, reports and the CLI's exit code.

    ==========================================  =====  =========
    status (and wait)                           ok?    CLI exit
    ==========================================  =====  =========
    STARTED / ALREADY_RUNNING, not waited       yes    0
    STARTED / ALREADY_RUNNING, outcome success  yes    0
    STARTED / ALREADY_RUNNING, other outcome    no     1
    STARTED / ALREADY_RUNNING, waited, no       no     1
    outcome (wait timed out or was stopped)
    QUOTA_EXHAUSTED, SKIPPED, CLAIMED           yes    0
    FAILED, CANCELLED, UNCONFIRMED              no     1
    ==========================================  =====  =========

    ``waited`` says the run waited for this sync's outcome (``wait=True``): a wait that
    ended without a final status is not ok, because nobody knows whether the data arrived.
    """
    if not status.ok:
        return False
    if not status.syncing:
        return True
    if outcome is not None:
        return outcome_succeeded(outcome)
    return not waited


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@attrs.frozen
class SyncResult:
    """The one result of one target of a bulk run.

    ``error_code`` is Zoho's code (``None`` for network failures and local errors);
    ``error_type`` the name of the error class. With ``wait=True``, ``waited`` is True for
    every STARTED / ALREADY_RUNNING result, ``outcome`` is Zoho's final
    ``lastDataSyncStatus`` ("Success", "Failed", ...) and ``completed_at`` its time;
    ``outcome`` stays ``None`` when the wait timed out or was stopped (the reason is in
    ``error_message``). :attr:`ok` applies :func:`is_ok`.
    """

    target: SyncTarget | InvalidTarget
    index: int
    status: SyncStatus
    error_code: int | None = None
    error_message: str | None = None
    http_status: int | None = None
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: str | None = None
    completed_at: datetime | None = None
    error_type: str | None = None
    waited: bool = False

    @property
    def ok(self) -> bool:
        """Not FAILED, CANCELLED or UNCONFIRMED, and a wait (if any) that ended in success.

        See :func:`is_ok` for the whole table.
        """
        return is_ok(self.status, self.outcome, waited=self.waited)

    def to_dict(self) -> dict[str, Any]:
        """A flat, JSON-safe dict (the results-file format, one per line)."""
        out = self.target.to_dict()
        out.update(
            index=self.index,
            status=self.status.value,
            error_code=self.error_code,
            error_type=self.error_type,
            error_message=self.error_message,
            http_status=self.http_status,
            attempts=self.attempts,
            started_at=_iso(self.started_at),
            finished_at=_iso(self.finished_at),
            outcome=self.outcome,
            completed_at=_iso(self.completed_at),
        )
        return out


def error_code(error: ZohoError | None) -> int | None:
    """Zoho's error code of ``error`` (``None`` for local and network failures)."""
    return error.code if isinstance(error, ApiError) and error.code else None


def error_type(error: ZohoError | None) -> str | None:
    return type(error).__name__ if error is not None else None


def error_message(error: ZohoError) -> str:
    return str(error)[:500]


def result_from_call(
    target: SyncTarget,
    index: int,
    call: CallResult,
    *,
    started_at: datetime,
    finished_at: datetime,
    why_cancelled: str,
    stopped: bool,
) -> SyncResult:
    """The result of a target whose Sync Data call ran to its end.

    204 (or 18073 answering a retry of an ambiguous attempt of ours, or a listing showing
    that an ambiguous attempt started the sync) is STARTED; an ambiguous attempt the
    listing cannot settle UNCONFIRMED; 18073 / 18072 otherwise ALREADY_RUNNING; 19000048
    QUOTA_EXHAUSTED; a call the deadline or a stop ended before it could finish
    CANCELLED (``why_cancelled``, or what the last attempt met); any other error FAILED.
    """
    common: dict[str, Any] = {
        "attempts": call.attempts,
        "http_status": call.http_status,
        "started_at": started_at,
        "finished_at": finished_at,
    }
    error = call.error
    if call.settled is not None:
        # an attempt whose answer was lost, shown started by Get Datasources: not re-sent
        return SyncResult(
            target,
            index,
            SyncStatus.STARTED,
            error_message=f"confirmed from Get Datasources: {call.settled}",
            **common,
        )
    if call.ok or call.ours_in_progress:
        return SyncResult(target, index, SyncStatus.STARTED, **common)
    if call.unconfirmed is not None:
        assert error is not None
        return SyncResult(
            target,
            index,
            SyncStatus.UNCONFIRMED,
            error_code=error_code(error),
            error_type=error_type(error),
            error_message=f"{error_message(error)}; not sent again, as Get Datasources "
            f"cannot tell whether it started: {call.unconfirmed}",
            **common,
        )
    if call.cancelled:
        why = why_cancelled
        if error is not None:
            cause = "stopped" if stopped else "deadline reached"
            why = f"{cause} while retrying ({error_message(error)})"
        return SyncResult(
            target,
            index,
            SyncStatus.CANCELLED,
            error_message=why,
            error_code=error_code(error),
            error_type=error_type(error),
            **common,
        )
    assert error is not None
    if isinstance(error, SyncInProgressError):
        status = SyncStatus.ALREADY_RUNNING
    elif isinstance(error, SyncQuotaExceededError):
        status = SyncStatus.QUOTA_EXHAUSTED
    else:
        status = SyncStatus.FAILED
    return SyncResult(
        target,
        index,
        status,
        error_code=error_code(error),
        error_message=error_message(error),
        error_type=error_type(error),
        **common,
    )


ROW_FIELDS = (
    "index",
    "workspace_id",
    "datasource_id",
    "org_id",
    "sync_interval_id",
    "name",
    "status",
    "error_code",
    "error_type",
    "error_message",
    "http_status",
    "attempts",
    "started_at",
    "finished_at",
    "outcome",
    "completed_at",
)


class BulkSyncError(ZohoError):
    """Raised by :meth:`SyncReport.raise_for_failures`; ``failed`` lists every result that
    is not ok (FAILED, CANCELLED, UNCONFIRMED, and failed or unknown wait outcomes)."""

    def __init__(self, message: str, failed: tuple[SyncResult, ...]) -> None:
        super().__init__(message)
        self.failed = failed


@attrs.frozen
class SyncReport:
    """Everything a bulk run did, one result per target in input order.

    Example::

        report = await session.sync_many(targets)
        print(report.counts, report.duration)
        report.raise_for_failures()
    """

    results: tuple[SyncResult, ...]
    duration: float = 0.0
    token_requests: int = 0
    http_requests: int = 0
    started_at: datetime | None = None

    @property
    def counts(self) -> dict[SyncStatus, int]:
        """Results per status (every status present, zeros included)."""
        tally = Counter(r.status for r in self.results)
        return {status: tally.get(status, 0) for status in SyncStatus}

    @property
    def failed(self) -> tuple[SyncResult, ...]:
        """The results whose status is FAILED (see :attr:`not_ok` for every failure)."""
        return tuple(r for r in self.results if r.status is SyncStatus.FAILED)

    @property
    def not_ok(self) -> tuple[SyncResult, ...]:
        """Every result that is not :attr:`SyncResult.ok`, in input order."""
        return tuple(r for r in self.results if not r.ok)

    @property
    def ok(self) -> bool:
        """True when every result is ok (:func:`is_ok`): none FAILED, CANCELLED or
        UNCONFIRMED, and every waited sync ended in success. The CLI exits 0 exactly then
        (unless interrupted or refused authentication)."""
        return not self.not_ok

    def raise_for_failures(self) -> None:
        """Raise :class:`BulkSyncError` listing every result that is not ok.

        The message counts them by status (or wait outcome) and by Zoho's code.
        """
        bad = self.not_ok
        if not bad:
            return
        kinds = Counter(_kind(r) for r in bad)
        detail = ", ".join(f"{kind} x{n}" for kind, n in kinds.most_common())
        codes = Counter(
            str(r.error_code or r.error_type) for r in bad if r.error_code or r.error_type
        )
        if codes:
            detail += "; codes: " + ", ".join(f"{c} x{n}" for c, n in codes.most_common(5))
        raise BulkSyncError(f"{len(bad)} of {len(self.results)} targets not ok ({detail})", bad)

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per result, keys in :data:`ROW_FIELDS` order (for CSV)."""
        rows = []
        for result in self.results:
            data = result.to_dict()
            rows.append({key: data.get(key) for key in ROW_FIELDS})
        return rows

    def to_json(self, **dumps_kwargs: Any) -> str:
        """The whole report as a JSON document."""
        doc = {
            "summary": {
                "total": len(self.results),
                "counts": {s.value: n for s, n in self.counts.items()},
                "ok": self.ok,
                "duration_seconds": round(self.duration, 3),
                "token_requests": self.token_requests,
                "http_requests": self.http_requests,
                "started_at": _iso(self.started_at),
            },
            "results": [r.to_dict() for r in self.results],
        }
        return json.dumps(doc, **dumps_kwargs)


def _kind(result: SyncResult) -> str:
    """How a result that is not ok failed, for messages: its status, or its outcome."""
    if not result.status.ok:
        return result.status.value
    if result.outcome is not None:
        return f"outcome {result.outcome!r}"
    return "no outcome"


@attrs.frozen
class PlanEntry:
    """What a run would do with one target: ``action`` is "sync", "skip" or "quota"."""

    target: SyncTarget
    action: str
    reason: str | None = None
    quota_left: int | None = None
    last_sync_status: str | None = None


@attrs.frozen
class SyncPlan:
    """A dry run: the syncs a run would send and the quota they would spend. Nothing sent."""

    entries: tuple[PlanEntry, ...]

    @property
    def to_sync(self) -> tuple[PlanEntry, ...]:
        return tuple(e for e in self.entries if e.action == "sync")

    @property
    def counts(self) -> Mapping[str, int]:
        return dict(Counter(e.action for e in self.entries))

    @property
    def quota_spend(self) -> int:
        """Manual syncs the run would spend (one per sync call that starts)."""
        return len(self.to_sync)

    def rows(self) -> Iterable[dict[str, Any]]:
        for entry in self.entries:
            row = entry.target.to_dict()
            row.update(
                action=entry.action,
                reason=entry.reason,
                quota_left=entry.quota_left,
                last_sync_status=entry.last_sync_status,
            )
            yield row
