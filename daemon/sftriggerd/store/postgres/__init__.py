"""The PostgreSQL engine: one database shared by every replica of the daemon."""

from ..wake_ups import WakeUp
from .engine import PostgresStore

__all__ = ["PostgresStore", "WakeUp"]
