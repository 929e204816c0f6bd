"""Routing cost per report as the number of community polygons grows.

For each count: a fresh database (SpatiaLite and/or PostGIS) into which a synthetic
district of about 22 × 22 km is imported through the area import (``import_areas``, as
``sentinel areas import`` and the admin API run it): ten streets, and the communities as
a grid of cells over each street. Then the areas are loaded as intake holds them (the
in-memory map), and random points in the district are routed, one at a time. Prints
the import and load times, the memory the map takes, and the cost of a route (median
and 99th percentile). Run from the project root::

    .venv/bin/python bench/routing.py --db both --communities 100,1000,10000,100000

Run it alone on the machine.
"""

import argparse
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.intake as load
from app.areas.tree import import_areas
from app.db import Database, migrate
from app.errors import OutsideServiceArea
from app.tickets import reference
from bench.common import arguments, databases

WEST, SOUTH, SIZE = 121.2, 31.1, 0.2  # degrees: about 19 × 22 km at 31°N
STREETS = 10
IMPORT_CHUNK = 5000  # communities per import (one transaction each)


def rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


def feature(code: str, level: str, parent: str | None, geometry: dict[str, Any]) -> Any:
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"code": code, "name": f"合成 {code}", "level": level, "parent_code": parent},
    }


def layout(communities: int) -> tuple[list[Any], list[list[Any]]]:
    """The district and its streets; then the communities, in chunks to import."""
    district = "BR0001"
    top = [feature(district, "district", None, rect(WEST, SOUTH, WEST + SIZE, SOUTH + SIZE))]
    width = SIZE / STREETS
    per_street = max(1, communities // STREETS)
    columns = max(1, round(math.sqrt(per_street * width / SIZE)))
    rows = math.ceil(per_street / columns)
    cells = []
    for s in range(STREETS):
        street = f"{district}{s:03d}"
        x0 = WEST + s * width
        top.append(feature(street, "street", district, rect(x0, SOUTH, x0 + width, SOUTH + SIZE)))
        for n in range(per_street):
            r, c = divmod(n, columns)
            cx0, cy0 = x0 + c * width / columns, SOUTH + r * SIZE / rows
            cells.append(
                feature(
                    f"{street}{n:06d}",
                    "community",
                    street,
                    rect(cx0, cy0, cx0 + width / columns, cy0 + SIZE / rows),
                )
            )
    return top, [cells[i : i + IMPORT_CHUNK] for i in range(0, len(cells), IMPORT_CHUNK)]


def run(kind: str, communities: int, args: argparse.Namespace) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
    url = load.fresh_database(kind, args.pg_url, workdir)
    try:
        migrate.upgrade(url)
        database = Database(url)
        top, chunks = layout(communities)
        started = time.perf_counter()
        with database.transaction() as session:
            import_areas(session, {"type": "FeatureCollection", "features": top})
        for chunk in chunks:
            with database.transaction() as session:
                import_areas(session, {"type": "FeatureCollection", "features": chunk})
        imported = time.perf_counter() - started
        load.settle(database)
        tracemalloc.start()
        started = time.perf_counter()
        with database.session(write=False) as session:
            known = reference.current_reference(session)
        loaded = time.perf_counter() - started
        memory = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        rng = random.Random(communities)
        points = [
            (WEST + rng.uniform(0, SIZE), SOUTH + rng.uniform(0, SIZE)) for _ in range(args.routes)
        ]
        costs = []
        for lon, lat in points:
            begun = time.perf_counter_ns()
            try:
                known.areas.route(lon=lon, lat=lat, snap_m=150)
            except OutsideServiceArea:
                raise RuntimeError(f"({lon}, {lat}) is inside the synthetic district") from None
            costs.append((time.perf_counter_ns() - begun) / 1000)
        costs.sort()
        database.dispose()
        return {
            "areas": len(known.areas),
            "import_s": imported,
            "load_s": loaded,
            "memory_mb": memory / 2**20,
            "p50_us": statistics.median(costs),
            "p99_us": costs[int(len(costs) * 0.99)],
        }
    finally:
        load.drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--communities", default="100,1000,10000,100000")
    parser.add_argument("--routes", type=int, default=20000)
    args = parser.parse_args()
    kinds = databases(args)
    rows = []
    for kind in kinds:
        results = []
        for communities in (int(c) for c in args.communities.split(",")):
            print(f"{kind}, {communities:,} communities …", file=sys.stderr)
            results.append((communities, run(kind, communities, args)))
        base = results[0][1]["p50_us"]
        for communities, r in results:
            rows.append(
                f"| {kind} | {communities:,} | {r['import_s']:.1f} | {r['load_s']:.2f} "
                f"| {r['memory_mb']:.0f} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | "
                f"{r['p50_us'] / base:.2f} |"
            )
    print(
        f"\n{args.routes:,} random points routed one at a time, after the areas were loaded once\n"
    )
    print(
        "| database | communities | import s | load s | map MB | route p50 µs | "
        "route p99 µs | p50 ÷ smallest |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
