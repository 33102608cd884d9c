"""Demo road network (metric coordinates).

Motorways and arterials that cross the city borders, ring roads, a collector grid in
each city and local streets in neighbourhoods.
"""

from __future__ import annotations

import numpy as np
import shapely
import shapely.ops

from .names import road_name
from .places import Places, Scale
from .settlement import Settlement


def _wiggly(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, amp: float,
            step: float = 150.0) -> shapely.LineString:
    """A road from a to b that wanders sideways by up to ``amp`` metres, smoothly."""
    length = float(np.linalg.norm(b - a))
    n = max(2, int(length / step))
    t = np.linspace(0, 1, n)
    normal = np.array([-(b - a)[1], (b - a)[0]]) / max(length, 1e-9)
    offset = np.zeros(n)
    for k in (1, 2, 3):
        offset += rng.uniform(-amp, amp) / k * np.sin(k * np.pi * t + rng.uniform(0, 0.3))
    offset *= np.sin(np.pi * t)  # keep the end points where they were asked
    pts = a[None] + t[:, None] * (b - a)[None] + offset[:, None] * normal[None]
    return shapely.LineString(pts)


def build_roads(places: Places, settlement: Settlement, scale: Scale,
                rng: np.random.Generator) -> tuple[list[shapely.LineString], list[str], list[str]]:
    """Road lines, names and classes, clipped to the region."""
    lines: list[shapely.Geometry] = []
    classes: list[str] = []
    w, h = scale.width_m, scale.height_m
    centres = places.city_centres

    def add(line: shapely.Geometry, road_class: str) -> None:
        lines.append(line)
        classes.append(road_class)

    # Motorways across the region, west-east and north-south.
    add(_wiggly(np.array([-0.05 * w, 0.52 * h]), np.array([1.05 * w, 0.47 * h]), rng, 0.04 * h),
        "motorway")
    add(_wiggly(np.array([0.47 * w, 1.05 * h]), np.array([0.55 * w, -0.05 * h]), rng, 0.03 * w),
        "motorway")
    # Arterials between the cities (they cross the city borders) and radials.
    for i in range(3):
        for j in range(i + 1, 3):
            add(_wiggly(centres[i], centres[j], rng, 0.03 * w), "arterial")
        for angle in rng.uniform(0, 2 * np.pi, size=4):
            end = centres[i] + 0.45 * w * np.array([np.cos(angle), np.sin(angle)])
            add(_wiggly(centres[i], end, rng, 0.02 * w), "arterial")
        ring = shapely.Point(centres[i]).buffer(w / 10, quad_segs=16).exterior
        add(shapely.LineString(ring.coords), "arterial")
        # Collector grid around the centre.
        spacing = 1200.0
        reach = w / 7
        theta = rng.uniform(0, np.pi / 2)
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        disc = shapely.Point(centres[i]).buffer(reach)
        for off in np.arange(-reach, reach + 1, spacing):
            for seg in (np.array([[off, -reach], [off, reach]]),
                        np.array([[-reach, off], [reach, off]])):
                line = shapely.LineString(seg @ rot.T + centres[i])
                add(shapely.intersection(line, disc), "collector")
    # Local streets through each neighbourhood, and one joining it to the nearest
    # collector, arterial or motorway (so that the network is connected).
    main = shapely.union_all(lines)
    for c, r, a in zip(settlement.nb_centres, settlement.nb_radius, settlement.nb_angle,
                       strict=True):
        for da in (0.0, np.pi / 2):
            d = np.array([np.cos(a + da), np.sin(a + da)]) * r
            add(shapely.LineString([c - d, c + d]), "local")
        _, reach_main = shapely.ops.nearest_points(shapely.Point(c), main)
        if 0 < reach_main.distance(shapely.Point(c)) < 4000:
            add(shapely.LineString([c, (reach_main.x, reach_main.y)]), "local")
    # A few footpaths in parks come with the key areas; clip everything to the region.
    geoms = shapely.intersection(np.array(lines, dtype=object), places.outline)
    out_lines, out_names, out_classes = [], [], []
    for geom, road_class in zip(geoms, classes, strict=True):
        name = road_name(rng, road_class)
        for part in shapely.get_parts(shapely.line_merge(geom) if geom.geom_type ==
                                      "MultiLineString" else geom):
            if part.geom_type == "LineString" and part.length > 20:
                out_lines.append(part)
                out_names.append(name)
                out_classes.append(road_class)
    return out_lines, out_names, out_classes
