"""Metadata and log chunks, on SQLite (embedded default) or PostgreSQL: one schema."""

from cls_shipper.store.database import Database, open_database

__all__ = ["Database", "open_database"]
