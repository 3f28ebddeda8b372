"""What every source works with: the org, the way into the store, the store, the metrics, and
the daemon's one Pub/Sub API client and one CometD client when triggers stream over them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..ingest import Ingest
from ..metrics import Metrics
from ..salesforce.client import SalesforceClient
from ..salesforce.pubsub.client import PubSubClient
from ..store.base import Store
from .cometd_hub import CometdHub


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
    # One Bayeux client for every CometD trigger; None: each source makes its own.
    cometd: CometdHub | None = None
