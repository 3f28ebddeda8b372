"""The durable store: one interface (`base.Store`), two engines (SQLite, PostgreSQL)."""

from ..config.settings import StoreSettings
from .base import Store


def store_from_settings(settings: StoreSettings) -> Store:
    """The engine the URL names; not opened yet."""
    if settings.engine == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(settings.sqlite_path)
    from .postgres import PostgresStore

    return PostgresStore(
        settings.url,
        max_connections=settings.pool_size,
        prepared_statements=settings.prepared_statements,
    )
