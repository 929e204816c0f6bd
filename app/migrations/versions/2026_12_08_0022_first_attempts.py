"""When a notification was first tried: its day of retries counts from then (a message
held for the night, or for a holiday week, is not given up on before it was ever sent).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UtcDateTime

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("first_attempt_at", UtcDateTime()))


def downgrade() -> None:
    op.drop_column("notifications", "first_attempt_at")
