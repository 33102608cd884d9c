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

from .access import read_scope, subtree_codes
from .coverage import grid_coverage
from .hotspots import HotspotData, HotspotQuery, hotspot_lattice, load_hotspot_data
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


def _hot_share(data: HotspotData, query: HotspotQuery, metric_grids: np.ndarray) -> np.ndarray:
    """Share of each grid's area in Gi* hot cells (90 % or more, FDR) over the period."""
    if len(data.xy) < 3:
        return np.zeros(len(metric_grids))
    lattice, _size, _chosen = hotspot_lattice(data, query)
    z = gi_star(lattice, count_points(lattice, data.xy))
    hot = np.char.startswith(classify(z, benjamini_hochberg(two_sided_p(z))).astype(str), "hot")
    if not hot.any():
        return np.zeros(len(metric_grids))
    hot_area = shapely.union_all(lattice.cells.geometry.values[hot])
    return shapely.area(shapely.intersection(metric_grids, hot_area)) / np.maximum(
        shapely.area(metric_grids), 1e-9)


def safety_index(conn: Connection, user: User, code: str,
                 end: dt.datetime | None = None) -> dict:
    """The grids under ``code`` as a FeatureCollection with ``score``, ``level`` and inputs."""
    scope = read_scope(conn, user, LAYERS["grids"])
    end = end or dt.datetime.now(dt.UTC)
    edges = _month_edges(end)
    start = edges[0]
    query = HotspotQuery(code, start, end)
    # checks the jurisdiction and the user's right to it
    data = load_hotspot_data(conn, user, query)
    where = f" AND ({scope.condition})" if scope.condition else ""
    rows = conn.execute(text(
        "SELECT t.id, t.code, t.name, t.kind, coalesce(t.households, 0), "
        "coalesce(t.population, 0), coalesce(t.key_areas, 0), coalesce(t.area_m2, 0), "
        f"ST_AsBinary(t.geom) FROM grids t WHERE t.jurisdiction_code = ANY(:codes){where} "
        "ORDER BY t.id"), {**scope.params, "codes": subtree_codes(conn, code)}).all()
    if not rows:
        return {"type": "FeatureCollection", "features": [], "parameters": {
            "jurisdiction": code, "from": start.isoformat(), "to": end.isoformat()}}
    geoms = [shapely.from_wkb(bytes(r[8])) for r in rows]
    forward = Transformer.from_crs(4326, data.crs, always_xy=True)
    metric = shapely.transform(np.array(geoms, dtype=object),
                               lambda c: np.column_stack(forward.transform(c[:, 0], c[:, 1])))
    # each incident in one grid (the first by id when it lies on a shared edge)
    point_at, grid_at = shapely.STRtree(metric).query(shapely.points(data.xy),
                                                      predicate="intersects")
    first = np.unique(point_at, return_index=True)[1]
    point_at, grid_at = point_at[first], grid_at[first]
    stamps = np.array([np.datetime64(e.astimezone(dt.UTC).replace(tzinfo=None), "s")
                       for e in edges])
    month = np.searchsorted(stamps, data.when[point_at], side="right") - 1
    monthly = np.bincount(grid_at * MONTHS + month,
                          minlength=len(rows) * MONTHS).reshape(len(rows), MONTHS)
    weighted = np.bincount(grid_at, weights=data.severity[point_at], minlength=len(rows))
    _s, trend_z, _p = mann_kendall(monthly)
    hot = _hot_share(data, query, metric)
    watched = grid_coverage(conn, user, code)
    coverage = np.array([watched.get(r[0], 0.0) for r in rows])
    result = safety_scores(weighted, np.array([r[5] for r in rows]), trend_z, hot,
                           np.array([r[6] for r in rows]), np.array([r[7] for r in rows]) / 1e6,
                           coverage)
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
                             "coverage": round(float(coverage[i]), 4),
                             "monthly": [int(c) for c in monthly[i]]}})
    return {"type": "FeatureCollection", "features": features,
            "parameters": {"jurisdiction": code, "from": start.isoformat(),
                           "to": end.isoformat(), "weights": WEIGHTS,
                           "resident_prior": RESIDENT_PRIOR,
                           "formula": "score = 100 * (1 - weighted mean of the risks: rate "
                                      "percentile, Phi(trend z), hot-spot share, key-area "
                                      "density percentile, 1 - camera coverage percentile)"}}
