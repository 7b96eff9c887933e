"""Test helpers: ``FakeZoho``, a fake Zoho Analytics + accounts server on loopback.

Example::

    from zoho_async.testing import FakeZoho, Fault

    async with FakeZoho.populated(workspaces=1, datasources_per_workspace=3) as fake:
        fake.script("sync", [Fault.error(7005, http_status=500)])
        ...  # point your client at fake.api_url / fake.accounts_url with **fake.credentials
"""

from ._fake import FakeZoho
from ._faults import Fault
from ._stats import FakeStats
from ._wire import zone_spec
from ._world import FakeDatasource, FakeOrg, FakeTable, FakeWorkspace, Quota, SyncInterval

__all__ = [
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
