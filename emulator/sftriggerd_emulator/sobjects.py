"""The sObject resources: create, read, update, delete, describe, and sObject Collections.

`POST composite/sobjects` is Salesforce's sObject Collections create: every record of one
request is written in one transaction, so listeners see one RecordChange per object with all
of its ids, the way a bulk insert shows up in Change Data Capture.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sftriggerd_emulator.errors import ApiError, not_found
from sftriggerd_emulator.parts import parts_of
from sftriggerd_emulator.rest import (
    VERSION,
    WRITER,
    api_version,
    read_json_object,
    with_attributes,
)
from sftriggerd_emulator.schema import NAME_PATTERN, ObjectSchema, describe_object

_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was"
    " using AllOrNone header",
    "fields": [],
}


def _object_name(request: web.Request) -> str:
    name = request.match_info["object"]
    if not NAME_PATTERN.fullmatch(name):
        raise not_found()
    return name


def _known_schema(request: web.Request) -> ObjectSchema:
    schema = parts_of(request).org.schema(_object_name(request))
    if schema is None:
        raise not_found()
    return schema


async def create_record(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    [record_id] = parts_of(request).org.create([(_object_name(request), body)], request[WRITER])
    return web.json_response({"id": record_id, "success": True, "errors": []}, status=201)


async def read_record(request: web.Request) -> web.Response:
    parts = parts_of(request)
    schema = _known_schema(request)
    record = parts.org.get(schema.name, request.match_info["id"])
    asked = [name.strip() for name in request.query.get("fields", "").split(",") if name.strip()]
    names = [schema.require_field(name).name for name in asked] or schema.field_names()
    fields = {name: record.get(name) for name in names}
    return web.json_response(
        with_attributes(schema.name, str(record["Id"]), fields, api_version(request))
    )


async def update_record(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    org = parts_of(request).org
    org.update(_object_name(request), request.match_info["id"], body, request[WRITER])
    return web.Response(status=204)


async def delete_record(request: web.Request) -> web.Response:
    org = parts_of(request).org
    org.delete(_object_name(request), request.match_info["id"], request[WRITER])
    return web.Response(status=204)


async def describe(request: web.Request) -> web.Response:
    return web.json_response(describe_object(_known_schema(request), api_version(request)))


async def object_info(request: web.Request) -> web.Response:
    summary = _summary(describe_object(_known_schema(request), api_version(request)))
    return web.json_response({"objectDescribe": summary, "recentItems": []})


async def describe_global(request: web.Request) -> web.Response:
    version = api_version(request)
    objects = [_summary(describe_object(s, version)) for s in parts_of(request).org.schemas()]
    return web.json_response({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})


def _summary(described: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in described.items() if key not in ("fields",)}


async def create_collection(request: web.Request) -> web.Response:
    """sObject Collections create; validates every record before writing any."""
    body = await read_json_object(request)
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise ApiError(400, "INVALID_FIELD", "records is required and must be a list", ("records",))
    org = parts_of(request).org
    items: list[tuple[str, dict[str, Any]] | None] = []
    errors: dict[int, ApiError] = {}
    for index, entry in enumerate(records):
        try:
            object_name, fields = _collection_item(entry)
            org.check_write(object_name, fields)
            items.append((object_name, fields))
        except ApiError as exc:
            errors[index] = exc
            items.append(None)
    if errors and body.get("allOrNone"):
        return web.json_response([_result(None, errors.get(i), True) for i in range(len(items))])
    valid = [item for item in items if item is not None]
    ids = iter(org.create(valid, request[WRITER]) if valid else [])
    return web.json_response(
        [
            _result(None if item is None else next(ids), errors.get(i), False)
            for i, item in enumerate(items)
        ]
    )


def _collection_item(entry: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
    attributes = entry.get("attributes")
    object_name = attributes.get("type") if isinstance(attributes, dict) else None
    if not isinstance(object_name, str) or not NAME_PATTERN.fullmatch(object_name):
        raise ApiError(400, "INVALID_TYPE", "The attributes type field is required")
    return object_name, {key: value for key, value in entry.items() if key != "attributes"}


def _result(record_id: str | None, error: ApiError | None, rolled_back: bool) -> dict[str, Any]:
    if error is not None:
        detail = {"statusCode": error.error_code, "message": error.message}
        return {"success": False, "errors": [detail | {"fields": list(error.fields)}]}
    if rolled_back or record_id is None:
        return {"success": False, "errors": [_ROLLED_BACK]}
    return {"id": record_id, "success": True, "errors": []}


def add_routes(app: web.Application) -> None:
    base = f"/services/data/v{VERSION}"
    router = app.router
    router.add_post(f"{base}/composite/sobjects", create_collection)
    router.add_get(f"{base}/sobjects", describe_global)
    router.add_get(f"{base}/sobjects/", describe_global)
    router.add_get(f"{base}/sobjects/{{object}}/describe", describe)
    router.add_get(f"{base}/sobjects/{{object}}/describe/", describe)
    router.add_get(f"{base}/sobjects/{{object}}", object_info)
    router.add_post(f"{base}/sobjects/{{object}}", create_record)
    router.add_post(f"{base}/sobjects/{{object}}/", create_record)
    record = f"{base}/sobjects/{{object}}/{{id}}"
    router.add_get(record, read_record)
    router.add_patch(record, update_record)
    router.add_delete(record, delete_record)
