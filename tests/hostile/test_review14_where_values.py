"""Review of issue 14's streamed `where`: a streamed value that reads as a datetime at the
edge of the calendar (year 9999 with a negative offset, year 1 with a positive one) cannot be
taken to UTC. The condition must refuse it with SoqlError, and the filter must then pass the
event, not let an OverflowError out of the stream's message handling."""

from __future__ import annotations

from typing import Any, cast

import pytest

from sftriggerd.config.settings import TriggerSettings
from sftriggerd.events.normalise import from_platform_event
from sftriggerd.salesforce.client import SalesforceClient
from sftriggerd.soql_engine import SoqlError, parse_condition
from sftriggerd.sources.stream_filter import StreamFilter

_EDGES = ["9999-12-31T23:59:59.000-1400", "0001-01-01T00:00:00.000+1400"]


@pytest.mark.parametrize("value", _EDGES)
def test_an_edge_datetime_raises_soql_error_only(value: str) -> None:
    where = parse_condition("Due__c > 2026-01-01T00:00:00Z")
    with pytest.raises(SoqlError):
        where.holds({"Due__c": value})


@pytest.mark.parametrize("value", _EDGES)
async def test_the_stream_filter_passes_an_event_it_cannot_evaluate(value: str) -> None:
    trigger = TriggerSettings(
        name="orders", channel="/event/Order__e", where="Due__c > 2026-01-01T00:00:00Z"
    )
    faults: list[str] = []
    # A platform event is tested against its payload: the client is never called.
    stream_filter = StreamFilter(trigger, cast(SalesforceClient, None), faults.append)
    message: dict[str, Any] = {
        "channel": "/event/Order__e",
        "data": {
            "schema": "x",
            "payload": {"CreatedDate": "2026-04-09T18:31:40.517Z", "Due__c": value},
            "event": {"EventUuid": "2ec0e371-1395-457f-9275-be1b527a72f7", "replayId": 7},
        },
    }
    event = from_platform_event("orders", "/event/Order__e", message)
    assert await stream_filter.keep([event]) == [event]
    assert faults == ["where_unevaluable"]
