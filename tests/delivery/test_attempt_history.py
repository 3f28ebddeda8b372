"""What the dispatcher keeps of each attempt: real receiver, real SQLite, real dispatcher."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web
from hypothesis import assume, given
from hypothesis import strategies as st

from sftriggerd.delivery import Dispatcher
from sftriggerd.delivery.outcome import ANSWER_CHARS, REDACTED, answer_excerpt
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from tests.delivery.rig import SECRET, endpoint, enqueue, new_event, row, running
from tests.support.receiver import Arrival, Receiver
from tests.support.waiting import eventually

TOKEN = "Bearer hdr-t0k3n-9f8e"


async def test_every_attempt_is_kept_with_its_answer_redacted(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """The receiver echoes what it got, as a careless one does: our secret, its header, and
    a URL with credentials; the history keeps the answer without any of them."""

    async def flaky(arrival: Arrival) -> web.StreamResponse:
        if arrival.attempt == 1:
            await asyncio.sleep(0.05)
            echo = f"no.\nsecret={SECRET} auth={TOKEN} see https://bob:hunter22@x.example/y"
            return web.Response(status=503, text=echo + " " + "z" * 2000)
        return web.json_response({"ok": True}, status=200)

    receiver.respond = flaky
    hook = endpoint(receiver.url, headers={"Authorization": TOKEN})
    started = datetime.now(UTC)
    async with running(Dispatcher(store, [hook], Metrics(), jitter=lambda: 0.5)):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _status(store, "evt_1", "delivered"))
    delivery = await row(store, "evt_1")
    detail = await store.get_delivery_detail(delivery.id)
    assert detail is not None and detail.body == b'{"id":"evt_1"}'
    first, second = detail.attempts
    assert first.status == 503 and first.error is not None and first.error.startswith("HTTP 503")
    assert first.answer is not None and first.answer.startswith("no.\nsecret=[redacted] auth=")
    for secret in (SECRET, SECRET.removeprefix("whsec_"), TOKEN, "hunter22", "bob:"):
        assert secret not in first.answer
    assert "https://x.example/y" in first.answer
    assert len(first.answer) == ANSWER_CHARS
    assert first.duration_ms is not None and first.duration_ms >= 50
    assert first.next_attempt_at is not None and first.next_attempt_at > first.at >= started
    assert second.at >= first.next_attempt_at - timedelta(milliseconds=1)
    assert (second.status, second.error, second.answer) == (200, None, '{"ok": true}')
    assert second.next_attempt_at is None


async def test_an_attempt_without_an_answer_is_kept_with_its_error(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async def hang(arrival: Arrival) -> web.StreamResponse:
        return await receiver.hang()

    receiver.respond = hang
    hook = endpoint(receiver.url, timeout=timedelta(milliseconds=200))
    async with running(Dispatcher(store, [hook], Metrics(), jitter=lambda: 0.5)):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _attempts(store, "evt_1", 1))
    delivery = await row(store, "evt_1")
    detail = await store.get_delivery_detail(delivery.id)
    assert detail is not None
    attempt = detail.attempts[0]
    assert (attempt.status, attempt.answer) == (None, None)
    assert attempt.error == "timeout after 0.2s"
    assert attempt.duration_ms is not None and 200 <= attempt.duration_ms < 2000


async def test_an_unresolvable_host_is_kept_as_a_dns_failure_naming_it(store: Store) -> None:
    metrics = Metrics()
    hook = endpoint("https://sync:pa55word@no-such-host.invalid/hook")
    async with running(Dispatcher(store, [hook], metrics, jitter=lambda: 0.5)):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _attempts(store, "evt_1", 1))
    delivery = await row(store, "evt_1")
    detail = await store.get_delivery_detail(delivery.id)
    assert detail is not None
    error = detail.attempts[0].error
    assert error is not None and error.startswith("DNS lookup failed for no-such-host.invalid: ")
    assert "pa55word" not in error
    failures = metrics.registry.get_sample_value(
        "sftriggerd_delivery_failures_total", {"endpoint": "hook", "cause": "dns"}
    )
    assert failures == 1


@given(
    before=st.text(max_size=600),
    after=st.text(max_size=600),
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=40),
)
def test_an_excerpt_never_holds_the_secret(before: str, after: str, secret: str) -> None:
    assume(secret not in REDACTED)  # the marker itself would "hold" it
    body = (before + secret + after).encode("utf-8", "surrogatepass")
    excerpt = answer_excerpt(body, [secret])
    assert secret not in excerpt
    assert len(excerpt) <= ANSWER_CHARS
    # Near the start and not inside a URL's user-info (which goes whole): replaced, not cut.
    if len(body) - len(after.encode("utf-8", "surrogatepass")) < 200 and "@" not in after:
        assert REDACTED in excerpt


async def _status(store: Store, event_id: str, status: str) -> bool:
    return (await row(store, event_id)).status == status


async def _attempts(store: Store, event_id: str, count: int) -> bool:
    detail = await store.get_delivery_detail((await row(store, event_id)).id)
    return detail is not None and len(detail.attempts) >= count
