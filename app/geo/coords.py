"""WGS-84 ⇄ GCJ-02 ⇄ BD-09.

GCJ-02 (Amap, Tencent, most delivery apps) is WGS-84 plus a deliberate non-linear
offset; BD-09 (Baidu) is GCJ-02 plus a second one. Everything is stored as WGS-84, so
input is converted on the way in. All functions take and return ``(lon, lat)``.
"""

import math
from collections.abc import Callable
from enum import StrEnum

A = 6378245.0  # Krasovsky 1940 semi-major axis, as the GCJ-02 algorithm uses it
EE = 0.00669342162296594323  # its first eccentricity squared
X_PI = math.pi * 3000.0 / 180.0

# The inverse stops once a round moves the point by less than this (about 1 mm).
_INVERSE_TOLERANCE_DEG = 1e-8
_INVERSE_MAX_ROUNDS = 30


class CoordSys(StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


def outside_china(lon: float, lat: float) -> bool:
    """The rectangle every GCJ-02 implementation uses; crude, but it is the standard."""
    return not (73.66 < lon < 135.05 and 3.86 < lat < 53.55)


def _offset(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    d_lat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * math.sqrt(abs(x))
        + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
        + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    )
    d_lon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * math.sqrt(abs(x))
        + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
        + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    rad_lat = lat / 180.0 * math.pi
    magic = 1 - EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((A * (1 - EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return d_lon, d_lat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if outside_china(lon, lat):
        return lon, lat
    d_lon, d_lat = _offset(lon, lat)
    return lon + d_lon, lat + d_lat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """The exact inverse: a fixed-point iteration ``wgs += gcj − f(wgs)``.

    The one-step inverse most libraries ship is 1–2 m off; three or four rounds bring
    this one below a centimetre.
    """
    if outside_china(lon, lat):
        return lon, lat
    return _inverse(wgs84_to_gcj02, lon, lat, start=(lon, lat))


def _inverse(
    forward: Callable[[float, float], tuple[float, float]],
    lon: float,
    lat: float,
    *,
    start: tuple[float, float],
) -> tuple[float, float]:
    """The point ``forward`` takes to (lon, lat), by the fixed-point iteration
    ``p += (lon, lat) − forward(p)`` from ``start``."""
    p_lon, p_lat = start
    for _ in range(_INVERSE_MAX_ROUNDS):
        f_lon, f_lat = forward(p_lon, p_lat)
        step_lon, step_lat = lon - f_lon, lat - f_lat
        p_lon, p_lat = p_lon + step_lon, p_lat + step_lat
        if abs(step_lon) < _INVERSE_TOLERANCE_DEG and abs(step_lat) < _INVERSE_TOLERANCE_DEG:
            break
    return p_lon, p_lat


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def _bd09_to_gcj02_exact(lon: float, lat: float) -> tuple[float, float]:
    """The inverse of :func:`gcj02_to_bd09` to about a millimetre.

    :func:`bd09_to_gcj02` is the one-step formula every library ships (and matches them
    bit for bit), but it is 5–15 cm off; refine it as :func:`gcj02_to_wgs84` does.
    """
    return _inverse(gcj02_to_bd09, lon, lat, start=bd09_to_gcj02(lon, lat))


def to_wgs84(lon: float, lat: float, coord_sys: CoordSys) -> tuple[float, float]:
    # CoordSys(...) so that a plain "gcj02" is not silently taken for WGS-84, and an
    # unknown name is a ValueError.
    coord_sys = CoordSys(coord_sys)
    if coord_sys is CoordSys.GCJ02:
        return gcj02_to_wgs84(lon, lat)
    if coord_sys is CoordSys.BD09:
        return gcj02_to_wgs84(*_bd09_to_gcj02_exact(lon, lat))
    return lon, lat


def from_wgs84(lon: float, lat: float, coord_sys: CoordSys) -> tuple[float, float]:
    coord_sys = CoordSys(coord_sys)
    if coord_sys is CoordSys.GCJ02:
        return wgs84_to_gcj02(lon, lat)
    if coord_sys is CoordSys.BD09:
        return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))
    return lon, lat


Box = tuple[float, float, float, float]  # west, south, east, north


class BadBox(ValueError):
    """Not a box: ``malformed`` when it is not four numbers, else out of range or order."""

    def __init__(self, *, malformed: bool) -> None:
        super().__init__("not four numbers" if malformed else "out of range")
        self.malformed = malformed


def parse_bbox(text: str) -> Box:
    """``minLon,minLat,maxLon,maxLat`` as a box, in range and in order; BadBox otherwise."""
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        raise BadBox(malformed=True) from None
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise BadBox(malformed=False)
    return (west, south, east, north)
