"""An endpoint URL whose host the resolver cannot even encode ("hooks..example.com", a label
over 63 characters: a typo the configuration accepts) makes aiohttp raise UnicodeError, a
ValueError, which `post_webhook` (network trouble is a value, never an exception) lets
through. The send loop dies, its worker's task group with it, then the dispatcher's: every
endpoint's deliveries stop and the delivery part restarts, and dies again at the next claim
of the bad endpoint; `sftriggerd doctor`, meant to find such a typo, ends in a traceback
instead of naming it. One endpoint's typo must be that endpoint's failed attempts only."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import aiohttp

from sftriggerd.config.settings import EndpointSettings
from sftriggerd.delivery.answers import Failure
from sftriggerd.delivery.sender import post_webhook
from sftriggerd.doctor.endpoint_checks import check_endpoint
from tests.acceptance.harness import SECRET
from tests.hostile.daemon_rig import daemon_rig

BAD_URLS = ("http://hooks..example.com/hook", f"http://{'a' * 64}.example.com/hook")


async def test_an_unencodable_host_is_a_failed_attempt() -> None:
    async with aiohttp.ClientSession() as http:
        for url in BAD_URLS:
            result = await post_webhook(http, url, {}, b"{}", timedelta(seconds=5))
            assert isinstance(result, Failure), result


async def test_an_unencodable_host_does_not_stop_the_other_endpoint(tmp_path: Path) -> None:
    async with daemon_rig(tmp_path, beta_options={"url": BAD_URLS[0]}) as rig:
        await rig.others_still_deliver((rig.alpha,))


async def test_the_doctor_names_an_unencodable_host_on_a_failed_line() -> None:
    endpoint = EndpointSettings(name="typo", url=BAD_URLS[0], secret=SECRET)
    async with aiohttp.ClientSession() as http:
        check = await check_endpoint(http, endpoint, [])
    assert check.status == "failed"
