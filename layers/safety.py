"""The safety index of the grids of a jurisdiction, from stored incidents (see geo.safety)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.emerging import mann_kendall
from geo.hotspots import benjamini_hochberg, classify, count_points, gi_star, two_sided_p
from geo.safety import RESIDENT_PRIOR, WEIGHTS, grid_month_counts, safety_scores

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


def _stamps(edges: list[dt.datetime]) -> np.ndarray:
    """The month edges as UTC ``datetime64[s]``, the last rounded up to the second.

    Incident times are cut to the second: rounding the period's end up keeps an incident
    of its last second in the last month.
    """
    stamps = [np.datetime64(e.astimezone(dt.UTC).replace(tzinfo=None), "us") for e in edges]
    return np.array([*(s.astype("datetime64[s]") for s in stamps[:-1]),
                     (stamps[-1] + np.timedelta64(999_999, "us")).astype("datetime64[s]")])


def _feature(row, geom: shapely.Geometry, scored: dict, monthly: np.ndarray,
             weighted: float, trend_z: float, hot: float, coverage: float) -> dict:
    """One grid's feature: its fields, score and level, and the inputs behind them."""
    return {"type": "Feature", "id": row["id"], "geometry": shapely.geometry.mapping(geom),
            "properties": {
                "code": row["code"], "name": row["name"], "kind": row["kind"],
                "score": round(float(scored["score"]), 1), "level": int(scored["level"]),
                "households": int(row["households"]), "population": int(row["population"]),
                "incidents_12m": int(monthly.sum()), "weighted_incidents": float(weighted),
                "rate_per_1000": round(float(scored["rate_per_1000"]), 3),
                "trend_z": round(float(trend_z), 3), "hot_share": round(float(hot), 4),
                "key_areas": int(row["key_areas"]),
                "key_areas_per_km2": round(float(scored["key_areas_per_km2"]), 3),
                "coverage": round(float(coverage), 4),
                "monthly": [int(c) for c in monthly]}}


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
        "SELECT t.id, t.code, t.name, t.kind, coalesce(t.households, 0) AS households, "
        "coalesce(t.population, 0) AS population, coalesce(t.key_areas, 0) AS key_areas, "
        "coalesce(t.area_m2, 0) AS area_m2, ST_AsBinary(t.geom) AS wkb FROM grids t "
        f"WHERE t.jurisdiction_code = ANY(:codes){where} ORDER BY t.id"),
        {**scope.params, "codes": subtree_codes(conn, code)}).mappings().all()
    if not rows:
        return {"type": "FeatureCollection", "features": [], "parameters": {
            "jurisdiction": code, "from": start.isoformat(), "to": end.isoformat()}}
    geoms = [shapely.from_wkb(bytes(r["wkb"])) for r in rows]
    metric = data.projection.project(np.array(geoms, dtype=object))
    monthly, weighted = grid_month_counts(metric, data.xy, data.when, _stamps(edges),
                                          data.severity)
    _s, trend_z, _p = mann_kendall(monthly)
    hot = _hot_share(data, query, metric)
    watched = grid_coverage(conn, user, code)
    coverage = np.array([watched.get(r["id"], 0.0) for r in rows])
    column = {k: np.array([r[k] for r in rows]) for k in ("population", "key_areas",
                                                          "area_m2")}
    result = safety_scores(weighted, column["population"], trend_z, hot, column["key_areas"],
                           column["area_m2"] / 1e6, coverage)
    features = [_feature(r, geoms[i], {k: v[i] for k, v in result.items() if k != "risks"},
                         monthly[i], weighted[i], trend_z[i], hot[i], coverage[i])
                for i, r in enumerate(rows)]
    return {"type": "FeatureCollection", "features": features,
            "parameters": {"jurisdiction": code, "from": start.isoformat(),
                           "to": end.isoformat(), "weights": WEIGHTS,
                           "resident_prior": RESIDENT_PRIOR,
                           "formula": "score = 100 * (1 - weighted mean of the risks: rate "
                                      "percentile, Phi(trend z), hot-spot share, key-area "
                                      "density percentile, 1 - camera coverage percentile)"}}
