"""A thin test client for the emulator: logs in like a real client, keeps whole answers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

API_VERSION = "60.0"
DEFAULT_LOGIN = {
    "grant_type": "password",
    "client_id": "emulator-client",
    "client_secret": "emulator-secret",
    "username": "admin@emulator.local",
    "password": "emulator",
}
SF_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000")


@dataclass
class Answer:
    status: int
    body: Any
    headers: CIMultiDictProxy[str]


async def answer_of(response: aiohttp.ClientResponse) -> Answer:
    text = await response.text()
    body: Any = None
    if text:
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = text
    return Answer(response.status, body, response.headers)


async def token_request(
    http: aiohttp.ClientSession, url: str, form: dict[str, str], **kwargs: Any
) -> Answer:
    async with http.post(f"{url}/services/oauth2/token", data=form, **kwargs) as response:
        return await answer_of(response)


async def control(
    http: aiohttp.ClientSession, url: str, path: str, body: dict[str, Any] | None = None
) -> Answer:
    """POST /_emulator/<path> with a JSON body, or GET when `body` is None."""
    if body is None:
        async with http.get(f"{url}/_emulator/{path}") as response:
            return await answer_of(response)
    async with http.post(f"{url}/_emulator/{path}", json=body) as response:
        return await answer_of(response)


class OrgClient:
    """REST calls as a logged-in user; paths are relative to /services/data/vXX.X/."""

    def __init__(self, http: aiohttp.ClientSession, instance_url: str, token: str) -> None:
        self.http = http
        self.instance_url = instance_url
        self.token = token

    @classmethod
    async def login(cls, http: aiohttp.ClientSession, url: str, **overrides: str) -> OrgClient:
        answer = await token_request(http, url, DEFAULT_LOGIN | overrides)
        assert answer.status == 200, answer.body
        return cls(http, answer.body["instance_url"], answer.body["access_token"])

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        full = path if path.startswith("/") else f"/services/data/v{API_VERSION}/{path}"
        sent = {"Authorization": f"Bearer {self.token}"} | (headers or {})
        async with self.http.request(
            method, self.instance_url + full, json=json, params=params, headers=sent
        ) as response:
            return await answer_of(response)

    async def create(self, object_name: str, fields: dict[str, Any]) -> str:
        answer = await self.call("POST", f"sobjects/{object_name}", json=fields)
        assert answer.status == 201, answer.body
        return str(answer.body["id"])

    async def create_many(self, object_name: str, rows: list[dict[str, Any]]) -> list[str]:
        records = [{"attributes": {"type": object_name}, **row} for row in rows]
        answer = await self.call(
            "POST", "composite/sobjects", json={"allOrNone": True, "records": records}
        )
        assert answer.status == 200, answer.body
        assert all(result["success"] for result in answer.body), answer.body
        return [str(result["id"]) for result in answer.body]

    async def query(
        self, soql: str, *, include_deleted: bool = False, batch_size: int | None = None
    ) -> Answer:
        headers = {} if batch_size is None else {"Sforce-Query-Options": f"batchSize={batch_size}"}
        resource = "queryAll" if include_deleted else "query"
        return await self.call("GET", resource, params={"q": soql}, headers=headers)

    async def get(self, object_name: str, record_id: str, fields: str | None = None) -> Answer:
        params = None if fields is None else {"fields": fields}
        return await self.call("GET", f"sobjects/{object_name}/{record_id}", params=params)
