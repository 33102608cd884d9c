"""Demo key areas, cameras, checkpoints and incidents (metric coordinates).

Incidents follow a documented spatio-temporal process over the 365 days that end with
the demo's last day (China Standard Time; see :func:`demo_start`):

* background (55%): at households, weighted by persons, scattered 40 m;
* venue clusters (35%): around entertainment venues, stations and markets
  (Gaussian, 60-150 m), heavier in the evening and at weekends;
* one emerging cluster (10%) around a neighbourhood of Zhuzhou that starts in month 9
  and grows month on month;
* a weekly rhythm (Friday and Saturday about 1.4 times a Tuesday) and a daily
  rhythm (low 3-6 h, peaks 11-13 h and 20-23 h), category mix by component.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from ..registry import KEY_AREA_CATEGORIES
from .names import place_name
from .places import Places
from .settlement import Settlement, rotated_rects

CST = dt.timezone(dt.timedelta(hours=8))  # China Standard Time
DAYS = 365

# Per neighbourhood, how many of each key area (point categories have no footprint).
_PER_NEIGHBOURHOOD = {
    "school": 0.25, "kindergarten": 0.3, "hospital": 0.07, "park": 0.1, "entertainment": 0.1,
    "mall": 0.05, "market": 0.12,
}
_FOOTPRINT = {  # width, depth in metres; None for point features
    "school": (120, 90), "kindergarten": (50, 40), "hospital": (150, 100), "park": (300, 220),
    "mall": (150, 150), "market": (60, 60), "airport": (3000, 600), "railway": (600, 150),
    "entertainment": None, "station": None, "port": None, "border_port": None,
    "government_hall": None,
}


@dataclass
class KeyAreas:
    """Key areas with names and categories (metric geometries)."""

    geoms: list[shapely.Geometry] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    staff: list[int] = field(default_factory=list)

    def add(self, geom: shapely.Geometry, name: str, category: str, staff: int) -> None:
        """Append one key area."""
        self.geoms.append(geom)
        self.names.append(name)
        self.categories.append(category)
        self.staff.append(staff)

    def centres(self, categories: tuple[str, ...]) -> np.ndarray:
        """(n, 2) centres of the key areas of the given categories."""
        pts = [shapely.get_coordinates(g.centroid)[0]
               for g, c in zip(self.geoms, self.categories, strict=True) if c in categories]
        return np.array(pts).reshape(-1, 2)


def _footprint(centre: np.ndarray, category: str, angle: float) -> shapely.Geometry:
    size = _FOOTPRINT[category]
    if size is None:
        return shapely.Point(centre)
    return rotated_rects(np.array([centre[0]]), np.array([centre[1]]), np.array([size[0]]),
                          np.array([size[1]]), np.array([angle]))[0]


def build_key_areas(places: Places, settlement: Settlement, rng: np.random.Generator) -> KeyAreas:
    """Key areas of every category, placed at the edges of neighbourhoods and centres."""
    areas = KeyAreas()
    nb = settlement.nb_centres

    def place(category: str, centre: np.ndarray, angle: float) -> None:
        geom = _footprint(centre, category, angle)
        if shapely.contains(places.outline, geom):
            areas.add(geom, place_name(rng, category), category, int(rng.integers(0, 30)))

    for category, rate in _PER_NEIGHBOURHOOD.items():
        count = max(1, int(round(rate * len(nb))))
        chosen = rng.choice(len(nb), size=count, replace=count > len(nb))
        for i in chosen:
            direction = rng.uniform(0, 2 * np.pi)
            offset = (settlement.nb_radius[i] + 60) * np.array([np.cos(direction),
                                                               np.sin(direction)])
            if category == "entertainment":
                offset *= 0.3
            place(category, nb[i] + offset, settlement.nb_angle[i])
    centres = places.city_centres
    for i, c in enumerate(centres):
        place("station", c + rng.normal(scale=600, size=2), 0.0)
        place("station", c + rng.normal(scale=2500, size=2), 0.0)
        place("railway", c + rng.normal(scale=1500, size=2), rng.uniform(0, np.pi))
        place("port", c + np.array([-(0.06 + 0.02 * i), 0.02]) * places.outline.bounds[2], 0.0)
    # Government halls at the centre of every district.
    for d in places.of_level("district"):
        place("government_hall", shapely.get_coordinates(
            shapely.point_on_surface(places.geoms[d]))[0], 0.0)
    airport = (centres[0] + centres[2]) / 2 + np.array([0.0, 0.05 * places.outline.bounds[3]])
    place("airport", airport, 0.3)
    west = np.array(places.outline.bounds[:2]) + np.array([0.12, 0.5]) * (
        np.array(places.outline.bounds[2:]) - np.array(places.outline.bounds[:2]))
    place("border_port", west, 0.0)
    missing = set(KEY_AREA_CATEGORIES) - set(areas.categories)
    for category in sorted(missing):  # a tiny region may have refused a footprint
        place(category, nb[int(rng.integers(len(nb)))], 0.0)
    return areas


@dataclass
class Cameras:
    """Cameras (metric positions) and their fields of view."""

    xy: np.ndarray
    bearing: np.ndarray
    fov: np.ndarray
    range_m: np.ndarray
    height_m: np.ndarray
    online: np.ndarray


def _azimuth(dxy: np.ndarray) -> np.ndarray:
    """Compass bearing in degrees [0, 360) of vectors (x east, y north)."""
    return np.degrees(np.arctan2(dxy[:, 0], dxy[:, 1])) % 360.0


def build_cameras(areas: KeyAreas, roads: list[shapely.LineString], road_classes: list[str],
                  settlement: Settlement, places: Places, count: int,
                  rng: np.random.Generator) -> Cameras:
    """Cameras clustered around key areas (55%), arterials (35%) and neighbourhoods (10%)."""
    n_key, n_road = int(count * 0.55), int(count * 0.35)
    n_nb = count - n_key - n_road
    # Around key areas: on a ring just outside, looking at the centre.
    centres = np.array([shapely.get_coordinates(g.centroid)[0] for g in areas.geoms])
    sizes = np.array([np.sqrt(max(g.area, 400.0)) / 2 for g in areas.geoms])
    pick = rng.choice(len(centres), size=n_key)
    ang = rng.uniform(0, 2 * np.pi, size=n_key)
    dist = sizes[pick] + rng.uniform(10, 60, size=n_key)
    key_xy = centres[pick] + dist[:, None] * np.column_stack([np.cos(ang), np.sin(ang)])
    key_bearing = _azimuth(centres[pick] - key_xy) + rng.normal(scale=15, size=n_key)
    # Along arterials and motorways: facing along the road.
    main = [r for r, c in zip(roads, road_classes, strict=True) if c in ("arterial", "motorway")]
    lengths = np.array([r.length for r in main])
    which = rng.choice(len(main), size=n_road, p=lengths / lengths.sum())
    at = rng.uniform(0, 1, size=n_road) * lengths[which]
    pts = shapely.line_interpolate_point(np.array(main, dtype=object)[which], at)
    ahead = shapely.line_interpolate_point(np.array(main, dtype=object)[which],
                                           np.minimum(at + 5.0, lengths[which]))
    road_xy = shapely.get_coordinates(pts)
    heading = shapely.get_coordinates(ahead) - road_xy
    road_bearing = _azimuth(heading) + np.where(rng.random(n_road) < 0.5, 0.0, 180.0)
    side = np.column_stack([heading[:, 1], -heading[:, 0]])
    side /= np.maximum(np.linalg.norm(side, axis=1, keepdims=True), 1e-9)
    road_xy = road_xy + side * rng.choice([-8.0, 8.0], size=(n_road, 1))
    # Neighbourhood gates: on the edge, looking in.
    gate = rng.choice(len(settlement.nb_centres), size=n_nb)
    ang = rng.uniform(0, 2 * np.pi, size=n_nb)
    nb_xy = settlement.nb_centres[gate] + settlement.nb_radius[gate, None] * np.column_stack(
        [np.cos(ang), np.sin(ang)])
    nb_bearing = _azimuth(settlement.nb_centres[gate] - nb_xy)

    xy = np.vstack([key_xy, road_xy, nb_xy])
    bearing = np.concatenate([key_bearing, road_bearing, nb_bearing]) % 360.0
    dome = rng.random(len(xy)) < 0.15
    fov = np.where(dome, 360.0, rng.uniform(50, 95, size=len(xy)))
    range_m = np.where(dome, rng.uniform(30, 60, size=len(xy)), rng.uniform(40, 150, size=len(xy)))
    bearing = np.where(dome, 0.0, np.round(bearing, 1) % 360.0)
    keep = shapely.contains_xy(places.outline, xy[:, 0], xy[:, 1])
    return Cameras(xy[keep], bearing[keep], np.round(fov[keep], 1), np.round(range_m[keep], 1),
                   np.round(rng.uniform(3, 12, size=keep.sum()), 1),
                   rng.random(keep.sum()) >= 0.07)


def build_checkpoints(places: Places, roads: list[shapely.LineString],
                      road_classes: list[str], rng: np.random.Generator
                      ) -> tuple[list[shapely.Point], list[str], list[str]]:
    """Checkpoints at ~60% of main-road border crossings, police stations, e-gates."""
    geoms: list[shapely.Point] = []
    names: list[str] = []
    kinds: list[str] = []
    borders = shapely.difference(
        shapely.union_all([places.geoms[i].boundary for i in places.of_level("city")]),
        places.outline.boundary.buffer(1.0),
    )
    for road, road_class in zip(roads, road_classes, strict=True):
        if road_class not in ("arterial", "motorway"):
            continue
        crossing = shapely.intersection(road, borders)
        for pt in shapely.get_parts(crossing):
            if pt.geom_type != "Point" or rng.random() > 0.6:
                continue
            kind = "e_gate" if road_class == "motorway" else "checkpoint"
            geoms.append(pt)
            names.append(f"边界{'电子卡口' if kind == 'e_gate' else '检查站'}{len(geoms)}")
            kinds.append(kind)
    for s in places.of_level("street"):
        geoms.append(shapely.point_on_surface(places.geoms[s]))
        names.append(f"{places.names[s].removesuffix('街道')}派出所")
        kinds.append("police_station")
    for road, road_class in zip(roads, road_classes, strict=True):
        if road_class == "motorway":
            for d in np.arange(4000.0, road.length, 6000.0):
                geoms.append(shapely.line_interpolate_point(road, d))
                names.append(f"高速电子卡口{len(geoms)}")
                kinds.append("e_gate")
    return geoms, names, kinds


def add_security_posts(areas: KeyAreas, geoms: list, names: list, kinds: list,
                       rng: np.random.Generator) -> None:
    """Security posts (治安卡点) at a third of schools, stations and markets."""
    for g, name, category in zip(areas.geoms, areas.names, areas.categories, strict=True):
        if category in ("school", "station", "market") and rng.random() < 0.34:
            geoms.append(shapely.Point(shapely.get_coordinates(g.centroid)[0] + 15.0))
            names.append(f"{name}治安卡点")
            kinds.append("security_post")


_HOURLY = np.array([3, 2, 1.5, 1, 1, 1, 1.5, 2.5, 4, 5, 5.5, 6.5, 6.5, 5.5, 5, 5, 5.5, 6, 6.5,
                    7, 8, 8.5, 8, 5.5])
_WEEKLY = np.array([1.0, 0.95, 0.95, 1.05, 1.35, 1.45, 1.15])  # Monday .. Sunday
_MIX = {
    "background": (["dispute", "traffic", "fire", "fraud", "other", "public_order", "criminal"],
                   [0.3, 0.2, 0.05, 0.15, 0.15, 0.08, 0.07]),
    "venue": (["public_order", "criminal", "dispute", "fraud", "other"],
              [0.35, 0.25, 0.2, 0.1, 0.1]),
    "emerging": (["criminal", "public_order", "fraud"], [0.5, 0.3, 0.2]),
}


def demo_start(end: dt.date) -> dt.datetime:
    """Midnight (CST) opening the demo's :data:`DAYS` days that end with the day ``end``."""
    return dt.datetime.combine(end - dt.timedelta(days=DAYS - 1), dt.time(), CST)


def _month_index(start: dt.datetime) -> np.ndarray:
    """Per day of the demo year, the calendar month counted from ``start``'s (0..11).

    A year that starts mid-month ends in the same calendar month a year later: its last
    days count as month 11 too.
    """
    days = [start + dt.timedelta(days=d) for d in range(DAYS)]
    index = np.array([(d.year - start.year) * 12 + d.month - start.month for d in days])
    return np.minimum(index, 11)


def _times(n: int, rng: np.random.Generator, start: dt.datetime, evening: bool = False,
           months: np.ndarray | None = None) -> np.ndarray:
    """``n`` timestamps in the demo year from ``start`` with the weekly and daily rhythm."""
    day_w = _WEEKLY[(np.arange(DAYS) + start.weekday()) % 7].astype(float)
    if months is not None:
        day_w = day_w * months[_month_index(start)]
    days = rng.choice(DAYS, size=n, p=day_w / day_w.sum())
    hourly = _HOURLY * (np.where(np.arange(24) >= 19, 2.0, 1.0) if evening else 1.0)
    hours = rng.choice(24, size=n, p=hourly / hourly.sum())
    seconds = days * 86400 + hours * 3600 + rng.integers(0, 3600, size=n)
    return (pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")).to_numpy()


def build_incidents(places: Places, settlement: Settlement, areas: KeyAreas, count: int,
                    rng: np.random.Generator, end: dt.date
                    ) -> tuple[np.ndarray, np.ndarray, list, np.ndarray]:
    """Incident positions (metres), times (UTC datetime64), categories and severities.

    Times fall in the demo year that ends with the day ``end``.
    """
    start = demo_start(end)
    n_bg, n_venue = int(count * 0.55), int(count * 0.35)
    n_em = count - n_bg - n_venue
    parts_xy, parts_t, parts_cat = [], [], []
    w = settlement.persons / settlement.persons.sum()
    at = rng.choice(len(w), size=n_bg, p=w)
    parts_xy.append(settlement.households[at] + rng.normal(scale=40, size=(n_bg, 2)))
    parts_t.append(_times(n_bg, rng, start))
    parts_cat.append(("background", n_bg))

    venues = areas.centres(("entertainment", "station", "market"))
    strength = rng.lognormal(0, 0.7, size=len(venues))
    at = rng.choice(len(venues), size=n_venue, p=strength / strength.sum())
    spread = rng.uniform(60, 150, size=len(venues))[at, None]
    parts_xy.append(venues[at] + rng.normal(size=(n_venue, 2)) * spread)
    parts_t.append(_times(n_venue, rng, start, evening=True))
    parts_cat.append(("venue", n_venue))

    zhuzhou = np.linalg.norm(settlement.nb_centres - places.city_centres[2], axis=1)
    spot = settlement.nb_centres[np.argsort(zhuzhou)[min(3, len(zhuzhou) - 1)]]
    growth = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3.5, 5.5])  # months 0..11
    parts_xy.append(spot + rng.normal(scale=120, size=(n_em, 2)))
    parts_t.append(_times(n_em, rng, start, evening=True, months=growth))
    parts_cat.append(("emerging", n_em))

    xy = np.vstack(parts_xy)
    times = np.concatenate(parts_t)
    categories: list[str] = []
    for component, n in parts_cat:
        names, p = _MIX[component]
        categories += list(rng.choice(names, size=n, p=p))
    severity = rng.choice([1, 2, 3, 4, 5], size=len(xy), p=[0.45, 0.3, 0.15, 0.07, 0.03])
    inside = shapely.contains_xy(places.outline, xy[:, 0], xy[:, 1])
    order = np.argsort(times[inside], kind="stable")
    return (xy[inside][order], times[inside][order],
            list(np.array(categories, dtype=object)[inside][order]), severity[inside][order])
