"""A category answers no later than it fixes.

A new ticket is overdue once its answer is late (``Ticket.is_overdue``); a category whose
fix was due before its answer would make a new ticket late by one deadline and not by
the other, and the ticket's ``overdue`` field, the queue's filter and the statistics
would disagree. The API refuses such a category (422); the database refuses it too.
An existing category that breaks the rule stops the upgrade, naming it: which of its
two numbers is wrong is for its owner to say.

SQLite cannot add a CHECK constraint to a table without rebuilding it (and the rebuild
would drop the table's triggers): there the same rule is a trigger.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RULE = "resolve_within_h >= respond_within_h"
NAME = "ck_categories_resolve_after_respond"


def upgrade() -> None:
    broken = (
        op.get_bind()
        .execute(sa.text(f"SELECT code FROM categories WHERE NOT ({RULE}) ORDER BY code"))
        .scalars()
        .all()
    )
    if broken:
        raise RuntimeError(
            "categories due to be fixed before they are answered (resolve_within_h < "
            f"respond_within_h): {', '.join(broken)}; correct them, then upgrade again"
        )
    if op.get_bind().dialect.name == "sqlite":
        for change in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER {NAME}_{change.lower()} BEFORE {change} ON categories "
                "WHEN NEW.resolve_within_h < NEW.respond_within_h BEGIN "
                f"SELECT RAISE(ABORT, 'CHECK constraint failed: {NAME}'); END"
            )
        return
    op.create_check_constraint(op.f(NAME), "categories", RULE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for change in ("insert", "update"):
            op.execute(f"DROP TRIGGER {NAME}_{change}")
        return
    op.drop_constraint(op.f(NAME), "categories", type_="check")
