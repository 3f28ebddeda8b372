"""Replay ids on the wire: opaque bytes of varying length that name a place in one stream.

Salesforce's Pub/Sub replay ids are bytes a client must store and hand back unchanged; they
are often eight long but not always. The emulator's ids wrap a stream position (the same
integer the CometD side sends as `replayId`, so both sides name an event alike) as:

    [n: 1 byte][stream tag: 2 bytes][position: n bytes, big-endian][filler: position % 5 bytes]

so lengths run from 4 to 15 bytes (5 to 9 for the positions a test reaches) and change from
one event to the next: a client that assumes eight bytes, or an integer, is caught. The tag
and the filler let a damaged id, or one from another stream, be told from a real one.
"""

from __future__ import annotations

import hashlib


class ReplayIdError(ValueError):
    """Bytes that are no replay id of this stream."""


def _tag(stream: str) -> bytes:
    return hashlib.sha256(f"stream:{stream}".encode()).digest()[:2]


def _filler(stream: str, position: int) -> bytes:
    return hashlib.sha256(f"fill:{stream}:{position}".encode()).digest()[: position % 5]


def encode_replay_id(stream: str, position: int) -> bytes:
    if position < 0:
        raise ValueError("positions are not negative")
    body = position.to_bytes(max(1, (position.bit_length() + 7) // 8), "big")
    return bytes([len(body)]) + _tag(stream) + body + _filler(stream, position)


def decode_replay_id(stream: str, replay_id: bytes) -> int:
    """The position `replay_id` names in `stream`; ReplayIdError when it names none."""
    if len(replay_id) < 4:
        raise ReplayIdError("too short")
    size = replay_id[0]
    if not 1 <= size <= 8 or replay_id[1:3] != _tag(stream):
        raise ReplayIdError("not an id of this topic")
    body = replay_id[3 : 3 + size]
    if len(body) != size:
        raise ReplayIdError("truncated")
    position = int.from_bytes(body, "big")
    if size > 1 and body[0] == 0:
        raise ReplayIdError("not minimal")
    if replay_id[3 + size :] != _filler(stream, position):
        raise ReplayIdError("damaged")
    return position
