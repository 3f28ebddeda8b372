"""Hostile answers from Salesforce and from a webhook receiver: malformed Retry-After, a
failing token endpoint during a re-login, non-numeric Bayeux advice. None of them may stop
the daemon or the other triggers and endpoints (issue 13, item 4)."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

from tests.hostile.daemon_rig import DaemonRig, daemon_rig

SUPERSCRIPT_TWO = "²"  # str.isdigit() says yes, int() says no
FIVE_THOUSAND_DIGITS = "9" * 5000
LOGIN_ATTEMPTS = 4  # the session's attempts per login


async def fault_spent(rig: DaemonRig, surface: str) -> bool:
    armed = (await rig.control("fail"))["armed"]
    return surface not in armed or "fail_count" not in armed[surface]


async def test_salesforce_retry_after_that_is_no_number(tmp_path: Path) -> None:
    async with daemon_rig(tmp_path) as rig:
        answers = ((429, SUPERSCRIPT_TWO), (503, FIVE_THOUSAND_DIGITS))
        for surface, (status, retry_after) in itertools.product(("rest", "cometd"), answers):
            fault = {"surface": surface, "status": status, "retry_after": retry_after}
            if surface == "rest":
                fault["match"] = "/query"  # the poller's next page
            await rig.control("fail", fault)
            if surface == "cometd":
                # Cut the held connects, so the next Bayeux request meets the fault now.
                await rig.control("cometd/cut", {"mode": "drop"})
            await rig.eventually(
                functools.partial(fault_spent, rig, surface), f"{surface} {status} answered"
            )
        # The poller may honour a huge Retry-After (capped) and wait: not the streams.
        await rig.others_still_deliver(leads=False)


async def test_receiver_retry_after_that_is_no_number(tmp_path: Path) -> None:
    async with daemon_rig(tmp_path) as rig:
        rig.alpha.script = [
            (429, {"Retry-After": SUPERSCRIPT_TWO}),
            (503, {"Retry-After": FIVE_THOUSAND_DIGITS}),
            (429, {"Retry-After": "-5"}),
        ]
        # Three changes: their first attempts to alpha meet the three answers.
        records = [await rig.create("Account", {"Name": f"Retried {i}"}) for i in range(3)]
        await rig.delivered(records, (rig.beta,))
        await rig.eventually(lambda: not rig.alpha.script, "the receiver's refusals were read")
        # A 5,000-digit Retry-After may push that one delivery far out; the other endpoint
        # and every new change to this one must not wait for it.
        await rig.others_still_deliver()


async def test_token_endpoint_5xx_during_a_relogin(tmp_path: Path) -> None:
    async with daemon_rig(tmp_path) as rig:
        logins_before = (await rig.stats())["logins"]
        await rig.control(
            "fail", {"surface": "token", "status": 503, "count": -1, "retry_after": SUPERSCRIPT_TWO}
        )
        await rig.control("sessions/expire", {})

        def both_streams_tried_to_log_in() -> bool:
            tried = {
                record.get("trigger")
                for record in rig.log_records()
                if record.get("event") == "stream_relogin"
            }
            return {"accounts", "contacts"} <= tried

        # Every part meets the refusals: the poller's REST calls and both streams' re-logins.
        await rig.eventually(both_streams_tried_to_log_in, "both streams met the 401")

        async def a_whole_login_failed() -> bool:
            armed = (await rig.control("fail"))["armed"]
            return bool(armed.get("token", {}).get("fail_given", 0) > 2 * LOGIN_ATTEMPTS)

        # The poller's login gives up first (the streams wait for it on the session's lock),
        # then a stream's own re-login: more refusals than two logins' attempts.
        await rig.eventually(a_whole_login_failed, "two whole logins refused", timeout_s=45)
        await rig.control("fail", {"surface": "token", "count": 0})

        async def logged_in_again() -> bool:
            return bool((await rig.stats())["logins"] > logins_before)

        await rig.eventually(logged_in_again, "a successful login after the refusals")
        await rig.relogin()  # the test's own session ended with the daemon's
        await rig.others_still_deliver()


async def test_non_numeric_bayeux_advice(tmp_path: Path) -> None:
    async with daemon_rig(tmp_path) as rig:
        advice = {"interval": "soon", "timeout": SUPERSCRIPT_TWO, "reconnect": "retry"}
        await rig.control("cometd/advice", {"advice": advice, "count": 4})
        # Each change answers a held connect; the connects after them carry the advice.
        for i in range(3):
            record = await rig.create("Account", {"Name": f"Advised {i}"})
            await rig.delivered([record])

        async def advice_used_up() -> bool:
            return bool((await rig.control("cometd/advice"))["advice"]["count"] == 0)

        await rig.eventually(advice_used_up, "every hostile advice was answered")
        await rig.others_still_deliver()
