"""OpenTelemetry: a CLIENT span per API call under a bulk run's parent span, the metrics a
service exports, the log records' ``extra=`` fields, no secrets anywhere, and nothing at
all without the package.

The SDK's in-memory exporter and reader are installed once as the global providers
(OpenTelemetry allows that once per process); each test reads only what it produced:
spans after a ``clear()``, metrics as differences of cumulative points.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from zoho_async import Limits, NotFoundError, SyncConfig, SyncStatus
from zoho_async._protocol import datasources_request, sync_request, workspaces_request
from zoho_async._telemetry import LogFields, request_ids
from zoho_async.testing import Fault

from .helpers import FAST, ds_id, session_for, workspace_fake

otel_sdk = pytest.importorskip("opentelemetry.sdk")

from opentelemetry import metrics, trace  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import (  # noqa: E402
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

pytestmark = pytest.mark.anyio

_EXPORTER = InMemorySpanExporter()
_READER = InMemoryMetricReader()
_INSTALLED = False
_LATEST: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[float, ...]] = {}


class Telemetry:
    """What the global providers recorded since this test began."""

    def __init__(self) -> None:
        _EXPORTER.clear()
        self._before = self._points()

    @staticmethod
    def _points() -> dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[float, ...]]:
        """Each point's numbers, copied: an SDK may update a cumulative point in place.

        Points are cumulative, so the last value seen stands for one that a collection
        leaves out (opentelemetry-sdk 1.20 omits a histogram unchanged since the last one).
        """
        data = _READER.get_metrics_data()
        points = _LATEST
        if data is None:
            return dict(points)
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                if scope.scope.name != "zoho_async":
                    continue
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                        if isinstance(point, HistogramDataPoint):
                            points[key] = (point.count, point.sum)
                        elif isinstance(point, NumberDataPoint):
                            points[key] = (point.value,)
        return dict(points)

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in _EXPORTER.get_finished_spans() if name is None or s.name == name]

    def count(self, name: str, **attributes: Any) -> int:
        """How much counter ``name`` (those attributes) grew during the test."""
        key = (name, tuple(sorted(attributes.items())))
        now, before = self._points().get(key, (0,)), self._before.get(key, (0,))
        return int(now[0] - before[0])

    def histogram(self, name: str) -> tuple[int, float]:
        """(recordings, their sum) of histogram ``name`` during the test."""
        key = (name, ())
        now, before = self._points().get(key, (0, 0.0)), self._before.get(key, (0, 0.0))
        return int(now[0] - before[0]), now[1] - before[1]


@pytest.fixture
def telemetry() -> Telemetry:
    global _INSTALLED
    if not _INSTALLED:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))
        _INSTALLED = True
    assert isinstance(trace.get_tracer_provider(), TracerProvider), "another provider is set"
    return Telemetry()


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_a_bulk_run_is_the_parent_of_one_client_span_per_call(
    telemetry: Telemetry,
) -> None:
    async with workspace_fake(sync_duration=0) as fake:
        ids = [ds_id(fake.add_datasource("1001")) for _ in range(6)]
        tracer = trace.get_tracer("test")
        async with session_for(fake) as session:
            with tracer.start_as_current_span("handler") as handler:
                report = await session.sync_many([("1001", i) for i in ids])
    assert [r.status for r in report.results] == [SyncStatus.STARTED] * 6

    (run,) = telemetry.spans("zoho sync run")
    assert run.parent is not None and run.parent.span_id == handler.get_span_context().span_id
    syncs = telemetry.spans("zoho sync")
    assert len(syncs) == 6
    for span in syncs:
        # the workers are tasks of the run's task group: the context reached them
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None and span.parent.span_id == run.context.span_id
        assert span.context.trace_id == run.context.trace_id
    assert sorted(_attrs(s)["zoho.datasource_id"] for s in syncs) == sorted(ids)
    first = _attrs(syncs[0])
    assert first["zoho.org_id"] == fake.default_org_id
    assert first["zoho.workspace_id"] == "1001"
    assert first["http.response.status_code"] == 204  # Sync Data answers 204 No Content
    assert first["zoho.attempts"] == 1
    assert first["zoho.sync_status"] == "STARTED"
    assert "zoho.error_code" not in first and "zoho.retry_reason" not in first
    # the baseline listing (confirm_starts) is a call of the run too
    for listing in telemetry.spans("zoho datasources"):
        assert listing.parent is not None and listing.parent.span_id == run.context.span_id
    assert telemetry.count("zoho.sync.results", status="STARTED") == 6


async def test_iter_sync_calls_are_children_of_its_run_in_the_consumers_trace(
    telemetry: Telemetry,
) -> None:
    async with workspace_fake(sync_duration=0) as fake:
        ids = [ds_id(fake.add_datasource("1001")) for _ in range(4)]
        tracer = trace.get_tracer("test")
        async with session_for(fake) as session:
            with tracer.start_as_current_span("consumer") as consumer:
                async with session.iter_sync([("1001", i) for i in ids]) as results:
                    statuses = [r.status async for r in results]
    assert statuses == [SyncStatus.STARTED] * 4
    (run,) = telemetry.spans("zoho sync run")
    assert run.parent is not None and run.parent.span_id == consumer.get_span_context().span_id
    syncs = telemetry.spans("zoho sync")
    assert len(syncs) == 4
    assert {s.parent.span_id for s in syncs if s.parent} == {run.context.span_id}


async def test_retries_rejections_and_errors_are_on_the_span_and_counted(
    telemetry: Telemetry,
) -> None:
    async with workspace_fake() as fake:
        limits = Limits(
            requests_per_minute=600_000,
            metadata_per_minute=600_000,
            max_in_flight=4,
            rate_limit_pause=0.05,
        )
        fake.script(
            "workspaces", [Fault.error(7005, 500), Fault.rate_limited("0"), Fault.html(503)]
        )
        fake.script("datasources", [Fault.error(7103, 400)])
        async with session_for(fake, limits=limits) as session:
            await session.get_workspaces()
            with pytest.raises(NotFoundError):
                await session.workspace("1001").get_datasources()

    (listing,) = telemetry.spans("zoho workspaces")
    got = _attrs(listing)
    assert got["zoho.attempts"] == 4
    assert got["zoho.retry_reason"] == "ServerError"  # the last retry's cause: the 503
    assert got["http.response.status_code"] == 200
    assert listing.status.status_code is not StatusCode.ERROR
    assert telemetry.count("zoho.retries", reason="ServerError") == 2
    assert telemetry.count("zoho.retries", reason="RateLimitedError") == 1
    assert telemetry.count("zoho.rate_limited") == 1

    (failed,) = telemetry.spans("zoho datasources")
    got = _attrs(failed)
    assert got["zoho.error_code"] == 7103
    assert got["error.type"] == "NotFoundError"
    assert got["http.response.status_code"] == 400
    assert got["zoho.workspace_id"] == "1001"
    assert failed.status.status_code is StatusCode.ERROR


async def test_a_failed_sync_in_a_run_carries_its_status_and_code(telemetry: Telemetry) -> None:
    async with workspace_fake(sync_duration=0) as fake:
        good, bad = (ds_id(fake.add_datasource("1001")) for _ in range(2))
        fake.script("sync", [Fault.error(7103, 400)])
        async with session_for(fake, limits=FAST) as session:
            report = await session.sync_many([("1001", bad)], confirm_starts=False)
            report2 = await session.sync_many([("1001", good)], confirm_starts=False)
    assert report.results[0].status is SyncStatus.FAILED
    assert report2.results[0].status is SyncStatus.STARTED
    spans = {_attrs(s)["zoho.datasource_id"]: s for s in telemetry.spans("zoho sync")}
    assert _attrs(spans[bad])["zoho.sync_status"] == "FAILED"
    assert _attrs(spans[bad])["zoho.error_code"] == 7103
    assert _attrs(spans[good])["zoho.sync_status"] == "STARTED"
    assert telemetry.count("zoho.sync.results", status="FAILED") == 1
    assert telemetry.count("zoho.sync.results", status="STARTED") == 1


async def test_token_requests_and_pacing_waits_are_measured(telemetry: Telemetry) -> None:
    async with workspace_fake() as fake:
        limits = Limits(
            requests_per_minute=600_000,
            metadata_per_minute=600_000,
            max_in_flight=4,
            rate_limit_pause=1.0,  # long enough that no stall of a loaded machine ends it first
        )
        fake.script("workspaces", [Fault.rate_limited(None)])
        async with session_for(fake, limits=limits) as session:
            await session.get_workspaces()
            await session.get_orgs()
        async with session_for(fake, limits=limits) as session:
            await session.get_orgs()
    assert fake.stats.token_requests == 2
    assert telemetry.count("zoho.token.requests") == 2
    turns, waited = telemetry.histogram("zoho.pacing.wait")
    assert turns == 4  # every turn is recorded, 0 s when it did not wait
    assert waited > 0  # the turn after the 6045 waited out the org's pause


async def test_log_records_carry_the_same_fields(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    async with workspace_fake(sync_duration=0) as fake:
        ds = ds_id(fake.add_datasource("1001"))
        fake.script("sync", [Fault.html(503)])
        with caplog.at_level(logging.DEBUG, logger="zoho_async"):
            async with session_for(fake) as session:
                await session.sync_many([("1001", ds)])
    sends = [r for r in caplog.records if "-> HTTP" in r.getMessage()]
    assert sends
    sync_send = next(r for r in sends if "/sync" in r.getMessage())
    assert sync_send.zoho_org_id == fake.default_org_id  # type: ignore[attr-defined]
    assert sync_send.zoho_workspace_id == "1001"  # type: ignore[attr-defined]
    assert sync_send.zoho_datasource_id == ds  # type: ignore[attr-defined]
    assert sync_send.http_response_status_code in (200, 503)  # type: ignore[attr-defined]
    retry = next(r for r in caplog.records if r.getMessage().startswith("retrying"))
    assert retry.zoho_retry_reason == "ServerError"  # type: ignore[attr-defined]
    assert retry.zoho_attempts == 1  # type: ignore[attr-defined]
    assert retry.zoho_datasource_id == ds  # type: ignore[attr-defined]


async def test_no_secret_reaches_spans_metrics_or_log_extras(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    password = "pw-Zq8-never-exported"
    async with workspace_fake(sync_duration=0) as fake:
        ds = ds_id(fake.add_datasource("1001"))
        fake.script("sync", [Fault.rate_limited("0"), Fault.error(7005, 500)])
        with caplog.at_level(logging.DEBUG, logger="zoho_async"):
            async with session_for(fake) as session:
                await session.sync_many(
                    [("1001", ds)], config=SyncConfig(user_name="ftp-user-x", password=password)
                )
                await session.sync_data(
                    "1001", ds, config=SyncConfig(user_name="u", password=password)
                )
        secrets = [
            password,
            "ftp-user-x",
            fake.client_secret,
            fake.refresh_token,
            *fake.stats.tokens_issued,
        ]
    assert fake.stats.tokens_issued
    exported: list[str] = []
    for span in telemetry.spans():
        exported.append(span.name)
        exported.extend(f"{k}={v!r}" for k, v in (span.attributes or {}).items())
        exported.append(str(span.status.description))
        exported.extend(str(event.attributes) for event in span.events)
    exported.extend(repr(key) for key in telemetry._points())
    standard = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
    for record in caplog.records:
        exported.extend(f"{k}={v}" for k, v in record.__dict__.items() if k not in standard)
    text = "\n".join(exported)
    assert "zoho.sync_status" in text and "zoho_datasource_id" in text  # something was seen
    for secret in secrets:
        assert secret not in text


def test_request_ids_name_only_what_the_path_holds() -> None:
    assert request_ids(workspaces_request("owned")) == {}
    assert request_ids(datasources_request("1001", "55")) == {
        "zoho.org_id": "55",
        "zoho.workspace_id": "1001",
    }
    sync = sync_request("1001", "2002", None, '{"password": "s3cret"}')
    assert request_ids(sync) == {"zoho.workspace_id": "1001", "zoho.datasource_id": "2002"}
    fields = LogFields(sync, zoho_attempts=2, zoho_error_code=None)
    assert dict(fields) == {
        "zoho_workspace_id": "1001",
        "zoho_datasource_id": "2002",
        "zoho_attempts": 2,
    }


def test_without_the_package_nothing_is_imported_and_calls_still_work(tmp_path: Any) -> None:
    # A fresh interpreter in which `import opentelemetry` fails, as when the extra is not
    # installed: the SDK imports, syncs against the fake, and never loads any of it.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # makes every `import opentelemetry...` fail
        import anyio
        from zoho_async import _telemetry
        from zoho_async._executor import Executor
        from zoho_async._bulk._run import Run
        from zoho_async.testing import FakeZoho
        from tests.helpers import ds_id, session_for, workspace_fake

        assert _telemetry.ENABLED is False
        # the decorators handed the functions back: not even a wrapper is paid
        assert not hasattr(Executor.call, "__wrapped__")
        assert not hasattr(Run.run, "__wrapped__")

        async def main():
            async with workspace_fake(sync_duration=0) as fake:
                ids = [ds_id(fake.add_datasource("1001")) for _ in range(3)]
                fake.script("sync", [{fault}])
                async with session_for(fake) as session:
                    report = await session.sync_many([("1001", i) for i in ids])
                    await session.get_workspaces()
            assert [r.status.value for r in report.results] == ["STARTED"] * 3, report

        anyio.run(main)
        loaded = [m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v]
        assert not loaded, loaded
        print("ok")
        """
    ).replace("{fault}", "Fault.html(503)")
    script = script.replace(
        "from zoho_async.testing import FakeZoho", "from zoho_async.testing import FakeZoho, Fault"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
