"""The embedded engine: one SQLite file (see `engine`)."""

from .engine import SqliteStore

__all__ = ["SqliteStore"]
