"""The typed, frozen settings the daemon runs on; one class per section of the file.

Field rules live here; rules that span sections live in `rules.py`.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from .durations import parse_duration
from .fields import Duration, HttpUrl
from .fields import Section as _Section
from .ha import HaSettings
from .transport import (
    DEFAULT_PUBSUB_URL,
    DEFAULT_TRANSPORT,
    PubSubUrl,
    Transport,
    plaintext_warning,
    resolve_transport,
)

_SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|cookie|session", re.IGNORECASE)

Change = Literal["created", "updated", "deleted", "undeleted"]
ALL_CHANGES: tuple[Change, ...] = ("created", "updated", "deleted", "undeleted")
# Trigger and endpoint names: ASCII, so the cap is bytes too. They are index keys in the
# store and an endpoint's name is the payload of a PostgreSQL NOTIFY (at most 8000 bytes).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
NAME_LIMIT = 100


def _optional_secret(value: object) -> object:
    # `${VAR:-}` expands to "", which means "not set", not "set to the empty string".
    return None if value == "" else value


def _start_from(value: object) -> object:
    if value in ("latest", "earliest"):
        return value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            pass
    if not isinstance(value, datetime):
        raise ValueError("use latest, earliest or an ISO-8601 time such as 2026-01-01T00:00:00Z")
    if value.tzinfo is None:
        raise ValueError("give the time zone, e.g. 2026-01-01T00:00:00Z")
    return value


OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_optional_secret)]
StartFrom = Annotated[Literal["latest", "earliest"] | datetime, BeforeValidator(_start_from)]


class AuthSettings(_Section):
    flow: Literal["password", "jwt", "client_credentials", "refresh_token"] = "password"
    client_id: str = Field(min_length=1)
    client_secret: OptionalSecret = None
    username: str | None = None
    password: OptionalSecret = None
    security_token: OptionalSecret = None
    private_key: OptionalSecret = None
    refresh_token: OptionalSecret = None


class SalesforceSettings(_Section):
    login_url: HttpUrl = "https://login.salesforce.com"
    api_version: str = Field(default="60.0", pattern=r"^\d{2,3}\.0$")
    auth: AuthSettings
    proxy: HttpUrl | None = None
    api_budget: float = Field(default=0.5, gt=0, le=1)
    # How streaming triggers receive events (a trigger's own `transport` overrides it).
    transport: Transport = DEFAULT_TRANSPORT
    # Silences the warning of plaintext to a host that is not loopback (`plaintext_warning`).
    pubsub_allow_plaintext: bool = False
    pubsub_url: PubSubUrl = DEFAULT_PUBSUB_URL

    @property
    def pubsub_plaintext_warning(self) -> str | None:
        return plaintext_warning(self.pubsub_url, self.pubsub_allow_plaintext)

    @field_validator("api_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        # `api_version: 60.0` unquoted arrives as a float.
        return f"{value:.1f}" if isinstance(value, float) else value


class StoreSettings(_Section):
    url: str = "sqlite:///sftriggerd.db"
    # Delivered rows are kept this long (for inspection), then pruned.
    retention: Duration = timedelta(days=7)
    # PostgreSQL: the most connections one replica holds open (SQLite has one file handle).
    pool_size: int = Field(default=10, ge=2, le=100)
    # PostgreSQL: let the client prepare the statements it runs often. Off for a pooler in
    # transaction mode that cannot follow them (PgBouncer before 1.21).
    prepared_statements: bool = True

    @field_validator("url")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        scheme = value.partition("://")[0]
        if scheme not in ("sqlite", "postgresql"):
            raise ValueError(f"scheme '{scheme}' is not supported; use sqlite:/// or postgresql://")
        if scheme == "sqlite" and not value.startswith("sqlite:///"):
            raise ValueError("write sqlite:///relative/path.db or sqlite:////absolute/path.db")
        return value

    @property
    def engine(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.url.startswith("sqlite:") else "postgresql"

    @property
    def sqlite_path(self) -> str:
        """`sqlite:///state.db` -> `state.db`; `sqlite:////var/x.db` -> `/var/x.db`."""
        return self.url.removeprefix("sqlite:///")


class TriggerSettings(_Section):
    name: str = Field(min_length=1, max_length=NAME_LIMIT, pattern=NAME_PATTERN)
    object: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    events: tuple[Change, ...] = ALL_CHANGES
    mode: Literal["auto", "streaming", "polling"] = "auto"
    channel: str | None = Field(default=None, pattern=r"^/(data|event|topic|u)/[A-Za-z0-9_]+$")
    fields: tuple[str, ...] = ()
    where: str | None = None
    poll_interval: Duration = timedelta(seconds=60)
    # Re-read this far behind the watermark every cycle, for transactions that commit late.
    poll_lookback: Duration = timedelta(minutes=5)
    # Read only changes at least this old, so a second still being written is read whole.
    poll_delay: Duration = timedelta(seconds=2)
    start_from: StartFrom = "latest"
    # Streaming: re-read the whole record for update events (the event carries only changes).
    enrich: bool = False
    # Streaming: drop changes made by these user ids or whose changeOrigin contains one of
    # these strings (loop avoidance for changes our own integration writes back).
    ignore_users: tuple[str, ...] = ()
    ignore_origins: tuple[str, ...] = ()
    # Streaming: after this long without events, check with a SOQL count that nothing was
    # missed, and back-fill by polling if something was.
    verify_after: Duration | None = None
    # Streaming: this trigger's transport; once loaded in `Settings`, the resolved one
    # (salesforce.transport when not written), and None for polling triggers.
    transport: Transport | None = None

    @property
    def resolved_transport(self) -> Transport:
        return resolve_transport(self.transport, DEFAULT_TRANSPORT)

    @property
    def channel_kind(self) -> Literal["cdc", "platform_event", "pushtopic", "generic"]:
        channel = self.resolved_channel or ""
        if channel.startswith("/event/"):
            return "platform_event"
        if channel.startswith("/topic/"):
            return "pushtopic"
        if channel.startswith("/u/"):
            return "generic"
        return "cdc"

    @property
    def resolved_channel(self) -> str | None:
        """The streaming channel: as configured, or the object's CDC channel."""
        if self.channel is not None:
            return self.channel
        if self.object is None:
            return None
        if self.object.endswith("__c"):
            return f"/data/{self.object.removesuffix('__c')}__ChangeEvent"
        return f"/data/{self.object}ChangeEvent"


class RetrySettings(_Section):
    schedule: tuple[Duration, ...] = tuple(
        parse_duration(step) for step in ("5s", "30s", "5m", "30m", "2h", "5h", "10h")
    )
    max_age: Duration = timedelta(days=3)

    @field_validator("schedule")
    @classmethod
    def _not_empty(cls, value: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        if not value:
            raise ValueError("needs at least one step")
        return value


class BreakerSettings(_Section):
    """When an endpoint's circuit breaker opens, and how long it stays open."""

    # Consecutive failed attempts that open the breaker.
    failure_threshold: int = Field(default=5, ge=1, le=1_000_000)
    # How long the first opening lasts before one probe is let through.
    cooldown: Duration = timedelta(seconds=30)
    # Each failed probe doubles the cooldown, up to this.
    max_cooldown: Duration = timedelta(minutes=5)

    @model_validator(mode="after")
    def _cooldowns_in_order(self) -> BreakerSettings:
        if self.cooldown <= timedelta(0):
            raise ValueError("cooldown must be longer than 0s")
        if self.max_cooldown < self.cooldown:
            raise ValueError("max_cooldown must be at least cooldown")
        return self


def _one_or_more(value: object) -> object:
    # `secret: whsec_...` is the common form; a list is the rollover form.
    if isinstance(value, str | SecretStr):
        return [value]
    if not isinstance(value, list | tuple):
        raise ValueError("must be a whsec_ secret or a list of them")
    return value


def _checked_secret(value: SecretStr) -> SecretStr:
    decode_secret(value.get_secret_value())
    return value


def _distinct_secrets(value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
    if not value:
        raise ValueError("needs at least one secret")
    # Compared as keys: two spellings of one key would sign twice with it for nothing.
    keys = [decode_secret(secret.get_secret_value()) for secret in value]
    for index, key in enumerate(keys):
        first = keys.index(key)
        if first != index:
            raise ValueError(f"[{index}] is the same secret as [{first}]")
    return value


WebhookSecret = Annotated[SecretStr, AfterValidator(_checked_secret)]
WebhookSecrets = Annotated[
    tuple[WebhookSecret, ...],
    BeforeValidator(_one_or_more),
    AfterValidator(_distinct_secrets),
]


class EndpointSettings(_Section):
    name: str = Field(min_length=1, max_length=NAME_LIMIT, pattern=NAME_PATTERN)
    url: HttpUrl
    # One secret, or several while a receiver rolls over to a new one: every one signs.
    secret: WebhookSecrets
    triggers: tuple[str, ...] | None = None
    events: tuple[Change, ...] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = timedelta(seconds=10)
    max_in_flight: int = Field(default=8, ge=1, le=1000)
    ordering: Literal["per_record", "none"] = "per_record"
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()

    @property
    def secret_keys(self) -> tuple[bytes, ...]:
        """The HMAC key of every secret, in the order listed."""
        return tuple(decode_secret(secret.get_secret_value()) for secret in self.secret)

    @property
    def secret_key(self) -> bytes:
        """The first listed secret's key (the demo's and the benchmark's only one)."""
        return self.secret_keys[0]


def decode_secret(text: str) -> bytes:
    """The HMAC key of a Standard Webhooks `whsec_<base64>` secret."""
    if not text.startswith("whsec_"):
        raise ValueError("must be a Standard Webhooks secret: whsec_ followed by base64")
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise ValueError("the part after whsec_ is not valid base64") from exc
    if len(key) < 16:
        raise ValueError("the key after whsec_ must decode to at least 16 bytes")
    return key


class ServerSettings(_Section):
    listen: str = "127.0.0.1:8080"
    admin_token: OptionalSecret = None
    shutdown_grace: Duration = timedelta(seconds=20)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_listen(value)
        return value

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


def split_listen(value: str) -> tuple[str, int]:
    """`127.0.0.1:8080` or `[::1]:8080` -> (host, port)."""
    host, sep, port_text = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    # isdigit() alone lets `²` through to int(); a port is at most five ASCII digits.
    digits = port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
    if not sep or not host or not digits or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"'{value}' is not host:port, e.g. 127.0.0.1:8080")
    return host, int(port_text)


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class Settings(_Section):
    salesforce: SalesforceSettings
    store: StoreSettings = StoreSettings()
    triggers: tuple[TriggerSettings, ...] = ()
    endpoints: tuple[EndpointSettings, ...] = ()
    server: ServerSettings = ServerSettings()
    ha: HaSettings = HaSettings()
    logging: LoggingSettings = LoggingSettings()

    @model_validator(mode="after")
    def _resolve_transports(self) -> Settings:
        """Every streaming trigger learns its transport, so the sources need not ask the
        salesforce section (check-config refuses the combinations that cannot work)."""
        default = self.salesforce.transport
        resolved = tuple(
            trigger
            if trigger.mode == "polling"
            else trigger.model_copy(
                update={"transport": resolve_transport(trigger.transport, default)}
            )
            for trigger in self.triggers
        )
        object.__setattr__(self, "triggers", resolved)
        return self

    def secrets(self) -> list[str]:
        """Every secret value in the settings, for the log redactor: credentials, tokens,
        sensitive headers, and the passwords in URLs (proxy, store, endpoints)."""
        auth = self.salesforce.auth
        found = [
            auth.client_secret,
            auth.password,
            auth.security_token,
            auth.private_key,
            auth.refresh_token,
            self.server.admin_token,
            *(secret for endpoint in self.endpoints for secret in endpoint.secret),
        ]
        values = [secret.get_secret_value() for secret in found if secret is not None]
        # A webhook secret's key also appears without its prefix (receivers' own logs).
        values.extend(
            secret.get_secret_value().removeprefix("whsec_")
            for endpoint in self.endpoints
            for secret in endpoint.secret
        )
        for endpoint in self.endpoints:
            values.extend(
                value for name, value in endpoint.headers.items() if _SENSITIVE_HEADER.search(name)
            )
        urls = [
            self.salesforce.login_url,
            self.salesforce.proxy,
            self.store.url,
            *(endpoint.url for endpoint in self.endpoints),
        ]
        values.extend(password for url in urls if url for password in url_passwords(url))
        return [value for value in values if len(value) >= 4]


def url_passwords(url: str) -> list[str]:
    """The password in a URL's user-info, as written and percent-decoded (error texts carry
    either); none when it has no user-info or cannot be parsed."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    if not password:
        return []
    return list(dict.fromkeys((password, unquote(password))))
