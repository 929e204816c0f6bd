"""Alembic environment: the app's own engine, so SpatiaLite is loaded as it is at run time."""

from alembic import context

from app.config import get_settings
from app.db import create_db_engine
from app.models import Base

config = context.config
url = config.attributes.get("database_url") or get_settings().database_url

engine = create_db_engine(url)
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
