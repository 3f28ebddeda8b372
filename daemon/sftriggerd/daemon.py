"""Assembles the running daemon from settings: store, dispatcher, sources, admin."""

from __future__ import annotations

import asyncio

from .app import App, Part
from .config import Settings
from .metrics import Metrics
from .pruner import Pruner
from .store import store_from_settings


async def run_daemon(settings: Settings, stopping: asyncio.Event) -> None:
    """Opens the store (migrating it), runs every part until `stopping`, closes the store."""
    metrics = Metrics()
    store = store_from_settings(settings.store)
    await store.open()
    try:
        parts: list[Part] = [Pruner(store, settings.store.retention)]
        await App(settings=settings, metrics=metrics, parts=parts, store=store).run(stopping)
    finally:
        await store.close()
