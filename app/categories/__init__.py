"""What riders can report: the categories (Open311 "services") and their classification.

Uses the bottom floor only."""

from app.categories.service import (
    STANDARD_FIELDS,
    all_categories,
    category_codes,
    entity_tag,
    get_category,
    list_categories,
    page_categories,
    put_category,
)

__all__ = [
    "STANDARD_FIELDS",
    "all_categories",
    "category_codes",
    "entity_tag",
    "get_category",
    "list_categories",
    "page_categories",
    "put_category",
]
