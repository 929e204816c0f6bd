"""Running the service: the background worker and its jobs, backups and restores,
readiness, and the Changning demo.

The top floor: it may use every domain."""

from app.ops.backup import backup, restore
from app.ops.demo import load_demo
from app.ops.demo_reports import submit_demo_reports
from app.ops.health import readiness
from app.ops.worker import Worker, start_in_thread

__all__ = [
    "Worker",
    "backup",
    "load_demo",
    "readiness",
    "restore",
    "start_in_thread",
    "submit_demo_reports",
]
