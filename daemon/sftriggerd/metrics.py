"""Every metric sftriggerd exposes, on a registry of their own so that each app (and each test)
counts from zero."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

# From a lease's end (run out or released) to its next holder's acquisition: up to one
# renew period (`ha.renew_every`, 5 s by default), whichever way the lease ended.
_TAKEOVER_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300)
_LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)


class Metrics:
    def __init__(self) -> None:
        # Without this, every counter and histogram child also exports a `_created` gauge
        # (its creation time): a series per child that no dashboard or alert reads. The
        # switch is the library's own and process-wide; the daemon never wants them.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # the library has no hint
        self.registry = CollectorRegistry()
        reg = self.registry
        self.events_received = Counter(
            "sftriggerd_events_received",
            "Events read from Salesforce, before deduplication",
            ["trigger", "source"],
            registry=reg,
        )
        self.events_enqueued = Counter(
            "sftriggerd_events_enqueued",
            "New events committed to the store with their deliveries",
            ["trigger"],
            registry=reg,
        )
        self.deliveries = Counter(
            "sftriggerd_deliveries",
            "Delivery attempts by outcome (delivered, retry, dead)",
            ["endpoint", "outcome"],
            registry=reg,
        )
        self.delivery_failures = Counter(
            "sftriggerd_delivery_failures",
            "Delivery attempts that got no answer, by cause (timeout, refused, dns, tls, reset,"
            " connection, disconnected, invalid_answer, request)",
            ["endpoint", "cause"],
            registry=reg,
        )
        self.breaker_open = Gauge(
            "sftriggerd_breaker_open",
            "1 while the endpoint's circuit breaker is open (or half-open, probing), else 0",
            ["endpoint"],
            registry=reg,
        )
        self.delivery_attempt_seconds = Histogram(
            "sftriggerd_delivery_attempt_seconds",
            "Duration of one webhook POST",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.end_to_end_seconds = Histogram(
            "sftriggerd_end_to_end_seconds",
            "From the Salesforce commit or event time to the endpoint's 2xx",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.outbox_pending = Gauge(
            "sftriggerd_outbox_pending",
            "Deliveries waiting to be sent or retried",
            ["endpoint"],
            registry=reg,
        )
        self.outbox_dead = Gauge(
            "sftriggerd_outbox_dead", "Dead deliveries awaiting redrive", ["endpoint"], registry=reg
        )
        self.checkpoint_lag_seconds = Gauge(
            "sftriggerd_checkpoint_lag_seconds",
            "Age of the newest committed checkpoint",
            ["trigger"],
            registry=reg,
        )
        self.stream_connected = Gauge(
            "sftriggerd_stream_connected",
            "1 while the trigger's streaming subscription is active",
            ["trigger"],
            registry=reg,
        )
        self.stream_faults = Counter(
            "sftriggerd_stream_faults",
            "Streaming faults handled, by kind (rehandshake, relogin, error, replay_expired, gap)",
            ["trigger", "kind"],
            registry=reg,
        )
        self.poison_events = Counter(
            "sftriggerd_poison_events",
            "Messages from Salesforce that could not be turned into events, kept as poison",
            ["trigger"],
            registry=reg,
        )
        self.part_restarts = Counter(
            "sftriggerd_part_restarts",
            "Parts of the daemon (a source, the dispatcher, ...) restarted after a failure",
            ["part"],
            registry=reg,
        )
        self.salesforce_api_calls = Counter(
            "sftriggerd_salesforce_api_calls",
            "REST and OAuth calls made to Salesforce",
            ["kind"],
            registry=reg,
        )
        self.poll_throttled = Counter(
            "sftriggerd_poll_throttled",
            "Polling cycles skipped because the API budget was used up",
            ["trigger"],
            registry=reg,
        )
        self.salesforce_api_usage_ratio = Gauge(
            "sftriggerd_salesforce_api_usage_ratio",
            "Share of the org's daily API limit used, from Sforce-Limit-Info",
            registry=reg,
        )
        self.lease_changes = Counter(
            "sftriggerd_lease_changes",
            "Trigger leases this replica acquired, lost (not renewed in time) or released",
            ["trigger", "change"],
            registry=reg,
        )
        self.takeover_seconds = Histogram(
            "sftriggerd_takeover_seconds",
            "From the previous holder's lease end (expiry or release) to this replica's"
            " acquisition of the trigger",
            buckets=_TAKEOVER_BUCKETS_S,
            registry=reg,
        )
