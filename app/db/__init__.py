"""The database: engines and sessions, transaction guards, the SQL that differs between
PostGIS and SpatiaLite, the pipelined batch connection, medians, and the schema's
migrations.

The bottom floor: it uses ``app.errors`` and ``app.geo`` and no domain."""

from app.db import migrate
from app.db.batch import (
    BatchConnection,
    Rows,
    Statement,
    Step,
    connect_batches,
    insert_rows,
    upsert_adding,
)
from app.db.columns import UtcDateTime, wkt_point
from app.db.dialect import (
    advisory_locks,
    advisory_try_lock,
    checked_per_row,
    covers,
    distance_m,
    epoch_bucket,
    first,
    lat_of,
    lon_of,
    one_large_aggregate,
    point,
    unindexed,
    within_bbox,
)
from app.db.engine import (
    BUSY_TIMEOUT_S,
    DATABASE,
    Database,
    after_commit,
    begin_writes,
    claim_due,
    create_db_engine,
    forget_freed_pages,
    is_embedded,
    lock,
    lock_key,
    on_rollback,
    sqlite_driver,
    try_lock,
)
from app.db.medians import hours_between, median, median_by, median_hours

__all__ = [
    "BUSY_TIMEOUT_S",
    "DATABASE",
    "BatchConnection",
    "Database",
    "Rows",
    "Statement",
    "Step",
    "UtcDateTime",
    "advisory_locks",
    "advisory_try_lock",
    "after_commit",
    "begin_writes",
    "checked_per_row",
    "claim_due",
    "connect_batches",
    "covers",
    "create_db_engine",
    "distance_m",
    "epoch_bucket",
    "first",
    "forget_freed_pages",
    "hours_between",
    "insert_rows",
    "is_embedded",
    "lat_of",
    "lock",
    "lock_key",
    "lon_of",
    "median",
    "median_by",
    "median_hours",
    "migrate",
    "on_rollback",
    "one_large_aggregate",
    "point",
    "sqlite_driver",
    "try_lock",
    "unindexed",
    "upsert_adding",
    "within_bbox",
    "wkt_point",
]
