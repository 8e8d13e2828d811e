"""The legacy import's adapters: the old service's database as the import's source."""

from .source import PostgresLegacySource as PostgresLegacySource

__all__ = ["PostgresLegacySource"]
