"""Generated demo data: three adjacent cities in Hunan, deterministic for a seed.

``generate(scale, seed)`` builds every layer in memory (EPSG:4326 GeoDataFrames);
``load(engine, scale, seed)`` replaces all layers with them in one transaction. No
data is downloaded: shapes are invented, placed around Changsha, Xiangtan and Zhuzhou
(长株潭) so that coordinates, the UTM zone and the GCJ-02 offset are realistic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Engine, text

from geo.crs import Projection

from ..partitions import months_of, prepare
from ..registry import LAYERS
from ..store import q, write_in
from ..users import add_user
from ..validate import clean_features
from .names import person_names, phone_numbers
from .network import build_roads
from .only import DEMO_CITIES, checked_cities, demo_users, keep_only
from .patrols import build_patrols
from .places import SCALES, build_places
from .safety import (
    add_security_posts,
    build_cameras,
    build_checkpoints,
    build_incidents,
    build_key_areas,
    demo_start,
)
from .settlement import build_settlement, plan_grids

__all__ = ["CENTRE", "DEMO_CITIES", "DEMO_USERS", "LOAD_ORDER", "SCALES", "default_end",
           "checked_cities", "demo_start", "demo_users", "generate", "is_loaded", "load"]

CENTRE = (112.98, 28.02)  # lon, lat of the demo region's centre
METRIC_EPSG = 32649  # WGS 84 / UTM zone 49N
# Layers in the order they are written (references first).
LOAD_ORDER = ("jurisdictions", "roads", "buildings", "key_areas", "grids", "household_units",
              "households", "cameras", "checkpoints", "incidents", "patrol_routes")


class _Frame:
    """Turns metric geometries of the demo plane into EPSG:4326 GeoDataFrames."""

    def __init__(self, width: float, height: float):
        self.projection = Projection(METRIC_EPSG)
        cx, cy = self.projection.project_xy(*CENTRE)
        # the plane is the UTM zone shifted so that its lower left corner is (0, 0)
        self.origin = np.array([cx - width / 2, cy - height / 2])

    def to_lonlat(self, geoms) -> np.ndarray:
        utm = shapely.transform(np.asarray(geoms, dtype=object), lambda xy: xy + self.origin)
        return self.projection.unproject(utm)

    def frame(self, geoms, **columns) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(columns, geometry=self.to_lonlat(geoms), crs=4326)


def _points(xy: np.ndarray) -> np.ndarray:
    return shapely.points(xy)


def default_end(now: dt.datetime | None = None) -> dt.date:
    """The demo's default last day: yesterday in China Standard Time.

    The twelve months then end when the demo is generated and no incident lies ahead.
    """
    now = now or dt.datetime.now(dt.UTC)
    return (now.astimezone(dt.timezone(dt.timedelta(hours=8))) - dt.timedelta(days=1)).date()


def is_loaded(db: Engine) -> bool:
    """Whether the database behind ``db`` already holds jurisdictions (demo or not)."""
    with db.connect() as conn:
        return conn.execute(text("SELECT EXISTS (SELECT 1 FROM jurisdictions)")).scalar_one()


def generate(scale: str = "small", seed: int = 1,
             progress: Callable[[str], None] | None = None,
             end: dt.date | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Build every demo layer for ``scale`` (small, city, province) and ``seed``.

    The incidents span the 365 days ending with the day ``end`` (default
    :func:`default_end`). Places and shapes depend on ``seed`` only; ``end`` shifts times.
    """
    end = end or default_end()
    if scale not in SCALES:
        raise ValueError(f"unknown demo scale {scale!r}; use one of {', '.join(SCALES)}")
    say = progress or (lambda _msg: None)
    sc = SCALES[scale]
    rng = np.random.default_rng(seed)
    frame = _Frame(sc.width_m, sc.height_m)
    say("jurisdictions")
    places = build_places(sc, rng)
    say("neighbourhoods, buildings and households")
    settlement = build_settlement(places, sc, rng)
    household_codes = [f"H{i + 1:07d}" for i in range(len(settlement.households))]
    say("roads")
    roads, road_names, road_classes = build_roads(places, settlement, sc, rng)
    say("key areas, cameras and checkpoints")
    areas = build_key_areas(places, settlement, rng)
    cameras = build_cameras(areas, roads, road_classes, settlement, places, sc.cameras, rng)
    cp_geoms, cp_names, cp_kinds = build_checkpoints(places, roads, road_classes, rng)
    add_security_posts(areas, cp_geoms, cp_names, cp_kinds, rng)
    say("grids and joint-household units")
    # Planned in lon/lat: grid edges on a community boundary are then its own edges.
    lonlat_places = dataclasses.replace(places, geoms=list(frame.to_lonlat(places.geoms)))
    lonlat_homes = shapely.get_coordinates(frame.to_lonlat(_points(settlement.households)))
    plan = plan_grids(lonlat_places, dataclasses.replace(settlement, households=lonlat_homes),
                      sc, rng, household_codes, min_area=1e-10)
    _carve_dedicated_grids(plan, frame.to_lonlat(areas.geoms), areas, margin=1e-5)
    say("incidents")
    inc_xy, inc_t, inc_cat, inc_sev = build_incidents(places, settlement, areas, sc.incidents,
                                                      rng, end)
    layers = {
        "jurisdictions": frame.frame(
            [shapely.MultiPolygon(shapely.get_parts(g)) for g in places.geoms],
            code=places.codes, name=places.names, level=places.levels,
            parent_code=places.parents),
        "roads": frame.frame(roads, name=road_names, **{"class": road_classes}),
        "buildings": frame.frame(settlement.buildings, height_m=settlement.building_height),
        "key_areas": frame.frame(areas.geoms, name=areas.names, category=areas.categories,
                                 security_staff=areas.staff),
        "grids": gpd.GeoDataFrame(
            {"code": plan.grid_codes, "name": plan.grid_names, "kind": plan.grid_kinds,
             "jurisdiction_code": plan.grid_parents}, geometry=plan.grid_geoms, crs=4326),
        "household_units": gpd.GeoDataFrame(
            {"code": plan.unit_codes, "grid_code": plan.unit_grids,
             "head_household": plan.unit_heads, "size": plan.unit_sizes},
            geometry=plan.unit_geoms, crs=4326),
        "households": frame.frame(_points(settlement.households), code=household_codes,
                                  persons=settlement.persons,
                                  head_name=person_names(rng, len(household_codes)),
                                  phone=phone_numbers(rng, len(household_codes))),
        "cameras": frame.frame(
            _points(cameras.xy),
            code=[f"CAM{i + 1:06d}" for i in range(len(cameras.xy))],
            bearing=cameras.bearing, fov=cameras.fov, range_m=cameras.range_m,
            height_m=cameras.height_m,
            status=np.where(cameras.online, "online", "offline")),
        "checkpoints": frame.frame(cp_geoms, name=cp_names, kind=cp_kinds),
        "incidents": frame.frame(_points(inc_xy), occurred_at=inc_t, category=inc_cat,
                                 severity=inc_sev),
    }
    layers["incidents"]["occurred_at"] = layers["incidents"]["occurred_at"].dt.tz_convert("UTC")
    say("joint patrol routes")
    patrols = build_patrols(places, roads, cp_geoms, inc_xy, inc_t, inc_sev)
    layers["patrol_routes"] = frame.frame(
        patrols.routes, name=patrols.names, border=patrols.borders, team=patrols.teams,
        workload=patrols.workloads, hours=patrols.hours, jurisdiction_code=patrols.cities)
    return layers


def _carve_dedicated_grids(plan, geoms, areas, margin: float) -> None:
    """Carve dedicated grids (专属网格) for schools and hospitals out of their grid.

    The site becomes its own grid and is cut out of the comprehensive grid around it.
    """
    tree = shapely.STRtree(plan.grid_geoms)
    n = 0
    for geom, name, category in zip(geoms, areas.names, areas.categories, strict=True):
        if category not in ("school", "hospital") or geom.geom_type != "Polygon":
            continue
        hits = [int(i) for i in tree.query(geom, predicate="intersects")]
        if len(hits) != 1:
            continue
        host = plan.grid_geoms[hits[0]]
        if not shapely.contains(host.buffer(-margin), geom):
            continue
        # The site's own ring becomes a hole, so both grids share identical vertices.
        carved = shapely.Polygon(host.exterior, [*host.interiors, geom.exterior])
        if not carved.is_valid:
            continue
        n += 1
        plan.grid_geoms[hits[0]] = carved
        plan.grid_codes.append(f"{plan.grid_parents[hits[0]]}Z{n:02d}")
        plan.grid_names.append(f"{name}专属网格")
        plan.grid_kinds.append("dedicated")
        plan.grid_parents.append(plan.grid_parents[hits[0]])
        plan.grid_geoms.append(geom)


# One user per role; the passwords are for the local demo only and are printed.
DEMO_USERS = (
    {"name": "admin", "role": "admin", "jurisdiction": None, "partner": None},
    {"name": "planner", "role": "planner", "jurisdiction": "430100", "partner": None},
    {"name": "police", "role": "police", "jurisdiction": "430100", "partner": None},
    {"name": "partner", "role": "border_partner", "jurisdiction": "430100",
     "partner": "430300"},
    {"name": "viewer", "role": "viewer", "jurisdiction": "430100", "partner": None},
)
for _user in DEMO_USERS:
    _user["password"] = f"{_user['name']}-demo-2026"


def _create_demo_users(conn, users: tuple[dict, ...] = DEMO_USERS) -> None:
    """Replace the demo users (same names) with fresh ones."""
    for user in users:
        conn.execute(text("DELETE FROM users WHERE name = :n"), {"n": user["name"]})
        add_user(conn, user["name"], user["role"], user["password"], user["jurisdiction"],
                 user["partner"])


def load(engine: Engine, scale: str = "small", seed: int = 1,
         progress: Callable[[str], None] | None = None,
         end: dt.date | None = None, only: tuple[str, ...] = ()) -> dict[str, int]:
    """Replace every layer with the demo of ``scale``/``seed`` in one transaction.

    Incidents run up to the day ``end`` (default :func:`default_end`). ``only``: codes
    of demo cities (:data:`DEMO_CITIES`) to keep, with their neighbours' boundaries
    (:mod:`layers.demo.only`); empty: all three. Returns the feature count per layer.
    """
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    only = checked_cities(only)
    end = end or default_end()
    layers = generate(scale, seed, progress, end)
    cleaned = {name: clean_features(gdf, LAYERS[name]) for name, gdf in layers.items()}
    for name, gdf in cleaned.items():  # before the long transaction: see layers.partitions
        if LAYERS[name].partitioned:
            prepare(engine, LAYERS[name], months_of(gdf[LAYERS[name].time_field]))
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for name in reversed(LOAD_ORDER):
            conn.execute(text(f"DELETE FROM {q(name)}"))
        for name in LOAD_ORDER:
            say(f"writing {name} ({len(cleaned[name])})")
            counts[name] = write_in(conn, LAYERS[name], cleaned[name], mode="append",
                                    actor="demo", source=f"demo {scale} seed {seed} to {end}",
                                    progress=False)
        if only:
            say(f"keeping {', '.join(only)} and their neighbours' boundaries")
            keep_only(conn, only, LOAD_ORDER)
            counts = {name: conn.execute(text(f"SELECT count(*) FROM {q(name)}")).scalar_one()
                      for name in LOAD_ORDER}
        _create_demo_users(conn, demo_users(only, DEMO_USERS))
        conn.execute(text("ANALYZE"))
    say(f"done in {time.perf_counter() - t0:.1f} s")
    return counts

