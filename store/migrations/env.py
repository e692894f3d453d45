"""Alembic environment: runs on the engine handed in by store.Database.migrate()."""

from alembic import context

from store.models import Base

config = context.config
engine = config.attributes["connection_engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
