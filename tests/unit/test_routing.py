from datetime import UTC, datetime
from typing import Any

import pytest

from sftriggerd.config.settings import EndpointSettings
from sftriggerd.events.model import Change, Event
from sftriggerd.routing import endpoints_for, ordered_endpoints

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def endpoint(name: str, **fields: Any) -> EndpointSettings:
    return EndpointSettings.model_validate(
        {"name": name, "url": "http://127.0.0.1:1/h", "secret": SECRET, **fields}
    )


def event(trigger: str, change: Change) -> Event:
    return Event(
        id="e",
        trigger=trigger,
        object="Account",
        change=change,
        record_id="001",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        source={"kind": "polling"},
    )


ENDPOINTS = [
    endpoint("all"),
    endpoint("accounts", triggers=["accounts"]),
    endpoint("account-creates", triggers=["accounts"], events=["created"]),
    endpoint("orders", triggers=["orders"], ordering="none"),
]


@pytest.mark.parametrize(
    ("trigger", "change", "expected"),
    [
        ("accounts", "created", ("all", "accounts", "account-creates")),
        ("accounts", "updated", ("all", "accounts")),
        ("orders", "event", ("all", "orders")),
        ("leads", "deleted", ("all",)),
    ],
)
def test_routes_by_trigger_and_change(
    trigger: str, change: Change, expected: tuple[str, ...]
) -> None:
    assert endpoints_for(event(trigger, change), ENDPOINTS) == expected


def test_platform_events_pass_a_change_filter() -> None:
    only_created = [endpoint("e", triggers=["orders"], events=["created"])]
    assert endpoints_for(event("orders", "event"), only_created) == ("e",)


def test_ordering_per_record_is_the_default() -> None:
    assert ordered_endpoints(ENDPOINTS) == {"all", "accounts", "account-creates"}
