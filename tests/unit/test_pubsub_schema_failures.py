"""The memory of schemas that could not be had: each failure kept `hold_s` from when it was
remembered, recalled as a new exception of its kind and text, and never more than `limit`
of them (schema ids come from outside), the oldest forgotten first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.salesforce.pubsub.decode import RefusedSchema, SchemaFailures, UnusableSchema


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_a_failure_is_recalled_until_its_hold_has_passed() -> None:
    clock = Clock()
    failures = SchemaFailures(60.0, clock=clock)
    failures.remember("s1", UnusableSchema("the event schema is not JSON"))
    clock.now_s = 59.9
    recalled = failures.recalled("s1")
    assert isinstance(recalled, UnusableSchema) and str(recalled) == "the event schema is not JSON"
    assert failures.recalled("s2") is None
    clock.now_s = 60.0
    assert failures.recalled("s1") is None and len(failures) == 0


def test_each_recall_is_a_new_exception_and_a_later_failure_replaces_an_earlier() -> None:
    clock = Clock()
    failures = SchemaFailures(60.0, clock=clock)
    failures.remember("s1", UnusableSchema("unusable"))
    assert failures.recalled("s1") is not failures.recalled("s1")
    clock.now_s = 30.0
    failures.remember("s1", RefusedSchema("refused"))
    clock.now_s = 80.0
    recalled = failures.recalled("s1")
    assert isinstance(recalled, RefusedSchema) and str(recalled) == "refused"


def test_a_hold_of_zero_remembers_nothing() -> None:
    failures = SchemaFailures(0.0)
    failures.remember("s1", UnusableSchema("unusable"))
    assert failures.recalled("s1") is None and len(failures) == 0


@given(st.lists(st.text(max_size=8), max_size=60), st.integers(min_value=1, max_value=8))
def test_never_more_than_the_limit_and_the_newest_kept(ids: list[str], limit: int) -> None:
    failures = SchemaFailures(60.0, limit=limit, clock=Clock())
    for schema_id in ids:
        failures.remember(schema_id, RefusedSchema(schema_id))
        assert len(failures) <= limit
    newest = list(dict.fromkeys(reversed(ids)))[:limit]
    for schema_id in newest:
        recalled = failures.recalled(schema_id)
        assert recalled is not None and str(recalled) == schema_id
    assert len(failures) == len(newest)
