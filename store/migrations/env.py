"""Alembic environment: runs migrations against the URL set by `store.db.migrate`."""

from __future__ import annotations

from alembic import context

from store.db import make_engine
from store.models import Base, UTCDateTime

target_metadata = Base.metadata


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render our UTCDateTime as the plain DateTime it stores."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def run_migrations_online() -> None:
    """Run migrations with a connection to the configured database."""
    url = context.config.get_main_option("sqlalchemy.url")
    engine = make_engine(url, pooled=False)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
