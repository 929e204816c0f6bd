"""Distances, boxes and shapes on the earth's surface, for WGS-84 longitudes and latitudes.

The one place of the earth's figures: the database measures with PostGIS's geography or
SpatiaLite's ellipsoid functions (``app.db.distance_m``); what Python measures, it
measures here, the same way to the millimetre at the distances the service compares.
"""

import math
from typing import Any

SRID = 4326  # WGS-84, as every geometry is stored
EARTH_RADIUS_M = 6_371_008.8  # the mean radius, for shapes drawn on the sphere
METRES_PER_DEGREE_LAT = 111_320.0  # at the equator; a box built with it errs outward
CIRCLE_VERTICES = 64

# WGS-84: semi-major axis and first eccentricity squared.
_WGS84_A = 6_378_137.0
_WGS84_E2 = 6.694_379_990_14e-3


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at ``lat`` on the WGS-84 ellipsoid
    (the radii of curvature in the prime vertical and the meridian). Within a few
    hundred metres of ``lat``, a plane scaled by these gives distances on the ellipsoid
    to the millimetre, as PostGIS's geography and SpatiaLite's ellipsoid functions do."""
    phi = math.radians(lat)
    w = 1 - _WGS84_E2 * math.sin(phi) ** 2
    per_radian_lat = _WGS84_A * (1 - _WGS84_E2) / w**1.5
    per_radian_lon = _WGS84_A / math.sqrt(w) * math.cos(phi)
    return per_radian_lon * math.pi / 180, per_radian_lat * math.pi / 180


def metres_between(lon: float, lat: float, other_lon: float, other_lat: float) -> float:
    """The distance between two WGS-84 points a few hundred metres apart, in metres on
    the ellipsoid (see :func:`metres_per_degree`)."""
    per_lon, per_lat = metres_per_degree((lat + other_lat) / 2)
    return math.hypot((other_lon - lon) * per_lon, (other_lat - lat) * per_lat)


def bbox_around(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box that surely contains every point within ``radius_m`` of (lon, lat)."""
    d_lat = radius_m / METRES_PER_DEGREE_LAT * 1.01
    d_lon = d_lat / max(math.cos(math.radians(min(abs(lat) + d_lat, 89.9))), 1e-6)
    return lon - d_lon, lat - d_lat, lon + d_lon, lat + d_lat


def circle(lon: float, lat: float, radius_m: float) -> dict[str, Any]:
    """A GeoJSON polygon of ``CIRCLE_VERTICES`` points ``radius_m`` from (lon, lat), on
    the sphere (good to a few metres at these sizes)."""
    phi, lam, delta = math.radians(lat), math.radians(lon), radius_m / EARTH_RADIUS_M
    ring = []
    for i in range(CIRCLE_VERTICES):
        bearing = 2 * math.pi * i / CIRCLE_VERTICES
        phi2 = math.asin(
            math.sin(phi) * math.cos(delta) + math.cos(phi) * math.sin(delta) * math.cos(bearing)
        )
        lam2 = lam + math.atan2(
            math.sin(bearing) * math.sin(delta) * math.cos(phi),
            math.cos(delta) - math.sin(phi) * math.sin(phi2),
        )
        ring.append([round(math.degrees(lam2), 7), round(math.degrees(phi2), 7)])
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}
