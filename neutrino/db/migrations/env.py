"""Alembic environment: runs migrations on the connection handed in by neutrino.db.migrate."""

from alembic import context

from neutrino.db.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # e.g. `alembic revision --autogenerate` from the command line
    from neutrino.db.engine import make_engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("alembic: set sqlalchemy.url (the database to migrate)")
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
