"""The store behind PgBouncer in transaction mode, where each transaction may run on another
server connection: with `store.prepared_statements: false` everything works while eight
tasks share two server connections; with statements prepared (the default) it fails as
docs/operations.md says, so the setting is needed. Runs where a `pgbouncer` binary is
installed (started here, on a port of its own); skipped elsewhere."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from sftriggerd.errors import StoreError
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.records import Checkpoint, Delivered
from tests.acceptance.cli import free_port
from tests.delivery.rig import new_event

PGBOUNCER = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
pytestmark = pytest.mark.skipif(PGBOUNCER is None, reason="no pgbouncer installed")


def prepared_off() -> str:
    """The line that turns off PgBouncer's following of prepared statements (1.21 and newer
    have it, 200 by default since 1.24); older ones know no such setting."""
    assert PGBOUNCER is not None
    answer = subprocess.run([PGBOUNCER, "--version"], capture_output=True, text=True).stdout
    major, minor = (int(part) for part in answer.split()[1].split(".")[:2])
    return "max_prepared_statements = 0\n" if (major, minor) >= (1, 21) else ""


@pytest.fixture
def pgbouncer(postgres_url: str) -> Iterator[str]:
    """A transaction-mode PgBouncer in front of this test's database; the URL through it."""
    assert PGBOUNCER is not None
    port = free_port()
    # Not pytest's tmp_path: PgBouncer refuses to run as root, and the user it becomes below
    # must reach its files, which a directory of root's own (0700 parents) would not let it.
    tmp_path = Path(tempfile.mkdtemp(prefix="sftriggerd-pgbouncer-"))
    tmp_path.chmod(0o777)
    (tmp_path / "users.txt").write_text('"postgres" ""\n')
    ini = tmp_path / "pgbouncer.ini"
    ini.write_text(f"""[databases]
* = host=127.0.0.1 port={postgres_url.rsplit(":", 1)[1].split("/")[0]}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {tmp_path / "users.txt"}
pool_mode = transaction
default_pool_size = 2
{prepared_off()}logfile = {tmp_path / "pgbouncer.log"}
""")
    command = [PGBOUNCER, str(ini)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]
    output = (tmp_path / "output.txt").open("wb")
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"postgresql://postgres@127.0.0.1:{port}/{postgres_url.rsplit('/', 1)[1]}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                psycopg.connect(url, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    said = [tmp_path / "pgbouncer.log", tmp_path / "output.txt"]
                    text = " ".join(p.read_text() for p in said if p.exists())
                    raise AssertionError(f"pgbouncer did not start: {text}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        output.close()
        shutil.rmtree(tmp_path, ignore_errors=True)


async def busy(store: PostgresStore) -> None:
    """Eight tasks each running the same statements more than five times, all at once."""

    async def one(task: int) -> None:
        trigger = f"t{task}"
        for n in range(12):
            event = new_event(f"e{task}-{n}")
            await store.ingest(trigger, [event], Checkpoint(trigger=trigger, position={"n": n}))
            claims = await store.claim_due("hook", 10, timedelta(seconds=30))
            await store.record_outcomes([(claim, Delivered(status=200)) for claim in claims])
            await store.heartbeat("a", timedelta(minutes=1))

    await asyncio.gather(*(one(task) for task in range(8)))


async def test_without_prepared_statements_it_works_in_transaction_mode(
    pgbouncer: str, postgres_url: str
) -> None:
    store = PostgresStore(pgbouncer, max_connections=4, prepared_statements=False)
    await store.open()
    try:
        await busy(store)
        assert await store.outbox_counts() == {}
        assert len(await store.checkpoints()) == 8
    finally:
        await store.close()


async def test_prepared_statements_fail_there_as_the_guide_says(pgbouncer: str) -> None:
    store = PostgresStore(pgbouncer, max_connections=4)
    await store.open()
    try:
        with pytest.raises(StoreError, match=r'prepared statement "_pg3_\d+"'):
            await busy(store)
    finally:
        await store.close()
