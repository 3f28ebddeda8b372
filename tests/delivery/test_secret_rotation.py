"""Rolling an endpoint's secret over without a moment where deliveries fail: while the config
lists both secrets every request carries both signatures, so a receiver that verifies with the
public Standard Webhooks library holding only the old secret, or only the new one, accepts it.

Each step of the rollover runs the real dispatcher against real receivers on a real SQLite
store, with the endpoint read from YAML the way the daemon reads it.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDictProxy
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sftriggerd.config import parse_settings
from sftriggerd.config.settings import EndpointSettings
from sftriggerd.delivery import Dispatcher
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from tests.delivery.rig import enqueue, new_event, row, running
from tests.support.waiting import eventually

OLD = "whsec_" + base64.b64encode(b"the old secret, 32 bytes long!!!").decode()
NEW = "whsec_" + base64.b64encode(b"the new secret, 32 bytes long!!!").decode()
OTHER = "whsec_" + base64.b64encode(b"nobody holds this one, 32 bytes").decode()


@dataclass
class VerifyingReceiver:
    """A receiver as a user would write it: 204 when the public library verifies the request
    with the one secret it holds, 401 otherwise (with `echo` in the answer, to see what of
    it comes back into the store)."""

    secret: str
    url: str = ""
    verified: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    requests: list[tuple[CIMultiDictProxy[str], bytes]] = field(default_factory=list)
    echo: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.headers, body))
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            self.refused.append(request.headers["webhook-id"])
            return web.Response(status=401, text=f"{exc}. {self.echo}")
        self.verified.append(request.headers["webhook-id"])
        return web.Response(status=204)


@asynccontextmanager
async def receiving(secret: str) -> AsyncIterator[VerifyingReceiver]:
    hooks = VerifyingReceiver(secret)
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hooks.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield hooks
    finally:
        await runner.cleanup()


def endpoint_from_yaml(url: str, secret_yaml: str) -> EndpointSettings:
    text = f"""
salesforce:
  auth: {{client_id: c, client_secret: s, username: u, password: p}}
endpoints:
  - name: hook
    url: "{url}"
    secret: {secret_yaml}
    retry: {{schedule: [10s], max_age: 1d}}
"""
    (only,) = parse_settings(text, environ={}).endpoints
    return only


async def deliver_once(store: Store, hook: EndpointSettings, event_id: str) -> str:
    """Sends one event to `hook`; its delivery status after the first answer."""

    async def answered() -> bool:
        return (await row(store, event_id)).attempts >= 1

    async with running(Dispatcher(store, [hook], Metrics(), jitter=lambda: 0.5)):
        await enqueue(store, new_event(event_id))
        await eventually(answered)
    return (await row(store, event_id)).status


async def test_a_rollover_never_fails_a_delivery(store: Store) -> None:
    steps: Sequence[tuple[str, str, str]] = [
        # (the endpoint's secret in YAML, the secret the receiver holds, event id)
        (OLD, OLD, "before"),
        # Step 1: the new secret is added; receivers not yet changed keep verifying.
        (f"[{OLD}, {NEW}]", OLD, "both-old-receiver"),
        # Step 2: receivers are deployed with the new secret.
        (f"[{OLD}, {NEW}]", NEW, "both-new-receiver"),
        # Step 3: the old secret is removed.
        (f"[{NEW}]", NEW, "after-list"),
        (NEW, NEW, "after"),
    ]
    for secret_yaml, held, event_id in steps:
        async with receiving(held) as hooks:
            hook = endpoint_from_yaml(hooks.url, secret_yaml)
            assert await deliver_once(store, hook, event_id) == "delivered", secret_yaml
            assert hooks.verified == [event_id] and hooks.refused == []


async def test_every_signature_is_in_one_header_and_each_verifies_alone(
    store: Store,
) -> None:
    async with receiving(NEW) as hooks:
        hook = endpoint_from_yaml(hooks.url, f"[{OLD}, {NEW}, {OTHER}]")
        assert await deliver_once(store, hook, "three") == "delivered"
    ((headers, body),) = hooks.requests
    # One header, not one per secret (a second header line would be joined with ", ").
    entries = headers.getall("webhook-signature")[0].split(" ")
    assert len(headers.getall("webhook-signature")) == 1
    assert len(entries) == 3 and all(entry.startswith("v1,") for entry in entries)
    plain = dict(headers)
    for secret, entry in zip((OLD, NEW, OTHER), entries, strict=True):
        Webhook(secret).verify(body, plain)
        # Each entry is the listed secret's own signature, in the listed order.
        Webhook(secret).verify(body, {**plain, "webhook-signature": entry})


async def test_after_removing_the_old_secret_an_old_receiver_refuses(store: Store) -> None:
    # The procedure's order matters: remove the old secret before every receiver holds the
    # new one, and that receiver refuses. The refusal's echo of its secret is scrubbed.
    async with receiving(OLD) as hooks:
        hook = endpoint_from_yaml(hooks.url, f"[{NEW}]")
        assert await deliver_once(store, hook, "too-soon") == "pending"
        assert hooks.refused == ["too-soon"] and hooks.verified == []
    stored = await row(store, "too-soon")
    assert stored.last_error is not None and "401" in stored.last_error


async def test_no_listed_secret_comes_back_in_a_stored_error(store: Store) -> None:
    async with receiving(OTHER) as hooks:
        # The receiver cannot verify and echoes both of the endpoint's secrets back.
        hooks.echo = f"keys: {OLD} and {NEW.removeprefix('whsec_')}"
        hook = endpoint_from_yaml(hooks.url, f"[{OLD}, {NEW}]")
        assert await deliver_once(store, hook, "echo") == "pending"
    stored = await row(store, "echo")
    assert stored.last_error is not None and "401" in stored.last_error
    assert "keys:" in stored.last_error  # the snippet is kept, the secrets are not
    assert OLD not in stored.last_error
    assert NEW.removeprefix("whsec_") not in stored.last_error
