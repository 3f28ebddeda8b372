"""docs/webhook.schema.json holds for real webhook bodies from every source.

The whole daemon (`sftriggerd run`) streams change events (single and merged), a platform
event, a PushTopic and a generic channel from the bundled emulator, polls an object and
fills gaps, and POSTs to a real receiver that verifies every signature; every body that
arrives is validated against the schema, and every kind of source must have sent one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hostile.daemon_rig import DaemonRig, daemon_rig
from tests.webhook_schema import validator

TRIGGERS = """
  - {name: accounts, object: Account, mode: streaming, fields: [Name], start_from: latest}
  - {name: orders, channel: /event/Order_Placed__e, mode: streaming, start_from: latest}
  - {name: deals, object: Opportunity, channel: /topic/BigDeals, mode: streaming,
     start_from: latest}
  - {name: alerts, channel: /u/Alerts, mode: streaming, start_from: latest}
  - {name: leads, object: Lead, mode: polling, fields: [LastName, Company],
     poll_interval: 200ms, poll_delay: 0s, start_from: latest}
"""

PUSH_TOPIC = {
    "Name": "BigDeals",
    "Query": "SELECT Id, Name, StageName FROM Opportunity",
    "ApiVersion": 60.0,
    "NotifyForOperationCreate": True,
    "NotifyForOperationUpdate": True,
    "NotifyForOperationDelete": True,
    "NotifyForOperationUndelete": True,
    "NotifyForFields": "Referenced",
}


def kind_of(body: dict[str, Any]) -> str:
    """Which source sent a body, as the receiver can tell from it."""
    source = body["source"]
    if source["kind"] == "polling":
        return "gap_fill" if source.get("gap_fill") else "polling"
    return {"/data/": "cdc", "/event/": "platform_event", "/topic/": "pushtopic", "/u/": "generic"}[
        source["channel"][: source["channel"].index("/", 1) + 1]
    ]


async def make_changes(rig: DaemonRig) -> dict[str, Any]:
    """One change of every kind; returns what to wait for."""
    account = await rig.create("Account", {"Name": "Acme"})
    await rig.org.call("PATCH", f"sobjects/Account/{account}", json={"Name": "Acme 2"})
    await rig.org.call("DELETE", f"sobjects/Account/{account}")
    await rig.control(f"undelete/Account/{account}", {})
    merged = await rig.org.create_many("Account", [{"Name": "Same"} for _ in range(3)])
    await rig.control("events/Order_Placed__e", {"payload": {"Amount__c": 12}})
    deal = await rig.create(
        "Opportunity", {"Name": "Big", "StageName": "Prospecting", "CloseDate": "2026-12-31"}
    )
    await rig.control("channels/push", {"channel": "/u/Alerts", "payload": "ink low"})
    lead = await rig.create("Lead", {"LastName": "Lee", "Company": "Acme"})
    return {"records": {account, *merged, deal, lead}, "merged": merged}


@pytest.mark.slow
async def test_every_source_sends_bodies_the_schema_accepts(tmp_path: Path) -> None:
    async with daemon_rig(tmp_path, start_daemon=False, triggers=TRIGGERS) as rig:
        await rig.create("PushTopic", PUSH_TOPIC)
        await rig.control("channels", {"name": "/u/Alerts"})
        await rig.start()
        made = await make_changes(rig)
        await rig.delivered(made["records"], (rig.alpha,))
        gap_record = sorted(made["merged"])[0]
        gap = {"object": "Account", "record_ids": [gap_record], "change_type": "GAP_UPDATE"}
        await rig.control("gap", gap)
        await rig.control("gap", {"object": "Account", "change_type": "GAP_OVERFLOW"})
        wanted = {"cdc", "platform_event", "pushtopic", "generic", "polling", "gap_fill"}
        await rig.eventually(
            lambda: wanted <= {kind_of(d.body) for d in rig.alpha.deliveries},
            f"a body from every kind of source: {sorted(wanted)}",
        )
        deliveries = list(rig.alpha.deliveries)
    check = validator()
    for delivery in deliveries:
        errors = [e.message for e in check.iter_errors(delivery.body)]
        assert not errors, (kind_of(delivery.body), errors, delivery.body)
        assert delivery.webhook_id == delivery.body["id"]
    assert rig.alpha.bad_signatures == 0
    merged_bodies = [d.body for d in deliveries if d.record_id in made["merged"]]
    merged_bodies = [b for b in merged_bodies if b["source"]["kind"] == "streaming"]
    assert len({b["source"]["replay_id"] for b in merged_bodies}) == 1  # one merged event
    for body in merged_bodies:
        header = body["raw"]["data"]["payload"]["ChangeEventHeader"]
        assert header["recordIds"] == [body["record_id"]]
    changes = {d.body["change"] for d in deliveries if kind_of(d.body) == "cdc"}
    assert changes == {"created", "updated", "deleted", "undeleted"}


def test_the_schema_refuses_what_sftriggerd_never_sends() -> None:
    """The schema is not vacuous: each broken copy of a real body shape fails it."""
    good = {
        "id": "evt_" + "0" * 32,
        "type": "account.updated",
        "trigger": "accounts",
        "object": "Account",
        "change": "updated",
        "record_id": "001000000000001AAA",
        "occurred_at": "2026-11-28T10:15:02.000Z",
        "source": {
            "kind": "streaming",
            "channel": "/data/AccountChangeEvent",
            "replay_id": 7,
            "transport": "cometd",
        },
        "changed_fields": ["Name"],
        "record": {"Id": "001000000000001AAA", "Name": "Acme"},
        "raw": {},
    }
    check = validator()
    assert not list(check.iter_errors(good))
    broken: list[dict[str, Any]] = [
        {**good, "type": "account.created"},
        {**good, "change": "event"},
        {**good, "record_id": None},
        {**good, "occurred_at": "2026-11-28T10:15:02Z"},
        {**good, "source": {"kind": "polling", "watermark": "x"}},
        {**good, "source": {"kind": "polling", "watermark": "2026-11-28T10:15:02.000Z"}},
        {**good, "change": "created", "type": "account.created"},
        {**good, "record": {"Name": "no Id"}},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "raw"},
        {**good, "source": {**good["source"], "transport": "grpc"}},
        {**good, "source": {k: v for k, v in good["source"].items() if k != "transport"}},
        {**good, "source": {**good["source"], "replay_id": "AAAA"}},  # text over CometD
        {**good, "source": {**good["source"], "transport": "pubsub"}},  # a number over Pub/Sub
        {**good, "source": {**good["source"], "transport": "pubsub", "replay_id": "not b64!"}},
    ]
    for body in broken:
        assert list(check.iter_errors(body)), body
    pubsub = {**good["source"], "transport": "pubsub", "replay_id": "AAAAAAAGUNsAAA=="}
    for source in (pubsub, {**pubsub, "replay_id": None}):
        assert not list(check.iter_errors({**good, "source": source}))
