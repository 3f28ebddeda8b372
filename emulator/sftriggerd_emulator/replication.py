"""getUpdated and getDeleted: `sobjects/{Object}/updated/` and `sobjects/{Object}/deleted/`.

Times are truncated to the minute. The answer lists every visible record of [start, end),
while `latestDateCovered` never passes the start of the current minute: a record of this
minute may still be followed by another stamped the same minute, so a client that starts its
next window at `latestDateCovered` sees this minute again (duplicates, never gaps). Updated
ids reach back 30 days, deleted ones as far as the recycle bin does (15 days).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from sftriggerd_emulator.clock import format_datetime, parse_datetime, truncate_to_minute
from sftriggerd_emulator.errors import ApiError, not_found
from sftriggerd_emulator.parts import parts_of
from sftriggerd_emulator.rest import VERSION
from sftriggerd_emulator.schema import ObjectSchema

UPDATED_REACH = timedelta(days=30)
MAX_IDS = 600_000


def _window(request: web.Request) -> tuple[datetime, datetime]:
    """The request's [start, end), each truncated to the minute; refuses a reversed window."""
    try:
        start = truncate_to_minute(parse_datetime(request.query["start"]))
        end = truncate_to_minute(parse_datetime(request.query["end"]))
    except (KeyError, ValueError) as exc:
        raise ApiError(
            400,
            "INVALID_PARAMETER_VALUE",
            "start and end must both be given as ISO-8601 date-times",
        ) from exc
    if start >= end:
        raise ApiError(400, "INVALID_REPLICATION_DATE", "start must be before end")
    return start, end


def _schema(request: web.Request) -> ObjectSchema:
    schema = parts_of(request).org.schema(request.match_info["object"])
    if schema is None:
        raise not_found()
    return schema


def _covered(request: web.Request, end: datetime) -> datetime:
    return min(end, truncate_to_minute(parts_of(request).clock.now()))


def _check_id_count(count: int) -> None:
    if count > MAX_IDS:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_IDS} records into this call",
        )


async def get_updated(request: web.Request) -> web.Response:
    parts = parts_of(request)
    schema = _schema(request)
    start, end = _window(request)
    if start < parts.clock.now() - UPDATED_REACH:
        raise ApiError(
            400, "INVALID_REPLICATION_DATE", "start can not be more than 30 days in the past"
        )
    ids = parts.org.updated_ids(schema.name, start, end)
    _check_id_count(len(ids))
    covered = _covered(request, end)
    return web.json_response({"ids": ids, "latestDateCovered": format_datetime(covered)})


async def get_deleted(request: web.Request) -> web.Response:
    parts = parts_of(request)
    schema = _schema(request)
    start, end = _window(request)
    covered = _covered(request, end)
    deleted = parts.org.deleted_between(schema.name, start, end)
    _check_id_count(len(deleted))
    earliest = truncate_to_minute(parts.org.earliest_deleted_available())
    return web.json_response(
        {
            "deletedRecords": [
                {"id": entry.record_id, "deletedDate": format_datetime(entry.deleted_at)}
                for entry in deleted
            ],
            "earliestDateAvailable": format_datetime(earliest),
            "latestDateCovered": format_datetime(covered),
        }
    )


def add_routes(app: web.Application) -> None:
    """Registers before the `sobjects/{Object}/{Id}` routes, which would take `updated`."""
    base = f"/services/data/v{VERSION}/sobjects/{{object}}"
    for suffix, handler in (("updated", get_updated), ("deleted", get_deleted)):
        app.router.add_get(f"{base}/{suffix}", handler)
        app.router.add_get(f"{base}/{suffix}/", handler)
