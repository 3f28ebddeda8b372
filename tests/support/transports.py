"""Both streaming transports for tests that run one scenario on each: the `transport`
fixture (`cometd`, then `pubsub`) and the table of the faults that differ between them.

Which emulator control makes each streaming scenario, per transport:

| scenario                          | cometd                   | pubsub              |
|-----------------------------------|--------------------------|---------------------|
| restart from the stored position  | stop the source / daemon | the same            |
| expired position back-fill        | `retention`              | the same            |
| gap events                        | `gap`                    | the same            |
| forced re-login                   | `sessions/expire`        | the same            |
| killed stream                     | `clients/forget`         | `pubsub/drop`       |
| silent stream (starved channel)   | `cometd/starve`          | the same            |
| stalled stream (not even a ping)  | `delay` (one held poll)  | `pubsub/silence`    |

A starved channel gets keepalives but not its events (found by `verify_after`); a stalled
stream gets nothing at all (found by the stream's watchdog). The rows whose controls differ
are `FAULTS` below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

TRANSPORTS = ("cometd", "pubsub")


@dataclass(frozen=True)
class Control:
    """One `/_emulator/...` call: its path after `/_emulator/` and its JSON body."""

    path: str
    body: dict[str, Any]


@dataclass(frozen=True)
class TransportFaults:
    kill: Control  # the server ends the open stream
    stall: Control  # the stream says nothing, not even a keepalive
    # Ends the stall; None when it ends by itself (CometD's one delayed poll).
    unstall: Control | None


FAULTS = {
    "cometd": TransportFaults(
        kill=Control("clients/forget", {}),
        stall=Control("delay", {"surface": "cometd", "seconds": 4, "count": 1}),
        unstall=None,
    ),
    "pubsub": TransportFaults(
        kill=Control("pubsub/drop", {}),
        stall=Control("pubsub/silence", {"enabled": True}),
        unstall=Control("pubsub/silence", {"enabled": False}),
    ),
}


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """The streaming transport under test: the test runs once over each."""
    chosen: str = request.param
    return chosen
