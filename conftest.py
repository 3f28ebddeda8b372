"""Loads the test support plugin for every test directory (tests/ and emulator/tests/)."""

pytest_plugins = ["tests.support.plugin"]
