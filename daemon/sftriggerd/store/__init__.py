"""The durable store: one interface (`base.Store`), two engines (SQLite, PostgreSQL)."""

from ..config.settings import StoreSettings
from ..errors import NotAvailableError
from .base import Store


def store_from_settings(settings: StoreSettings) -> Store:
    """The engine the URL names; not opened yet."""
    if settings.engine == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(settings.sqlite_path)
    raise NotAvailableError("the postgresql store is not available in this version")
