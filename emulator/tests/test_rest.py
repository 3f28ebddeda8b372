"""sObject REST over real HTTP: records, describe, collections, limits and error bodies."""

from __future__ import annotations

import re

import aiohttp

from sftriggerd_emulator.context import RecordChange
from sftriggerd_emulator.ids import checksum
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import SF_DATETIME, OrgClient, control

ADMIN_ID = "005EM0000000001YAA"
PLAIN_LIMIT_INFO = re.compile(r"^api-usage=(\d+)/(\d+)$")
BURSTS_LIMIT_INFO = re.compile(r"^api-usage=(\d+)/(\d+); api-bursts=1/750$")


async def test_create_then_read_every_field(org: OrgClient) -> None:
    record_id = await org.create("Account", {"Name": "Acme", "Employees__c": 12})
    assert re.fullmatch(r"001EM[0-9A-Z]{10}[A-Z0-5]{3}", record_id)
    assert record_id[15:] == checksum(record_id[:15])
    answer = await org.get("Account", record_id)
    assert answer.status == 200
    record = answer.body
    assert record["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v60.0/sobjects/Account/{record_id}",
    }
    assert record["Id"] == record_id
    assert record["Name"] == "Acme"
    assert record["Employees__c"] == 12
    assert record["IsDeleted"] is False
    assert record["CreatedById"] == record["LastModifiedById"] == ADMIN_ID
    for stamp in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
        assert SF_DATETIME.fullmatch(record[stamp]), record[stamp]
    assert record["CreatedDate"] == record["SystemModstamp"]


async def test_read_selected_fields(org: OrgClient) -> None:
    record_id = await org.create("Account", {"Name": "Acme", "Rating__c": "Hot"})
    answer = await org.get("Account", record_id, fields="Name,rating__c")
    assert answer.body == {
        "attributes": {
            "type": "Account",
            "url": f"/services/data/v60.0/sobjects/Account/{record_id}",
        },
        "Name": "Acme",
        "Rating__c": "Hot",
    }
    unknown = await org.get("Account", record_id, fields="Name,Colour__c")
    assert unknown.status == 400
    assert unknown.body[0]["errorCode"] == "INVALID_FIELD"
    assert unknown.body[0]["message"].startswith("No such column 'Colour__c' on entity 'Account'.")


async def test_fifteen_character_ids_are_accepted(org: OrgClient) -> None:
    record_id = await org.create("Contact", {"LastName": "Doe"})
    assert record_id.startswith("003")
    assert (await org.get("Contact", record_id[:15])).body["Id"] == record_id


async def test_update_changes_fields_and_stamps(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    record_id = await org.create("Account", {"Name": "Acme", "Phone__c": "123"})
    before = (await org.get("Account", record_id)).body
    await control(http, emulator.url, "clock", {"advance_s": 5})
    patched = await org.call(
        "PATCH", f"sobjects/Account/{record_id}", json={"Name": "Acme Corp", "Phone__c": None}
    )
    assert patched.status == 204
    assert patched.body is None
    after = (await org.get("Account", record_id)).body
    assert after["Name"] == "Acme Corp"
    assert after["Phone__c"] is None
    assert after["CreatedDate"] == before["CreatedDate"]
    assert after["SystemModstamp"] > before["SystemModstamp"]
    assert after["LastModifiedDate"] == after["SystemModstamp"]


async def test_datetime_fields_answer_in_salesforce_format(org: OrgClient) -> None:
    record_id = await org.create("Event__c", {"Starts__c": "2024-03-01T10:15:30+02:00"})
    answer = await org.get("Event__c", record_id)
    assert answer.body["Starts__c"] == "2024-03-01T08:15:30.000+0000"


async def test_delete_answers_204_then_not_found(org: OrgClient) -> None:
    record_id = await org.create("Account", {"Name": "Gone"})
    deleted = await org.call("DELETE", f"sobjects/Account/{record_id}")
    assert deleted.status == 204
    missing = await org.get("Account", record_id)
    assert missing.status == 404
    assert missing.body == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    again = await org.call("PATCH", f"sobjects/Account/{record_id}", json={"Name": "x"})
    assert again.status == 404
    assert again.body == [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"}]


async def test_unknown_record_and_wrong_prefix_are_not_found(org: OrgClient) -> None:
    contact_id = await org.create("Contact", {"LastName": "Doe"})
    assert (await org.get("Account", contact_id)).status == 404
    assert (await org.get("Account", "001EM0000000099AAA")).status == 404
    assert (await org.get("Nothing__c", "a00EM0000000001AAA")).status == 404


async def test_key_prefixes_and_increasing_ids(org: OrgClient) -> None:
    assert (await org.create("Opportunity", {"Name": "Deal"})).startswith("006")
    assert (await org.create("Lead", {"LastName": "L", "Company": "C"})).startswith("00Q")
    assert (await org.create("Case", {"Subject": "Help"})).startswith("500")
    assert (await org.create("Widget__c", {"Name": "w"})).startswith("a00")
    assert (await org.create("Gadget__c", {"Name": "g"})).startswith("a01")
    ids = [await org.create("Account", {"Name": f"n{i}"}) for i in range(40)]
    assert ids == sorted(ids) == sorted(ids, key=str.casefold)
    assert len(set(ids)) == 40
    ordered = await org.query("SELECT Id FROM Account ORDER BY Id DESC")
    assert [row["Id"] for row in ordered.body["records"]] == list(reversed(ids))


async def test_system_fields_are_read_only(org: OrgClient) -> None:
    answer = await org.call("POST", "sobjects/Account", json={"Name": "x", "CreatedDate": "2020"})
    assert answer.status == 400
    assert answer.body[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert answer.body[0]["fields"] == ["CreatedDate"]


async def test_values_must_keep_their_field_type(org: OrgClient) -> None:
    await org.create("Account", {"Name": "x", "Active__c": True})
    answer = await org.call("POST", "sobjects/Account", json={"Active__c": "yes"})
    assert answer.status == 400
    assert answer.body[0]["errorCode"] == "JSON_PARSER_ERROR"
    broken = await org.call("POST", "sobjects/Account", json=["not", "an", "object"])
    assert broken.body[0]["errorCode"] == "JSON_PARSER_ERROR"


async def test_describe_infers_types_from_values(org: OrgClient) -> None:
    account_id = await org.create("Account", {"Name": "A"})
    await org.create(
        "Invoice__c",
        {
            "Amount__c": 10.5,
            "Paid__c": False,
            "Due__c": "2024-05-01",
            "Sent__c": "2024-05-01T10:00:00Z",
            "Note__c": "hello",
            "AccountId": account_id,
        },
    )
    answer = await org.call("GET", "sobjects/Invoice__c/describe")
    assert answer.status == 200
    described = answer.body
    assert described["name"] == "Invoice__c"
    assert described["keyPrefix"] == "a00"
    assert described["custom"] is True
    assert described["replicateable"] is True
    types = {field["name"]: field["type"] for field in described["fields"]}
    assert types == {
        "Id": "id",
        "IsDeleted": "boolean",
        "CreatedDate": "datetime",
        "CreatedById": "reference",
        "LastModifiedDate": "datetime",
        "LastModifiedById": "reference",
        "SystemModstamp": "datetime",
        "Amount__c": "double",
        "Paid__c": "boolean",
        "Due__c": "date",
        "Sent__c": "datetime",
        "Note__c": "string",
        "AccountId": "reference",
    }
    by_name = {field["name"]: field for field in described["fields"]}
    assert by_name["AccountId"]["referenceTo"] == ["Account"]
    assert by_name["Id"]["updateable"] is False
    assert by_name["Note__c"]["updateable"] is True


async def test_describe_of_unknown_object_is_not_found(org: OrgClient) -> None:
    answer = await org.call("GET", "sobjects/Unheard__c/describe")
    assert answer.status == 404
    assert answer.body[0]["errorCode"] == "NOT_FOUND"
    standard = await org.call("GET", "sobjects/Account/describe")
    assert standard.body["keyPrefix"] == "001"


async def test_describe_global_lists_known_objects(org: OrgClient) -> None:
    await org.create("Widget__c", {"Name": "w"})
    answer = await org.call("GET", "sobjects")
    names = {entry["name"] for entry in answer.body["sobjects"]}
    assert {"Account", "Contact", "Opportunity", "Lead", "Case", "Widget__c"} <= names


async def test_collection_create_is_one_transaction(
    org: OrgClient, record_changes: list[RecordChange]
) -> None:
    ids = await org.create_many(
        "Account",
        [
            {"Name": "A", "Tier__c": "Gold"},
            {"Name": "B", "Tier__c": "Gold"},
            {"Name": "C", "Tier__c": "Gold"},
        ],
    )
    assert len(ids) == 3
    [change] = record_changes
    assert change.change_type == "CREATE"
    assert change.object_name == "Account"
    assert change.record_ids == tuple(ids)
    assert change.fields["Tier__c"] == "Gold"
    assert "Name" not in change.fields  # differs between the records
    assert [record["Name"] for record in change.records] == ["A", "B", "C"]
    assert change.commit_user == ADMIN_ID
    assert change.change_origin == "com/salesforce/api/rest/60.0"


async def test_collection_all_or_none_rolls_back(org: OrgClient) -> None:
    records = [
        {"attributes": {"type": "Account"}, "Name": "ok"},
        {"attributes": {"type": "Account"}, "Name": "bad", "Id": "001EM0000000001YAA"},
    ]
    answer = await org.call(
        "POST", "composite/sobjects", json={"allOrNone": True, "records": records}
    )
    assert answer.status == 200
    assert answer.body[0] == {
        "success": False,
        "errors": [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the"
                " request was using AllOrNone header",
                "fields": [],
            }
        ],
    }
    assert answer.body[1]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert (await org.query("SELECT Id FROM Account")).body["totalSize"] == 0
    partial = await org.call(
        "POST", "composite/sobjects", json={"allOrNone": False, "records": records}
    )
    assert partial.body[0]["success"] is True
    assert partial.body[1]["success"] is False
    assert (await org.query("SELECT Id FROM Account")).body["totalSize"] == 1


async def test_record_changes_follow_cdc_rules(
    emulator: RunningEmulator,
    org: OrgClient,
    http: aiohttp.ClientSession,
    record_changes: list[RecordChange],
) -> None:
    record_id = await org.create("Account", {"Name": "Acme", "Phone__c": "1", "Fax__c": None})
    await org.call(
        "PATCH", f"sobjects/Account/{record_id}", json={"Phone__c": None, "Name": "Acme"}
    )
    await org.call("DELETE", f"sobjects/Account/{record_id}")
    await control(http, emulator.url, f"undelete/Account/{record_id}", {})
    created, updated, deleted, undeleted = record_changes
    assert set(created.fields) == {
        "Name",
        "Phone__c",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
    }
    assert updated.change_type == "UPDATE"
    assert updated.changed_fields == ("Phone__c", "LastModifiedDate")
    assert updated.nulled_fields == ("Phone__c",)
    assert updated.fields["Phone__c"] is None
    assert updated.records[0]["Phone__c"] is None
    assert deleted.change_type == "DELETE"
    assert deleted.fields == {}
    assert deleted.records[0]["IsDeleted"] is False  # the record as it was before
    assert undeleted.change_type == "UNDELETE"
    assert undeleted.fields["Name"] == "Acme"
    assert len({c.transaction_key for c in record_changes}) == 4


async def test_missing_or_bad_token_is_invalid_session(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    for headers in ({}, {"Authorization": "Bearer 00Dxx!forged"}, {"Authorization": "Basic x"}):
        async with http.get(f"{emulator.url}/services/data/v60.0/limits", headers=headers) as r:
            assert r.status == 401
            assert await r.json() == [
                {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
            ]


async def test_unknown_resource_is_a_json_not_found(org: OrgClient) -> None:
    answer = await org.call("GET", "no/such/thing")
    assert answer.status == 404
    assert answer.body == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    wrong_method = await org.call("PUT", "sobjects/Account/001EM0000000001YAA")
    assert wrong_method.status == 405
    assert wrong_method.body[0]["errorCode"] == "METHOD_NOT_ALLOWED"


async def test_limits_and_both_limit_info_forms(org: OrgClient) -> None:
    first = await org.call("GET", "limits")
    second = await org.call("GET", "limits")
    plain = PLAIN_LIMIT_INFO.fullmatch(first.headers["Sforce-Limit-Info"])
    bursts = BURSTS_LIMIT_INFO.fullmatch(second.headers["Sforce-Limit-Info"])
    assert plain is not None and bursts is not None
    assert plain.groups() == ("1", "15000")
    assert bursts.groups() == ("2", "15000")
    assert second.body == {"DailyApiRequests": {"Max": 15000, "Remaining": 14998}}


async def test_limit_info_style_can_be_fixed(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "limits", {"header": "bursts"})
    for _ in range(2):
        answer = await org.call("GET", "limits")
        assert BURSTS_LIMIT_INFO.fullmatch(answer.headers["Sforce-Limit-Info"])
    await control(http, emulator.url, "limits", {"header": "plain"})
    for _ in range(2):
        answer = await org.call("GET", "limits")
        assert PLAIN_LIMIT_INFO.fullmatch(answer.headers["Sforce-Limit-Info"])


async def test_request_limit_exceeded_is_a_403(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    set_to = await control(http, emulator.url, "limits", {"max": 100, "used": 99})
    assert set_to.body == {"max": 100, "used": 99, "remaining": 1, "header": "alternate"}
    last = await org.call("GET", "limits")
    assert last.status == 200
    assert last.body == {"DailyApiRequests": {"Max": 100, "Remaining": 0}}
    refused = await org.call("GET", "limits")
    assert refused.status == 403
    assert refused.body == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert refused.headers["Sforce-Limit-Info"].startswith("api-usage=100/100")


async def test_version_list_needs_no_session(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{emulator.url}/services/data/") as response:
        versions = await response.json()
        assert "Sforce-Limit-Info" not in response.headers
    assert {"label": "v60.0", "url": "/services/data/v60.0", "version": "60.0"} in versions
