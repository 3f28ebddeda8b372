"""`sftriggerd doctor` through the console script, against the real emulator, a real local
receiver and a real SQLite store: every line ok on a good configuration, then each failure
made on purpose, named on its own line, with a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from sftriggerd.store.sqlite import SqliteStore
from tests.acceptance.cli import sftriggerd_command
from tests.acceptance.harness import SECRET
from tests.keys import rsa_key_pair
from tests.support.emulator import RunningEmulator
from tests.support.receiver import Arrival, Receiver, unused_url
from tests.support.sfclient import OrgClient, control

PUSH_TOPIC = {
    "Name": "AccountNames",
    "Query": "SELECT Id, Name FROM Account",
    "ApiVersion": 60.0,
    "NotifyForOperationCreate": True,
    "NotifyForOperationUpdate": True,
    "NotifyForFields": "Referenced",
}
ACCOUNTS = """  - name: accounts
    object: Account
    fields: [Name, Industry]
    where: "Industry = 'Energy'"
    mode: streaming
"""
CONTACTS = """  - name: contacts
    object: Contact
    mode: streaming
    transport: pubsub
"""
NAMES = """  - name: names
    object: Account
    channel: /topic/AccountNames
    mode: streaming
"""
LEADS = """  - name: leads
    object: Lead
    mode: polling
"""


@dataclass
class Doctor:
    returncode: int
    stdout: str
    stderr: str

    def line(self, start: str) -> str:
        """The one output line that starts with `start`."""
        [found] = [line for line in self.stdout.splitlines() if line.startswith(start)]
        return found


async def doctor(config: Path, *extra: str) -> Doctor:
    """The CLI as a child process; awaited, so the emulator and receiver in this loop answer."""
    process = await asyncio.create_subprocess_exec(
        *sftriggerd_command(),
        "doctor",
        "--config",
        str(config),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return Doctor(process.returncode, out.decode(), err.decode())


async def migrated(config: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *sftriggerd_command(), "migrate", "--config", str(config)
    )
    assert await asyncio.wait_for(process.wait(), 60) == 0


@pytest.fixture
async def seeded(org: OrgClient) -> OrgClient:
    """An org where Account has the fields the triggers name, and the PushTopic exists."""
    await org.create("Account", {"Name": "Seed", "Industry": "Energy"})
    await org.create("PushTopic", PUSH_TOPIC)
    return org


def write_config(
    tmp_path: Path,
    emulator: RunningEmulator,
    endpoint_url: str,
    *,
    triggers: str = ACCOUNTS + CONTACTS + NAMES + LEADS,
    password: str = "emulator",
    store: str = "",
    auth: str = "",
) -> Path:
    """`auth`: the whole salesforce.auth mapping, in place of the password flow's."""
    config = tmp_path / "sftriggerd.yaml"
    config.write_text(f"""
salesforce:
  login_url: {emulator.url}
  auth: {
        auth
        or f'''{{client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: {password}}}'''
    }
  pubsub_url: http://{emulator.pubsub_address}
store: {{url: "{store or f"sqlite:///{tmp_path}/state.db"}"}}
triggers:
{triggers}
endpoints:
  - {{name: receiver, url: "{endpoint_url}", secret: {SECRET}, timeout: 5s}}
""")
    return config


async def test_a_good_configuration_is_all_ok(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    config = write_config(tmp_path, emulator, receiver.url)
    await migrated(config)
    result = await doctor(config)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("ok ") for line in lines[:-1]), result.stdout
    assert lines[-1] == f"{len(lines) - 1} checks: all ok"
    assert result.line("ok       login (password): logged in as admin@emulator.local")
    assert result.line("ok       api version: v60.0")
    assert result.line("ok       trigger accounts fields: Name, Industry")
    assert result.line("ok       trigger accounts where: runs (a record matches)")
    assert result.line(
        "ok       trigger accounts channel: /data/AccountChangeEvent: CometD handshake,"
    )
    assert result.line(
        "ok       trigger contacts channel: /data/ContactChangeEvent: Pub/Sub topic found"
    )
    assert result.line("ok       trigger names pushtopic: PushTopic AccountNames exists")
    assert result.line("ok       trigger names channel: /topic/AccountNames: CometD")
    assert re.fullmatch(
        r"ok {7}store: sqlite:///.*/state\.db: opens, writable, schema version [0-9]+",
        result.line("ok       store: "),
    )
    assert "trigger leads channel" not in result.stdout  # a polling trigger streams nothing
    # The ping: signed as a webhook, of its own type, and nothing of it stored.
    [ping] = receiver.arrivals
    body = json.loads(ping.body)
    assert body["type"] == "sftriggerd.ping"
    Webhook(SECRET).verify(ping.body, ping.headers)
    assert result.line("ok       endpoint receiver: ").endswith(
        "signed sftriggerd.ping answered HTTP 204"
    )
    store = SqliteStore(tmp_path / "state.db")
    await store.open(create=False)
    try:
        assert await store.list_deliveries(limit=10) == []
        assert await store.checkpoints() == []
    finally:
        await store.close()


async def test_the_json_report(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    config = write_config(tmp_path, emulator, receiver.url, triggers=ACCOUNTS)
    result = await doctor(config, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [check["name"] for check in report["checks"]] == [
        "login (password)",
        "api version",
        "api budget",
        "trigger accounts object",
        "trigger accounts fields",
        "trigger accounts where",
        "trigger accounts channel",
        "endpoint receiver",
        "store",
    ]
    assert all(set(check) == {"name", "status", "detail", "fix"} for check in report["checks"])
    # No store yet: a warning (the daemon makes it on its first run), not a failure.
    store = report["checks"][-1]
    assert store["status"] == "warning" and "no store yet" in store["detail"]
    assert not (tmp_path / "state.db").exists()


async def test_a_wrong_password_names_the_password_flow_and_skips_the_rest(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    config = write_config(tmp_path, emulator, receiver.url, triggers=ACCOUNTS, password="nope")
    result = await doctor(config)
    assert result.returncode == 1
    login = result.line("failed   login (password): ")
    assert login.startswith(
        "failed   login (password): wrong username, password or security token, or the password"
        " flow is blocked (Salesforce: invalid_grant: authentication failure); fix: check"
    )
    assert "Allow OAuth Username-Password Flows" in login
    assert result.line("skipped  api version: needs the login, which failed")
    assert result.line("skipped  trigger accounts channel: needs the login, which failed")
    assert "nope" not in result.stdout + result.stderr


async def test_a_blocked_password_flow_is_named_too(
    tmp_path: Path,
    emulator: RunningEmulator,
    seeded: OrgClient,
    receiver: Receiver,
    http: aiohttp.ClientSession,
) -> None:
    await control(http, emulator.url, "grants", {"blocked": ["password"]})
    result = await doctor(write_config(tmp_path, emulator, receiver.url, triggers=ACCOUNTS))
    assert result.returncode == 1
    assert "password flow is blocked" in result.line("failed   login (password): ")


async def test_a_wrong_client_secret_is_named(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    auth = (
        "{client_id: emulator-client, client_secret: not-it, username: admin@emulator.local,"
        " password: emulator}"
    )
    result = await doctor(write_config(tmp_path, emulator, receiver.url, triggers=LEADS, auth=auth))
    assert result.returncode == 1
    assert result.line("failed   login (password): ") == (
        "failed   login (password): wrong client_secret (Salesforce: invalid_client: invalid"
        " client credentials); fix: set salesforce.auth.client_secret to the connected app's"
        " consumer secret"
    )


async def test_a_jwt_user_the_app_is_not_pre_authorised_for(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    private_pem, _ = rsa_key_pair()
    key = tmp_path / "sf-jwt.key"
    key.write_text(private_pem)
    auth = (
        "{flow: jwt, client_id: emulator-client, username: stranger@emulator.local,"
        f" private_key: '${{file:{key}}}'}}"
    )
    result = await doctor(write_config(tmp_path, emulator, receiver.url, triggers=LEADS, auth=auth))
    assert result.returncode == 1
    assert result.line("failed   login (jwt): ") == (
        "failed   login (jwt): the connected app is not pre-authorised for this user"
        " (Salesforce: invalid_grant: user hasn't approved this consumer); fix: in Setup, App"
        " Manager, the connected app, Manage, Edit Policies (an external client app: External"
        " Client App Manager, the app, Edit Policies), under OAuth Policies: set Permitted Users"
        " to 'Admin approved users are pre-authorized', then add the user's profile or"
        " permission set"
    )


async def test_an_unknown_object(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    triggers = "  - {name: typo, object: Acount, mode: polling}\n"
    result = await doctor(write_config(tmp_path, emulator, receiver.url, triggers=triggers))
    assert result.returncode == 1
    assert result.line("failed   trigger typo object: ") == (
        "failed   trigger typo object: Acount does not exist or this user cannot see it;"
        " did you mean Account?; fix: check the trigger's object (API name, with __c for a"
        " custom object) and the user's object permissions"
    )


async def test_an_unknown_field_suggests_the_close_names(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    triggers = "  - {name: accounts, object: Account, fields: [Name, Industy], mode: polling}\n"
    result = await doctor(write_config(tmp_path, emulator, receiver.url, triggers=triggers))
    assert result.returncode == 1
    assert result.line("failed   trigger accounts fields: ") == (
        "failed   trigger accounts fields: Account has no field Industy (did you mean"
        " Industry?); fix: correct the trigger's fields (API names, with __c for custom"
        " fields), or give the user field-level access"
    )
    assert result.line("ok       trigger accounts object: Account exists")


async def test_a_where_salesforce_refuses(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    triggers = (
        "  - {name: accounts, object: Account, mode: polling, where: \"Industri = 'Energy'\"}\n"
    )
    result = await doctor(write_config(tmp_path, emulator, receiver.url, triggers=triggers))
    assert result.returncode == 1
    where = result.line("failed   trigger accounts where: ")
    assert where.startswith(
        'failed   trigger accounts where: Salesforce refused "SELECT Id FROM Account WHERE'
        " Industri = 'Energy' LIMIT 1\": INVALID_FIELD: "
    )
    assert "ERROR at Row:1:Column:30 No such column 'Industri' on entity 'Account'" in where
    assert where.count("SELECT") == 1  # Salesforce's copy of the query is left out
    assert where.endswith("; fix: correct the trigger's where (SOQL, as after WHERE)")


@pytest.mark.parametrize("transport", ["cometd", "pubsub"])
async def test_an_object_not_selected_for_change_data_capture(
    tmp_path: Path,
    emulator: RunningEmulator,
    seeded: OrgClient,
    receiver: Receiver,
    http: aiohttp.ClientSession,
    transport: str,
) -> None:
    await control(http, emulator.url, "cdc", {"unselected": ["Lead"]})
    triggers = f"  - {{name: leads, object: Lead, mode: streaming, transport: {transport}}}\n"
    result = await doctor(write_config(tmp_path, emulator, receiver.url, triggers=triggers))
    assert result.returncode == 1
    channel = result.line("failed   trigger leads channel: ")
    assert channel.startswith(
        "failed   trigger leads channel: /data/LeadChangeEvent: Lead is not selected for"
        " Change Data Capture ("
    )
    assert channel.endswith(
        "; fix: Setup, Change Data Capture: move Lead to Selected Entities"
        " (or check the channel name)"
    )


async def test_a_missing_pushtopic(
    tmp_path: Path, emulator: RunningEmulator, org: OrgClient, receiver: Receiver
) -> None:
    result = await doctor(write_config(tmp_path, emulator, receiver.url, triggers=NAMES))
    assert result.returncode == 1
    assert result.line("failed   trigger names pushtopic: ") == (
        "failed   trigger names pushtopic: no PushTopic named AccountNames; fix: create the"
        " PushTopic AccountNames (a PushTopic record with its Name and Query)"
    )
    assert result.line("failed   trigger names channel: /topic/AccountNames: refused (")


async def test_an_endpoint_answering_500(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    async def broken(arrival: Arrival) -> web.StreamResponse:
        return web.Response(status=500, text="database down")

    receiver.respond = broken
    result = await doctor(write_config(tmp_path, emulator, receiver.url, triggers=LEADS))
    assert result.returncode == 1
    assert result.line("failed   endpoint receiver: ") == (
        f"failed   endpoint receiver: {receiver.url}: signed sftriggerd.ping answered HTTP 500:"
        " database down; fix: the receiver must answer 2xx to a webhook it accepts (a ping"
        " included)"
    )


async def test_an_unreachable_endpoint(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient
) -> None:
    url = unused_url()
    result = await doctor(write_config(tmp_path, emulator, url, triggers=LEADS))
    assert result.returncode == 1
    line = result.line("failed   endpoint receiver: ")
    assert line.startswith(f"failed   endpoint receiver: {url}: no answer (refused): ")
    assert line.endswith(
        "; fix: check the endpoint's url, that the receiver runs, and the network between"
    )


async def test_a_store_that_cannot_be_made(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    url = f"sqlite:///{blocker}/state.db"
    config = write_config(tmp_path, emulator, receiver.url, triggers=LEADS, store=url)
    result = await doctor(config)
    assert result.returncode == 1
    assert result.line("failed   store: ") == (
        f"failed   store: {url}: no store, and it cannot be made: {blocker} is not a directory;"
        " fix: point store.url at a directory the daemon's user can write"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
async def test_a_read_only_store(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    config = write_config(tmp_path, emulator, receiver.url, triggers=LEADS)
    await migrated(config)
    (tmp_path / "state.db").chmod(0o444)
    result = await doctor(config)
    assert result.returncode == 1
    assert result.line("failed   store: ")


async def test_a_postgresql_store(
    tmp_path: Path,
    emulator: RunningEmulator,
    seeded: OrgClient,
    receiver: Receiver,
    postgres_url: str,
) -> None:
    config = write_config(tmp_path, emulator, receiver.url, triggers=LEADS, store=postgres_url)
    result = await doctor(config)
    assert result.returncode == 0, result.stdout
    assert re.fullmatch(
        r"ok {7}store: postgresql://[^ ]+: opens, writable, schema version [0-9]+",
        result.line("ok       store: "),
    )


async def test_a_postgresql_store_that_does_not_exist(
    tmp_path: Path,
    emulator: RunningEmulator,
    seeded: OrgClient,
    receiver: Receiver,
    empty_postgres_url: str,
) -> None:
    """An empty database is not made into a store (the daemon's first run does that): a
    warning; the exit is 0."""
    config = write_config(
        tmp_path, emulator, receiver.url, triggers=LEADS, store=empty_postgres_url
    )
    result = await doctor(config)
    assert result.returncode == 0, result.stdout
    assert result.line("warning  store: postgresql://").endswith(
        ": no store yet; the daemon makes it on its first run; fix: or run"
        " `sftriggerd migrate --config PATH` now"
    )
    assert result.stdout.splitlines()[-1].endswith("0 failed, 0 skipped, 1 warning")


async def test_a_postgresql_store_that_takes_no_writes(
    tmp_path: Path,
    emulator: RunningEmulator,
    seeded: OrgClient,
    receiver: Receiver,
    postgres_url: str,
) -> None:
    """Every transaction read-only, as on a standby: the store opens but is not writable."""
    read_only = f"{postgres_url}?options=-c%20default_transaction_read_only%3Don"
    config = write_config(tmp_path, emulator, receiver.url, triggers=LEADS, store=read_only)
    result = await doctor(config)
    assert result.returncode == 1
    store = result.line("failed   store: postgresql://")
    assert ": opens but cannot be written: " in store
    assert "read-only transaction" in store
    assert store.endswith(
        "; fix: point store.url at the primary, as a user that may write the sftriggerd tables"
    )
