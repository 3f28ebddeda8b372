"""The process the crash test kills: a source and the real dispatcher on one SQLite store.

It plays a source that reads events 0..N-1 in batches and commits each batch with its
checkpoint through `Ingest`, while the `Dispatcher` delivers them to the test's receiver.
On start it resumes from the stored checkpoint, reading the last committed batch again
(as a source re-reads after a crash), which ingestion must absorb as duplicates.

Stdout is a protocol for the test, one line each:

    ready <checkpoint> <events>   the store is open, holding <events>; work starts now
    ingested <end> <new> <dup>    one batch committed, up to event <end> (exclusive)
    done                          everything ingested and delivered (with --exit-when-done)

Run as `python -m tests.crash.child --store ... --url ... --events N`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sftriggerd.config.settings import EndpointSettings, RetrySettings
from sftriggerd.delivery import Dispatcher
from sftriggerd.events.model import Event, event_id
from sftriggerd.ingest import Ingest
from sftriggerd.logs import configure_logging
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint
from sftriggerd.store.sqlite import SqliteStore

TRIGGER = "crash"
ENDPOINT = "receiver"
SECRET = "whsec_Y3Jhc2gtdGVzdC1zZWNyZXQta2V5LTAxMjM0NTY3"
RECORDS = 40  # events are spread over this many records, delivered in order per record
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
# Short, so deliveries leased by a killed process come due again quickly; the lease must
# outlast the timeout (a claim that could not be answered within it is given back).
TIMEOUT = timedelta(seconds=1)
LEASE = timedelta(seconds=2)


def event_key(number: int) -> str:
    """The webhook-id of event `number`; the test computes the same."""
    return event_id(TRIGGER, number)


def source_event(number: int) -> Event:
    record = number % RECORDS
    return Event(
        id=event_key(number),
        trigger=TRIGGER,
        object="Account",
        change="updated",
        record_id=f"001CRASH{record:010d}",
        occurred_at=BASE_TIME + timedelta(milliseconds=number),
        source={"kind": "crash-test", "number": number},
        changed_fields=("Name",),
        record={"Name": f"account {number}"},
    )


def endpoint_settings(url: str) -> EndpointSettings:
    return EndpointSettings.model_validate(
        {
            "name": ENDPOINT,
            "url": url,
            "secret": SECRET,
            "timeout": TIMEOUT,
            "max_in_flight": 16,
            "ordering": "per_record",
            "retry": RetrySettings(
                schedule=(timedelta(milliseconds=100),), max_age=timedelta(days=1)
            ),
        }
    )


def say(line: str) -> None:
    print(line, flush=True)


async def read_source(store: Store, ingest: Ingest, args: argparse.Namespace) -> None:
    """Ingests from the stored checkpoint (one batch before it, again) to the last event."""
    stored = await store.checkpoint(TRIGGER)
    committed = int(stored.position["next"]) if stored else 0
    # What the checkpoint promises is there: it moved only with its events.
    rows = await store.list_deliveries(limit=2 * args.events + 1)
    say(f"ready {committed} {len({row.event_id for row in rows})}")
    first = max(0, committed - args.batch)
    while first < args.events:
        end = min(first + args.batch, args.events)
        # Never behind what is already committed: the re-read batch keeps the checkpoint.
        checkpoint = Checkpoint(
            trigger=TRIGGER,
            position={"next": max(end, committed)},
            event_time=BASE_TIME + timedelta(milliseconds=end - 1),
        )
        result = await ingest(TRIGGER, [source_event(n) for n in range(first, end)], checkpoint)
        say(f"ingested {end} {result.new_events} {result.duplicate_events}")
        first = end
        await asyncio.sleep(args.pace_s)


async def delivered_all(store: Store) -> None:
    while True:
        counts = (await store.outbox_counts()).get(ENDPOINT)
        if counts is None or counts.pending + counts.dead == 0:
            return
        await asyncio.sleep(0.05)


async def main(args: argparse.Namespace) -> None:
    configure_logging("warning", stream=sys.stderr)
    store = SqliteStore(args.store)
    await store.open()
    hook = endpoint_settings(args.url)
    metrics = Metrics()
    stopping = asyncio.Event()
    try:
        async with asyncio.TaskGroup() as group:
            dispatcher = Dispatcher(
                store, [hook], metrics, lease=LEASE, shutdown_grace=timedelta(seconds=5)
            )
            ingest = Ingest(store, [hook], metrics, notify=dispatcher.notify)
            group.create_task(dispatcher.run(stopping))
            await read_source(store, ingest, args)
            await delivered_all(store)
            if args.exit_when_done:
                stopping.set()
            else:
                await stopping.wait()  # until killed
    finally:
        await store.close()
    say("done")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--pace-s", type=float, default=0.05, help="pause between batches")
    parser.add_argument("--exit-when-done", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
