"""GeoJSON polygon validation, ellipsoidal area in mu, centroid and point-in-polygon, without a database."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.errors import InvalidInputError
from services.geometry import (
    SQUARE_METRES_PER_MU,
    area_m2,
    area_mu,
    centroid,
    contains,
    parse_geometry,
    point_in_area,
)


def square(lon: float, lat: float, size: float) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def rule_of(raw: dict[str, Any], **kwargs: Any) -> tuple[str, str | None]:
    with pytest.raises(InvalidInputError) as caught:
        parse_geometry(raw, "geometry", **kwargs)
    return caught.value.extra["rule"], caught.value.field


def local_area(lon: float, lat: float, size: float) -> float:
    """Area of a tiny lon/lat box from the WGS84 radii of curvature: an independent check."""
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    phi = math.radians(lat + size / 2)
    w = 1 - e2 * math.sin(phi) ** 2
    meridian = a * (1 - e2) / w**1.5
    normal = a / math.sqrt(w)
    return float(meridian * normal * math.cos(phi) * math.radians(size) ** 2)


@pytest.mark.parametrize("lat", [0.0, 23.4, 32.8, 60.0])
def test_area_of_a_small_square_matches_the_ellipsoid(lat: float) -> None:
    polygon = parse_geometry(square(114.0, lat, 0.001), "g")
    assert area_m2(polygon) == pytest.approx(local_area(114.0, lat, 0.001), rel=1e-5)


def test_area_is_reported_in_mu() -> None:
    polygon = parse_geometry(square(114.0, 32.8, 0.001), "g")
    assert area_mu(polygon) == pytest.approx(area_m2(polygon) / SQUARE_METRES_PER_MU)
    assert 15.0 < area_mu(polygon) < 16.0  # about 10 387 m2 at Queshan's latitude


def test_area_does_not_depend_on_ring_orientation() -> None:
    ring = square(104.2, 23.4, 0.01)["coordinates"][0]
    clockwise = {"type": "Polygon", "coordinates": [list(reversed(ring))]}
    assert area_m2(parse_geometry(clockwise, "g")) == pytest.approx(
        area_m2(parse_geometry(square(104.2, 23.4, 0.01), "g"))
    )


def test_a_hole_is_subtracted_from_the_area() -> None:
    outer = square(114.0, 32.8, 0.01)["coordinates"][0]
    hole = [[114.004, 32.804], [114.004, 32.806], [114.006, 32.806], [114.006, 32.804], [114.004, 32.804]]
    with_hole = parse_geometry({"type": "Polygon", "coordinates": [outer, hole]}, "g")
    assert area_m2(with_hole) == pytest.approx(
        area_m2(parse_geometry(square(114.0, 32.8, 0.01), "g"))
        - area_m2(parse_geometry(square(114.004, 32.804, 0.002), "g")),
        rel=1e-9,
    )
    assert not point_in_area((114.005, 32.805), with_hole)
    assert point_in_area((114.001, 32.801), with_hole)


def test_centroid_of_a_square_is_its_centre() -> None:
    polygon = parse_geometry(square(114.0, 32.8, 0.002), "g").polygons[0]
    lon, lat = centroid(polygon)
    assert lon == pytest.approx(114.001, abs=1e-9)
    assert lat == pytest.approx(32.801, abs=1e-9)


def test_an_open_ring_is_rejected() -> None:
    raw = {"type": "Polygon", "coordinates": [[[114.0, 32.8], [114.1, 32.8], [114.1, 32.9], [114.0, 32.9]]]}
    assert rule_of(raw)[0] == "geometry.ring-not-closed"


def test_a_ring_with_fewer_than_four_positions_is_rejected() -> None:
    raw = {"type": "Polygon", "coordinates": [[[114.0, 32.8], [114.1, 32.8], [114.0, 32.8]]]}
    assert rule_of(raw) == ("geometry.ring-too-short", "geometry.coordinates[0]")


def test_coordinates_outside_wgs84_ranges_are_rejected() -> None:
    raw = {"type": "Polygon", "coordinates": [[[114.0, 32.8], [114.1, 95.0], [114.1, 32.9], [114.0, 32.8]]]}
    assert rule_of(raw) == ("geometry.wgs84-range", "geometry.coordinates[0][1]")


def test_a_bowtie_is_rejected_as_self_intersecting() -> None:
    raw = {
        "type": "Polygon",
        "coordinates": [[[114.0, 32.8], [114.002, 32.801], [114.002, 32.8], [114.0, 32.802], [114.0, 32.8]]],
    }
    assert rule_of(raw)[0] == "geometry.self-intersection"


def test_a_ring_that_folds_back_on_itself_is_rejected() -> None:
    raw = {"type": "Polygon", "coordinates": [[[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]}
    assert rule_of(raw)[0] == "geometry.self-intersection"


def test_a_hole_outside_the_exterior_is_rejected() -> None:
    outer = square(114.0, 32.8, 0.01)["coordinates"][0]
    hole = square(115.0, 32.8, 0.001)["coordinates"][0]
    assert rule_of({"type": "Polygon", "coordinates": [outer, hole]})[0] == "geometry.hole-outside"


def test_a_point_or_unknown_type_is_not_a_plot() -> None:
    assert rule_of({"type": "Point", "coordinates": [114.0, 32.8]})[0] == "geometry.type"
    assert rule_of({"type": "MultiPolygon", "coordinates": []})[0] == "geometry.type"
    assert rule_of({"type": "MultiPolygon", "coordinates": []}, allow_multi=True)[0] == "geometry.polygon"


def test_non_numeric_positions_are_rejected() -> None:
    raw = {"type": "Polygon", "coordinates": [[[114.0, 32.8], ["a", 32.8], [114.1, 32.9], [114.0, 32.8]]]}
    assert rule_of(raw)[0] == "geometry.position"
    raw = {"type": "Polygon", "coordinates": [[[114.0, 32.8], [True, 32.8], [114.1, 32.9], [114.0, 32.8]]]}
    assert rule_of(raw)[0] == "geometry.position"


def test_containment_fails_when_a_corner_leaves_the_region() -> None:
    region = parse_geometry(square(114.0, 32.8, 0.1), "r")
    inside = parse_geometry(square(114.01, 32.81, 0.01), "p").polygons[0]
    straddling = parse_geometry(square(114.095, 32.81, 0.01), "p").polygons[0]
    assert contains(region, inside)
    assert not contains(region, straddling)


def test_containment_fails_when_an_edge_crosses_a_concave_boundary() -> None:
    # A U-shaped region: a plot spanning the notch has all corners inside but an edge crossing outside.
    u_shape = {
        "type": "Polygon",
        "coordinates": [[[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3], [0, 0]]],
    }
    region = parse_geometry(u_shape, "r")
    plot = parse_geometry(
        {"type": "Polygon", "coordinates": [[[0.5, 2], [2.5, 2], [2.5, 2.5], [0.5, 2.5], [0.5, 2]]]}, "p"
    ).polygons[0]
    assert not contains(region, plot)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=40,
)
positions = st.lists(
    st.tuples(st.floats(-200, 200), st.floats(-100, 100)).map(list), min_size=0, max_size=8
).map(lambda ring: [*ring, ring[0]] if ring else ring)


@given(coordinates=st.lists(positions, max_size=3) | json_values)
@settings(max_examples=300, deadline=None)
def test_any_input_is_either_a_valid_polygon_or_an_invalid_input_error(coordinates: Any) -> None:
    try:
        area = parse_geometry({"type": "Polygon", "coordinates": coordinates}, "geometry")
    except InvalidInputError as exc:
        assert exc.field is not None and exc.field.startswith("geometry")
        return
    assert area_m2(area) > 0
