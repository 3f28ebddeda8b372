"""`where` on streamed changes whose record nests compound fields, as change events do: the
parts are read under their SOQL names, and a field the condition does not read cannot make
it unknowable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.soql_engine import parse_condition
from sftriggerd.sources.stream_filter import flat_record, soql_name


def test_compound_parts_take_their_soql_names() -> None:
    assert soql_name("Name.LastName") == "LastName"
    assert soql_name("BillingAddress.City") == "BillingCity"
    assert soql_name("MailingAddress.PostalCode") == "MailingPostalCode"
    assert soql_name("Industry") == "Industry"
    assert soql_name("Geo__c.Latitude__s") == "Geo__c.Latitude__s"


def test_a_contacts_last_name_is_read_from_its_compound_name() -> None:
    where = parse_condition("LastName = 'Keep' AND BillingCity != 'Oslo'")
    kept = {"Id": "003A", "Name": {"FirstName": "Ada", "LastName": "Keep"}}
    dropped = {"Id": "003B", "Name": {"LastName": "Drop"}}
    assert where.holds(flat_record(kept | {"BillingAddress": {"City": "Paris"}}))
    assert not where.holds(flat_record(dropped))
    assert not where.holds(flat_record(kept | {"BillingAddress": {"City": "Oslo"}}))


def test_a_field_the_condition_does_not_read_never_makes_it_unknowable() -> None:
    where = parse_condition("Industry = 'Energy'")
    assert where.holds({"Industry": "Energy", "BillingAddress": {"City": "Paris"}})
    assert not where.holds({"Industry": "Oil", "Name": {"LastName": "X"}})


@given(
    st.dictionaries(
        st.text(max_size=12),
        st.one_of(
            st.none(),
            st.text(max_size=8),
            st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.text(max_size=8))),
        ),
        max_size=6,
    )
)
def test_any_record_flattens_keeping_its_own_fields(record: dict[str, object]) -> None:
    flat = flat_record(record)
    assert all(flat[name] is value for name, value in record.items())
