"""Risk terrain runs over stored layers, checked against hot spots on the following period.

The incidents of a jurisdiction and period are read by :func:`layers.hotspots.load_hotspot_data`
(scope checked) and counted on the cells of :func:`layers.hotspots.hotspot_lattice`. The
candidate risk factors are the stored features within the jurisdiction and a margin of
the longest distance tried:

- each category of ``key_areas`` present (school, hospital, market, entertainment...),
  its own factor ``key_areas:CATEGORY`` (points and polygons);
- ``roads:arterial`` and ``roads:motorway`` (lines);
- ``checkpoints`` (every kind), as an *absence* factor: the risk is being far from one;
- ``cameras:offline`` (points): cameras out of service.

Online and planned cameras, buildings and households are not candidates (households are
personal data; online cameras are what a terrain is meant to direct, not a cause).
:func:`geo.rtm.fit_terrain` selects and weighs the factors. The terrain is judged on the
period of the same length that follows ``to``: the PAI (Chainey et al. 2008,
:func:`geo.hotspots.evaluate`) of the 5 % and 10 % of the area with the highest relative
risk score, next to those of Gi* and KDE (:func:`geo.hotspots.gi_star`,
:func:`geo.hotspots.kde`) on the same training incidents. Every run is saved in
``hotspot_runs`` as kind ``terrain``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.hotspots import Lattice, count_points, evaluate, gi_star, kde
from geo.rtm import RiskFactor, TerrainModel, default_distances, fit_terrain

from .hotspots import (
    AGGREGATE_ONLY,
    MIN_SHOWN,
    BadHotspotRequest,
    HotspotData,
    HotspotQuery,
    hotspot_lattice,
    load_hotspot_data,
)
from .incidents import read_incidents
from .runs import save_run
from .users import User

__all__ = ["SHARES", "TerrainQuery", "read_factors", "run_terrain", "top_share"]

SHARES = (0.05, 0.10)  # the shares of the area whose PAI is reported
MAX_DISTANCES = 12
MAX_FOLDS = 20
MAX_CELLS = 20_000  # a terrain fits dozens of Poisson models over the cells


@dataclass(frozen=True)
class TerrainQuery:
    """What a terrain is fitted on.

    ``area``: where and when; ``distances``: metres tried (None: multiples of the cell);
    ``folds`` and ``seed`` of the cross-validation.
    """

    area: HotspotQuery
    distances: tuple[float, ...] | None = None
    folds: int = 5
    seed: int = 0

    def check(self) -> None:
        """BadHotspotRequest naming the first unusable parameter."""
        self.area.check()
        if self.distances is not None:
            if not self.distances or len(self.distances) > MAX_DISTANCES:
                raise BadHotspotRequest(f"distances must be 1 to {MAX_DISTANCES} numbers of "
                                        "metres")
            if not all(math.isfinite(d) and 0 < d <= 10_000 for d in self.distances):
                raise BadHotspotRequest(f"distances must be metres in (0, 10000], got "
                                        f"{list(self.distances)}")
        if not 2 <= self.folds <= MAX_FOLDS:
            raise BadHotspotRequest(f"folds must be a whole number from 2 to {MAX_FOLDS}, "
                                    f"got {self.folds}")
        if not 0 <= self.seed < 2**32:
            raise BadHotspotRequest(f"seed must be a whole number from 0 to 2^32-1, got "
                                    f"{self.seed}")


# Every candidate factor's features in the zone (lon/lat, EPSG:4326), one query.
_FACTORS = (
    "SELECT 'key_areas:' || k.category AS factor, ST_AsBinary(k.geom) AS wkb "
    "FROM key_areas k, ST_GeomFromWKB(:z, 4326) AS z "
    "WHERE k.geom && z AND ST_Intersects(k.geom, z) "
    "UNION ALL SELECT 'roads:' || r.class, ST_AsBinary(r.geom) "
    "FROM roads r, ST_GeomFromWKB(:z, 4326) AS z WHERE r.class IN ('arterial', 'motorway') "
    "AND r.geom && z AND ST_Intersects(r.geom, z) "
    "UNION ALL SELECT 'checkpoints', ST_AsBinary(c.geom) "
    "FROM checkpoints c, ST_GeomFromWKB(:z, 4326) AS z "
    "WHERE c.geom && z AND ST_Intersects(c.geom, z) "
    "UNION ALL SELECT 'cameras:offline', ST_AsBinary(c.geom) "
    "FROM cameras c, ST_GeomFromWKB(:z, 4326) AS z WHERE c.status = 'offline' "
    "AND c.geom && z AND ST_Intersects(c.geom, z)")


def read_factors(conn: Connection, data: HotspotData, margin: float) -> list[RiskFactor]:
    """The candidate factors within the jurisdiction and ``margin`` metres around it.

    Geometries in the metric CRS of ``data``; factors sorted by name.
    """
    zone = data.projection.unproject(shapely.buffer(data.area, margin))
    grouped: dict[str, list] = {}
    for factor, wkb in conn.execute(text(_FACTORS), {"z": shapely.to_wkb(zone)}).all():
        grouped.setdefault(factor, []).append(shapely.from_wkb(bytes(wkb)))
    return [RiskFactor(name, np.asarray(data.projection.project(np.array(geoms,
                                                                         dtype=object))),
                       absence=name == "checkpoints")
            for name, geoms in sorted(grouped.items())]


def top_share(score: np.ndarray, areas: np.ndarray, share: float) -> np.ndarray:
    """The highest-scored cells up to ``share`` of the area (at least one); a mask.

    Ties keep the cells' order (a stable sort), as :func:`layers.hotspots.run_evaluation`.
    """
    ranked = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    within = np.cumsum(areas[ranked]) <= share * areas.sum()
    chosen = np.zeros(len(ranked), dtype=bool)
    chosen[ranked[:max(1, int(within.sum()))]] = True
    return chosen


def _validation(conn: Connection, data: HotspotData, query: HotspotQuery, lattice: Lattice,
                counts: np.ndarray, rrs: np.ndarray) -> tuple[dict | None, str | None]:
    """PAI of the terrain, Gi* and KDE on the following period, or None and why not."""
    end = query.end + (query.end - query.start)
    tested = read_incidents(conn, data.crs, jurisdiction=query.jurisdiction, start=query.end,
                            end=end, category=query.category, hours=query.hours,
                            weekdays=query.weekdays)
    test_counts = count_points(lattice, tested.xy)
    if test_counts.sum() == 0:
        return None, (f"no incidents in the following period {query.end.isoformat()} to "
                      f"{end.isoformat()} to test on")
    areas = shapely.area(lattice.cells.geometry.values)
    scores = {"rtm": rrs, "gi": gi_star(lattice, counts, query.neighbours)}
    if len(data.xy) >= 2:
        scores["kde"] = kde(lattice, data.xy)
    out: dict = {"from": query.end.isoformat(), "to": end.isoformat(),
                 "incidents_in_cells": int(test_counts.sum()), "methods": {}}
    for method, score in scores.items():
        out["methods"][method] = {
            f"{round(share * 100)}%": {k: _number(v) for k, v in evaluate(
                top_share(score, areas, share), test_counts, areas, counts).items()}
            for share in SHARES}
    return out, None


def _number(value: object) -> object:
    """A float rounded to 6 decimals, None when not finite (JSON has no NaN)."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def _cells(lattice: Lattice, data: HotspotData, user: User, rrs: np.ndarray,
           counts: np.ndarray) -> list[dict]:
    """The cells in lon/lat with ``rrs`` and ``count`` (no count below MIN_SHOWN: aggregates)."""
    geoms = shapely.set_precision(data.projection.unproject(lattice.cells.geometry.values),
                                  1e-7)
    shapes = json.loads(shapely.to_geojson(shapely.GeometryCollection(list(geoms))))
    hide = user.role in AGGREGATE_ONLY
    out = []
    for i, geometry in enumerate(shapes["geometries"]):
        props: dict = {"row": int(lattice.cells["row"].iat[i]),
                       "col": int(lattice.cells["col"].iat[i]), "rrs": round(float(rrs[i]), 6)}
        if not hide or counts[i] >= MIN_SHOWN:
            props["count"] = int(counts[i])
        out.append({"type": "Feature", "geometry": geometry, "properties": props})
    return out


def _parameters(query: TerrainQuery, size: float, chosen: bool, crs: str,
                distances: tuple[float, ...], factors: list[RiskFactor]) -> dict:
    area = {k: v for k, v in asdict(query.area).items() if k not in ("start", "end")}
    return {**area, "from": query.area.start.isoformat(), "to": query.area.end.isoformat(),
            "cell": size, "cell_chosen": chosen, "metric_crs": crs,
            "distances": list(distances), "folds": query.folds, "seed": query.seed,
            "candidates": [{"factor": f.name, "features": len(f.geometries),
                            "absence": f.absence} for f in factors]}


def _model(model: TerrainModel) -> dict:
    return {"kind": model.model, "aic": round(model.aic, 6), "penalty": model.penalty,
            "intercept": round(model.intercept, 6),
            "poisson_dispersion": round(model.dispersion, 6),
            "negbin_alpha": model.negbin_alpha, "candidate_columns": model.candidates}


def run_terrain(conn: Connection, user: User, query: TerrainQuery) -> dict:
    """A risk terrain of the jurisdiction and period, saved as a ``terrain`` run.

    Cells (lon/lat) with ``rrs``, the factor table, the model and its validation on the
    following period. Raises BadHotspotRequest for unusable parameters (or a period
    with no incident in the cells), UnknownJurisdiction and Forbidden as hot spots do.
    """
    query.check()
    data = load_hotspot_data(conn, user, query.area)
    lattice, size, chosen = hotspot_lattice(data, query.area)
    if len(lattice.cells) > MAX_CELLS:
        raise BadHotspotRequest(f"{len(lattice.cells):,} cells: a terrain is fitted on at "
                                f"most {MAX_CELLS:,} (give a larger cell)")
    distances = query.distances or default_distances(size)
    counts = count_points(lattice, data.xy)
    if counts.sum() == 0:
        raise BadHotspotRequest("no incidents in the cells in this period: nothing to model")
    if query.folds > len(counts):
        raise BadHotspotRequest(f"folds ({query.folds}) is more than the cells "
                                f"({len(counts)})")
    factors = read_factors(conn, data, max(distances))
    centroids = shapely.get_coordinates(shapely.centroid(lattice.cells.geometry.values))
    model = fit_terrain(centroids, counts, factors, tuple(distances), query.folds,
                        query.seed)
    validation, reason = _validation(conn, data, query.area, lattice, counts, model.rrs)
    parameters = _parameters(query, size, chosen, data.crs, tuple(distances), factors)
    summary = {"cells": int(len(counts)), "incidents_in_cells": int(counts.sum()),
               "factors": len(model.factors), "model": model.model}
    body = {"type": "FeatureCollection", "parameters": parameters, "summary": summary,
            "factors": [{k: _number(v) for k, v in row.items()} for row in model.factors],
            "model": _model(model), "validation": validation,
            "validation_reason": reason, "features": _cells(lattice, data, user, model.rrs,
                                                            counts)}
    body["run_id"] = save_run(conn, "hotspot_runs", user, "terrain", query.area.jurisdiction,
                              parameters, summary, body)
    return body
