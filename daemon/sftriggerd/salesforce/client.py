"""The REST client: every call retried where retrying can help (waiting at least what
`Retry-After` asks), re-logged in on 401, counted, and its `Sforce-Limit-Info` fed to the
budget. What an answer means is decided in `answers`; this module only does the I/O."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from ..config.settings import SalesforceSettings
from ..logs import get_logger
from ..metrics import Metrics
from .answers import (
    MalformedAnswerError,
    Ok,
    QueryPage,
    Refused,
    Relogin,
    RetryLater,
    SalesforceApiError,
    SalesforceUnavailable,
    Token,
    Verdict,
    classify,
    connection_failed,
    expect_object,
    query_page,
)
from .limits import ApiBudget, parse_limit_info
from .session import SalesforceSession
from .soql import identifier
from .soql import record_id as checked_id

log = get_logger(__name__)

__all__ = [
    "MalformedAnswerError",
    "QueryPage",
    "RetryPolicy",
    "SalesforceApiError",
    "SalesforceClient",
    "SalesforceUnavailable",
]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0
    timeout_s: float = 60.0
    # The longest wait a Retry-After may impose on one call; beyond it the call fails and
    # the caller's own back-off takes over.
    max_wait_s: float = 300.0

    def delay_s(self, attempt: int) -> float:
        # Full jitter: spreads many clients' retries instead of synchronising them.
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))

    def wait_s(self, attempt: int, asked_s: float | None) -> float:
        """The wait before the next attempt: never sooner than the answer asked."""
        return min(max(self.delay_s(attempt), asked_s or 0.0), self.max_wait_s)


class SalesforceClient:
    def __init__(
        self,
        settings: SalesforceSettings,
        http: aiohttp.ClientSession,
        metrics: Metrics,
        *,
        session: SalesforceSession | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._settings = settings
        self._http = http
        self.metrics = metrics
        self.session = session or SalesforceSession(settings, http, metrics)
        self._retry = retry
        self.budget = ApiBudget(settings.api_budget)

    @property
    def api_version(self) -> str:
        return self._settings.api_version

    @property
    def proxy(self) -> str | None:
        return self._settings.proxy

    def data_path(self, relative: str) -> str:
        return f"/services/data/v{self._settings.api_version}/{relative.lstrip('/')}"

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The JSON answer of a 2xx. Raises SalesforceApiError for a refusal,
        MalformedAnswerError for a 2xx we cannot read, SalesforceUnavailable when every
        attempt failed on Salesforce's side or on the way, AuthenticationError when a
        needed login is refused."""
        full_path = path if path.startswith("/services/") else self.data_path(path)
        # The token a 401 refused: later attempts ask the session for a token newer than
        # it, so a re-login that failed on the way is tried again and one that another
        # caller already made is shared.
        refused: Token | None = None
        attempt = 1
        while True:
            verdict, used = await self._attempt(
                refused, method, full_path, kind, params, json_body, headers
            )
            if isinstance(verdict, Ok):
                return verdict.body
            if isinstance(verdict, Refused):
                raise verdict.error
            if isinstance(verdict, Relogin):
                if refused is not None and used is not refused:
                    raise verdict.error  # a fresh login did not help
                refused = used
                continue
            if attempt >= self._retry.attempts:
                raise SalesforceUnavailable(
                    f"{method} {full_path} failed {attempt} times: {verdict.reason}"
                )
            delay_s = self._retry.wait_s(attempt, verdict.after_s)
            log.warning(
                "salesforce_retry",
                kind=kind,
                attempt=attempt,
                error=verdict.reason,
                delay_s=round(delay_s, 3),
            )
            await asyncio.sleep(delay_s)
            attempt += 1

    async def _attempt(
        self,
        refused: Token | None,
        method: str,
        path: str,
        kind: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
    ) -> tuple[Verdict, Token | None]:
        """One try: a token (re-logged in past `refused`), one request, its verdict."""
        try:
            token = await (
                self.session.relogin(refused) if refused is not None else self.session.token()
            )
        except SalesforceUnavailable as exc:
            return RetryLater(str(exc), exc.retry_after_s), None
        try:
            return await self._send(token, method, path, kind, params, json_body, headers), token
        except (aiohttp.ClientError, OSError) as exc:
            return connection_failed(exc), token

    async def _send(
        self,
        token: Token,
        method: str,
        path: str,
        kind: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
    ) -> Verdict:
        self.metrics.salesforce_api_calls.labels(kind=kind).inc()
        self.budget.record_call()
        all_headers = {"Authorization": f"Bearer {token.access_token}", **(headers or {})}
        async with self._http.request(
            method,
            token.instance_url + path,
            params=params,
            json=json_body,
            headers=all_headers,
            proxy=self._settings.proxy,
            timeout=aiohttp.ClientTimeout(total=self._retry.timeout_s),
        ) as response:
            usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
            if usage is not None:
                self.budget.update(usage)
                self.metrics.salesforce_api_usage_ratio.set(usage.ratio)
            body = await response.read()
            return classify(response.status, response.headers, body, datetime.now(UTC))

    async def query_pages(
        self, soql: str, *, include_deleted: bool = False, batch_size: int | None = None
    ) -> AsyncIterator[QueryPage]:
        """Every page of a query (queryAll with `include_deleted`), fetched as it is consumed."""
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        resource = "queryAll" if include_deleted else "query"
        body = await self.request_json(
            "GET", resource, kind="query", params={"q": soql}, headers=headers
        )
        while True:
            page, next_url = query_page(body)
            yield page
            if next_url is None:
                return
            body = await self.request_json("GET", next_url, kind="query_more", headers=headers)

    async def query(
        self, soql: str, *, include_deleted: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        async for page in self.query_pages(soql, include_deleted=include_deleted):
            for record in page.records:
                yield record

    async def count(self, soql: str) -> int:
        """`SELECT COUNT() FROM ...`: the number of matching rows, in one call."""
        body = await self.request_json("GET", "query", kind="query", params={"q": soql})
        page, _ = query_page(body)
        return page.total_size

    async def get_record(
        self, object_name: str, record_id: str, fields: list[str] | None = None
    ) -> dict[str, Any] | None:
        """The record, or None when it does not exist (deleted or never did)."""
        params = {"fields": ",".join(identifier(f) for f in fields)} if fields else None
        path = f"sobjects/{identifier(object_name)}/{checked_id(record_id)}"
        try:
            body = await self.request_json("GET", path, kind="sobject", params=params)
        except SalesforceApiError as exc:
            if exc.status == 404:
                return None
            raise
        return expect_object(body, path)

    async def describe(self, object_name: str) -> dict[str, Any]:
        path = f"sobjects/{identifier(object_name)}/describe"
        return expect_object(await self.request_json("GET", path, kind="describe"), path)

    async def get_updated(self, object_name: str, start: datetime, end: datetime) -> dict[str, Any]:
        return await self._changed("updated", object_name, start, end)

    async def get_deleted(self, object_name: str, start: datetime, end: datetime) -> dict[str, Any]:
        return await self._changed("deleted", object_name, start, end)

    async def _changed(
        self, which: str, object_name: str, start: datetime, end: datetime
    ) -> dict[str, Any]:
        path = f"sobjects/{identifier(object_name)}/{which}/"
        params = {
            "start": start.isoformat(timespec="seconds"),
            "end": end.isoformat(timespec="seconds"),
        }
        return expect_object(await self.request_json("GET", path, kind=which, params=params), path)

    async def limits(self) -> dict[str, Any]:
        return expect_object(await self.request_json("GET", "limits", kind="limits"), "limits")
