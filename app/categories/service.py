"""Report categories (Open311 "services"): look-ups and admin edits.

The defaults ship with the first migration.
"""

import hashlib
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import begin_writes, lock
from app.errors import found
from app.models import Category
from app.pagination import Page, PageRequest, keyset_page

# A category's national classification (GB/T 30428.2), as ``Category.standard`` holds it.
STANDARD_FIELDS = ("kind", "class_code", "class_name", "subclass_code", "subclass_name")


def list_categories(session: Session) -> list[Category]:
    """The categories riders may report in, in their display order."""
    return list(
        session.scalars(
            select(Category)
            .where(Category.active.is_(True))
            .order_by(Category.sort_order, Category.code)
        )
    )


def all_categories(session: Session) -> list[Category]:
    """Every category, inactive ones too (old tickets keep theirs), in display order."""
    return list(session.scalars(select(Category).order_by(Category.sort_order, Category.code)))


def category_codes(session: Session) -> dict[int, str]:
    """Every category's code by its id (a few dozen rows)."""
    return {id_: code for id_, code in session.execute(select(Category.id, Category.code))}


def get_category(session: Session, code: str) -> Category:
    category = session.scalar(select(Category).where(Category.code == code))
    return found(category, f"no category with code {code}")


def put_category(session: Session, code: str, *, fields: dict[str, Any]) -> tuple[Category, bool]:
    """Create or replace the category ``code``; returns it and whether it was created."""
    begin_writes(session)
    lock(session, ("category", code))
    category = session.scalar(select(Category).where(Category.code == code))
    created = category is None
    if category is None:
        last = session.scalar(select(func.max(Category.sort_order)))
        category = Category(code=code, sort_order=(last or 0) + 1)
        session.add(category)
    for name, value in fields.items():
        setattr(category, name, value)
    session.flush()
    return category, created


def entity_tag(payload: Any) -> str:
    """A strong ETag for a JSON-able payload: the hash of its canonical form."""
    digest = hashlib.sha256(
        json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()
    return f'"{digest[:32]}"'


def page_categories(session: Session, page: PageRequest) -> Page[Category]:
    """Every category, inactive ones included, by code."""
    return keyset_page(session, select(Category), key=Category.code, page=page)
