"""Alembic migration history of the StorDB (one history for SQLite and Postgres).

Run through :mod:`cgrpy.storage.migrate`; no ``alembic.ini`` is needed.
"""
