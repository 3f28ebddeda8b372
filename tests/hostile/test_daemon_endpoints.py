"""One endpoint must not hurt another, and the admin API must not be open to the network
(issue 13, items 5 and 11)."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.cli import free_port
from tests.hostile.daemon_rig import daemon_rig

# More than aiohttp's default pool of 100 connections, which all endpoints used to share.
HANGING_IN_FLIGHT = 150


async def test_a_hanging_endpoint_does_not_stop_a_healthy_one(tmp_path: Path) -> None:
    # beta hangs and takes only contacts; alpha is healthy and takes the other triggers.
    beta = {"triggers": ["contacts"], "max_in_flight": HANGING_IN_FLIGHT, "timeout": "60s"}
    alpha = {"triggers": ["accounts", "leads"]}
    async with daemon_rig(tmp_path, alpha_options=alpha, beta_options=beta) as rig:
        rig.beta.hanging = True
        await rig.org.create_many(
            "Contact", [{"LastName": f"Hung {i}"} for i in range(HANGING_IN_FLIGHT)]
        )
        await rig.eventually(
            lambda: rig.beta.in_flight >= 100, "the hanging endpoint holds 100 requests"
        )

        accounts = await rig.org.create_many("Account", [{"Name": f"H{i}"} for i in range(10)])
        lead = await rig.create("Lead", {"LastName": "Healthy", "Company": "Acme"})
        await rig.delivered([*accounts, lead], (rig.alpha,), timeout_s=20)
        rig.assert_running()


async def test_listening_beyond_loopback_without_a_token_refuses_redrive(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = f'{{listen: "0.0.0.0:{port}", shutdown_grace: 2s}}'
    async with daemon_rig(tmp_path, server=server, admin_port=port) as rig:
        refused = await rig.admin("POST", "/api/deliveries/1/redrive", json={})
        assert refused.status == 403, refused.body
        # Reads stay open.
        assert (await rig.admin("GET", "/api/deliveries")).status == 200
        warnings = [
            record
            for record in rig.log_records()
            if record.get("level") == "warning" and "admin_token" in str(record)
        ]
        assert warnings, rig.log_tail()
        await rig.others_still_deliver()
