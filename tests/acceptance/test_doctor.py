"""`sftriggerd doctor` through the console script, against the real emulator, a real local
receiver and a real SQLite store: every line ok on a good configuration, then each failure
made on purpose, named on its own line, with a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
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


async def doctor(config: Path, *extra: str, otel: dict[str, str] | None = None) -> Doctor:
    """The CLI as a child process; awaited, so the emulator and receiver in this loop answer.
    `otel`: the OTEL_* variables it sees (none of the machine's own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    process = await asyncio.create_subprocess_exec(
        *sftriggerd_command(),
        "doctor",
        "--config",
        str(config),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**env, **(otel or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return Doctor(process.returncode, out.decode(), err.decode())


async def migrated(config: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *sftriggerd_command(), "migrate", "--config", str(config)
    )
    assert await asyncio.wait_for(process.wait(), 60) == 0


async def seed(org: OrgClient) -> None:
    """Account gets the fields the triggers name, and the PushTopic is made."""
    await org.create("Account", {"Name": "Seed", "Industry": "Energy"})
    await org.create("PushTopic", PUSH_TOPIC)


@pytest.fixture
async def seeded(org: OrgClient) -> OrgClient:
    await seed(org)
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
    assert result.line("ok       tracing: off (no OTEL_TRACES_EXPORTER or OTLP endpoint set)")
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


async def test_tracing_variables_it_cannot_follow_are_a_warning(
    tmp_path: Path, emulator: RunningEmulator, seeded: OrgClient, receiver: Receiver
) -> None:
    config = write_config(tmp_path, emulator, receiver.url, triggers=ACCOUNTS)
    result = await doctor(config, otel={"OTEL_TRACES_EXPORTER": "zipkin"})
    assert result.returncode == 0, result.stdout + result.stderr  # a warning, not a failure
    assert result.line("warning  tracing: asked for but will not start: OTEL_TRACES_EXPORTER")
    on = await doctor(config, otel={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert on.line("ok       tracing: on: otlp (http/protobuf) to http://collector:4318")


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
        "tracing",
        "store",
    ]
    assert all(set(check) == {"name", "status", "detail", "fix"} for check in report["checks"])
    # No store yet: a warning (the daemon makes it on its first run), not a failure.
    store = report["checks"][-1]
    assert store["status"] == "warning" and "no store yet" in store["detail"]
    assert not (tmp_path / "state.db").exists()


@dataclass
class Rig:
    """What a mistake is made with: the emulator, the receiver and the test's directory."""

    tmp_path: Path
    emulator: RunningEmulator
    receiver: Receiver
    http: aiohttp.ClientSession
    request: pytest.FixtureRequest
    endpoint_url: str = ""

    def config(self, triggers: str = LEADS, **settings: str) -> Path:
        return write_config(
            self.tmp_path,
            self.emulator,
            self.endpoint_url or self.receiver.url,
            triggers=triggers,
            **settings,
        )


async def wrong_password(rig: Rig) -> Path:
    return rig.config(ACCOUNTS, password="nope")


async def blocked_password_flow(rig: Rig) -> Path:
    await control(rig.http, rig.emulator.url, "grants", {"blocked": ["password"]})
    return rig.config(ACCOUNTS)


async def wrong_client_secret(rig: Rig) -> Path:
    return rig.config(
        auth="{client_id: emulator-client, client_secret: not-it, username: admin@emulator.local,"
        " password: emulator}"
    )


async def jwt_user_not_pre_authorised(rig: Rig) -> Path:
    private_pem, _ = rsa_key_pair()
    key = rig.tmp_path / "sf-jwt.key"
    key.write_text(private_pem)
    return rig.config(
        auth="{flow: jwt, client_id: emulator-client, username: stranger@emulator.local,"
        f" private_key: '${{file:{key}}}'}}"
    )


async def unknown_object(rig: Rig) -> Path:
    return rig.config("  - {name: typo, object: Acount, mode: polling}\n")


async def unknown_field(rig: Rig) -> Path:
    return rig.config(
        "  - {name: accounts, object: Account, fields: [Name, Industy], mode: polling}\n"
    )


async def where_salesforce_refuses(rig: Rig) -> Path:
    return rig.config(
        "  - {name: accounts, object: Account, mode: polling, where: \"Industri = 'Energy'\"}\n"
    )


def lead_not_selected_for_cdc(transport: str) -> Callable[[Rig], Awaitable[Path]]:
    async def mistake(rig: Rig) -> Path:
        await control(rig.http, rig.emulator.url, "cdc", {"unselected": ["Lead"]})
        return rig.config(
            f"  - {{name: leads, object: Lead, mode: streaming, transport: {transport}}}\n"
        )

    return mistake


async def missing_pushtopic(rig: Rig) -> Path:
    return rig.config(NAMES)


async def endpoint_answering_500(rig: Rig) -> Path:
    async def broken(arrival: Arrival) -> web.StreamResponse:
        return web.Response(status=500, text="database down")

    rig.receiver.respond = broken
    return rig.config()


async def unreachable_endpoint(rig: Rig) -> Path:
    rig.endpoint_url = unused_url()
    return rig.config()


async def store_that_cannot_be_made(rig: Rig) -> Path:
    blocker = rig.tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    return rig.config(store=f"sqlite:///{blocker}/state.db")


async def read_only_store(rig: Rig) -> Path:
    config = rig.config()
    await migrated(config)
    (rig.tmp_path / "state.db").chmod(0o444)
    return config


async def postgresql_store_that_takes_no_writes(rig: Rig) -> Path:
    """Every transaction read-only, as on a standby: the store opens but is not writable."""
    postgres_url = rig.request.getfixturevalue("postgres_url")
    read_only = f"{postgres_url}?options=-c%20default_transaction_read_only%3Don"
    return rig.config(store=read_only)


@dataclass(frozen=True)
class Failure:
    """A mistake made on purpose, and what doctor must say of it on the check's failed line.

    Expected texts may hold {endpoint} (the endpoint's URL) and {tmp} (the test's directory).
    """

    mistake: Callable[[Rig], Awaitable[Path]]
    check: str  # the failed line starts "failed   CHECK: "
    whole: str = ""  # all of the line after that start, when it is known to the letter
    starts: str = ""
    ends: str = ""
    holds: tuple[str, ...] = ()
    once: tuple[str, ...] = ()  # each in the line exactly once
    other_lines: tuple[str, ...] = ()  # the start of further lines, each there exactly once
    nowhere: tuple[str, ...] = ()  # in neither stdout nor stderr
    pushtopic: bool = True  # False: the org has no PushTopic (nor the seed Account)


FAILURES = [
    pytest.param(
        Failure(
            wrong_password,
            "login (password)",
            starts="wrong username, password or security token, or the password flow is"
            " blocked (Salesforce: invalid_grant: authentication failure); fix: check",
            holds=("Allow OAuth Username-Password Flows",),
            other_lines=(
                "skipped  api version: needs the login, which failed",
                "skipped  trigger accounts channel: needs the login, which failed",
            ),
            nowhere=("nope",),
        ),
        id="wrong password: the password flow named, the rest skipped",
    ),
    pytest.param(
        Failure(blocked_password_flow, "login (password)", holds=("password flow is blocked",)),
        id="blocked password flow",
    ),
    pytest.param(
        Failure(
            wrong_client_secret,
            "login (password)",
            whole="wrong client_secret (Salesforce: invalid_client: invalid client credentials);"
            " fix: set salesforce.auth.client_secret to the connected app's consumer secret",
        ),
        id="wrong client secret",
    ),
    pytest.param(
        Failure(
            jwt_user_not_pre_authorised,
            "login (jwt)",
            whole="the connected app is not pre-authorised for this user (Salesforce:"
            " invalid_grant: user hasn't approved this consumer); fix: in Setup, App Manager, the"
            " connected app, Manage, Edit Policies (an external client app: External Client App"
            " Manager, the app, Edit Policies), under OAuth Policies: set Permitted Users to"
            " 'Admin approved users are pre-authorized', then add the user's profile or"
            " permission set",
        ),
        id="jwt user the app is not pre-authorised for",
    ),
    pytest.param(
        Failure(
            unknown_object,
            "trigger typo object",
            whole="Acount does not exist or this user cannot see it; did you mean Account?; fix:"
            " check the trigger's object (API name, with __c for a custom object) and the"
            " user's object permissions",
        ),
        id="unknown object",
    ),
    pytest.param(
        Failure(
            unknown_field,
            "trigger accounts fields",
            whole="Account has no field Industy (did you mean Industry?); fix: correct the"
            " trigger's fields (API names, with __c for custom fields), or give the user"
            " field-level access",
            other_lines=("ok       trigger accounts object: Account exists",),
        ),
        id="unknown field: the close names suggested",
    ),
    pytest.param(
        Failure(
            where_salesforce_refuses,
            "trigger accounts where",
            starts="Salesforce refused \"SELECT Id FROM Account WHERE Industri = 'Energy' LIMIT"
            ' 1": INVALID_FIELD: ',
            holds=("ERROR at Row:1:Column:30 No such column 'Industri' on entity 'Account'",),
            once=("SELECT",),  # Salesforce's copy of the query is left out
            ends="; fix: correct the trigger's where (SOQL, as after WHERE)",
        ),
        id="a where Salesforce refuses",
    ),
    *(
        pytest.param(
            Failure(
                lead_not_selected_for_cdc(transport),
                "trigger leads channel",
                starts="/data/LeadChangeEvent: Lead is not selected for Change Data Capture (",
                ends="; fix: Setup, Change Data Capture: move Lead to Selected Entities"
                " (or check the channel name)",
            ),
            id=f"object not selected for change data capture ({transport})",
        )
        for transport in ("cometd", "pubsub")
    ),
    pytest.param(
        Failure(
            missing_pushtopic,
            "trigger names pushtopic",
            whole="no PushTopic named AccountNames; fix: create the PushTopic AccountNames (a"
            " PushTopic record with its Name and Query)",
            other_lines=("failed   trigger names channel: /topic/AccountNames: refused (",),
            pushtopic=False,
        ),
        id="missing pushtopic",
    ),
    pytest.param(
        Failure(
            endpoint_answering_500,
            "endpoint receiver",
            whole="{endpoint}: signed sftriggerd.ping answered HTTP 500: database down; fix: the"
            " receiver must answer 2xx to a webhook it accepts (a ping included)",
        ),
        id="endpoint answering 500",
    ),
    pytest.param(
        Failure(
            unreachable_endpoint,
            "endpoint receiver",
            starts="{endpoint}: no answer (refused): ",
            ends="; fix: check the endpoint's url, that the receiver runs, and the network between",
        ),
        id="unreachable endpoint",
    ),
    pytest.param(
        Failure(
            store_that_cannot_be_made,
            "store",
            whole="sqlite:///{tmp}/not-a-directory/state.db: no store, and it cannot be made:"
            " {tmp}/not-a-directory is not a directory; fix: point store.url at a directory the"
            " daemon's user can write",
        ),
        id="store that cannot be made",
    ),
    pytest.param(
        Failure(read_only_store, "store"),
        id="read-only store",
        marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files"),
    ),
    pytest.param(
        Failure(
            postgresql_store_that_takes_no_writes,
            "store",
            starts="postgresql://",
            holds=(": opens but cannot be written: ", "read-only transaction"),
            ends="; fix: point store.url at the primary, as a user that may write the sftriggerd"
            " tables",
        ),
        id="postgresql store that takes no writes",
    ),
]


@pytest.mark.parametrize("failure", FAILURES)
async def test_a_mistake_is_named_on_its_own_failed_line(
    failure: Failure,
    tmp_path: Path,
    emulator: RunningEmulator,
    org: OrgClient,
    receiver: Receiver,
    http: aiohttp.ClientSession,
    request: pytest.FixtureRequest,
) -> None:
    if failure.pushtopic:
        await seed(org)
    rig = Rig(tmp_path, emulator, receiver, http, request)
    result = await doctor(await failure.mistake(rig))
    assert result.returncode == 1, result.stdout + result.stderr
    start = f"failed   {failure.check}: "
    line = result.line(start)
    detail = line.removeprefix(start)

    def filled(text: str) -> str:
        return text.format(endpoint=rig.endpoint_url or receiver.url, tmp=tmp_path)

    if failure.whole:
        assert detail == filled(failure.whole)
    assert detail.startswith(filled(failure.starts))
    assert detail.endswith(filled(failure.ends))
    for part in failure.holds:
        assert part in detail
    for part in failure.once:
        assert detail.count(part) == 1
    for other in failure.other_lines:
        assert result.line(other)
    for secret in failure.nowhere:
        assert secret not in result.stdout + result.stderr


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
