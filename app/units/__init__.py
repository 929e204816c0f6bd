"""Responsible units (处置单位): the street's 城管中队, a road-maintenance contractor, a
utility, a property company — who fixes what a street office dispatches, in the streets
and categories each serves. Their admin, the units serving a set of streets, and the
unit a ticket may be dispatched to.

Uses the bottom floor only."""

from app.units.service import (
    UNIT_CODE,
    UnitChange,
    UnitInput,
    create_unit,
    find_unit,
    get_unit,
    page_units,
    unit_codes,
    unit_to_dispatch,
    units_for_ticket,
    units_serving,
    update_unit,
)

__all__ = [
    "UNIT_CODE",
    "UnitChange",
    "UnitInput",
    "create_unit",
    "find_unit",
    "get_unit",
    "page_units",
    "unit_codes",
    "unit_to_dispatch",
    "units_for_ticket",
    "units_serving",
    "update_unit",
]
