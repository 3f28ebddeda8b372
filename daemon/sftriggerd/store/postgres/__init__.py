"""The PostgreSQL engine: one database shared by every replica of the daemon."""

from .engine import PostgresStore
from .notify import WakeUp

__all__ = ["PostgresStore", "WakeUp"]
