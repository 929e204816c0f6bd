"""Backups that restore: a consistent copy of the database and the photos, taken while the
service runs (docs/operations.md, "Backup and restore").

The database first, then the photos. A photo's blob is written before the transaction
that names it commits, and blobs never change (they are named by their content), so
every photo the database copy names was already stored when the copy began and is in the
photo copy. SQLite is copied with its online backup API (a snapshot that writers do not
have to stop for); PostgreSQL with ``pg_dump``, which reads one snapshot too.
"""

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import func, inspect, make_url, select

from app.db import Database, is_embedded, migrate, sqlite_driver
from app.errors import ConfigurationError
from app.media import CONTENT_TYPES, MediaStore
from app.models import Base, Media, Report, Ticket, utcnow

MANIFEST = "manifest.json"
SQLITE_FILE = "sentinel.db"
PG_DUMP_FILE = "sentinel.pgdump"
MEDIA_DIR = "media"


@dataclass(frozen=True)
class BackupManifest:
    created_at: str
    database: str  # "sqlite" or "postgresql"
    schema_revision: str | None
    tickets: int
    reports: int
    photos: int
    blobs: int


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://…``) as libpq's tools take it, without
    its password (which goes in the environment, not on a command line others can see)."""
    return make_url(url).set(drivername="postgresql", password=None).render_as_string()


def libpq_environment(url: str) -> dict[str, str]:
    password = make_url(url).password
    return {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}


def _sqlite_file(url: str) -> Path:
    name = make_url(url).database
    if not name or name == ":memory:":
        raise ConfigurationError("the SQLite database is in memory: there is nothing to back up")
    return Path(name)


def pg_dump_command(url: str, target: Path) -> list[str]:
    return ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", libpq_url(url)]


def pg_restore_command(url: str, source: Path) -> list[str]:
    return [
        "pg_restore",
        "--no-owner",
        "--exit-on-error",
        f"--dbname={libpq_url(url)}",
        str(source),
    ]


def _run(command: list[str], what: str, *, url: str) -> None:
    if shutil.which(command[0]) is None:
        raise ConfigurationError(
            f"{command[0]} is not installed here: install the PostgreSQL client tools of the "
            f"server's major version, or run where they are (with PGPASSWORD set if the "
            f"database has a password): {' '.join(command)}"
        )
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, env=libpq_environment(url)
    )
    if done.returncode != 0:
        raise ConfigurationError(f"{what} failed: {done.stderr.strip()[:2000]}")


def backup(
    database: Database, store: MediaStore, *, target: Path, media: bool = True
) -> BackupManifest:
    """Write a consistent copy into ``target`` (a new or empty directory)."""
    if target.exists() and any(target.iterdir()):
        raise ConfigurationError(f"{target} is not empty: back up into a new directory")
    target.mkdir(parents=True, exist_ok=True)
    url = database.url
    if is_embedded(url):
        _sqlite_backup(_sqlite_file(url), target / SQLITE_FILE)
        counted = Database(f"sqlite:///{target / SQLITE_FILE}")
    else:
        _run(pg_dump_command(url, target / PG_DUMP_FILE), "pg_dump", url=url)
        counted = database
    with counted.session() as session:
        tickets = session.scalar(select(func.count()).select_from(Ticket)) or 0
        reports = session.scalar(select(func.count()).select_from(Report)) or 0
        photos = session.scalar(select(func.count()).select_from(Media)) or 0
    revision = migrate.current_revision(counted.engine)
    if counted is not database:
        counted.dispose()
    blobs = _copy_blobs(store, target / MEDIA_DIR) if media else 0
    manifest = BackupManifest(
        created_at=utcnow().isoformat(),
        database="sqlite" if is_embedded(url) else "postgresql",
        schema_revision=revision,
        tickets=tickets,
        reports=reports,
        photos=photos,
        blobs=blobs,
    )
    (target / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def _sqlite_backup(source: Path, target: Path) -> None:
    driver = sqlite_driver()
    with driver.connect(str(source)) as live, driver.connect(str(target)) as copy:
        live.execute("PRAGMA busy_timeout = 30000")
        # In one step: one read snapshot (WAL lets writers go on meanwhile). Copied in
        # steps, a backup restarts whenever another connection writes, which under a
        # steady load is always.
        live.backup(copy)
    os.sync()


def _copy_blobs(store: MediaStore, target: Path) -> int:
    count = 0
    for stored in store.blobs():
        name = stored.key.rsplit("/", 1)[-1]
        if name.startswith("."):  # a write in progress
            continue
        content = store.read(stored.key)
        if content is None:  # removed since it was listed (a purge)
            continue
        path = target / stored.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        count += 1
    return count


def restore(database_url: str, store: MediaStore, *, source: Path) -> BackupManifest:
    """Restore the copy in ``source`` into the database ``database_url`` names (a new
    SQLite file, or an existing, empty PostgreSQL database) and the photo store."""
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise ConfigurationError(f"{source} holds no backup ({MANIFEST} is missing)")
    manifest = BackupManifest(**json.loads(manifest_path.read_text()))
    if is_embedded(database_url):
        if manifest.database != "sqlite":
            raise ConfigurationError("this is a PostgreSQL backup: restore it into PostgreSQL")
        target = _sqlite_file(database_url)
        if target.exists() and target.stat().st_size > 0:
            raise ConfigurationError(f"{target} exists: restore into a new database file")
        target.parent.mkdir(parents=True, exist_ok=True)
        driver = sqlite_driver()
        with driver.connect(str(source / SQLITE_FILE)) as copy, driver.connect(str(target)) as db:
            copy.backup(db)
    else:
        if manifest.database != "postgresql":
            raise ConfigurationError("this is a SQLite backup: restore it into SQLite")
        target_db = Database(database_url, pool_size=1)
        try:
            with target_db.engine.connect() as connection:
                # PostGIS's own tables (spatial_ref_sys) may be there already: a database
                # prepared with CREATE EXTENSION postgis is still an empty one.
                tables = set(inspect(connection).get_table_names()) & {
                    "alembic_version",
                    *Base.metadata.tables,
                }
        finally:
            target_db.dispose()
        if tables:
            raise ConfigurationError(
                f"the database holds {len(tables)} tables: restore into a new database"
            )
        _run(
            pg_restore_command(database_url, source / PG_DUMP_FILE), "pg_restore", url=database_url
        )
    media = source / MEDIA_DIR
    if media.is_dir():
        for path in sorted(media.rglob("*")):
            if path.is_file():
                key = path.relative_to(media).as_posix()
                if not store.exists(key):
                    store.put(key, path.read_bytes(), _content_type(key))
    return manifest


def _content_type(key: str) -> str:
    return CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream")
