"""Frozen value types for what Zoho returns, built from wire JSON by named constructors.

Ids stay strings (they exceed 32 bits). Every model keeps the ``raw`` dict it came from, so
fields we do not model are still at hand. Missing fields become ``None`` rather than errors:
the shape of a datasource entry varies by source family.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from ._errors import ConfigTooLongError, InvalidInputError, ProtocolError
from ._validation import check_optional_id
from ._zohotime import parse_zoho_time

__all__ = [
    "CONFIG_MAX_CHARS",
    "Datasource",
    "Org",
    "SyncConfig",
    "SyncInterval",
    "WorkspaceInfo",
    "parse_zoho_time",
]

CONFIG_MAX_CHARS = 3000
_FIELD_MAX_CHARS = 1000


def _str(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _int(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit() and len(text) < 20:
            return int(text)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _bool(raw: Mapping[str, Any], key: str) -> bool | None:
    value = raw.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _id(raw: Mapping[str, Any], key: str) -> str | None:
    """An id field: digits only, as a string; anything else is treated as absent."""
    value = _str(raw, key)
    if value is None:
        return None
    value = value.strip()
    return value if value.isascii() and value.isdigit() else None


@attrs.frozen
class Org:
    """One organisation the user belongs to (``GET /restapi/v2/orgs``)."""

    org_id: str
    name: str | None = None
    description: str | None = None
    created_by: str | None = None
    plan: str | None = None
    is_default: bool | None = None
    workspace_count: int | None = None
    role: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Org:
        """Build from one entry of ``data.orgs``; ``ProtocolError`` when it has no org id."""
        org_id = _id(raw, "orgId")
        if org_id is None:
            raise ProtocolError("org entry without a numeric orgId")
        count = _int(raw, "numberOfWorkspaces")
        if count is None:
            count = _int(raw, "numberOfworkspaces")  # both spellings occur in the wild
        return cls(
            org_id=org_id,
            name=_str(raw, "orgName"),
            description=_str(raw, "orgDesc"),
            created_by=_str(raw, "createdBy"),
            plan=_str(raw, "planName"),
            is_default=_bool(raw, "isDefault"),
            workspace_count=count,
            role=_str(raw, "role"),
            raw=dict(raw),
        )


@attrs.frozen
class WorkspaceInfo:
    """A workspace from ``GET /restapi/v2/workspaces``; ``owned`` is False for shared ones."""

    workspace_id: str
    name: str | None = None
    description: str | None = None
    org_id: str | None = None
    owned: bool = True
    created_time: datetime | None = None
    created_by: str | None = None
    is_default: bool | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any], *, owned: bool = True) -> WorkspaceInfo:
        """Build from one workspace entry; ``ProtocolError`` when it has no workspace id."""
        ws_id = _id(raw, "workspaceId")
        if ws_id is None:
            raise ProtocolError("workspace entry without a numeric workspaceId")
        created_ms = _int(raw, "createdTime")
        created = None
        if created_ms is not None and 0 <= created_ms < 2**53:
            try:
                created = datetime.fromtimestamp(created_ms / 1000, tz=UTC)
            except (OverflowError, OSError, ValueError):
                created = None
        return cls(
            workspace_id=ws_id,
            name=_str(raw, "workspaceName"),
            description=_str(raw, "workspaceDesc"),
            org_id=_id(raw, "orgId"),
            owned=owned,
            created_time=created,
            created_by=_str(raw, "createdBy"),
            is_default=_bool(raw, "isDefault"),
            raw=dict(raw),
        )


@attrs.frozen
class SyncInterval:
    """One sync interval of a datasource that has several."""

    sync_interval_id: str
    last_sync_status: str | None = None
    last_sync_time: datetime | None = None
    last_sync_time_raw: str | None = None
    schedule: str | None = None
    next_schedule_time_raw: str | None = None
    sync_used: int | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> SyncInterval | None:
        """Build from one ``syncIntervals`` entry; ``None`` when it has no interval id."""
        interval_id = _id(raw, "syncIntervalId")
        if interval_id is None:
            return None
        last_raw = _str(raw, "lastDataSyncTime")
        return cls(
            sync_interval_id=interval_id,
            last_sync_status=_str(raw, "lastDataSyncStatus"),
            last_sync_time=parse_zoho_time(last_raw),
            last_sync_time_raw=last_raw,
            schedule=_str(raw, "schedule"),
            next_schedule_time_raw=_str(raw, "nextScheduleTime"),
            sync_used=_int(raw, "syncUsed"),
            raw=dict(raw),
        )


@attrs.frozen
class Datasource:
    """One entry of ``GET /workspaces/{ws}/datasources``.

    ``datasource_id`` is ``None`` for "Local Drive" and "Snapshot" entries, which cannot be
    synced (see :attr:`skip_reason`). ``intervals`` lists the sync intervals when there are
    several; ``sync_interval_id`` is set when there is exactly one.

    Example::

        for ds in await ws.get_datasources():
            if ds.syncable and not ds.quota_exhausted:
                await ws.sync_data(ds.datasource_id)
    """

    datasource_id: str | None
    name: str | None = None
    source: str | None = None
    file_type: str | None = None
    auth_type: str | None = None
    databridge_name: str | None = None
    databridge_status: str | None = None
    last_sync_status: str | None = None
    last_sync_time: datetime | None = None
    last_sync_time_raw: str | None = None
    next_schedule_time_raw: str | None = None
    schedule: str | None = None
    sync_used: int | None = None
    total_sync_allowed: int | None = None
    sync_interval_id: str | None = None
    intervals: tuple[SyncInterval, ...] = ()
    workspace_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any], *, workspace_id: str | None = None) -> Datasource:
        """Build from one ``data.dataSources`` entry; tolerant of missing fields."""
        intervals_raw = raw.get("syncIntervals")
        intervals: list[SyncInterval] = []
        if isinstance(intervals_raw, list):
            for entry in intervals_raw:
                if isinstance(entry, Mapping):
                    interval = SyncInterval.from_api(entry)
                    if interval is not None:
                        intervals.append(interval)
        # live-connect sources report design syncs instead of data syncs
        status_key = "lastDataSyncStatus" if "lastDataSyncStatus" in raw else "lastDesignSyncStatus"
        time_key = "lastDataSyncTime" if "lastDataSyncTime" in raw else "lastDesignSyncTime"
        last_raw = _str(raw, time_key)
        return cls(
            datasource_id=_id(raw, "datasourceId"),
            name=_str(raw, "datasourceName"),
            source=_str(raw, "source"),
            file_type=_str(raw, "fileType"),
            auth_type=_str(raw, "authType"),
            databridge_name=_str(raw, "databridgeName"),
            databridge_status=_str(raw, "databridgeStatus"),
            last_sync_status=_str(raw, status_key),
            last_sync_time=parse_zoho_time(last_raw),
            last_sync_time_raw=last_raw,
            next_schedule_time_raw=_str(raw, "nextScheduleTime"),
            schedule=_str(raw, "schedule"),
            sync_used=_int(raw, "syncUsed"),
            total_sync_allowed=_int(raw, "totalSyncAllowed"),
            sync_interval_id=_id(raw, "syncIntervalId"),
            intervals=tuple(intervals),
            workspace_id=workspace_id,
            raw=dict(raw),
        )

    @property
    def syncable(self) -> bool:
        """True when the entry has a datasource id (Local Drive and Snapshot have none)."""
        return self.datasource_id is not None

    @property
    def skip_reason(self) -> str | None:
        """Why this entry cannot be synced ("Local Drive", "Snapshot", ...), or ``None``."""
        if self.syncable:
            return None
        kind = (self.source or self.file_type or "").strip()
        if "snapshot" in kind.lower():
            return "Snapshot"
        if "local" in kind.lower() or not kind:
            return "Local Drive"
        return f"{kind}: no datasource id"

    @property
    def quota_exhausted(self) -> bool:
        """True when Zoho reports ``syncUsed >= totalSyncAllowed`` for the connection."""
        return (
            self.sync_used is not None
            and self.total_sync_allowed is not None
            and self.sync_used >= self.total_sync_allowed
        )

    @property
    def quota_left(self) -> int | None:
        """Manual syncs left today, when Zoho reports both numbers."""
        if self.sync_used is None or self.total_sync_allowed is None:
            return None
        return max(self.total_sync_allowed - self.sync_used, 0)

    @property
    def interval_ids(self) -> tuple[str, ...]:
        """Every interval id: several from ``syncIntervals``, or the single one."""
        if self.intervals:
            return tuple(i.sync_interval_id for i in self.intervals)
        return (self.sync_interval_id,) if self.sync_interval_id else ()


def _interval_id(value: object) -> str | None:
    return check_optional_id(value, "sync_interval_id")


def _secret_field(value: str | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError("SyncConfig user_name and password must be strings")
    if value is not None and len(value) > _FIELD_MAX_CHARS:
        raise ConfigTooLongError(f"SyncConfig fields are limited to {_FIELD_MAX_CHARS} characters")
    return value


@attrs.frozen
class SyncConfig:
    """The optional CONFIG of Sync Data.

    Serialises to Zoho's JSON keys: ``userName``, ``password`` and the interval. Zoho
    documents the interval as both ``syncIntervalId`` and ``scheduleId``; we send
    ``syncIntervalId`` (the name Get Datasources uses) unless ``interval_key`` says otherwise
    (``"scheduleId"`` or ``"both"``). Fields left ``None`` are not sent; an empty config
    sends no CONFIG at all. The password never appears in ``repr``.

    Example::

        cfg = SyncConfig(user_name="ftpuser", password="...", sync_interval_id="123")
        await ws.sync_data(ds_id, config=cfg)
    """

    user_name: str | None = attrs.field(default=None, converter=_secret_field, repr=False)
    password: str | None = attrs.field(default=None, converter=_secret_field, repr=False)
    sync_interval_id: str | None = attrs.field(default=None, converter=_interval_id)
    interval_key: str = attrs.field(default="syncIntervalId")

    @interval_key.validator
    def _check_key(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if value not in ("syncIntervalId", "scheduleId", "both"):
            raise InvalidInputError("interval_key must be 'syncIntervalId', 'scheduleId' or 'both'")

    def __repr__(self) -> str:
        shown = [
            f"user_name={'<set>' if self.user_name is not None else None}",
            f"password={'<redacted>' if self.password is not None else None}",
            f"sync_interval_id={self.sync_interval_id!r}",
        ]
        return f"SyncConfig({', '.join(shown)})"

    def to_json_dict(self) -> dict[str, str]:
        """The CONFIG object as Zoho expects it (only the fields that are set)."""
        out: dict[str, str] = {}
        if self.user_name is not None:
            out["userName"] = self.user_name
        if self.password is not None:
            out["password"] = self.password
        if self.sync_interval_id is not None:
            if self.interval_key in ("syncIntervalId", "both"):
                out["syncIntervalId"] = self.sync_interval_id
            if self.interval_key in ("scheduleId", "both"):
                out["scheduleId"] = self.sync_interval_id
        return out

    def encode(self) -> str | None:
        """The CONFIG JSON text, ``None`` when empty; ``ConfigTooLongError`` past 3,000 chars."""
        body = self.to_json_dict()
        if not body:
            return None
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        if len(text) > CONFIG_MAX_CHARS:
            raise ConfigTooLongError(
                f"CONFIG is {len(text)} characters; Zoho accepts at most {CONFIG_MAX_CHARS}"
            )
        return text

    def with_interval(self, sync_interval_id: str | None) -> SyncConfig:
        """A copy with the interval replaced (``None`` keeps the current one)."""
        if sync_interval_id is None:
            return self
        return attrs.evolve(self, sync_interval_id=sync_interval_id)
