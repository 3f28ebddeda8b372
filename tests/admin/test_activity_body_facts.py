"""The feed's type and source come from the head of each stored body (parsed without the
record, which may be a megabyte), and always agree with parsing the whole body."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.admin.activity_view import _body_facts
from sftriggerd.events.model import Event
from sftriggerd.events.payload import encode_body

text = st.text(max_size=30)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


def whole_body_facts(body: bytes) -> tuple[str, str]:
    found: Any = json.loads(body)
    source = found.get("source")
    via = (source.get("transport") or source.get("kind")) if isinstance(source, dict) else None
    return str(found.get("type") or "—"), str(via or "—")


@given(
    object_name=st.none() | text,
    record_id=st.none() | text,
    source=st.dictionaries(text, values, max_size=4),
    record=st.dictionaries(text, values, max_size=4),
)
def test_the_head_gives_what_the_whole_body_gives(
    object_name: str | None, record_id: str | None, source: dict[str, Any], record: dict[str, Any]
) -> None:
    event = Event(
        id="evt_1",
        trigger="accounts",
        object=object_name,
        change="updated",
        record_id=record_id,
        occurred_at=datetime(2026, 12, 3, tzinfo=UTC),
        source=source,
        changed_fields=(',"changed_fields":',),
        record={**record, "Note": ',"changed_fields":["x"]}'},
    )
    body = encode_body(event)
    assert _body_facts(body) == whole_body_facts(body)


def test_a_body_of_another_shape_is_parsed_whole() -> None:
    assert _body_facts(b'{"source":{"kind":"polling"},"type":"Lead"}') == ("Lead", "polling")
    assert _body_facts(b"not json") == ("—", "—")
    assert _body_facts(b'{"type":"A","changed_fields":1}') == ("A", "—")
