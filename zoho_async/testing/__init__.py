"""Test helpers: ``FakeZoho``, a fake Zoho Analytics + accounts server on loopback.

Example::

    from zoho_async import AnalyticsSession, RetryPolicy
    from zoho_async.testing import FAST_LIMITS, FakeZoho, Fault

    async with FakeZoho.populated(workspaces=1, datasources_per_workspace=3) as fake:
        fake.script("sync", [Fault.error(7005, http_status=500)])
        session = AnalyticsSession(**fake.credentials, org_id=fake.default_org_id,
                                   api_url=fake.api_url, accounts_url=fake.accounts_url,
                                   limits=FAST_LIMITS, retry=RetryPolicy.testing())

With pytest, the ``zoho_session`` fixture gives such a session on the ``fake_zoho`` fixture's
fake (see :mod:`zoho_async.testing.pytest_plugin`).
"""

from zoho_async import Limits

from ._fake import FakeZoho
from ._faults import Fault
from ._stats import FakeStats
from ._wire import zone_spec
from ._world import FakeDatasource, FakeOrg, FakeTable, FakeWorkspace, Quota, SyncInterval

#: Client limits for a fake without rate limits (the ``fake_zoho`` fixture's, or
#: ``FakeZoho(requests_per_minute=None, metadata_per_minute=None)``): pacing so far above
#: any test's pace that no call waits for a turn. Zoho's own 100/60 a minute would make a
#: test of 20 syncs wait 20 s. Against a fake that enforces limits, or against Zoho,
#: keep the default ``Limits()``.
FAST_LIMITS = Limits(requests_per_minute=600_000, metadata_per_minute=600_000, max_in_flight=16)

__all__ = [
    "FAST_LIMITS",
    "FakeDatasource",
    "FakeOrg",
    "FakeStats",
    "FakeTable",
    "FakeWorkspace",
    "FakeZoho",
    "Fault",
    "Quota",
    "SyncInterval",
    "zone_spec",
]
