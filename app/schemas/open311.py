"""Open311 GeoReport v2 responses, in JSON and in the XML the spec writes: a declaration
with ``encoding="utf-8"``, no namespaces, every list an element per item (one item too),
every datetime with its offset."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

from app.config import Settings
from app.open311 import Service, ServiceRequest, media_query
from app.text import rfc3339_utc


def _time(value: datetime) -> str:
    """A datetime as Open311 writes them: to the second, with its offset."""
    return rfc3339_utc(value.replace(microsecond=0))


Json = dict[str, Any]


def discovery(base_url: str) -> Json:
    return {
        "changeset": "2026-12-01T00:00:00Z",
        "contact": "The street office of each street, through its district's 12345 hotline.",
        "key_service": "An API key is issued to each delivery platform by the operator.",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": base_url,
                "changeset": "2026-12-01T00:00:00Z",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }


def service(s: Service) -> Json:
    return {
        "service_code": s.code,
        "service_name": s.name,
        "description": s.description or None,
        "metadata": False,
        "type": "realtime",
        "keywords": s.keywords,
        "group": s.group or None,
    }


def service_definition(s: Service) -> Json:
    return {"service_code": s.code, "attributes": []}


def service_request(r: ServiceRequest, *, base_url: str, now: datetime, settings: Settings) -> Json:
    media_url = (
        f"{base_url}/media/{r.photo.media_id}?"
        + urlencode(
            media_query(r.photo.media_id, version=r.photo.version, now=now, settings=settings)
        )
        if r.photo is not None
        else None
    )
    return {
        "service_request_id": r.id,
        "status": r.status,
        "status_notes": r.status_notes,
        "service_name": r.service_name,
        "service_code": r.service_code,
        "description": r.description,
        "agency_responsible": r.agency_responsible or None,
        "service_notice": None,
        "requested_datetime": _time(r.requested),
        "updated_datetime": _time(r.updated),
        "expected_datetime": _time(r.expected),
        "address": r.address,
        "address_id": None,
        "zipcode": None,
        "lat": r.lat,
        "long": r.lon,
        "media_url": media_url,
    }


def created(request_id: str, notice: str | None) -> Json:
    """A POST's answer: the id at once (a realtime service has no tokens), with a notice
    when the report joined a request already open."""
    body: Json = {"service_request_id": request_id}
    if notice is not None:
        body["service_notice"] = notice
    return body


def errors(status: int, description: str) -> list[Json]:
    return [{"code": status, "description": description}]


# -- XML


# Characters XML 1.0 cannot carry at all: the C0 controls but tab, newline and return.
_NOT_XML = dict.fromkeys(c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).translate(_NOT_XML)


def _element(parent: ElementTree.Element, name: str, value: Any, item: str | None) -> None:
    if isinstance(value, dict):
        node = ElementTree.SubElement(parent, name)
        for key, inner in value.items():
            _element(node, key, inner, _ITEMS.get(key))
    elif isinstance(value, list):
        node = ElementTree.SubElement(parent, name)
        for inner in value:
            _element(node, item or name[:-1], inner, None)
    else:
        node = ElementTree.SubElement(parent, name)
        if value is not None:
            node.text = _text(value)


# The element of each item, for the lists inside an object.
_ITEMS = {
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}


def to_xml(root: str, item: str | None, body: Json | Sequence[Json]) -> bytes:
    """``body`` under ``<root>``: an object's fields as elements, a list's items each an
    ``<item>``."""
    tree = ElementTree.Element(root)
    if isinstance(body, dict):
        for key, value in body.items():
            _element(tree, key, value, _ITEMS.get(key))
    else:
        assert item is not None
        for entry in body:
            _element(tree, item, entry, None)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(tree, "utf-8")


Render = Callable[[Any], Json]
