"""The tables, one file per aggregate, re-exported here."""

from app.models.area import Area, AreaLevel
from app.models.base import Base, utcnow
from app.models.category import Category
from app.models.platform import Platform, Rider
from app.models.staff import Staff, StaffRole

__all__ = ["Area", "AreaLevel", "Base", "Category", "Platform", "Rider", "Staff", "StaffRole",
           "utcnow"]
