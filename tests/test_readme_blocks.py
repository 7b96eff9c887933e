"""Every ```python block of README.md runs, unchanged, against FakeZoho.

How the README's blocks are read (keep these rules when adding a block):

- A block is a complete program, run with ``python`` in a subprocess whose environment
  holds the ``ZOHO_*`` variables exactly as ``zoho-async fake-server`` prints them (and no
  other ``ZOHO_*`` or proxy variable). A block whose first line is ``# test_NAME.py ...``
  is a pytest file instead, written as ``test_NAME.py`` and run with ``python -m pytest``.
- Each block runs in its own empty temporary directory (relative paths such as
  ``nightly.jsonl`` or ``zoho-shared.db`` land there), which also holds ``targets.csv``:
  ``workspace_id,datasource_id`` with a header, one line per syncable datasource of the
  owned workspace, the format ``zoho-async sync --targets`` reads.
- Each block gets a fresh fake, the world of :func:`build_world`: an owned workspace
  with a datasource already running, two that share a connection with one manual sync
  left, plain ones and a Local Drive file; and a workspace shared with us holding a
  datasource we may not sync. No rate limits at the fake (the blocks pace at Zoho's
  own limits, so each block is kept to a few calls) and syncs that finish at once.
- Each runnable block promises its output with one or more trailing lines
  ``# output contains: TEXT``; the test checks each TEXT is in its stdout, and that it
  exits 0.
- A block that cannot run so is a *fragment*: the line right before its fence is an HTML
  comment ``<!-- fragment: why -->`` (visible in the README's source, not rendered). At
  most two fragments are allowed.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path

import anyio
import attrs
import pytest
from anyio.abc import Process

from zoho_async._env import ENV_VARS
from zoho_async.testing import FakeZoho

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FRAGMENT = re.compile(r"^<!-- fragment: .+ -->$")
PROMISE = re.compile(r"^# output contains: (.+)$", re.M)
PYTEST_FILE = re.compile(r"^# (test_\w+\.py)\b")
MAX_FRAGMENTS = 2
#: The ZOHO_* variables that `zoho-async fake-server` prints (checked against it below).
FAKE_SERVER_VARS = (
    "ZOHO_API_URL",
    "ZOHO_ACCOUNTS_URL",
    "ZOHO_CLIENT_ID",
    "ZOHO_CLIENT_SECRET",
    "ZOHO_REFRESH_TOKEN",
    "ZOHO_ORG_ID",
)
BLOCK_TIMEOUT = 120.0  # seconds; a hung block fails instead of hanging the suite


@attrs.frozen
class Block:
    line: int  # of the opening fence, 1-based
    code: str
    fragment: bool

    @property
    def pytest_file(self) -> str | None:
        match = PYTEST_FILE.match(self.code)
        return match.group(1) if match else None

    @property
    def promises(self) -> list[str]:
        return PROMISE.findall(self.code)


def readme_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if lines[index].startswith("```python"):
            end = lines.index("```", index + 1)  # ValueError: an unclosed fence
            fragment = index > 0 and bool(FRAGMENT.match(lines[index - 1]))
            code = "\n".join(lines[index + 1 : end]) + "\n"
            blocks.append(Block(index + 1, code, fragment))
            index = end
        index += 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
RUNNABLE = [b for b in BLOCKS if not b.fragment]


def test_every_python_block_is_found_and_few_are_fragments() -> None:
    text = README.read_text(encoding="utf-8")
    # every opening fence, whatever follows "python" on its line, is a block found here
    assert len(BLOCKS) == len(re.findall(r"^```python", text, flags=re.M)) >= 7
    assert sum(b.fragment for b in BLOCKS) <= MAX_FRAGMENTS
    for block in RUNNABLE:
        assert block.promises, f"README line {block.line}: no '# output contains:' line"
        if block.pytest_file is None:
            assert "AnalyticsSession.from_env(" in block.code, f"README line {block.line}"
    # a marker with a typo would silently make a runnable block of a fragment, or fail it
    assert text.count("<!-- fragment") == sum(b.fragment for b in BLOCKS)


def test_the_rules_read_fences_markers_and_promises() -> None:
    text = "\n".join(
        [
            "<!-- fragment: a server -->",
            "```python",
            "serve()",
            "```",
            "```python",
            "# test_x.py - a test file",
            "# output contains: 1 passed",
            "```",
        ]
    )
    first, second = readme_blocks(text)
    assert (first.fragment, first.line, first.code) == (True, 2, "serve()\n")
    assert (second.fragment, second.pytest_file, second.promises) == (
        False,
        "test_x.py",
        ["1 passed"],
    )


def build_world(fake: FakeZoho) -> dict[str, str]:
    """The blocks' world; returns the id of each datasource by name."""
    org = fake.add_org(name="Acme", is_default=True)
    sales = fake.add_workspace(org.org_id, name="Sales")
    ws = sales.workspace_id
    # a sync in progress until the test ends it (see _finish_stock_when_refused)
    stock = fake.add_datasource(ws, name="Stock", running=True, sync_duration=0)
    orders = fake.add_datasource(ws, name="Orders")
    customers = fake.add_datasource(ws, name="Customers")
    invoices = fake.add_datasource(ws, name="Invoices", sync_used=4)  # 1 of 5 left...
    # ... shared with Payments: whichever syncs second is refused 19000048
    payments = fake.add_datasource(ws, name="Payments", connection_id=invoices.connection_id)
    fake.add_datasource(ws, name="Budget.xlsx", kind="local_drive")
    finance = fake.add_workspace(org.org_id, name="Finance", owned=False)
    fake.add_datasource(finance.workspace_id, name="Ledger", forbidden=True)
    syncable = {"Stock": stock, "Orders": orders, "Customers": customers}
    syncable.update(Invoices=invoices, Payments=payments)
    ids = {name: ds.datasource_id for name, ds in syncable.items()}
    assert all(ids.values())
    return {name: str(value) for name, value in ids.items()}


def fake_server_env(fake: FakeZoho) -> dict[str, str]:
    assert fake.default_org_id is not None
    values = (
        fake.api_url,
        fake.accounts_url,
        fake.client_id,
        fake.client_secret,
        fake.refresh_token,
        fake.default_org_id,
    )
    return dict(zip(FAKE_SERVER_VARS, values, strict=True))


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without ZOHO_* or proxy variables, plus ``extra``; the
    worktree first on the path, so the blocks run this checkout's SDK."""
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ZOHO_") and k.lower() not in proxies
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def pytest_command(filename: str) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", filename]
    plugin = "zoho_async.testing.pytest_plugin"
    if not any(ep.value == plugin for ep in entry_points(group="pytest11")):
        command[4:4] = ["-p", plugin]  # a source tree not installed: load it by name
    return command


async def _finish_stock_when_refused(fake: FakeZoho, stock: str) -> None:
    # "Stock" stays running until a block has been told so (its first Sync Data, 18073);
    # then its sync ends, so a block waiting for outcomes sees one. The fake counts a
    # call and answers it in one step (no await between), so once the count is up the
    # 18073 is given: no timing decides what a block sees.
    while fake.stats.sync_calls[stock] == 0:
        await anyio.sleep(0.05)
    fake.finish_sync(stock)


async def run_block(block: Block, workdir: Path) -> tuple[int, str, str]:
    async with FakeZoho(
        requests_per_minute=None, metadata_per_minute=None, sync_duration=0
    ) as fake:
        ids = build_world(fake)
        rows = ["workspace_id,datasource_id"]
        rows += [f"{fake.datasource(i).workspace_id},{i}" for i in ids.values()]
        (workdir / "targets.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        if block.pytest_file:
            (workdir / block.pytest_file).write_text(block.code, encoding="utf-8")
            command = pytest_command(block.pytest_file)
        else:
            (workdir / "block.py").write_text(block.code, encoding="utf-8")
            command = [sys.executable, "block.py"]
        env = clean_env(fake_server_env(fake))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_finish_stock_when_refused, fake, ids["Stock"])
            with anyio.fail_after(BLOCK_TIMEOUT):
                done = await anyio.run_process(command, cwd=workdir, env=env, check=False)
            tasks.cancel_scope.cancel()
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_every_readme_block_runs_and_prints_what_it_promises(tmp_path: Path) -> None:
    # all at once: each block is a few paced calls, mostly waiting for Zoho's pace
    outcomes: dict[int, tuple[int, str, str]] = {}

    async def one(block: Block) -> None:
        workdir = tmp_path / f"line{block.line}"
        workdir.mkdir()
        outcomes[block.line] = await run_block(block, workdir)

    async with anyio.create_task_group() as tasks:
        for block in RUNNABLE:
            tasks.start_soon(one, block)
    failures = []
    for block in RUNNABLE:
        code, out, err = outcomes[block.line]
        missing = [text for text in block.promises if text not in out]
        if code != 0 or missing:
            failures.append(
                f"README line {block.line}: exit {code}, missing {missing}\n{out}\n{err}"
            )
    assert not failures, "\n\n".join(failures)


async def _read_exports(process: Process) -> dict[str, str]:
    assert process.stdout is not None
    exports: dict[str, str] = {}
    buffer = ""
    async for chunk in process.stdout:
        buffer += chunk.decode()
        *lines, buffer = buffer.split("\n")
        for line in lines:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                exports[name] = value
            elif exports and not line.strip():
                return exports  # the blank line after the exports
    return exports


async def test_the_blocks_get_the_variables_fake_server_prints() -> None:
    command = [sys.executable, "-m", "zoho_async"]
    command += ["fake-server", "--port", "0", "--workspaces", "1", "--datasources", "1"]
    async with await anyio.open_process(command, env=clean_env({})) as process:
        try:
            with anyio.fail_after(60):
                exports = await _read_exports(process)
        finally:
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(30):
                await process.wait()
    assert set(FAKE_SERVER_VARS) <= set(exports)
    # whatever else it prints (a grant code, ...), the session reads nothing more
    assert set(exports) & set(ENV_VARS.values()) == set(FAKE_SERVER_VARS)
