"""Integration tests talk HTTP to a real emulator; its fixtures live with the emulator tests."""

from tests.emulator.conftest import emulator, emulator_settings, http, org

__all__ = ["emulator", "emulator_settings", "http", "org"]
