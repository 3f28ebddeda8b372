"""Placeholder until the streaming helper's package lands; that helper replaces this file."""

from __future__ import annotations

from aiohttp import web

from sftriggerd.emulator.context import EmulatorContext


def install_streaming(ctx: EmulatorContext, app: web.Application) -> None:
    """Does nothing yet: the streaming helper replaces it with the CometD endpoints."""
