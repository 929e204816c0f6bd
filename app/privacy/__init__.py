"""Riders' personal information under PIPL: purged after its retention period, exported
and erased on request.

Uses ``app.media``, ``app.riders``, ``app.categories`` and the bottom floor."""

from app.privacy.service import erase_rider, export_rider, purge, sweep_unused_photos

__all__ = [
    "erase_rider",
    "export_rider",
    "purge",
    "sweep_unused_photos",
]
