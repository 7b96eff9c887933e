"""Fuzzing the pure decoders: any input gives a model or a typed ZohoError, nothing else.

The Hypothesis profile comes from tests/conftest.py: derandomized by default, random with
many more examples under ``nox -s fuzz``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from zoho_async import Datasource, Org, WorkspaceInfo, ZohoError
from zoho_async._models import parse_zoho_time
from zoho_async._protocol import decode_api_response, decode_token_response, parse_retry_after

# at least 400 (the pure decoders are cheap), more when the loaded profile asks for more
fuzz = settings(max_examples=max(400, settings().max_examples))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "status",
        "summary",
        "data",
        "errorCode",
        "errorMessage",
        "orgs",
        "dataSources",
        "access_token",
        "expires_in",
        "error",
        "error_description",
        "datasourceId",
        "syncIntervals",
        "syncIntervalId",
        "syncUsed",
        "totalSyncAllowed",
        "lastDataSyncTime",
        "orgId",
        "workspaceId",
        "createdTime",
        "numberOfWorkspaces",
    ]
)
shaped = st.recursive(
    json_values,
    lambda children: st.dictionaries(keys, children, max_size=6) | st.lists(children, max_size=3),
    max_leaves=25,
)
envelopes = st.builds(
    lambda status, summary, data: {"status": status, "summary": summary, "data": data},
    st.sampled_from(["success", "failure", "weird", None]),
    json_values,
    shaped,
)
statuses = st.sampled_from([200, 201, 204, 400, 401, 403, 404, 429, 500, 502, 503])


def _bodies() -> st.SearchStrategy[bytes]:
    as_json = (shaped | envelopes).map(lambda v: json.dumps(v).encode())
    truncated = as_json.flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n]))
    return as_json | truncated | st.binary(max_size=60)


@fuzz
@given(status=statuses, body=_bodies(), retry_after=st.none() | st.text(max_size=30))
def test_api_decoder(status: int, body: bytes, retry_after: str | None) -> None:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    with contextlib.suppress(ZohoError):
        decode_api_response(status, body, headers)


@fuzz
@given(status=statuses, body=_bodies())
def test_token_decoder(status: int, body: bytes) -> None:
    try:
        grant = decode_token_response(status, body)
    except ZohoError:
        return
    assert grant.access_token and 0 < grant.expires_in <= 86400


def _model(builder: Any, raw: Any) -> None:
    with contextlib.suppress(ZohoError):
        builder(raw)


@fuzz
@given(raw=st.dictionaries(keys, shaped, max_size=8))
def test_model_builders(raw: dict[str, Any]) -> None:
    ds = Datasource.from_api(raw)
    assert ds.datasource_id is None or ds.datasource_id.isdigit()
    _ = (ds.quota_left, ds.skip_reason, ds.interval_ids, ds.quota_exhausted)
    _model(Org.from_api, raw)
    _model(WorkspaceInfo.from_api, raw)


@fuzz
@given(value=st.text(max_size=40) | st.none())
def test_retry_after_values(value: str | None) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or seconds >= 0


@fuzz
@given(text=st.text(max_size=50))
def test_zoho_times(text: str) -> None:
    when = parse_zoho_time(text)
    assert when is None or when.tzinfo is not None


result_rows = st.fixed_dictionaries(
    {"status": st.sampled_from(["STARTED", "FAILED", "CANCELLED", "SKIPPED", 3, None])},
    optional={
        "workspace_id": st.one_of(st.from_regex(r"\A[0-9]{1,19}\Z"), json_values),
        "datasource_id": st.one_of(st.from_regex(r"\A[0-9]{1,19}\Z"), json_values),
        "org_id": json_values,
        "sync_interval_id": json_values,
        "name": json_values,
    },
)
result_lines = st.lists(
    st.one_of(result_rows.map(json.dumps), st.text(max_size=30)), max_size=6
).map("\n".join)


@fuzz
@given(text=result_lines)
def test_results_file_reader(text: str, tmp_path_factory: Any) -> None:
    from zoho_async.cli._targets import read_results, read_targets

    path = tmp_path_factory.mktemp("fuzz") / "results.jsonl"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(ZohoError):
        previous = read_results(str(path), warn=lambda _message: None)
        _ = (previous.done(), previous.failed())
    with contextlib.suppress(ZohoError):
        read_targets(str(path))
    csv_path = path.with_suffix(".csv")
    csv_path.write_text(text, encoding="utf-8")
    with contextlib.suppress(ZohoError):
        read_targets(str(csv_path))
