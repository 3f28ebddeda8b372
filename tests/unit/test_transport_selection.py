"""Which transport each streamed trigger's source uses: the one its `transport` resolves to,
the Pub/Sub ones all over the daemon's one client, which exists only when a trigger needs it."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from sftriggerd.config import parse_settings
from sftriggerd.config.settings import Settings
from sftriggerd.daemon import build_sources, pubsub_client
from sftriggerd.ingest import Ingest
from sftriggerd.metrics import Metrics
from sftriggerd.salesforce.client import SalesforceClient
from sftriggerd.sources.auto import AutoSource
from sftriggerd.sources.cometd_transport import CometdTransport
from sftriggerd.sources.pubsub_transport import PubSubTransport
from sftriggerd.sources.restartable import RestartableSource
from sftriggerd.sources.streaming import StreamingSource
from sftriggerd.store.sqlite import SqliteStore


def settings_with(salesforce: str, triggers: str, tmp_path: Path) -> Settings:
    text = f"""
salesforce:
  auth: {{flow: client_credentials, client_id: cid, client_secret: cs}}
{salesforce}
store: {{url: "sqlite:///{tmp_path}/state.db"}}
triggers:
{triggers}
"""
    return parse_settings(text, "c.yaml", {})


TRIGGERS = """\
  - {name: plain, object: Account, mode: streaming}
  - {name: own, object: Contact, mode: streaming, transport: cometd}
  - {name: auto, object: Lead}
  - {name: polled, object: Case, mode: polling}
  - {name: event, channel: /event/Order__e}
"""


def streaming_of(part: object) -> StreamingSource | None:
    assert isinstance(part, RestartableSource)
    source = part._source
    if isinstance(source, AutoSource):
        return source._streaming
    return source if isinstance(source, StreamingSource) else None


async def test_each_streamed_trigger_gets_its_transport_over_one_pubsub_client(
    tmp_path: Path,
) -> None:
    settings = settings_with(
        "  transport: pubsub\n  pubsub_url: http://127.0.0.1:1", TRIGGERS, tmp_path
    )
    store = SqliteStore(tmp_path / "state.db")
    metrics = Metrics()
    async with aiohttp.ClientSession() as http:
        client = SalesforceClient(settings.salesforce, http, metrics)
        pubsub = pubsub_client(settings, client)
        assert pubsub is not None and pubsub.url == "http://127.0.0.1:1"
        ingest = Ingest(store, settings.endpoints, metrics)
        parts, statuses = build_sources(settings, client, ingest, store, metrics, pubsub)
        chosen = {}
        for part in parts:
            streaming = streaming_of(part)
            if streaming is not None:
                transport = streaming._new_transport(streaming.channel)
                chosen[streaming.trigger.name] = type(transport)
                if isinstance(transport, PubSubTransport):
                    assert transport._pubsub is pubsub  # one channel for every trigger
        assert chosen == {
            "plain": PubSubTransport,
            "own": CometdTransport,
            "auto": PubSubTransport,
            "event": PubSubTransport,
        }
        shown = {status.name: status.as_json()["transport"] for status in statuses}
        assert shown == {
            "plain": "pubsub",
            "own": "cometd",
            "auto": "pubsub",
            "polled": None,
            "event": "pubsub",
        }
        await pubsub.close()


async def test_no_pubsub_client_without_a_streamed_pubsub_trigger(tmp_path: Path) -> None:
    cometd_only = settings_with("", TRIGGERS, tmp_path)
    polled_only = settings_with(
        "  transport: pubsub", "  - {name: polled, object: Case, mode: polling}\n", tmp_path
    )
    async with aiohttp.ClientSession() as http:
        for settings in (cometd_only, polled_only):
            client = SalesforceClient(settings.salesforce, http, Metrics())
            assert pubsub_client(settings, client) is None
