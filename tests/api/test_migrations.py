"""The Alembic migrations build exactly the schema the code declares."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from neutrino.db.engine import Database
from neutrino.db.migrate import upgrade
from neutrino.db.tables import metadata


def test_migrations_match_the_tables(api_db_url):
    db = Database(api_db_url)
    try:
        upgrade(db.engine)
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        db.dispose()
