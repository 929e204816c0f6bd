"""WGS-84 ⇄ GCJ-02 ⇄ BD-09 against published vectors, and the inverses' accuracy."""

import json
import math

import pytest

from app.geo.coords import (
    CoordSys,
    bd09_to_gcj02,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_gcj02,
)
from tests.conftest import DATA

VECTORS = json.loads((DATA / "coords_test_vectors.json").read_text(encoding="utf-8"))
# eviltransform stores [lat, lon]; turn each into (lon, lat) pairs.
WGS_TO_GCJ = [
    pytest.param((v["wgs"][1], v["wgs"][0]), (v["gcj"][1], v["gcj"][0]), id=v["name"])
    for v in VECTORS["wgs_to_gcj"]
]
# coordTransform stores [lng, lat] already.
CT_INPUT = tuple(VECTORS["coordTransform_py_readme_lnglat_input"])
CT_OUTPUTS = VECTORS["coordTransform_py_readme_outputs_lnglat"]

EARTH_RADIUS_M = 6_371_008.8


def error_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance in metres: plenty for errors of centimetres."""
    mean_lat = math.radians((a[1] + b[1]) / 2)
    dx = math.radians(b[0] - a[0]) * math.cos(mean_lat)
    dy = math.radians(b[1] - a[1])
    return EARTH_RADIUS_M * math.hypot(dx, dy)


# A grid over Changning (and a little around it), in WGS-84.
CHANGNING_GRID = [(121.34 + i * 0.011, 31.18 + j * 0.009) for i in range(10) for j in range(8)]


def test_vectors_are_lon_lat_in_china() -> None:
    # Guards the [lat, lon] reading above: swapped, Shanghai would be at 31°E, 121°N.
    for vector in VECTORS["wgs_to_gcj"]:
        for lat, lon in (vector["wgs"], vector["gcj"]):
            assert 73 < lon < 136 and 3 < lat < 54, vector["name"]


@pytest.mark.parametrize(("wgs", "gcj"), WGS_TO_GCJ)
def test_wgs84_to_gcj02_matches_eviltransform_exactly(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    assert wgs84_to_gcj02(*wgs) == gcj


@pytest.mark.parametrize(("wgs", "gcj"), WGS_TO_GCJ)
def test_gcj02_to_wgs84_inverts_to_under_a_centimetre(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    assert error_m(gcj02_to_wgs84(*gcj), wgs) < 0.01
    # And it is a real improvement on the GCJ offset itself (hundreds of metres).
    assert error_m(gcj, wgs) > 100


def test_coordtransform_outputs_exactly() -> None:
    assert wgs84_to_gcj02(*CT_INPUT) == tuple(CT_OUTPUTS["wgs84_to_gcj02"])
    assert gcj02_to_bd09(*CT_INPUT) == tuple(CT_OUTPUTS["gcj02_to_bd09"])
    assert bd09_to_gcj02(*CT_INPUT) == tuple(CT_OUTPUTS["bd09_to_gcj02"])


def test_gcj02_to_wgs84_beats_the_naive_one_step_inverse() -> None:
    exact = gcj02_to_wgs84(*CT_INPUT)
    assert error_m(wgs84_to_gcj02(*exact), CT_INPUT) < 0.01
    naive = tuple(CT_OUTPUTS["gcj02_to_wgs84_naive"])
    # The one-step inverse most libraries ship is off by a metre or so.
    assert 0.1 < error_m(naive, exact) < 10


@pytest.mark.parametrize("point", [CT_INPUT, *CHANGNING_GRID[::7]])
def test_bd09_round_trip(point: tuple[float, float]) -> None:
    bd = gcj02_to_bd09(*point)
    assert error_m(bd, point) > 100  # it does move the point
    # bd09_to_gcj02 is the one-step formula everyone ships (it must match them bit for
    # bit, see above): good to a few decimetres, not to the centimetre.
    assert error_m(bd09_to_gcj02(*bd), point) < 0.3
    assert error_m(gcj02_to_bd09(*bd09_to_gcj02(*point)), point) < 0.3
    # What the service uses for BD-09 input is refined to below a centimetre.
    wgs = gcj02_to_wgs84(*point)
    assert error_m(to_wgs84(*bd, CoordSys.BD09), wgs) < 0.01


@pytest.mark.parametrize(
    "point",
    [
        (-0.1276, 51.5072),  # London
        (139.6917, 35.6895),  # Tokyo: east of the rectangle
        (151.2093, -33.8688),  # Sydney
        (121.0, 2.0),  # south of the rectangle
        (100.0, 60.0),  # north of it
    ],
)
def test_points_outside_china_are_unchanged(point: tuple[float, float]) -> None:
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point
    assert to_wgs84(*point, CoordSys.GCJ02) == point
    assert from_wgs84(*point, CoordSys.GCJ02) == point


@pytest.mark.parametrize("coord_sys", list(CoordSys))
def test_to_and_from_wgs84_are_inverses_over_changning(coord_sys: CoordSys) -> None:
    for wgs in CHANGNING_GRID:
        there = from_wgs84(*wgs, coord_sys)
        assert error_m(to_wgs84(*there, coord_sys), wgs) < 0.01, (coord_sys, wgs)
        back = from_wgs84(*to_wgs84(*wgs, coord_sys), coord_sys)
        assert error_m(back, wgs) < 0.01, (coord_sys, wgs)
        if coord_sys is CoordSys.WGS84:
            assert there == wgs
        else:
            # GCJ-02 shifts Changning by roughly 500 m, BD-09 by roughly a kilometre.
            assert 300 < error_m(there, wgs) < 1500, (coord_sys, wgs)


def test_bd09_is_gcj02_plus_baidus_offset() -> None:
    wgs = CHANGNING_GRID[13]
    assert from_wgs84(*wgs, CoordSys.BD09) == gcj02_to_bd09(*wgs84_to_gcj02(*wgs))


@pytest.mark.parametrize("coord_sys", list(CoordSys))
def test_plain_strings_mean_the_same_as_the_enum(coord_sys: CoordSys) -> None:
    # CoordSys is a StrEnum: a caller passing "gcj02" must not silently get WGS-84.
    wgs = CHANGNING_GRID[20]
    assert from_wgs84(*wgs, coord_sys.value) == from_wgs84(*wgs, coord_sys)  # type: ignore[arg-type]
    there = from_wgs84(*wgs, coord_sys)
    assert to_wgs84(*there, coord_sys.value) == to_wgs84(*there, coord_sys)  # type: ignore[arg-type]


def test_unknown_coordinate_system_is_refused() -> None:
    with pytest.raises(ValueError):
        to_wgs84(121.4, 31.2, "mercator")  # type: ignore[arg-type]
