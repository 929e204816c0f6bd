"""Links that open a point in the map apps people in China use, each in its own datum:
Amap (高德) draws GCJ-02, Baidu Maps BD-09. A WGS-84 point given to either as it is
lands some hundreds of metres off in Shanghai."""

from dataclasses import dataclass
from urllib.parse import urlencode

from app.geo.coords import CoordSys, from_wgs84

SOURCE = "flowing-sentinel"  # how the apps' URI APIs ask a caller to name itself


@dataclass(frozen=True)
class MapLink:
    app: str  # "amap" or "baidu"
    url: str


def map_links(lon: float, lat: float, *, title: str) -> list[MapLink]:
    """Amap's and Baidu's links to a WGS-84 point, marked with ``title``; on a phone
    with the app, the app opens (else its web page)."""
    amap_lon, amap_lat = from_wgs84(lon, lat, CoordSys.GCJ02)
    baidu_lon, baidu_lat = from_wgs84(lon, lat, CoordSys.BD09)
    amap = urlencode(
        {
            "position": f"{amap_lon:.6f},{amap_lat:.6f}",
            "name": title,
            "src": SOURCE,
            "coordinate": "gaode",
            "callnative": "1",
        }
    )
    baidu = urlencode(
        {
            "location": f"{baidu_lat:.6f},{baidu_lon:.6f}",
            "title": title,
            "content": title,
            "output": "html",
            "coord_type": "bd09ll",
            "src": SOURCE,
        }
    )
    return [
        MapLink("amap", f"https://uri.amap.com/marker?{amap}"),
        MapLink("baidu", f"https://api.map.baidu.com/marker?{baidu}"),
    ]
