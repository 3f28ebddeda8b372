"""The login state: logs in lazily, keeps the token, and re-logs in once however many
callers find it stale together.

Callers that need a login while one is running wait for that login and share its result,
its failure included: a token endpoint that fails makes one login (with its own retries),
not one per waiting caller. The next call after a failure starts a new login.
"""

from __future__ import annotations

import asyncio
import random

import aiohttp

from ..config.settings import SalesforceSettings
from ..errors import AuthenticationError
from ..logs import get_logger
from ..metrics import Metrics
from .answers import SalesforceUnavailable, Token
from .auth import request_token

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
        max_wait_s: float = 60.0,
    ) -> None:
        self._settings = settings
        self._http = http
        self._metrics = metrics
        self._login_attempts = login_attempts
        self._backoff_base_s = backoff_base_s
        self._max_wait_s = max_wait_s
        self._token: Token | None = None
        self._login_task: asyncio.Task[Token] | None = None
        self.logins = 0

    async def token(self) -> Token:
        token = self._token
        return token if token is not None else await self.relogin(None)

    async def relogin(self, stale: Token | None) -> Token:
        """A fresh token; callers holding the same stale token share one login."""
        current = self._token
        if current is not None and current is not stale:
            return current
        task = self._login_task
        if task is None:
            task = asyncio.create_task(self._login(), name="salesforce-login")
            task.add_done_callback(self._login_done)
            self._login_task = task
        # Shielded: one waiter cancelled (its part stopping) must not cancel the login the
        # other waiters share.
        return await asyncio.shield(task)

    def _login_done(self, task: asyncio.Task[Token]) -> None:
        if self._login_task is task:
            self._login_task = None
        if not task.cancelled():
            task.exception()  # a failure every waiter left behind is not "never retrieved"

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
                    log.error("salesforce_login_failed", attempts=attempt, error=str(exc))
                    raise
                delay_s = self._delay_s(attempt, exc.retry_after_s)
                log.warning("salesforce_login_retry", error=str(exc), delay_s=round(delay_s, 2))
                await asyncio.sleep(delay_s)
                continue
            self._token = token
            self.logins += 1
            log.info("salesforce_login", flow=auth.flow, instance_url=token.instance_url)
            return token
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _delay_s(self, attempt: int, asked_s: float | None) -> float:
        # Full jitter, but never sooner than the endpoint asked, nor longer than we allow.
        jitter_s = random.uniform(0, self._backoff_base_s * 2**attempt)
        return min(max(jitter_s, asked_s or 0.0), self._max_wait_s)
