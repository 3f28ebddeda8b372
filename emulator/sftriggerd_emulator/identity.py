"""Who may log in (the org id, its users, the one connected app, refresh tokens) and who is.

The default user and app are fixed (docs/emulator.md) so the demo and every test can log in
without configuration; `--users FILE` adds users from YAML or JSON.

An access token carries no lifetime: its session dies after `session_idle_s` without use
(measured on the emulator clock, so tests advance time instead of sleeping) or when a test
expires it. Sessions live in memory only; after a restart clients log in again, which they
must handle anyway.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from sftriggerd.errors import ConfigError
from sftriggerd_emulator.clock import EmulatorClock
from sftriggerd_emulator.ids import make_id

DEFAULT_CLIENT_ID = "emulator-client"
DEFAULT_CLIENT_SECRET = "emulator-secret"
DEFAULT_USERNAME = "admin@emulator.local"
DEFAULT_PASSWORD = "emulator"
DEFAULT_REFRESH_TOKEN = "emulator-refresh-token"

ORG_ID = make_id("00D", 1)


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    password: str
    security_token: str = ""
    jwt_public_key_pem: str | None = None
    refresh_token: str | None = None


@dataclass
class ConnectedApp:
    """The org's one connected app; `blocked_grants` can change while the emulator runs."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    jwt_public_key_pem: str | None = None
    client_credentials_username: str | None = DEFAULT_USERNAME
    blocked_grants: set[str] = field(default_factory=set)


class UserSpec(BaseModel):
    """One entry of the `--users` file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str
    password: str
    security_token: str = ""
    jwt_public_key: str | None = None
    refresh_token: str | None = None


class Directory:
    """Users by username (case-insensitive, as Salesforce treats usernames) and by id."""

    def __init__(self, admin_refresh_token: str | None = DEFAULT_REFRESH_TOKEN) -> None:
        self._by_name: dict[str, User] = {}
        self._refresh_tokens: dict[str, str] = {}
        self.add(
            UserSpec(
                username=DEFAULT_USERNAME,
                password=DEFAULT_PASSWORD,
                refresh_token=admin_refresh_token,
            )
        )

    def add(self, spec: UserSpec) -> User:
        existing = self._by_name.get(spec.username.lower())
        number = len(self._by_name) + 1
        user = User(
            user_id=existing.user_id if existing else make_id("005", number),
            username=spec.username,
            password=spec.password,
            security_token=spec.security_token,
            jwt_public_key_pem=spec.jwt_public_key,
            refresh_token=spec.refresh_token,
        )
        self._by_name[spec.username.lower()] = user
        if spec.refresh_token:
            self._refresh_tokens[spec.refresh_token] = spec.username.lower()
        return user

    @property
    def admin(self) -> User:
        return self._by_name[DEFAULT_USERNAME]

    def by_username(self, username: str) -> User | None:
        return self._by_name.get(username.lower())

    def by_id(self, user_id: str) -> User | None:
        return next((user for user in self._by_name.values() if user.user_id == user_id), None)

    def by_refresh_token(self, token: str) -> User | None:
        name = self._refresh_tokens.get(token)
        return None if name is None else self._by_name.get(name)

    def revoke_refresh_token(self, token: str) -> bool:
        return self._refresh_tokens.pop(token, None) is not None

    def users(self) -> list[User]:
        return list(self._by_name.values())


def load_users_file(path: Path) -> list[UserSpec]:
    """Reads a YAML or JSON list of users; every problem is reported with its position."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"cannot read users file: {exc}"], str(path)) from exc
    if not isinstance(loaded, list):
        raise ConfigError(["the users file must hold a list of users"], str(path))
    specs: list[UserSpec] = []
    problems: list[str] = []
    for index, entry in enumerate(loaded):
        try:
            specs.append(UserSpec.model_validate(entry))
        except ValidationError as exc:
            for error in exc.errors():
                where = "".join(f".{part}" for part in error["loc"])
                problems.append(f"[{index}]{where}: {error['msg']}")
    if problems:
        raise ConfigError(problems, str(path))
    return specs


# -- sessions ----------------------------------------------------------------------------


@dataclass
class Session:
    user_id: str
    username: str
    last_used: datetime


class SessionRegistry:
    """The concrete `Sessions`: token -> session, with idle expiry."""

    def __init__(self, clock: EmulatorClock, org_id: str, idle_s: float) -> None:
        self._clock = clock
        self._org_id15 = org_id[:15]
        self._idle = timedelta(seconds=idle_s)
        self._sessions: dict[str, Session] = {}

    def open(self, user_id: str, username: str) -> str:
        """A fresh token shaped like Salesforce's: `<15-char org id>!<opaque>`."""
        token = f"{self._org_id15}!{secrets.token_urlsafe(48)}"
        self._sessions[token] = Session(user_id, username, self._clock.now())
        return token

    def user_for_token(self, access_token: str) -> str | None:
        session = self._live(access_token)
        return None if session is None else session.user_id

    def touch(self, access_token: str) -> None:
        session = self._live(access_token)
        if session is not None:
            session.last_used = self._clock.now()

    def expire(self, access_token: str | None = None) -> int:
        """Ends one session, or all of them when no token is given; returns how many ended."""
        if access_token is None:
            count = self.live_count()
            self._sessions.clear()
            return count
        return 0 if self._sessions.pop(access_token, None) is None else 1

    def live_count(self) -> int:
        return sum(1 for token in list(self._sessions) if self._live(token) is not None)

    def _live(self, access_token: str) -> Session | None:
        session = self._sessions.get(access_token)
        if session is None:
            return None
        if self._clock.now() - session.last_used >= self._idle:
            del self._sessions[access_token]
            return None
        return session
