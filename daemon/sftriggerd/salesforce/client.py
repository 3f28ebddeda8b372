"""The REST client: every call retried where retrying can help, re-logged in on 401,
counted, and its `Sforce-Limit-Info` fed to the budget."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from ..config.settings import SalesforceSettings
from ..errors import SalesforceError
from ..logs import get_logger
from ..metrics import Metrics
from .auth import Token
from .limits import ApiBudget, parse_limit_info
from .session import SalesforceSession
from .soql import identifier
from .soql import record_id as checked_id

log = get_logger(__name__)

_RETRYABLE_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})


class SalesforceApiError(SalesforceError):
    """Salesforce refused a call; `error_code` is its code (MALFORMED_QUERY, ...)."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        self.status = status
        self.error_code = error_code
        self.sf_message = message
        super().__init__(f"Salesforce answered HTTP {status} {error_code}: {message.strip()}")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0
    timeout_s: float = 60.0

    def delay_s(self, attempt: int) -> float:
        # Full jitter: spreads many clients' retries instead of synchronising them.
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class QueryPage:
    records: list[dict[str, Any]]
    total_size: int
    done: bool


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any


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
        """The JSON answer of a 2xx; raises SalesforceApiError or SalesforceError otherwise."""
        full_path = path if path.startswith("/services/") else self.data_path(path)
        token = await self.session.token()
        relogged = False
        attempt = 1
        while True:
            try:
                answer = await self._send(
                    token, method, full_path, kind, params, json_body, headers
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure: str = f"{type(exc).__name__} {exc}".strip()
            else:
                if answer.status == 401 and not relogged:
                    token = await self.session.relogin(token)
                    relogged = True
                    continue
                if 200 <= answer.status < 300:
                    return answer.body
                error = _api_error(answer)
                if not _retryable(error):
                    raise error
                failure = str(error)
            if attempt >= self._retry.attempts:
                raise SalesforceError(f"{method} {full_path} failed {attempt} times: {failure}")
            delay_s = self._retry.delay_s(attempt)
            log.warning(
                "salesforce_retry",
                kind=kind,
                attempt=attempt,
                error=failure,
                delay_s=round(delay_s, 3),
            )
            await asyncio.sleep(delay_s)
            attempt += 1

    async def _send(
        self,
        token: Token,
        method: str,
        path: str,
        kind: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
    ) -> _Answer:
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
            if response.status == 204:
                return _Answer(204, None)
            text = await response.text()
        try:
            body = _parse_json(text)
        except ValueError:
            if 200 <= response.status < 300:
                raise SalesforceError(f"{method} {path}: answer is not JSON") from None
            body = None
        return _Answer(response.status, body)

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
            page, next_url = _parse_page(body)
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
        page, _ = _parse_page(body)
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
        return _expect_dict(body, path)

    async def describe(self, object_name: str) -> dict[str, Any]:
        path = f"sobjects/{identifier(object_name)}/describe"
        return _expect_dict(await self.request_json("GET", path, kind="describe"), path)

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
        return _expect_dict(await self.request_json("GET", path, kind=which, params=params), path)

    async def limits(self) -> dict[str, Any]:
        return _expect_dict(await self.request_json("GET", "limits", kind="limits"), "limits")


def _parse_json(text: str) -> Any:
    return json.loads(text) if text else None


def _api_error(answer: _Answer) -> SalesforceApiError:
    body = answer.body
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    if isinstance(body, dict):
        first = body
    code = str(first.get("errorCode") or first.get("error") or f"HTTP_{answer.status}")
    message = str(first.get("message") or first.get("error_description") or "")
    return SalesforceApiError(answer.status, code, message)


def _retryable(error: SalesforceApiError) -> bool:
    # REQUEST_LIMIT_EXCEEDED arrives as a 403, so the code decides, not the status alone.
    return error.status >= 500 or error.status == 429 or error.error_code in _RETRYABLE_CODES


def _parse_page(body: Any) -> tuple[QueryPage, str | None]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SalesforceError("query answer has no records list")
    done = bool(body.get("done", True))
    next_url = body.get("nextRecordsUrl")
    if not done and not isinstance(next_url, str):
        raise SalesforceError("query answer is not done but has no nextRecordsUrl")
    page = QueryPage(
        records=[r for r in body["records"] if isinstance(r, dict)],
        total_size=int(body.get("totalSize", 0)),
        done=done,
    )
    return page, None if done else next_url


def _expect_dict(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SalesforceError(f"{what}: expected a JSON object from Salesforce")
    return body
