"""What every source works with: the org, the way into the store, the store, the metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..ingest import Ingest
from ..metrics import Metrics
from ..salesforce.client import SalesforceClient
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
