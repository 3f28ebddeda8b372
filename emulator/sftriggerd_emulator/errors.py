"""The REST errors the org raises, and the bodies Salesforce sends for them.

Org and query code raise `ApiError`; the REST layer turns it into Salesforce's JSON array body
`[{"message": ..., "errorCode": ...}]` in one place.
"""

from __future__ import annotations

from typing import Any

SESSION_INVALID = "Session expired or invalid"
RESOURCE_MISSING = "The requested resource does not exist"
LIMIT_EXCEEDED = "TotalRequests Limit exceeded."


class ApiError(Exception):
    """A refusal with the HTTP status, errorCode and message a real org would answer."""

    def __init__(
        self, status: int, error_code: str, message: str, fields: tuple[str, ...] = ()
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields:
            entry["fields"] = list(self.fields)
        return [entry]


def invalid_session() -> ApiError:
    return ApiError(401, "INVALID_SESSION_ID", SESSION_INVALID)


def not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", RESOURCE_MISSING)


def no_such_column(field_name: str, object_name: str) -> ApiError:
    return ApiError(
        400,
        "INVALID_FIELD",
        f"No such column '{field_name}' on entity '{object_name}'. If you are attempting to use"
        " a custom field, be sure to append the '__c' after the custom field name. Please"
        " reference your WSDL or the describe call for the appropriate names.",
    )


def injected_failure(status: int) -> ApiError:
    """What an injected REST fault answers: the body Salesforce sends with that status."""
    if status == 401:
        return invalid_session()
    if status == 403:
        return ApiError(403, "REQUEST_LIMIT_EXCEEDED", LIMIT_EXCEEDED)
    if status == 404:
        return not_found()
    if status == 503:
        return ApiError(503, "SERVER_UNAVAILABLE", "Server is temporarily unavailable.")
    return ApiError(
        status, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please try again later."
    )
