"""What every source works with: the org, the way into the store, the store, the metrics, and
the daemon's one Pub/Sub API client when a trigger streams over it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..ingest import Ingest
from ..metrics import Metrics
from ..salesforce.client import SalesforceClient
from ..salesforce.pubsub.client import PubSubClient
from ..store.base import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SourceContext:
    client: SalesforceClient
    ingest: Ingest
    store: Store
    metrics: Metrics
    clock: Callable[[], datetime] = field(default=utc_now)
    # One gRPC channel for every Pub/Sub trigger; None when no trigger streams over Pub/Sub.
    pubsub: PubSubClient | None = None
