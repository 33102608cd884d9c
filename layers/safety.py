"""The safety index of the grids of a jurisdiction, from stored incidents (see geo.safety)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import shapely
from pyproj import Transformer
from sqlalchemy import Connection, text

from geo.emerging import mann_kendall
from geo.hotspots import benjamini_hochberg, classify, count_points, gi_star, two_sided_p
from geo.safety import RESIDENT_PRIOR, WEIGHTS, safety_scores

from .access import read_scope, require_within, subtree_codes
from .hotspots import BadHotspotRequest, HotspotQuery, _lattice, _load
from .registry import LAYERS
from .users import User

__all__ = ["safety_index"]

MONTHS = 12


def _month_edges(end: dt.datetime) -> list[dt.datetime]:
    """The starts of the last 12 calendar months before ``end`` (in its time zone), and end."""
    first = end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if first == end:
        first = (first - dt.timedelta(days=1)).replace(day=1)
    starts = [first]
    while len(starts) < MONTHS:
        prev = (starts[0] - dt.timedelta(days=1)).replace(day=1)
        starts.insert(0, prev)
    return [*starts, end]


def _hot_share(conn: Connection, user: User, code: str, start: dt.datetime, end: dt.datetime,
               grids: list[shapely.Geometry]) -> np.ndarray:
    """Share of each grid's area in Gi* hot cells (90 % or more, FDR) over the period."""
    data = _load(conn, user, HotspotQuery(code, start, end))
    if len(data.xy) < 3:
        return np.zeros(len(grids))
    lattice, _size, _chosen = _lattice(data, HotspotQuery(code, start, end))
    counts = count_points(lattice, data.xy)
    z = gi_star(lattice, counts)
    hot = np.char.startswith(classify(z, benjamini_hochberg(two_sided_p(z))).astype(str), "hot")
    if not hot.any():
        return np.zeros(len(grids))
    forward = Transformer.from_crs(4326, data.crs, always_xy=True)
    metric = shapely.transform(np.array(grids, dtype=object),
                               lambda c: np.column_stack(forward.transform(c[:, 0], c[:, 1])))
    hot_area = shapely.union_all(lattice.cells.geometry.values[hot])
    return shapely.area(shapely.intersection(metric, hot_area)) / np.maximum(
        shapely.area(metric), 1e-9)


def safety_index(conn: Connection, user: User, code: str,
                 end: dt.datetime | None = None) -> dict:
    """The grids under ``code`` as a FeatureCollection with ``score``, ``level`` and inputs."""
    scope = read_scope(conn, user, LAYERS["grids"])
    known = conn.execute(text("SELECT 1 FROM jurisdictions WHERE code = :c"), {"c": code}).first()
    if known is None:
        raise BadHotspotRequest(f"unknown jurisdiction {code!r}")
    require_within(conn, user, code)
    end = end or dt.datetime.now(dt.UTC)
    edges = _month_edges(end)
    start = edges[0]
    where = f" AND ({scope.condition})" if scope.condition else ""
    rows = conn.execute(text(
        "SELECT t.id, t.code, t.name, t.kind, coalesce(t.households, 0), "
        "coalesce(t.population, 0), coalesce(t.key_areas, 0), coalesce(t.area_m2, 0), "
        f"ST_AsBinary(t.geom) FROM grids t WHERE t.jurisdiction_code = ANY(:codes){where} "
        "ORDER BY t.id"), {**scope.params, "codes": subtree_codes(conn, code)}).all()
    if not rows:
        return {"type": "FeatureCollection", "features": [], "parameters": {
            "jurisdiction": code, "from": start.isoformat(), "to": end.isoformat()}}
    ids = [r[0] for r in rows]
    position = {grid_id: i for i, grid_id in enumerate(ids)}
    monthly = np.zeros((len(ids), MONTHS))
    weighted = np.zeros(len(ids))
    stamps = [e.timestamp() for e in edges]
    for grid_id, occurred, severity in conn.execute(text(
            "SELECT g.id, i.occurred_at, i.severity FROM grids g JOIN incidents i "
            "ON i.geom && g.geom AND ST_Intersects(g.geom, i.geom) WHERE g.id = ANY(:ids) "
            "AND i.occurred_at >= :s AND i.occurred_at < :e"),
            {"ids": ids, "s": start, "e": end}):
        month = int(np.searchsorted(stamps, occurred.timestamp(), side="right")) - 1
        monthly[position[grid_id], min(month, MONTHS - 1)] += 1
        weighted[position[grid_id]] += severity or 1
    geoms = [shapely.from_wkb(bytes(r[8])) for r in rows]
    _s, trend_z, _p = mann_kendall(monthly)
    hot = _hot_share(conn, user, code, start, end, geoms)
    result = safety_scores(weighted, np.array([r[5] for r in rows]), trend_z, hot,
                           np.array([r[6] for r in rows]), np.array([r[7] for r in rows]) / 1e6)
    features = []
    for i, r in enumerate(rows):
        features.append({"type": "Feature", "id": r[0],
                         "geometry": shapely.geometry.mapping(geoms[i]),
                         "properties": {
                             "code": r[1], "name": r[2], "kind": r[3],
                             "score": round(float(result["score"][i]), 1),
                             "level": int(result["level"][i]),
                             "households": int(r[4]), "population": int(r[5]),
                             "incidents_12m": int(monthly[i].sum()),
                             "weighted_incidents": float(weighted[i]),
                             "rate_per_1000": round(float(result["rate_per_1000"][i]), 3),
                             "trend_z": round(float(trend_z[i]), 3),
                             "hot_share": round(float(hot[i]), 4),
                             "key_areas": int(r[6]),
                             "key_areas_per_km2": round(float(result["key_areas_per_km2"][i]), 3),
                             "coverage": None,
                             "monthly": [int(c) for c in monthly[i]]}})
    return {"type": "FeatureCollection", "features": features,
            "parameters": {"jurisdiction": code, "from": start.isoformat(),
                           "to": end.isoformat(), "weights": WEIGHTS,
                           "resident_prior": RESIDENT_PRIOR,
                           "formula": "score = 100 * (1 - weighted mean of the risks: rate "
                                      "percentile, Phi(trend z), hot-spot share, key-area "
                                      "density percentile, 1 - camera coverage when known)"}}
