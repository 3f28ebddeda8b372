"""Peak memory and time to take one merged CDC event for N records into a real SQLite store.

    .venv/bin/python benchmarks/merged_event.py --ids 10000

Salesforce merges the same change to many records of one transaction into one message whose
header lists every record id. Each way runs in a fresh child process (so its peak RSS is its
own): the message is read from JSON text as the wire gives it, normalised, and ingested
through `Ingest` into a fresh SQLite store (WAL, synchronous=FULL), with one endpoint.

- new: each event's `raw` carries the message narrowed to its own record, and `Ingest`
  stores the batch in bounded parts (at most 500 events or ~4 MiB of bodies per
  transaction; the last part carries the checkpoint);
- old: what sftriggerd did before: every event's `raw` is the whole message, every body is
  encoded before one single transaction. Its bodies grow with N², so it runs with
  `--old-ids` records (default: the smaller of N and 2,000) unless asked for more.

Prints, per way (with --json, as one JSON object a line): records, peak RSS of the child,
RSS after imports, wall time, stored body bytes. No assertions: figures for people (the
hostile suite holds the bound).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import resource
import sqlite3
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sftriggerd.config.settings import EndpointSettings
from sftriggerd.events.normalise import from_cdc
from sftriggerd.ingest import Ingest
from sftriggerd.metrics import Metrics
from sftriggerd.store.records import Checkpoint
from sftriggerd.store.sqlite import SqliteStore

TRIGGER = "bench"
CHANNEL = "/data/AccountChangeEvent"
SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1rZXktMDEyMzQ1Njc4OQ=="
MIB = 1024 * 1024


def merged_message_text(ids: int) -> str:
    """A merged UPDATE for `ids` accounts, as Salesforce sends it (fields of a typical size)."""
    header = {
        "entityName": "Account",
        "recordIds": [f"001{n:015d}" for n in range(ids)],
        "changeType": "UPDATE",
        "changeOrigin": "com/salesforce/api/soap/60.0;client=DataLoader",
        "transactionKey": "000c6c88-b097-f5fb-0005-65d83dc022e5",
        "sequenceNumber": 1,
        "commitTimestamp": 1569407548000,
        "commitNumber": 10583584855437,
        "commitUser": "0054J000000g1dGQAQ",
        "changedFields": ["Rating", "Description", "LastModifiedDate"],
        "diffFields": [],
        "nulledFields": [],
    }
    payload = {
        "ChangeEventHeader": header,
        "Rating": "Hot",
        "Description": "Re-rated by the spring campaign " * 4,
        "LastModifiedDate": "2019-09-25T10:32:28.000Z",
    }
    event = {"replayId": 103773372}
    return json.dumps(
        {"channel": CHANNEL, "data": {"schema": "x", "payload": payload, "event": event}}
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def take(way: str, ids: int, directory: Path) -> dict[str, Any]:
    endpoint = EndpointSettings.model_validate(
        {"name": "hook", "url": "http://127.0.0.1:1/h", "secret": SECRET}
    )
    store = SqliteStore(directory / "state.db")
    await store.open()
    after_imports = peak_rss_mib()
    started = time.perf_counter()
    try:
        text = merged_message_text(ids)
        message = json.loads(text)
        del text
        events = from_cdc(TRIGGER, CHANNEL, message)
        assert isinstance(events, list)
        if way == "old":
            events = [dataclasses.replace(e, raw=message) for e in events]
            ingest = Ingest(store, [endpoint], Metrics(), chunk_events=10**9, chunk_bytes=10**15)
        else:
            ingest = Ingest(store, [endpoint], Metrics())
        checkpoint = Checkpoint(TRIGGER, {"replay_id": 103773372, "channel": CHANNEL})
        result = await ingest(TRIGGER, events, checkpoint)
        elapsed_s = time.perf_counter() - started
    finally:
        await store.close()
    with sqlite3.connect(directory / "state.db") as db:
        [(body_bytes,)] = db.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM events")
    return {
        "way": way,
        "records": ids,
        "stored": result.new_events,
        "peak_rss_mib": peak_rss_mib(),
        "rss_after_imports_mib": after_imports,
        "seconds": elapsed_s,
        "body_mib": body_bytes / MIB,
    }


def child(way: str, ids: int, conn: Connection) -> None:
    with tempfile.TemporaryDirectory() as directory:
        conn.send(asyncio.run(take(way, ids, Path(directory))))


def measure(way: str, ids: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=child, args=(way, ids, theirs))
    process.start()
    try:
        figures: dict[str, Any] = ours.recv()
    finally:
        process.join()
    return figures


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", type=int, default=10_000, help="records in the merged event")
    parser.add_argument("--way", choices=["new", "old", "both"], default="both")
    parser.add_argument(
        "--old-ids", type=int, default=None, help="records for the old way (default min(N, 2000))"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per way")
    return parser.parse_args(argv)


def main() -> None:
    args = parse(sys.argv[1:])
    runs = []
    if args.way in ("new", "both"):
        runs.append(("new", args.ids))
    if args.way in ("old", "both"):
        runs.append(("old", args.old_ids if args.old_ids is not None else min(args.ids, 2000)))
    if not args.json:
        print(f"{'way':<4} {'records':>8} {'peak RSS':>10} {'after imports':>14}", end="")
        print(f" {'time':>8} {'bodies':>10}")
    for way, ids in runs:
        f = measure(way, ids)
        if args.json:
            print(json.dumps(f))
            continue
        print(
            f"{f['way']:<4} {f['records']:>8} {f['peak_rss_mib']:>6.1f} MiB"
            f" {f['rss_after_imports_mib']:>10.1f} MiB {f['seconds']:>6.2f} s"
            f" {f['body_mib']:>6.1f} MiB"
        )


if __name__ == "__main__":
    main()
