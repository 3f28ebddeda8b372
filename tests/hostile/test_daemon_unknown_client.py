"""A Bayeux server that keeps answering `403::Unknown client` (issue 13, item 6).

Re-handshaking at once on every such answer makes a handshake every few milliseconds, and
every abandoned client counts toward the org-wide concurrent-client limit until it expires,
so one daemon can lock every integration of the org out. The daemon re-handshakes once at
once, then backs off, and disconnects the clients it gives up.
"""

from __future__ import annotations

from pathlib import Path

from tests.hostile.daemon_rig import DaemonRig, daemon_rig

REFUSAL_S = 3
# Two streamed triggers over 3 s: an immediate re-handshake each, then back-off, then one
# each to recover. A tight loop reaches the org's concurrent-client limit (20 in the
# emulator, as on many orgs) within milliseconds, and then every integration is refused.
MAX_HANDSHAKES = 20
MAX_LINGERING_CLIENTS = 4


async def test_unknown_client_answers_do_not_make_a_handshake_storm(tmp_path: Path) -> None:
    async with daemon_rig(tmp_path) as rig:
        before = await rig.stats()
        await rig.control("cometd/unknown-client", {"seconds": REFUSAL_S})

        async def refused_and_over(rig: DaemonRig = rig) -> bool:
            stats = await rig.stats()
            window = (await rig.control("cometd/unknown-client"))["unknown_client"]
            refused = stats["unknown_client_refusals"] > before["unknown_client_refusals"]
            return bool(refused and window["seconds_left"] == 0)

        await rig.eventually(refused_and_over, "connects refused, then the refusals end")
        await rig.others_still_deliver()

        after = await rig.stats()
        handshakes = after["handshakes"] - before["handshakes"]
        assert 2 <= handshakes <= MAX_HANDSHAKES, (handshakes, rig.log_tail())
        clients = (await rig.control("channels"))["clients"]
        assert clients <= MAX_LINGERING_CLIENTS, clients
