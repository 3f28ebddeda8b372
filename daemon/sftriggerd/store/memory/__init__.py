"""The in-process engine: plain Python, no durability (see `engine`)."""

from .engine import MemoryStore

__all__ = ["MemoryStore"]
