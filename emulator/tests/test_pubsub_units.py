"""Pure parts of the Pub/Sub side: replay id bytes and the Avro field values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftriggerd_emulator.pubsub.fields import compound_field, plain_field
from sftriggerd_emulator.pubsub.replay import ReplayIdError, decode_replay_id, encode_replay_id

STREAMS = st.sampled_from(["/data/ChangeEvents", "/event/A__e", "/event/B__e"])


@given(stream=STREAMS, position=st.integers(min_value=0, max_value=2**63 - 1))
def test_replay_ids_round_trip(stream: str, position: int) -> None:
    replay_id = encode_replay_id(stream, position)
    assert 4 <= len(replay_id) <= 15
    assert decode_replay_id(stream, replay_id) == position


@given(stream=STREAMS, data=st.binary(max_size=20))
def test_any_bytes_name_one_position_or_none(stream: str, data: bytes) -> None:
    """Bytes are either the one encoding of a position of this stream or refused."""
    try:
        position = decode_replay_id(stream, data)
    except ReplayIdError:
        return
    assert encode_replay_id(stream, position) == data


def test_replay_ids_vary_in_length_and_belong_to_their_stream() -> None:
    lengths = {len(encode_replay_id("/data/ChangeEvents", p)) for p in range(1000, 1010)}
    assert len(lengths) >= 3 and 8 in lengths
    with pytest.raises(ReplayIdError):
        decode_replay_id("/event/A__e", encode_replay_id("/event/B__e", 1005))


def test_values_take_the_declared_type_or_their_own() -> None:
    assert plain_field("D", "datetime", "2024-01-02T03:04:05Z").value == 1704164645000
    assert plain_field("D", "date", "1970-01-31").value == 30
    assert plain_field("N", "double", 3).value == 3.0
    odd = plain_field("N", "double", "three")
    assert odd.avro_type == "string" and odd.value == "three"
    nested = plain_field("X", "string", {"a": [1]})
    assert nested.avro_type == "string" and nested.value == '{"a": [1]}'
    address = compound_field("BillingAddress", "Address", {"City": "Paris", "Latitude": 1})
    assert address.value["City"] == "Paris" and address.value["Latitude"] == 1.0
    assert compound_field("BillingAddress", "Address", {"Planet": "Mars"}).avro_type == "string"
