"""The login state: logs in lazily, keeps the token, and re-logs in once however many
callers find it stale together."""

from __future__ import annotations

import asyncio
import random

import aiohttp

from ..config.settings import SalesforceSettings
from ..errors import AuthenticationError
from ..logs import get_logger
from ..metrics import Metrics
from .auth import SalesforceUnavailable, Token, request_token

log = get_logger(__name__)


class SalesforceSession:
    def __init__(
        self,
        settings: SalesforceSettings,
        http: aiohttp.ClientSession,
        metrics: Metrics,
        *,
        login_attempts: int = 4,
        backoff_base_s: float = 0.5,
    ) -> None:
        self._settings = settings
        self._http = http
        self._metrics = metrics
        self._login_attempts = login_attempts
        self._backoff_base_s = backoff_base_s
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self.logins = 0

    async def token(self) -> Token:
        token = self._token
        return token if token is not None else await self.relogin(None)

    async def relogin(self, stale: Token | None) -> Token:
        """A fresh token; callers holding the same stale token share one login."""
        async with self._lock:
            current = self._token
            if current is not None and current is not stale:
                return current
            self._token = await self._login()
            return self._token

    async def _login(self) -> Token:
        auth = self._settings.auth
        for attempt in range(1, self._login_attempts + 1):
            self._metrics.salesforce_api_calls.labels(kind="login").inc()
            try:
                token = await request_token(
                    self._http, auth, self._settings.login_url, proxy=self._settings.proxy
                )
            except AuthenticationError as exc:
                log.error("salesforce_login_rejected", flow=auth.flow, error=str(exc))
                raise
            except SalesforceUnavailable as exc:
                if attempt == self._login_attempts:
                    raise
                delay_s = random.uniform(0, self._backoff_base_s * 2**attempt)
                log.warning("salesforce_login_retry", error=str(exc), delay_s=round(delay_s, 2))
                await asyncio.sleep(delay_s)
                continue
            self.logins += 1
            log.info("salesforce_login", flow=auth.flow, instance_url=token.instance_url)
            return token
        raise AssertionError("unreachable: the last attempt returns or raises")
