"""`query`, `queryAll` and their `nextRecordsUrl` pages.

The SOQL engine (`sftriggerd.soql_engine`) reads a field's type off its Python value, while
the org keeps records JSON-ready; so records are typed from the schema on the way in and
formatted back on the way out.

Page size comes from `Sforce-Query-Options: batchSize=N`. Salesforce accepts 200 to 2,000;
the emulator accepts 1 to 2,000 so tests can page through a handful of rows.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime
from typing import Any

from aiohttp import web

from sftriggerd.soql_engine import Query, SoqlError, parse_query, run_query, unknown_object_error
from sftriggerd_emulator.clock import format_datetime, parse_datetime
from sftriggerd_emulator.cursors import Page
from sftriggerd_emulator.errors import ApiError
from sftriggerd_emulator.parts import parts_of
from sftriggerd_emulator.rest import VERSION, api_version, with_attributes
from sftriggerd_emulator.schema import ObjectSchema

DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 1
MAX_BATCH_SIZE = 2000
_BATCH_OPTION = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


def batch_size(header: str | None, default: int = DEFAULT_BATCH_SIZE) -> int:
    """The page size asked for in `Sforce-Query-Options`, within what the emulator allows."""
    match = _BATCH_OPTION.search(header or "")
    asked = default if match is None else int(match.group(1))
    return max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, asked))


async def query(request: web.Request) -> web.Response:
    return _answer_query(request, include_deleted=False)


async def query_all(request: web.Request) -> web.Response:
    return _answer_query(request, include_deleted=True)


async def query_more(request: web.Request) -> web.Response:
    parts = parts_of(request)
    locator, _, start = request.match_info["locator"].rpartition("-")
    if not locator or not start.isdigit():
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    page = parts.cursors.page(locator, int(start), parts.clock.now())
    parts.ctx.stats["query_more"] += 1
    return web.json_response(_page_body(page, locator, api_version(request)))


def _answer_query(request: web.Request, *, include_deleted: bool) -> web.Response:
    parts = parts_of(request)
    text = request.query.get("q", "")
    if not text.strip():
        raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    try:
        parsed = parse_query(text)
        schema = parts.org.schema(parsed.object_name)
        if schema is None:
            raise unknown_object_error(parsed)
        stored = parts.cursors.tie_ordered(
            parts.org.rows(schema.name, include_deleted=include_deleted)
        )
        rows = run_query(_selecting_id(parsed), _typed(schema, stored), schema.field_names())
    except SoqlError as exc:
        raise ApiError(400, exc.error_code, exc.message) from exc
    parts.ctx.stats["queries"] += 1
    if parsed.count_only:
        return web.json_response({"totalSize": len(rows), "done": True, "records": []})
    version = api_version(request)
    records = [_shown(schema.name, parsed, row, version) for row in rows]
    size = batch_size(
        request.headers.get("Sforce-Query-Options"), parts.ctx.settings.query_batch_size
    )
    page, locator = parts.cursors.first_page(records, size, parts.clock.now())
    return web.json_response(_page_body(page, locator, version))


def _page_body(page: Page, locator: str | None, version: str) -> dict[str, Any]:
    body: dict[str, Any] = {"totalSize": page.total, "done": page.next_start is None}
    if page.next_start is not None:
        body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{page.next_start}"
    body["records"] = page.rows
    return body


def _selecting_id(parsed: Query) -> Query:
    """The query with Id selected too, because each record's `attributes.url` needs it."""
    if parsed.count_only or any(name.lower() == "id" for name in parsed.select):
        return parsed
    positions = parsed.select_positions + ((0,) if parsed.select_positions else ())
    return dataclasses.replace(parsed, select=(*parsed.select, "Id"), select_positions=positions)


def _shown(object_name: str, parsed: Query, row: dict[str, Any], version: str) -> dict[str, Any]:
    record = {name: _json_value(value) for name, value in row.items()}
    record_id = str(record["Id"])
    if not any(name.lower() == "id" for name in parsed.select):
        del record["Id"]
    return with_attributes(object_name, record_id, record, version)


def _typed(schema: ObjectSchema, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with datetime and date fields as Python values, for the SOQL engine."""
    converters: dict[str, Any] = {}
    for info in schema.fields():
        if info.type == "datetime":
            converters[info.name] = parse_datetime
        elif info.type == "date":
            converters[info.name] = date.fromisoformat
    typed: list[dict[str, Any]] = []
    for record in stored:
        row = dict(record)
        for name, convert in converters.items():
            if row.get(name) is not None:
                row[name] = convert(row[name])
        typed.append(row)
    return typed


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def add_routes(app: web.Application) -> None:
    base = f"/services/data/v{VERSION}"
    for path, handler in (("query", query), ("queryAll", query_all)):
        app.router.add_get(f"{base}/{path}", handler)
        app.router.add_get(f"{base}/{path}/", handler)
        app.router.add_get(f"{base}/{path}/{{locator}}", query_more)
