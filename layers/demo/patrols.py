"""Demo joint patrol routes along Changsha's borders with Xiangtan and Zhuzhou (metres).

Planned as :func:`geo.border.plan_patrols` plans them: two teams a side, the border
2 km either side, the last year's incidents; in the demo a crossing counts as covered
when a checkpoint stands within 50 m (the API also counts cameras).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from geo.border import (
    border_zone,
    crossing_cover,
    crossings,
    plan_patrols,
    shared_border,
)

from .places import Places

PAIRS = (("430100", "430300"), ("430100", "430200"))
TEAMS = 2
WIDTH = 2000.0


@dataclass
class Patrols:
    """Route lines (metres) and their attributes, one per team."""

    routes: list[shapely.LineString]
    names: list[str]
    borders: list[str]
    teams: list[int]
    workloads: list[float]
    hours: list[str]
    cities: list[str]


def build_patrols(places: Places, roads: list[shapely.LineString], checkpoints: list,
                  inc_xy: np.ndarray, inc_t: np.ndarray, inc_sev: np.ndarray) -> Patrols:
    """Two teams a side along each border of :data:`PAIRS`."""
    out = Patrols([], [], [], [], [], [], [])
    when = pd.to_datetime(pd.Series(inc_t), utc=True)
    last_year = (when >= when.max() - pd.Timedelta(days=365)).to_numpy()
    hour = when.dt.tz_convert("Asia/Shanghai").dt.hour.to_numpy()
    posts = shapely.get_coordinates(np.array(checkpoints, dtype=object))
    roads_arr = np.array(roads, dtype=object)
    for pair in PAIRS:
        a, b = (places.geoms[places.codes.index(code)] for code in pair)
        line = shared_border(a, b)
        side_a, side_b = border_zone(a, b, line, WIDTH)
        zone = shapely.union(side_a, side_b)
        found = crossings(roads_arr, line, a, b)
        xy = np.array([[c.point.x, c.point.y] for c in found]).reshape(-1, 2)
        cover = crossing_cover(xy, posts, [str(i) for i in range(len(posts))],
                               np.empty(0), [])
        inside = last_year & shapely.contains_xy(zone, inc_xy[:, 0], inc_xy[:, 1])
        plan = plan_patrols(line, {pair[0]: side_a, pair[1]: side_b},
                            {code: TEAMS for code in pair}, roads_arr, xy,
                            [c[0] for c in cover], inc_xy[inside], hour[inside],
                            np.asarray(inc_sev, dtype=float)[inside], [], WIDTH)
        for p in plan:
            if p.route.is_empty:
                continue
            out.routes.append(p.route)
            out.names.append(f"{places.names[places.codes.index(p.city)]}第{p.team}巡逻队")
            out.borders.append("-".join(sorted(pair)))
            out.teams.append(p.team)
            out.workloads.append(round(p.sector.workload, 3))
            out.hours.append(p.hours)
            out.cities.append(p.city)
    return out
