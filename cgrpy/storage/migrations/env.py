"""Alembic environment: configured programmatically by :mod:`cgrpy.storage.migrate`.

The caller passes an open SQLAlchemy connection in ``config.attributes["connection"]``;
``render_as_batch`` lets the same history alter tables on SQLite (which cannot ALTER much).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.types import TypeDecorator

from cgrpy.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Custom column types (TypeDecorators of the model modules) are rendered with their
    module path by autogenerate; make the generated revision import that module."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        autogen_context.imports.add(f"import {type(obj).__module__}")  # type: ignore[attr-defined]
    return False


def _run(connection) -> None:  # noqa: ANN001 - sqlalchemy Connection
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        compare_server_default=False,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs plain `alembic`
    from cgrpy.storage.db import make_engine

    with make_engine(config.get_main_option("sqlalchemy.url")).connect() as conn:
        _run(conn)
else:
    _run(connection)
