"""The one pytest plugin of the test suite, loaded by the root conftest: every shared fixture
is defined once, in the module named below, and reaches every test directory from here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.admin import serve
from tests.support.clock import clock
from tests.support.emulator import (
    emulator,
    emulator_middlewares,
    emulator_settings,
    emulator_starter,
    org,
    record_changes,
)
from tests.support.postgres import empty_postgres_url, postgres_template, postgres_url
from tests.support.receiver import receiver
from tests.support.stores import store
from tests.support.transports import transport

__all__ = [
    "clock",
    "empty_postgres_url",
    "emulator",
    "emulator_middlewares",
    "emulator_settings",
    "emulator_starter",
    "http",
    "org",
    "postgres_template",
    "postgres_url",
    "receiver",
    "record_changes",
    "serve",
    "store",
    "transport",
]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session for the test, closed after it."""
    async with aiohttp.ClientSession() as session:
        yield session
