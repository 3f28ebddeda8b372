"""`deliveries resend`, `deliveries redrive --since/--until` and `triggers rewind` through the
console script, on a real SQLite file."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sftriggerd.store.records import Checkpoint, Delivered, NewEvent
from sftriggerd.store.sqlite import SqliteStore
from tests.acceptance.cli import free_port, run_cli
from tests.acceptance.test_store_commands import SECRET, seeded

TRIGGERS = """
  - {name: accounts, object: Account, mode: streaming}
  - {name: polled, object: Contact, mode: polling}"""


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(f"""
salesforce: {{auth: {{client_id: c, client_secret: s, username: u, password: p}}}}
store: {{url: "sqlite:///{tmp_path}/state.db"}}
triggers:{TRIGGERS}
endpoints: [{{name: hook, url: "http://127.0.0.1:9/h", secret: {SECRET}}}]
server: {{listen: "127.0.0.1:{free_port()}"}}
""")
    return config


def cli(config: Path, *args: str) -> tuple[int, str]:
    result = run_cli(*args, "--config", str(config))
    assert "Traceback" not in result.stderr
    return result.returncode, (result.stdout + result.stderr).strip()


async def statuses(path: Path) -> dict[int, str]:
    store = SqliteStore(path)
    await store.open(create=False)
    try:
        return {row.id: row.status for row in await store.list_deliveries()}
    finally:
        await store.close()


def test_resend_one_then_again_is_a_no_op(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    delivered, _ = asyncio.run(seeded(tmp_path / "state.db"))
    assert cli(config, "deliveries", "resend", "--id", str(delivered)) == (
        0,
        f"delivery {delivered} is pending again",
    )
    assert cli(config, "deliveries", "resend", "--id", str(delivered)) == (
        0,
        f"delivery {delivered} is already pending: nothing to do",
    )
    assert asyncio.run(statuses(tmp_path / "state.db"))[delivered] == "pending"


def test_bulk_redrive_by_time_range(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    _, dead = asyncio.run(seeded(tmp_path / "state.db"))
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    code, text = cli(
        config, "deliveries", "redrive", "--endpoint", "hook", "--status", "dead", "--since", future
    )
    assert (code, text) == (0, "0 dead deliveries of hook are pending again")
    code, text = cli(
        config,
        *("deliveries", "redrive", "--endpoint", "hook", "--status", "dead"),
        *("--since", "1h", "--until", future),
    )
    assert (code, text) == (
        0,
        "1 dead deliveries of hook are pending again; 1 already pending, left as they were",
    )
    assert asyncio.run(statuses(tmp_path / "state.db"))[dead] == "pending"


def test_bulk_resend_takes_delivered_ones_and_is_idempotent(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    delivered, dead = asyncio.run(seeded(tmp_path / "state.db"))
    code, text = cli(config, "deliveries", "resend", "--endpoint", "hook", "--since", "1h")
    assert code == 0 and text.startswith("2 deliveries of hook are pending again; 1 already")
    code, text = cli(config, "deliveries", "resend", "--endpoint", "hook", "--status", "delivered")
    assert code == 0 and text.startswith("0 deliveries of hook are pending again; 3 already")
    found = asyncio.run(statuses(tmp_path / "state.db"))
    assert (found[delivered], found[dead]) == ("pending", "pending")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("deliveries", "resend"), "either --id ID or --endpoint NAME"),
        (("deliveries", "resend", "--id", "999"), "no delivery 999"),
        (("deliveries", "resend", "--endpoint", "nope"), "no endpoint named 'nope'"),
        (("deliveries", "resend", "--id", "1", "--since", "1h"), "takes no --status"),
        (("deliveries", "redrive", "--endpoint", "hook", "--since", "1h"), "needs --status dead"),
        (
            ("deliveries", "redrive", "--endpoint", "hook", "--status", "dead", "--since", "then"),
            "is not a time",
        ),
        (("triggers", "rewind", "nope", "--to", "1h"), "no trigger named 'nope'"),
        (("triggers", "rewind", "accounts", "--to", "4d"), "outside Salesforce's retention"),
        (("triggers", "rewind", "polled", "--to", "77"), "polling has no replay ids"),
    ],
)
def test_usage_errors_say_why(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    config = write_config(tmp_path)
    asyncio.run(seeded(tmp_path / "state.db"))
    code, text = cli(config, *args)
    assert code == 2 and says in text, (args, text)


async def stored_streaming(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        events = [
            NewEvent(
                event_id=f"evt_{n}",
                record_id=f"r{n}",
                occurred_at=datetime.now(UTC),
                body=json.dumps({"source": {"kind": "streaming", "replay_id": n}}).encode(),
                endpoints=("hook",),
            )
            for n in (5, 6, 7)
        ]
        position = {"replay_id": 7, "channel": "/data/AccountChangeEvent"}
        await store.ingest("accounts", events, Checkpoint(trigger="accounts", position=position))
        claims = await store.claim_due("hook", 3, timedelta(seconds=30))
        for claim in claims:
            await store.record_outcome(claim, Delivered(status=200))
    finally:
        await store.close()


async def position(path: Path) -> dict[str, object]:
    store = SqliteStore(path)
    await store.open(create=False)
    try:
        saved = await store.checkpoint("accounts")
        assert saved is not None
        return saved.position
    finally:
        await store.close()


def test_rewind_to_a_replay_id_with_and_without_resend(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    asyncio.run(stored_streaming(tmp_path / "state.db"))
    code, text = cli(config, "triggers", "rewind", "accounts", "--to", "5")
    assert code == 0 and "rewound to replay id 5; events already stored will not" in text
    assert set(asyncio.run(statuses(tmp_path / "state.db")).values()) == {"delivered"}
    assert asyncio.run(position(tmp_path / "state.db"))["replay_id"] == 5
    code, text = cli(config, "triggers", "rewind", "accounts", "--to", "5", "--resend")
    assert code == 0 and "2 stored deliveries from there are pending again" in text
    assert sorted(asyncio.run(statuses(tmp_path / "state.db")).values()) == [
        "delivered",
        "pending",
        "pending",
    ]


async def stored_pubsub(path: Path, tokens: list[str]) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        events = [
            NewEvent(
                event_id=f"evt_{n}",
                record_id=None,
                occurred_at=datetime.now(UTC),
                body=json.dumps(
                    {"source": {"kind": "streaming", "replay_id": token, "transport": "pubsub"}}
                ).encode(),
                endpoints=("hook",),
            )
            for n, token in enumerate(tokens)
        ]
        replay = {"base64": tokens[-1]}
        checkpoint = Checkpoint(trigger="orders", position={"replay_id": replay})
        await store.ingest("orders", events, checkpoint)
        for claim in await store.claim_due("hook", 3, timedelta(seconds=30)):
            await store.record_outcome(claim, Delivered(status=200))
    finally:
        await store.close()


def test_a_pubsub_trigger_rewinds_to_a_base64_replay_id(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    orders = "\n  - {name: orders, channel: /event/Order__e, transport: pubsub}\nendpoints:"
    config.write_text(config.read_text().replace("\nendpoints:", orders, 1))
    tokens = ["AAAAAAAGUNs=", "AAAAAAAGUNw=", "AAAAAAAGUN0="]
    asyncio.run(stored_pubsub(tmp_path / "state.db", tokens))
    code, text = cli(config, "triggers", "rewind", "orders", "--to", "5")
    assert code == 2 and "whose replay ids are not numbers" in text
    code, text = cli(config, "triggers", "rewind", "orders", "--to", tokens[0], "--resend")
    assert code == 0 and "2 stored deliveries from there are pending again" in text, text
    store = SqliteStore(tmp_path / "state.db")

    async def saved_position() -> dict[str, object]:
        await store.open(create=False)
        try:
            saved = await store.checkpoint("orders")
            assert saved is not None
            return saved.position
        finally:
            await store.close()

    assert asyncio.run(saved_position())["replay_id"] == {"base64": tokens[0]}


def test_a_polled_trigger_rewinds_to_any_time(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    asyncio.run(seeded(tmp_path / "state.db"))
    code, text = cli(config, "triggers", "rewind", "polled", "--to", "2020-01-01T00:00:00Z")
    assert code == 0 and "rewound to 2020-01-01T00:00:00.000000Z" in text


async def led_elsewhere(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        await store.acquire_lease("accounts", "replica-7", timedelta(hours=1))
    finally:
        await store.close()


def test_a_rewind_without_a_daemon_is_refused_while_a_replica_leads_the_trigger(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    asyncio.run(stored_streaming(tmp_path / "state.db"))
    asyncio.run(led_elsewhere(tmp_path / "state.db"))
    code, text = cli(config, "triggers", "rewind", "accounts", "--to", "5")
    assert code == 2 and "is being read by replica replica-7" in text
    assert asyncio.run(position(tmp_path / "state.db"))["replay_id"] != 5
    code, _ = cli(config, "triggers", "rewind", "polled", "--to", "2020-01-01T00:00:00Z")
    assert code == 0  # another trigger, led by nobody
