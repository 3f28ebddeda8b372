"""What the emulator's parts share: the org's data, its sessions, its faults and its clock.

The REST/OAuth side owns `org`, `sessions`, `faults` and `clock`; the streaming side reads
them and listens to `org` for record changes. Both count into `stats`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from sftriggerd_emulator.faults import Failure

ChangeType = Literal["CREATE", "UPDATE", "DELETE", "UNDELETE"]


@dataclass(frozen=True)
class RecordChange:
    """One committed change to one or more records of one object, as CDC would report it."""

    object_name: str
    change_type: ChangeType
    record_ids: tuple[str, ...]
    # CREATE/UNDELETE: all non-null fields; UPDATE: changed fields (LastModifiedDate always);
    # DELETE: empty. Values are JSON-ready (datetimes already formatted as Salesforce does).
    fields: dict[str, Any]
    changed_fields: tuple[str, ...]
    nulled_fields: tuple[str, ...]
    commit_time: datetime
    commit_user: str
    transaction_key: str
    change_origin: str
    # Full records after the change (before it, for DELETE), JSON-ready, for PushTopic queries.
    records: tuple[dict[str, Any], ...]


class Clock(Protocol):
    def now(self) -> datetime: ...


class Org(Protocol):
    """The records of the org; notifies listeners after each committed change."""

    def add_listener(self, listener: Callable[[RecordChange], None]) -> None: ...


class Sessions(Protocol):
    def user_for_token(self, access_token: str) -> str | None:
        """The user id the token belongs to, or None when unknown, expired or revoked."""
        ...

    def touch(self, access_token: str) -> None:
        """Resets the idle timer of a live session (every API call does this)."""
        ...


class Faults(Protocol):
    def take(self, surface: Literal["rest", "cometd", "token"], target: str = "") -> int | None:
        """The HTTP status to fail this call with, consuming one injected failure, or None."""
        ...

    def take_failure(
        self, surface: Literal["rest", "cometd", "token"], target: str = ""
    ) -> Failure | None:
        """How to fail this call (path and query `target`), consuming one failure, or None."""
        ...

    def delay_s(self, surface: Literal["rest", "cometd", "token"]) -> float:
        """Seconds to hold this answer before sending it (0 when no delay is set)."""
        ...


@dataclass
class EmulatorSettings:
    host: str = "127.0.0.1"
    port: int = 0
    state_dir: Path | None = None
    session_idle_s: float = 7200.0
    cometd_timeout_ms: int = 110_000
    cometd_client_expiry_s: float = 40.0
    max_cometd_clients: int = 20
    retention_cdc_s: float = 72 * 3600
    retention_platform_event_s: float = 72 * 3600
    retention_pushtopic_s: float = 24 * 3600
    retention_generic_s: float = 24 * 3600
    # Salesforce refuses connects without the BAYEUX_BROWSER cookie set at handshake; a client
    # on aiohttp needs CookieJar(unsafe=True) to keep cookies from an IP host like 127.0.0.1.
    cometd_require_browser_cookie: bool = True
    # Logins and API allocation (OAuth/REST side); the defaults are the documented login.
    users_file: Path | None = None
    client_id: str = "emulator-client"
    client_secret: str = "emulator-secret"
    refresh_token: str | None = "emulator-refresh-token"
    jwt_public_key_pem: str | None = None
    blocked_grants: tuple[str, ...] = ()  # "password", "jwt", "client_credentials", ...
    api_daily_max: int = 15_000
    # Rows per query page when the client sends no `Sforce-Query-Options: batchSize` (an org
    # may also answer smaller pages than asked); tests set a few rows to make many pages.
    query_batch_size: int = 2000
    limit_info_style: str = "alternate"  # "alternate" | "plain" | "bursts"
    # The Pub/Sub API (gRPC, plaintext) on a port of its own at `host`: None serves none,
    # 0 any free port (written back once bound). Salesforce sends a keepalive within 270 s
    # and closes a stream left with nothing requested after about 60 s; tests set seconds.
    pubsub_port: int | None = None
    pubsub_keepalive_s: float = 270.0
    pubsub_idle_close_s: float = 60.0
    # Open Subscribe streams at once before `concurrent.client.limit.exceeded`.
    pubsub_max_streams: int = 1000


@dataclass
class EmulatorContext:
    settings: EmulatorSettings
    org: Org
    sessions: Sessions
    faults: Faults
    clock: Clock
    # Counters shown by GET /_emulator/stats: logins, queries, handshakes, connects, ...
    stats: Counter[str] = field(default_factory=Counter)

    @property
    def base_url(self) -> str:
        """The login and instance URL; known once the server is bound."""
        return f"http://{self.settings.host}:{self.settings.port}"

    @property
    def pubsub_address(self) -> str | None:
        """`host:port` of the Pub/Sub API (plaintext gRPC), once bound; None when off."""
        port = self.settings.pubsub_port
        return None if port is None or port == 0 else f"{self.settings.host}:{port}"
