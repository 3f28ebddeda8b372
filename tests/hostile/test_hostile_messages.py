"""Hostile streamed messages, as JSON text off the wire, through normalisation, `Ingest` and a
real SQLite store: each one that cannot be handled is kept as poison with its reason, every
good one next to it is stored and delivered, and the checkpoint moves past them all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import sftriggerd
from sftriggerd.events.model import Event
from sftriggerd.events.normalise import (
    Gap,
    MalformedMessage,
    from_cdc,
    from_platform_event,
    from_pushtopic,
)
from sftriggerd.events.payload import poison_text
from sftriggerd.ingest import Ingest
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, PoisonEvent
from tests.salesforce_messages import (
    CDC_CHANNEL,
    PE_CHANNEL,
    TOPIC_CHANNEL,
    cdc,
    pushtopic,
)
from tests.unit.test_routing import endpoint

TRIGGER = "accounts"
ENDPOINTS = [endpoint("hook")]


@dataclass
class Normalised:
    events: list[Event] = field(default_factory=list)
    poison: list[PoisonEvent] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)


def wire(text: str) -> Any:
    """A message as Python's JSON reader gives it (lone surrogates and NaN included)."""
    return json.loads(text)


def normalise(messages: list[tuple[str, Any]]) -> Normalised:
    """What a source does with a batch: events, gaps to fill, and poison for the rest."""
    out = Normalised()
    for kind, message in messages:
        try:
            if kind == "cdc":
                result = from_cdc(TRIGGER, CDC_CHANNEL, message)
                if isinstance(result, Gap):
                    out.gaps.append(result)
                else:
                    out.events.extend(result)
            elif kind == "pushtopic":
                out.events.append(from_pushtopic(TRIGGER, "Invoice__c", TOPIC_CHANNEL, message))
            else:
                out.events.append(from_platform_event(TRIGGER, PE_CHANNEL, message))
        except MalformedMessage as exc:
            out.poison.append(PoisonEvent(TRIGGER, str(exc), poison_text(message)))
    return out


def header_with(**fields: Any) -> Any:
    message = cdc("UPDATE", ["001BAD"])
    message["data"]["payload"]["ChangeEventHeader"].update(fields)
    return wire(json.dumps(message))


def good_update(record: str, name: str) -> Any:
    return wire(json.dumps(cdc("UPDATE", [record], Name=name)).replace("103773372", "7"))


HOSTILE: list[tuple[str, Any, str]] = [
    ("cdc", header_with(recordIds="001BAD"), "recordIds is not a non-empty list of strings"),
    ("cdc", header_with(recordIds=[1, 2]), "recordIds is not a non-empty list of strings"),
    ("cdc", header_with(changeType=5), "changeType is not a non-empty string"),
    ("cdc", header_with(commitTimestamp="soon"), "commitTimestamp is not a number"),
    ("cdc", header_with(commitTimestamp=1e300), "commitTimestamp is out of range"),
    ("cdc", header_with(changedFields="Name"), "changedFields is not a list of strings"),
    ("cdc", header_with(sequenceNumber="1"), "sequenceNumber is not an integer"),
    ("cdc", wire("[1, 2, 3]"), "message has no data object"),
    ("cdc", wire('{"data": {"payload": []}}'), "CDC message has no ChangeEventHeader"),
    ("pushtopic", wire('{"data": {"event": {}, "sobject": {"Id": 5}}}'), "sobject.Id"),
    (
        "platform_event",
        wire('{"data": {"payload": {"CreatedDate": "yesterday"}}}'),
        "is not an ISO 8601 time",
    ),
]


async def bodies(store: Store) -> dict[str, dict[str, Any]]:
    claims = await store.claim_due("hook", 10_000, timedelta(seconds=30))
    return {c.event_id: json.loads(c.body.decode("utf-8")) for c in claims}


async def test_hostile_messages_are_poison_and_the_good_ones_around_them_are_kept(
    store: Store,
) -> None:
    metrics = Metrics()
    ingest = Ingest(store, ENDPOINTS, metrics)
    surrogate = wire(json.dumps(cdc("UPDATE", ["001SUR"], Name="x")).replace('"x"', '"\\ud83d"'))
    nan_text = json.dumps(cdc("UPDATE", ["001NAN"], N="x")).replace('"x"', "NaN")
    not_a_number = wire(nan_text)
    batch = [
        ("cdc", good_update("001GOOD1", "before")),
        *[(kind, message) for kind, message, _ in HOSTILE],
        ("cdc", surrogate),
        ("cdc", not_a_number),
        ("cdc", good_update("001GOOD2", "after")),
    ]
    normalised = normalise(batch)
    checkpoint = Checkpoint(TRIGGER, {"replay_id": 7, "channel": CDC_CHANNEL})
    await ingest(TRIGGER, normalised.events, checkpoint, normalised.poison)

    kept = await store.list_poison(TRIGGER)
    reasons = " | ".join(p.reason for p in kept)
    for _, _, reason in HOSTILE:
        assert reason in reasons
    assert any(p.reason.startswith("event ") and "JSON" in p.reason for p in kept)  # the NaN
    assert len(kept) == len(HOSTILE) + 1
    assert all(p.message and len(p.message) < 20_000 for p in kept)
    assert metrics.registry.get_sample_value(
        "sftriggerd_poison_events_total", {"trigger": TRIGGER}
    ) == len(kept)

    delivered = await bodies(store)
    names = {b["record_id"]: b["record"].get("Name") for b in delivered.values()}
    assert names == {"001GOOD1": "before", "001GOOD2": "after", "001SUR": "\ud83d"}
    saved = await store.checkpoint(TRIGGER)
    assert saved is not None and saved.position["replay_id"] == 7

    # The next batch, after the poison, goes through as usual.
    after = normalise([("cdc", good_update("001GOOD3", "later"))])
    await ingest(TRIGGER, after.events, Checkpoint(TRIGGER, {"replay_id": 8}), after.poison)
    assert set(await bodies(store)) == {after.events[0].id}
    assert len(await store.list_poison(TRIGGER)) == len(kept)


@pytest.mark.parametrize("record_ids", [["001*"], [], None, "001*", [{"id": 1}]], ids=str)
async def test_a_gap_without_usable_record_ids_asks_for_a_time_range_fill(
    record_ids: Any,
) -> None:
    message = cdc("GAP_UPDATE", [])
    message["data"]["payload"]["ChangeEventHeader"]["recordIds"] = record_ids
    normalised = normalise([("cdc", wire(json.dumps(message)))])
    [gap] = normalised.gaps
    assert gap.overflow and gap.wildcard and not normalised.poison and not normalised.events


async def test_messages_without_a_replay_id_are_not_dropped_as_duplicates(
    store: Store,
) -> None:
    ingest = Ingest(store, ENDPOINTS, Metrics())
    messages = [("pushtopic", wire(json.dumps(pushtopic(None, f"INV-{n}")))) for n in range(3)]
    normalised = normalise(messages)
    result = await ingest(TRIGGER, normalised.events, Checkpoint(TRIGGER, {"replay_id": None}))
    assert result.new_events == 3 and result.duplicate_events == 0
    # The same messages again (a replay) are the same events.
    again = await ingest(TRIGGER, normalise(messages).events, None)
    assert again.duplicate_events == 3


async def test_a_merged_event_gives_each_webhook_only_its_own_record(
    tmp_path: Path, store: Store
) -> None:
    ids = [f"001{n:015d}" for n in range(2000)]
    message = wire(json.dumps(cdc("UPDATE", ids, Name="Bulk")))
    normalised = normalise([("cdc", message)])
    ingest = Ingest(store, ENDPOINTS, Metrics())
    result = await ingest(TRIGGER, normalised.events, Checkpoint(TRIGGER, {"replay_id": 1}))
    assert result.new_events == 2000
    delivered = await bodies(store)
    assert len(delivered) == 2000
    for body in delivered.values():
        assert body["raw"]["data"]["payload"]["ChangeEventHeader"]["recordIds"] == [
            body["record_id"]
        ]
    # 2,000 whole messages would be 2,000 x 40 KB = 80 MB; one record each is ~1 KB.
    total = sum(len(json.dumps(b)) for b in delivered.values())
    assert total < 4 * 1024 * 1024


def test_a_merged_event_for_10000_records_stays_well_under_100_mib() -> None:
    """The benchmark's child process: one 10,000-record merged event, normalised and
    ingested into SQLite (all of it used 2 GiB before: every body held the whole message)."""
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(Path(sftriggerd.__file__).parents[1])}
    command = [sys.executable, str(root / "benchmarks" / "merged_event.py"), "--ids", "10000"]
    done = subprocess.run(
        [*command, "--way", "new", "--json"], env=env, capture_output=True, check=True, timeout=60
    )
    figures = json.loads(done.stdout)
    assert figures["stored"] == 10_000
    assert figures["peak_rss_mib"] < 100
    assert figures["peak_rss_mib"] - figures["rss_after_imports_mib"] < 50
    assert figures["body_mib"] < 30  # about 1.3 KiB a record, not the whole message each
