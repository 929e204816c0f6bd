from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ReferenceVersion(Base):
    """The version of one table of reference data (``areas``, ``categories``): a random
    token the database replaces, by trigger, whenever a statement changes the table. A
    process holding the table in memory compares tokens to know its copy is current."""

    __tablename__ = "reference_versions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
