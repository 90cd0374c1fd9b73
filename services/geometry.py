"""GeoJSON polygons (RFC 7946, WGS84): validation, ellipsoidal area, centroid, point-in-polygon; pure Python.

Area: each latitude is mapped to its authalic latitude, which makes the sphere of radius R_q equal-area to
the WGS84 ellipsoid; the polygon's area is then the exact spherical excess of its edges on that sphere
(sum of 2*atan2(tan(dlon/2) * (tan(b1/2) + tan(b2/2)), 1 + tan(b1/2) * tan(b2/2))). For fields and counties
this differs from a geodesic ellipsoidal area by far less than a survey's error.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.errors import InvalidInputError

Position = tuple[float, float]
Ring = tuple[Position, ...]

WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563
_E2 = WGS84_F * (2 - WGS84_F)
_E = math.sqrt(_E2)
SQUARE_METRES_PER_MU = 666.67
MAX_POSITIONS = 5000
_EPS = 1e-12


def _q(phi: float) -> float:
    s = math.sin(phi)
    return (1 - _E2) * (s / (1 - _E2 * s * s) - (1 / (2 * _E)) * math.log((1 - _E * s) / (1 + _E * s)))


_QP = _q(math.pi / 2)
AUTHALIC_RADIUS = WGS84_A * math.sqrt(_QP / 2)


def authalic_latitude(lat_deg: float) -> float:
    """Authalic latitude (radians) of a geodetic WGS84 latitude in degrees."""
    return math.asin(max(-1.0, min(1.0, _q(math.radians(lat_deg)) / _QP)))


@dataclass(frozen=True, slots=True)
class Polygon:
    """A validated polygon: the exterior ring first, then holes; every ring closed."""

    rings: tuple[Ring, ...]

    @property
    def exterior(self) -> Ring:
        return self.rings[0]

    def to_geojson(self) -> dict[str, Any]:
        return {"type": "Polygon", "coordinates": [[list(p) for p in ring] for ring in self.rings]}


@dataclass(frozen=True, slots=True)
class Area:
    """One or more polygons (a GeoJSON Polygon or MultiPolygon)."""

    polygons: tuple[Polygon, ...]

    def to_geojson(self) -> dict[str, Any]:
        if len(self.polygons) == 1:
            return self.polygons[0].to_geojson()
        return {
            "type": "MultiPolygon",
            "coordinates": [p.to_geojson()["coordinates"] for p in self.polygons],
        }


def _bad(field: str, rule: str, detail: str) -> InvalidInputError:
    return InvalidInputError(f"{detail} (rule {rule})", field=field, rule=rule)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _ring(raw: Any, field: str) -> Ring:
    if not isinstance(raw, list) or len(raw) < 4:
        raise _bad(field, "geometry.ring-too-short", "a linear ring needs at least 4 positions")
    if len(raw) > MAX_POSITIONS:
        raise _bad(field, "geometry.too-many-positions", f"a ring may have at most {MAX_POSITIONS} positions")
    points: list[Position] = []
    for i, pos in enumerate(raw):
        if not isinstance(pos, list | tuple) or len(pos) not in (2, 3) or not all(_number(c) for c in pos):
            raise _bad(f"{field}[{i}]", "geometry.position", "a position is [longitude, latitude] in degrees")
        lon, lat = float(pos[0]), float(pos[1])
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise _bad(
                f"{field}[{i}]",
                "geometry.wgs84-range",
                "longitude must be in [-180, 180], latitude in [-90, 90]",
            )
        if not points or points[-1] != (lon, lat):
            points.append((lon, lat))
    if (float(raw[0][0]), float(raw[0][1])) != (float(raw[-1][0]), float(raw[-1][1])):
        raise _bad(field, "geometry.ring-not-closed", "the first and last positions of a ring must be equal")
    if len(points) < 4:
        raise _bad(field, "geometry.ring-too-short", "a linear ring needs at least 3 distinct corners")
    return tuple(points)


def _orient(a: Position, b: Position, c: Position) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: Position, b: Position, p: Position) -> bool:
    return (
        min(a[0], b[0]) - _EPS <= p[0] <= max(a[0], b[0]) + _EPS
        and min(a[1], b[1]) - _EPS <= p[1] <= max(a[1], b[1]) + _EPS
    )


def segments_intersect(a: Position, b: Position, c: Position, d: Position) -> bool:
    """True when segments ab and cd share at least one point (touching counts)."""
    d1, d2, d3, d4 = _orient(c, d, a), _orient(c, d, b), _orient(a, b, c), _orient(a, b, d)
    if ((d1 > _EPS and d2 < -_EPS) or (d1 < -_EPS and d2 > _EPS)) and (
        (d3 > _EPS and d4 < -_EPS) or (d3 < -_EPS and d4 > _EPS)
    ):
        return True
    return (
        (abs(d1) <= _EPS and _on_segment(c, d, a))
        or (abs(d2) <= _EPS and _on_segment(c, d, b))
        or (abs(d3) <= _EPS and _on_segment(a, b, c))
        or (abs(d4) <= _EPS and _on_segment(a, b, d))
    )


Segment = tuple[int, int, Position, Position]  # ring number, edge number, start, end


def _segments(rings: Sequence[Ring]) -> list[Segment]:
    return [(r, i, ring[i], ring[i + 1]) for r, ring in enumerate(rings) for i in range(len(ring) - 1)]


def _adjacent(s: Segment, t: Segment, rings: Sequence[Ring]) -> bool:
    if s[0] != t[0]:
        return False
    edges = len(rings[s[0]]) - 1
    return abs(s[1] - t[1]) == 1 or abs(s[1] - t[1]) == edges - 1


def _first_crossing(rings: Sequence[Ring]) -> tuple[Segment, Segment] | None:
    """A pair of non-adjacent edges that touch, found with a sweep over x; None for a simple polygon."""
    segs = sorted(_segments(rings), key=lambda s: min(s[2][0], s[3][0]))
    for i, s in enumerate(segs):
        s_max = max(s[2][0], s[3][0])
        for t in segs[i + 1 :]:
            if min(t[2][0], t[3][0]) > s_max + _EPS:
                break
            if _adjacent(s, t, rings):
                # Adjacent edges share one corner; they are bad only when they fold back over each other.
                shared = s[3] if s[3] in (t[2], t[3]) else s[2]
                other_s = s[2] if shared == s[3] else s[3]
                other_t = t[3] if shared == t[2] else t[2]
                if abs(_orient(shared, other_s, other_t)) <= _EPS and (
                    _on_segment(shared, other_s, other_t) or _on_segment(shared, other_t, other_s)
                ):
                    return s, t
                continue
            if segments_intersect(s[2], s[3], t[2], t[3]):
                return s, t
    return None


def parse_polygon(raw: Any, field: str) -> Polygon:
    """Validate Polygon coordinates: closed rings of >= 4 positions in WGS84, not self-intersecting."""
    if not isinstance(raw, list) or not raw:
        raise _bad(field, "geometry.polygon", "a polygon is a non-empty list of linear rings")
    rings = tuple(_ring(r, f"{field}[{i}]") for i, r in enumerate(raw))
    crossing = _first_crossing(rings)
    if crossing is not None:
        (r1, e1, *_), (r2, e2, *_) = crossing
        raise _bad(
            field,
            "geometry.self-intersection",
            f"ring {r1} edge {e1} touches ring {r2} edge {e2}: the polygon must not self-intersect",
        )
    for r, ring in enumerate(rings):
        if abs(_planar_area(ring)) < _EPS:
            raise _bad(f"{field}[{r}]", "geometry.zero-area", "the ring encloses no area")
    for h, hole in enumerate(rings[1:], start=1):
        if not point_in_ring(hole[0], rings[0]):
            raise _bad(f"{field}[{h}]", "geometry.hole-outside", "a hole must lie inside the exterior ring")
    return Polygon(rings)


def parse_geometry(raw: Any, field: str, *, allow_multi: bool = False) -> Area:
    """Validate a GeoJSON Polygon (or MultiPolygon when allowed) geometry object."""
    if not isinstance(raw, dict):
        raise _bad(field, "geometry.type", "geometry must be a GeoJSON object")
    kind = raw.get("type")
    coords = raw.get("coordinates")
    if kind == "Polygon":
        return Area((parse_polygon(coords, f"{field}.coordinates"),))
    if kind == "MultiPolygon" and allow_multi:
        if not isinstance(coords, list) or not coords:
            raise _bad(field, "geometry.polygon", "a MultiPolygon needs at least one polygon")
        return Area(tuple(parse_polygon(p, f"{field}.coordinates[{i}]") for i, p in enumerate(coords)))
    allowed = "Polygon or MultiPolygon" if allow_multi else "Polygon"
    raise _bad(f"{field}.type", "geometry.type", f"geometry type must be {allowed}, not {kind!r}")


def _planar_area(ring: Ring) -> float:
    # Relative to the first corner: cross products of raw degrees cancel catastrophically.
    ox, oy = ring[0]
    return (
        sum(
            (ring[i][0] - ox) * (ring[i + 1][1] - oy) - (ring[i + 1][0] - ox) * (ring[i][1] - oy)
            for i in range(len(ring) - 1)
        )
        / 2
    )


def ring_area_m2(ring: Ring) -> float:
    """Unsigned area of a ring in square metres on the WGS84 ellipsoid (authalic sphere)."""
    total = 0.0
    for (lon1, lat1), (lon2, lat2) in itertools.pairwise(ring):
        t1 = math.tan(authalic_latitude(lat1) / 2)
        t2 = math.tan(authalic_latitude(lat2) / 2)
        dlon = math.radians(lon2 - lon1)
        total += 2 * math.atan2(math.tan(dlon / 2) * (t1 + t2), 1 + t1 * t2)
    return abs(total) * AUTHALIC_RADIUS**2


def area_m2(area: Area | Polygon) -> float:
    """Area in square metres: exteriors minus holes."""
    polygons = area.polygons if isinstance(area, Area) else (area,)
    return sum(ring_area_m2(p.exterior) - sum(ring_area_m2(h) for h in p.rings[1:]) for p in polygons)


def area_mu(area: Area | Polygon) -> float:
    """Area in mu (1 mu = 666.67 m2)."""
    return area_m2(area) / SQUARE_METRES_PER_MU


def centroid(polygon: Polygon) -> Position:
    """Area-weighted centroid in lon/lat (holes subtracted); adequate for fields and counties."""
    ox, oy = polygon.exterior[0]
    cx = cy = total = 0.0
    for n, ring in enumerate(polygon.rings):
        sign = 1.0 if n == 0 else -1.0
        signed = _planar_area(ring)
        orient = 1.0 if signed > 0 else -1.0
        x = y = 0.0
        for (x0, y0), (x1, y1) in itertools.pairwise(ring):
            x0, y0, x1, y1 = x0 - ox, y0 - oy, x1 - ox, y1 - oy
            cross = x0 * y1 - x1 * y0
            x += (x0 + x1) * cross
            y += (y0 + y1) * cross
        # x / (6A) with the signed area gives the ring centroid; weight it by the unsigned area.
        cx += sign * orient * x / 6
        cy += sign * orient * y / 6
        total += sign * abs(signed)
    return (ox + cx / total, oy + cy / total)


def point_in_ring(point: Position, ring: Ring) -> bool:
    """Even-odd ray casting; a point on the boundary counts as inside."""
    x, y = point
    inside = False
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        if abs(_orient((x0, y0), (x1, y1), point)) <= _EPS and _on_segment((x0, y0), (x1, y1), point):
            return True
        if (y0 > y) != (y1 > y) and x < (x1 - x0) * (y - y0) / (y1 - y0) + x0:
            inside = not inside
    return inside


def point_in_polygon(point: Position, polygon: Polygon) -> bool:
    """Inside the exterior and not strictly inside a hole."""
    if not point_in_ring(point, polygon.exterior):
        return False
    return not any(point_in_ring(point, h) and not _on_ring(point, h) for h in polygon.rings[1:])


def _on_ring(point: Position, ring: Ring) -> bool:
    return any(
        abs(_orient(a, b, point)) <= _EPS and _on_segment(a, b, point) for a, b in itertools.pairwise(ring)
    )


def point_in_area(point: Position, area: Area) -> bool:
    return any(point_in_polygon(point, p) for p in area.polygons)


def contains(area: Area, polygon: Polygon) -> bool:
    """True when every corner of `polygon` lies in `area` and no edge of it crosses a boundary of `area`."""
    if not all(point_in_area(p, area) for p in polygon.exterior):
        return False
    lo_x = min(p[0] for p in polygon.exterior)
    hi_x = max(p[0] for p in polygon.exterior)
    edges = list(zip(polygon.exterior, polygon.exterior[1:], strict=False))
    for region in area.polygons:
        for ring in region.rings:
            for a, b in itertools.pairwise(ring):
                if max(a[0], b[0]) < lo_x or min(a[0], b[0]) > hi_x:
                    continue
                for c, d in edges:
                    if segments_intersect(a, b, c, d) and not (_on_ring(c, ring) and _on_ring(d, ring)):
                        # Touching the boundary from inside is fine; a proper crossing is not.
                        d1, d2 = _orient(a, b, c), _orient(a, b, d)
                        if (d1 > _EPS and d2 < -_EPS) or (d1 < -_EPS and d2 > _EPS):
                            return False
    return True
