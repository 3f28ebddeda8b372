"""Messages the daemon cannot turn into events: they are kept as poison, the stream moves on,
and the other messages, triggers and endpoints keep delivering (issue 13, items 4 and 12)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.hostile.daemon_rig import DaemonRig, daemon_rig

CHANNEL = "/data/AccountChangeEvent"
POISON_WAIT_S = 15.0


def cdc_data(
    change_type: str = "CREATE",
    record_ids: list[str] | None = None,
    fields: dict[str, Any] | None = None,
    **header: Any,
) -> dict[str, Any]:
    """A change event's `data` as Salesforce sends it; `header` overrides header fields."""
    full_header: dict[str, Any] = {
        "entityName": "Account",
        "recordIds": record_ids if record_ids is not None else ["001EM0000000ZZZYAA"],
        "changeType": change_type,
        "changeOrigin": "",
        "transactionKey": f"hostile-{time.monotonic_ns()}",
        "sequenceNumber": 1,
        "commitTimestamp": int(time.time() * 1000),
        "commitNumber": time.monotonic_ns(),
        "commitUser": "005EM0000000001YAA",
        "nulledFields": [],
        "diffFields": [],
        "changedFields": [],
    }
    full_header.update(header)
    return {
        "schema": "hostile-schema-id00000",
        "payload": {"ChangeEventHeader": full_header, **(fields or {})},
    }


async def poison_list(rig: DaemonRig) -> list[dict[str, Any]] | None:
    answer = await rig.admin("GET", "/api/poison")
    return answer.body if answer.status == 200 and isinstance(answer.body, list) else None


async def test_three_bad_headers_among_good_messages_are_poison_and_the_rest_flows(
    tmp_path: Path,
) -> None:
    async with daemon_rig(tmp_path) as rig:
        bad_headers: list[dict[str, Any]] = [
            {"commitTimestamp": "yesterday"},
            {"changeType": ["UPDATE"]},
            {"recordIds": "001EM0000000001YAA"},  # a string where a list belongs
        ]
        good = []
        for overrides in bad_headers:
            good.append(await rig.create("Account", {"Name": "Good"}))
            await rig.control("publish", {"channel": CHANNEL, "data": cdc_data(**overrides)})
        good.append(await rig.create("Account", {"Name": "Good after"}))

        await rig.delivered(good)

        async def three_listed() -> bool:
            listed = await poison_list(rig)
            return listed is not None and len(listed) >= 3

        await rig.eventually(three_listed, "3 poison events in GET /api/poison", POISON_WAIT_S)
        poison = await poison_list(rig)
        assert poison is not None and len(poison) == 3
        for entry in poison:
            assert set(entry) == {"trigger", "reason", "received_at", "message"}
            assert entry["trigger"] == "accounts"
            assert isinstance(entry["reason"], str) and entry["reason"]
            assert isinstance(entry["message"], str)
        assert any("yesterday" in entry["message"] for entry in poison)
        assert await rig.metric("sftriggerd_poison_events_total", trigger="accounts") == 3
        # Nothing but the good records went out for this trigger.
        for receiver in (rig.alpha, rig.beta):
            assert receiver.record_ids("accounts") == set(good)
        await rig.others_still_deliver()


async def test_messages_without_a_replay_id_are_delivered_not_poison(tmp_path: Path) -> None:
    async with daemon_rig(tmp_path) as rig:
        record = await rig.create("Account", {"Name": "Base"})
        await rig.delivered([record])
        now_ms = int(time.time() * 1000)
        for offset, name in enumerate(("First", "Second")):
            # Well-formed change events, each with its own transaction, but no replayId.
            data = cdc_data(
                "UPDATE",
                [record],
                {"Name": name},
                commitTimestamp=now_ms + offset * 1000,
                changedFields=["Name"],
            )
            await rig.control("publish", {"channel": CHANNEL, "data": data, "replay_id": None})
        marker = await rig.create("Account", {"Name": "Marker"})
        await rig.delivered([marker])

        def both_updates_arrived() -> bool:
            return all(
                {b["record"].get("Name") for b in receiver.of_record(record)} >= {"First", "Second"}
                for receiver in (rig.alpha, rig.beta)
            )

        await rig.eventually(both_updates_arrived, "both updates without replayId delivered")
        assert await rig.metric("sftriggerd_poison_events_total", trigger="accounts") == 0
        await rig.others_still_deliver()


async def test_a_lone_surrogate_is_delivered_or_kept_as_poison_never_fatal(
    tmp_path: Path,
) -> None:
    async with daemon_rig(tmp_path) as rig:
        odd_record = "001EM0000000SURYAA"
        data = cdc_data("CREATE", [odd_record], {"Name": "bad \ud800 name"})
        await rig.control("publish", {"channel": CHANNEL, "data": data})
        marker = await rig.create("Account", {"Name": "Marker"})
        await rig.delivered([marker])

        async def accounted_for() -> bool:
            delivered = all(odd_record in r.record_ids() for r in (rig.alpha, rig.beta))
            listed = await poison_list(rig) or []
            return delivered or any(entry["trigger"] == "accounts" for entry in listed)

        await rig.eventually(
            accounted_for, "the surrogate message delivered or listed as poison", POISON_WAIT_S
        )
        await rig.others_still_deliver()


async def test_a_wildcard_gap_is_filled_like_an_overflow(tmp_path: Path) -> None:
    async with daemon_rig(tmp_path) as rig:
        first = await rig.create("Account", {"Name": "Before the gap"})
        await rig.delivered([first])
        # Changes whose events Salesforce could not send: only a gap notice follows them.
        await rig.control("cometd/starve", {"channel": CHANNEL, "enabled": True})
        missed = [await rig.create("Account", {"Name": f"In the gap {i}"}) for i in range(2)]
        streams = (await rig.control("channels"))["streams"]
        latest = streams["/data/ChangeEvents"]["latest_replay_id"]
        await rig.control("retention", {"drop_before_replay_id": latest + 1})
        await rig.control("cometd/starve", {"channel": CHANNEL, "enabled": False})
        # Sent by Salesforce after a field type change: a wildcard where record ids belong.
        await rig.control(
            "gap", {"object": "Account", "change_type": "GAP_UPDATE", "record_ids": ["001*"]}
        )

        await rig.delivered(missed)
        for receiver in (rig.alpha, rig.beta):
            for record in missed:
                assert all(b["source"].get("gap_fill") for b in receiver.of_record(record))
        await rig.others_still_deliver()
