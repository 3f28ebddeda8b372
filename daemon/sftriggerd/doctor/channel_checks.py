"""The channel check: a real short session on the trigger's transport.

CometD: handshake, subscribe for new events only (replay -1), unsubscribe, disconnect, on a
client of its own (its own cookie jar), so a running daemon's client is not disturbed.
Pub/Sub: GetTopic, whose answer says whether the user may subscribe.
"""

from __future__ import annotations

import contextlib

import aiohttp
import grpc.aio

from ..config.settings import SalesforceSettings, TriggerSettings
from ..errors import SftriggerdError
from ..salesforce.answers import Token
from ..salesforce.cometd import BayeuxClient, BayeuxError
from ..salesforce.pubsub.client import PubSubClient
from ..salesforce.session import SalesforceSession
from .checks import Check, failed, ok, warning

_REQUEST_TIMEOUT_S = 30.0
_REPLAY_NEW = -1


def _refused(trigger: TriggerSettings, reason: str) -> Check:
    """A subscription refused, with the fix its kind of channel needs."""
    name = f"trigger {trigger.name} channel"
    channel = trigger.resolved_channel
    kind = trigger.channel_kind
    if kind == "cdc":
        entity = trigger.object or "the object"
        return failed(
            name,
            f"{channel}: {entity} is not selected for Change Data Capture ({reason})",
            f"Setup, Change Data Capture: move {entity} to Selected Entities"
            " (or check the channel name)",
        )
    if kind == "platform_event":
        return failed(
            name,
            f"{channel}: no such platform event, or no permission ({reason})",
            "check the event's API name (Name__e) and the user's read access to it",
        )
    if kind == "pushtopic":
        return failed(name, f"{channel}: refused ({reason})", "see the pushtopic line")
    return failed(name, f"{channel}: refused ({reason})", "create the StreamingChannel")


async def check_cometd(
    settings: SalesforceSettings, token: Token, trigger: TriggerSettings
) -> Check:
    name = f"trigger {trigger.name} channel"
    channel = trigger.resolved_channel or ""

    async def authorization() -> str:
        return f"Bearer {token.access_token}"

    url = f"{token.instance_url}/cometd/{settings.api_version}"
    # Its own session: the server routes a Bayeux client by its cookies.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        bayeux = BayeuxClient(
            http, url, authorization, proxy=settings.proxy, request_timeout_s=_REQUEST_TIMEOUT_S
        )
        try:
            await bayeux.handshake()
        except SftriggerdError as exc:
            return failed(name, f"CometD handshake at {url} failed: {exc}")
        try:
            try:
                await bayeux.subscribe(channel, {"replay": {channel: _REPLAY_NEW}})
            except BayeuxError as exc:
                return _refused(trigger, exc.error)
            except SftriggerdError as exc:
                return failed(name, f"{channel}: CometD subscribe failed: {exc}")
            try:
                await bayeux.unsubscribe(channel)
            except SftriggerdError as exc:
                return failed(name, f"{channel}: CometD unsubscribe failed: {exc}")
        finally:
            with contextlib.suppress(SftriggerdError):
                await bayeux.disconnect()
    return ok(name, f"{channel}: CometD handshake, subscribe and unsubscribe ok")


async def check_pubsub(
    settings: SalesforceSettings, session: SalesforceSession, trigger: TriggerSettings
) -> Check:
    name = f"trigger {trigger.name} channel"
    channel = trigger.resolved_channel or ""
    try:
        client = PubSubClient(session, settings.pubsub_url)
    except SftriggerdError as exc:
        return failed(name, str(exc), "check salesforce.pubsub_url")
    try:
        topic = await client.get_topic(channel)
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        reason = f"{code.name if code else 'error'}: {exc.details()}"
        if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
            return _refused(trigger, reason)
        return failed(name, f"{channel}: Pub/Sub GetTopic failed: {reason}")
    except SftriggerdError as exc:
        return failed(name, f"{channel}: Pub/Sub GetTopic failed: {exc}")
    finally:
        await client.close()
    if not topic.can_subscribe:
        return _refused(trigger, "GetTopic: can_subscribe is false")
    found = f"{channel}: Pub/Sub topic found, subscribe allowed"
    exposed = settings.pubsub_plaintext_warning
    if exposed is not None:
        return warning(name, f"{found}; but {exposed}")
    return ok(name, found)
