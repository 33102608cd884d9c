"""Near-repeat analysis of stored incidents: the Knox table, each incident's class, risk zones.

The incidents of a jurisdiction and period (read by
:func:`layers.hotspots.load_hotspot_data`: scope checked, category, hours and weekdays
applied) are analysed in the UTM zone of the jurisdiction's centre by
:mod:`geo.nearrepeat`: the Knox table of pairs by space band (metres) and time band
(days) with its permutation test, each incident as originator, near repeat or isolated
within one chosen band, and the near-repeat risk zones that the latest incidents open
(returned in lon/lat, EPSG:4326). Planners and viewers, who see aggregates and never
incident points, get the table and the class counts but no zones: a zone's circles are
drawn around incident points. Every run is stored in ``hotspot_runs`` (kind
``near_repeat``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import cKDTree
from sqlalchemy import Connection

from geo.nearrepeat import CLASSES, MAX_BANDS, classify, knox_table, risk_zones

from .hotspots import (
    AGGREGATE_ONLY,
    BadHotspotRequest,
    HotspotData,
    HotspotQuery,
    load_hotspot_data,
)
from .runs import save_run
from .users import User
from .validate import LOCAL_TZ

__all__ = ["MAX_BAND_DAYS", "MAX_BAND_M", "MAX_CLOSE_PAIRS", "MAX_PERMUTATIONS", "MAX_WORK",
           "MIN_BAND_M", "NearRepeatQuery", "check_size", "run_near_repeat"]

MAX_PERMUTATIONS = 999
MAX_SEED = 2**32 - 1
# The classes' and risk zones' distance, metres: below a metre a zone's circles (polygons)
# vanish, and near repeats are local.
MIN_BAND_M = 1.0
MAX_BAND_M = 10_000.0
MAX_BAND_DAYS = 366.0
# Pairs of incidents within the largest space band, all held in memory at once (about
# 65 bytes each at the peak: a year of the city demo within 300 m, 25 million, takes 1.6 GB).
MAX_CLOSE_PAIRS = 40_000_000
# Close pairs x time bands (with beyond) x (permutations + 1): about 2e9 a second, so at
# most about half a minute of counting.
MAX_WORK = 60_000_000_000


@dataclass(frozen=True)
class NearRepeatQuery:
    """The bands and the test of a near-repeat run.

    ``space_bands`` (metres) and ``time_bands`` (days) are the upper edges of the
    finite bands, increasing from above 0 (the first band starts at 0); ``band`` is the
    (metres, days) within which two incidents are linked for the classes and the risk
    zones (None: the first space band and the first time band).
    """

    space_bands: tuple[float, ...] = (100.0, 200.0, 300.0)
    time_bands: tuple[float, ...] = (7.0, 14.0, 21.0, 28.0)
    permutations: int = 99
    seed: int = 0
    band: tuple[float, float] | None = None

    def check(self) -> None:
        """BadHotspotRequest naming the first unusable parameter."""
        _check_bands(self.space_bands, "space_bands", "metres")
        _check_bands(self.time_bands, "time_bands", "days")
        if not 0 <= self.permutations <= MAX_PERMUTATIONS:
            raise BadHotspotRequest(f"permutations must be a whole number from 0 to "
                                    f"{MAX_PERMUTATIONS}, got {self.permutations}")
        if not 0 <= self.seed <= MAX_SEED:
            raise BadHotspotRequest(f"seed must be a whole number from 0 to {MAX_SEED}, got "
                                    f"{self.seed}")
        if self.band is not None:
            space_m, days = self.band
            if not (MIN_BAND_M <= space_m <= MAX_BAND_M and 0 < days <= MAX_BAND_DAYS):
                raise BadHotspotRequest(
                    f"band must be metres,days (e.g. 200,14): {MIN_BAND_M:g} to "
                    f"{MAX_BAND_M:g} m and more than 0 to {MAX_BAND_DAYS:g} days, got "
                    f"{space_m:g},{days:g}")

    @property
    def linked(self) -> tuple[float, float]:
        """(metres, days) of the classes and risk zones: ``band`` or the first bands."""
        return self.band if self.band is not None else (self.space_bands[0],
                                                        self.time_bands[0])


def _check_bands(edges: tuple[float, ...], name: str, unit: str) -> None:
    if not edges:
        raise BadHotspotRequest(f"{name} needs at least one upper edge in {unit}")
    if len(edges) + 1 > MAX_BANDS:
        raise BadHotspotRequest(f"{name}: at most {MAX_BANDS - 1} bands, got {len(edges)}")
    bad = [e for e in edges if not (math.isfinite(e) and e > 0)]
    if bad:
        raise BadHotspotRequest(f"{name}: every edge must be more than 0 {unit}, got "
                                f"{bad[0]:g}")
    if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise BadHotspotRequest(f"{name} must increase (upper edges in {unit}, e.g. "
                                f"{'100,200,300' if unit == 'metres' else '7,14,21,28'}), "
                                f"got {','.join(f'{e:g}' for e in edges)}")


def check_size(xy: np.ndarray, nr: NearRepeatQuery) -> int:
    """Pairs of incidents at ``xy`` (metres) within the last space band (or the band).

    BadHotspotRequest when a run would hold more than :data:`MAX_CLOSE_PAIRS` of them
    or count more than :data:`MAX_WORK` (pairs x time bands x permutations).
    """
    radius = max(nr.space_bands[-1], nr.linked[0])  # the classes' pairs are held too
    pairs = 0
    if len(xy) > 1:
        tree = cKDTree(xy)
        pairs = int((tree.count_neighbors(tree, radius) - len(xy)) // 2)
    if pairs > MAX_CLOSE_PAIRS:
        raise BadHotspotRequest(
            f"space_bands: {pairs:,} pairs of incidents lie within {radius:g} m, more than "
            f"{MAX_CLOSE_PAIRS:,}; give a smaller last space band, a shorter period or a "
            "category")
    work = pairs * (len(nr.time_bands) + 1) * (nr.permutations + 1)
    if work > MAX_WORK:
        raise BadHotspotRequest(
            f"permutations: {nr.permutations} permutations of {pairs:,} close pairs over "
            f"{len(nr.time_bands)} time bands is more than one request may count; give "
            "fewer permutations or bands, a shorter period or a category")
    return pairs


def _nulls(table: np.ndarray) -> list[list[float | None]]:
    """A table as nested lists, NaN as None (JSON null)."""
    return [[None if math.isnan(v) else float(v) for v in row] for row in table.tolist()]


def _labels(edges: tuple[float, ...]) -> list[str]:
    lows = (0.0, *edges)
    return [f"{a:g}-{b:g}" for a, b in zip(lows, edges, strict=False)] + [f">{edges[-1]:g}"]


def _knox(data: HotspotData, nr: NearRepeatQuery) -> dict:
    result = knox_table(data.xy, data.when, (0.0, *nr.space_bands), (0.0, *nr.time_bands),
                        permutations=nr.permutations, seed=nr.seed)
    return {"space_edges": result.space_edges.tolist(),
            "time_edges": result.time_edges.tolist(),
            "space_bands": _labels(nr.space_bands), "time_bands": _labels(nr.time_bands),
            "observed": result.observed.tolist(), "expected": _nulls(result.expected),
            "p_value": _nulls(result.p_value), "knox_ratio": _nulls(result.knox_ratio),
            "permutations": result.permutations, "seed": result.seed}


def _utc64(moment: dt.datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(dt.UTC).replace(tzinfo=None), "ms")


def _local_iso(moment: np.datetime64) -> str:
    """A UTC ``datetime64`` as an ISO date-time in local time (+08:00)."""
    utc = dt.datetime.fromisoformat(str(moment.astype("datetime64[ms]"))).replace(tzinfo=dt.UTC)
    return utc.astimezone(LOCAL_TZ).isoformat()


def _zones(data: HotspotData, as_of: dt.datetime, space_m: float, days: float) -> list[dict]:
    """Risk zones of the incidents of the last ``days`` before ``as_of``, lon/lat."""
    zones = risk_zones(data.xy, data.when, _utc64(as_of), space_m, days)
    if not zones:
        return []
    shapes = shapely.set_precision(data.projection.unproject(
        np.array([z.geometry for z in zones], dtype=object)), 1e-7)
    geometries = json.loads(shapely.to_geojson(shapely.GeometryCollection(list(shapes))))
    return [{"type": "Feature", "geometry": geometry,
             "properties": {"until": _local_iso(zone.until), "incidents": len(zone.incidents)}}
            for zone, geometry in zip(zones, geometries["geometries"], strict=True)]


def _parameters(query: HotspotQuery, nr: NearRepeatQuery, crs: str, incidents: int) -> dict:
    space_m, days = nr.linked
    return {"jurisdiction": query.jurisdiction, "from": query.start.isoformat(),
            "to": query.end.isoformat(), "category": query.category, "hours": query.hours,
            "weekdays": query.weekdays, "space_bands": list(nr.space_bands),
            "time_bands": list(nr.time_bands), "permutations": nr.permutations,
            "seed": nr.seed, "band": [space_m, days], "metric_crs": crs,
            "incidents": incidents}


def _in_time_order(data: HotspotData) -> HotspotData:
    """The incidents by time, then x, then y.

    The permutations of a seed follow the input's order, and the database's order of
    rows is not fixed.
    """
    order = np.lexsort((data.xy[:, 1], data.xy[:, 0], data.incidents.epoch))
    return HotspotData(data.area, data.incidents.subset(order), data.projection)


def run_near_repeat(conn: Connection, user: User, query: HotspotQuery,
                    nr: NearRepeatQuery) -> dict:
    """The Knox table, class counts and risk zones (a FeatureCollection), saved as a run.

    ``features`` are the risk zones (lon/lat) with ``until`` (local ISO date-time) and
    ``incidents`` (how many incidents' circles make the zone), latest end first;
    ``knox`` the table (:func:`geo.nearrepeat.knox_table`: distances in metres, times in
    days; ratios and p-values null where undefined); ``classification`` the number of
    originators, near repeats and isolated incidents within ``band``. The incidents are
    permuted in time order (then by x and y, metres), so a seed gives the same answer
    whatever order the database returns them in.
    """
    nr.check()
    data = _in_time_order(load_hotspot_data(conn, user, query))
    pairs = check_size(data.xy, nr)
    space_m, days = nr.linked
    labels = classify(data.xy, data.when, space_m, days)
    counts = {c: int(np.count_nonzero(labels == c)) for c in CLASSES}
    withheld = user.role in AGGREGATE_ONLY
    features = [] if withheld else _zones(data, query.end, space_m, days)
    parameters = _parameters(query, nr, data.crs, len(data.xy))
    summary = {"incidents": len(data.xy), "close_pairs": pairs, "classes": counts,
               "zones": len(features)}
    body = {"type": "FeatureCollection", "kind": "near_repeat", "parameters": parameters,
            "summary": summary, "knox": _knox(data, nr),
            "classification": {"space_m": space_m, "days": days, "counts": counts},
            "as_of": query.end.astimezone(LOCAL_TZ).isoformat(), "zones_withheld": withheld,
            "features": features}
    body["run"] = save_run(conn, "hotspot_runs", user, "near_repeat", query.jurisdiction,
                           parameters, summary, body)
    return body


# References
# ----------
# Knox, G. (1964). The detection of space-time interactions. Journal of the Royal
# Statistical Society, Series C (Applied Statistics), 13(1), 25-30.
# Ratcliffe, J. H. (2009). Near Repeat Calculator (software). Temple University and the
# National Institute of Justice.
