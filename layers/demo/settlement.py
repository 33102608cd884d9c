"""Demo neighbourhoods, buildings, households, grids and joint-household units.

Metric coordinates. Neighbourhoods cluster around the city centres (plus scattered
villages); each is a rotated block pattern of buildings, and households sit inside
residential buildings. Grids are drawn for a share of the communities: a Voronoi
partition of the community around household-weighted k-means seeds (~300 households
a grid), with dedicated grids (专属网格) carved out for schools and hospitals later.
Joint-household units are planned by the product's own unit planner
(:func:`layers.units.plan_units`): 5-15 neighbouring households each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from geo.grids import renode

from ..units import plan_units
from .places import Places, Scale

HOUSEHOLDS_PER_GRID = 300


@dataclass
class Settlement:
    """Neighbourhoods and what stands in them (metric coordinates)."""

    nb_centres: np.ndarray      # (n, 2)
    nb_radius: np.ndarray       # (n,)
    nb_angle: np.ndarray        # (n,) radians
    buildings: np.ndarray       # shapely polygons
    building_height: np.ndarray
    households: np.ndarray      # (m, 2) positions
    persons: np.ndarray         # (m,)


def rotated_rects(cx, cy, w, h, angle) -> np.ndarray:
    """Rectangles of size w x h centred on (cx, cy), rotated by ``angle`` (arrays)."""
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5]])
    dx = corners[None, :, 0] * w[:, None]
    dy = corners[None, :, 1] * h[:, None]
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = cx[:, None] + dx * c - dy * s
    y = cy[:, None] + dx * s + dy * c
    return shapely.polygons(np.stack([x, y], axis=2))


def _inside(outline: shapely.Geometry, xy: np.ndarray) -> np.ndarray:
    return shapely.contains_xy(outline, xy[:, 0], xy[:, 1])


def build_settlement(places: Places, scale: Scale, rng: np.random.Generator) -> Settlement:
    """Neighbourhoods, buildings and households for a demo scale."""
    n_nb = max(12, scale.households // 150)
    sigma = scale.width_m / 9
    urban = int(n_nb * 0.78)
    city = rng.integers(0, 3, size=urban)
    centres = places.city_centres[city] + rng.normal(scale=sigma, size=(urban, 2))
    rural = rng.uniform([0, 0], [scale.width_m, scale.height_m], size=(n_nb * 2, 2))
    centres = np.vstack([centres[_inside(places.outline, centres)],
                         rural[_inside(places.outline, rural)][: n_nb - urban]])
    n_nb = len(centres)
    radius = rng.uniform(120, 330, size=n_nb)
    angle = rng.uniform(0, np.pi / 2, size=n_nb)

    spacing = 50.0
    bx, by, b_nb = [], [], []
    for i in range(n_nb):
        steps = np.arange(-radius[i], radius[i] + 1, spacing)
        gx, gy = np.meshgrid(steps, steps)
        gx, gy = gx.ravel(), gy.ravel()
        keep = gx ** 2 + gy ** 2 <= radius[i] ** 2
        gx, gy = gx[keep], gy[keep]
        c, s = np.cos(angle[i]), np.sin(angle[i])
        bx.append(centres[i, 0] + gx * c - gy * s)
        by.append(centres[i, 1] + gx * s + gy * c)
        b_nb.append(np.full(len(gx), i))
    bx, by, b_nb = np.concatenate(bx), np.concatenate(by), np.concatenate(b_nb)
    inside = _inside(places.outline, np.column_stack([bx, by]))
    bx, by, b_nb = bx[inside], by[inside], b_nb[inside]
    n_b = len(bx)
    bw = rng.uniform(18, 32, size=n_b)
    bh = rng.uniform(10, 15, size=n_b)
    b_angle = angle[b_nb] + rng.normal(scale=0.03, size=n_b)
    buildings = rotated_rects(bx, by, bw, bh, b_angle)

    # Households: 85% of buildings are residential; bigger neighbourhoods are denser.
    residential = rng.random(n_b) < 0.85
    weight = residential * rng.lognormal(0.0, 0.6, size=n_b) * (radius[b_nb] / 200.0)
    per_building = rng.multinomial(scale.households, weight / weight.sum())
    owner = np.repeat(np.arange(n_b), per_building)
    u = rng.uniform(-0.42, 0.42, size=(len(owner), 2))
    c, s = np.cos(b_angle[owner]), np.sin(b_angle[owner])
    dx, dy = u[:, 0] * bw[owner], u[:, 1] * bh[owner]
    households = np.column_stack([bx[owner] + dx * c - dy * s, by[owner] + dx * s + dy * c])
    persons = np.clip(1 + rng.poisson(1.8, size=len(owner)), 1, 8)
    floors = np.maximum(1, np.ceil(per_building / 4.0))
    height = np.round(np.minimum(floors, 33) * 3.0 + rng.uniform(0, 2, size=n_b), 1)
    return Settlement(centres, radius, angle, buildings, height, households, persons)


@dataclass
class GridPlan:
    """Grids and joint-household units (metric polygons) with their codes."""

    grid_codes: list[str]
    grid_names: list[str]
    grid_kinds: list[str]
    grid_parents: list[str]
    grid_geoms: list[shapely.Geometry]
    unit_codes: list[str]
    unit_grids: list[str]
    unit_heads: list[str]
    unit_sizes: list[int]
    unit_geoms: list[shapely.Geometry]


def _kmeans(points: np.ndarray, weights: np.ndarray, k: int,
            rng: np.random.Generator) -> np.ndarray:
    seeds = points[rng.choice(len(points), size=k, replace=False)]
    for _ in range(12):
        label = np.linalg.norm(points[:, None] - seeds[None], axis=2).argmin(axis=1)
        for j in range(k):
            sel = label == j
            if sel.any():
                seeds[j] = np.average(points[sel], axis=0, weights=weights[sel])
    return seeds


def _single_polygons(cells: list[shapely.Geometry]) -> list[shapely.Geometry] | None:
    """Give stray parts of multi-part cells to the neighbour sharing the longest edge."""
    cells = [shapely.make_valid(c) for c in cells]
    for i, cell in enumerate(cells):
        parts = sorted(shapely.get_parts(cell), key=lambda p: -p.area)
        if len(parts) <= 1:
            continue
        cells[i] = parts[0]
        for part in parts[1:]:
            shared = [shapely.length(shapely.intersection(part.boundary, o.boundary))
                      if j != i else 0.0 for j, o in enumerate(cells)]
            j = int(np.argmax(shared))
            if shared[j] <= 0:
                return None
            cells[j] = shapely.make_valid(shapely.union(cells[j], part))
    if any(c.geom_type != "Polygon" for c in cells):
        return None
    return cells


def plan_grids(places: Places, settlement: Settlement, scale: Scale,
               rng: np.random.Generator, household_codes: list[str],
               min_area: float = 1.0) -> GridPlan:
    """Draw grids for a share of communities and their joint-household units.

    Works in the coordinates given; the demo passes lon/lat so that grid edges on a
    community's boundary are exactly the community's own. ``min_area`` (in those
    units) drops crumbs.
    """
    plan = GridPlan([], [], [], [], [], [], [], [], [], [])
    xy = settlement.households
    communities = places.of_level("community")
    chosen = rng.choice(communities, size=int(round(len(communities) * scale.gridded_share)),
                        replace=False)
    for ci in sorted(chosen):
        community = places.geoms[ci]
        if community.geom_type != "Polygon":
            continue
        inside = np.flatnonzero(shapely.contains_xy(community, xy[:, 0], xy[:, 1]))
        k = max(1, int(round(len(inside) / HOUSEHOLDS_PER_GRID)))
        if k == 1 or len(inside) < k:
            cells = [community]
        else:
            seeds = _kmeans(xy[inside], settlement.persons[inside].astype(float), k, rng)
            voronoi = shapely.get_parts(shapely.voronoi_polygons(
                shapely.multipoints(seeds), extend_to=community))
            # Node the clipped cells together so neighbours share identical vertices and
            # the outer edge keeps the community's own.
            cells = _single_polygons(list(renode(shapely.intersection(voronoi, community))))
            if cells is None:
                continue
        for g, cell in enumerate(cells):
            code = f"{places.codes[ci]}{g + 1:03d}"
            plan.grid_codes.append(code)
            plan.grid_names.append(f"{places.names[ci]}第{g + 1}网格")
            plan.grid_kinds.append("comprehensive")
            plan.grid_parents.append(places.codes[ci])
            plan.grid_geoms.append(cell)
            members = inside[shapely.contains_xy(cell, xy[inside, 0], xy[inside, 1])]
            _plan_units(plan, code, cell, members, xy, household_codes, min_area)
    return plan


def _plan_units(plan: GridPlan, grid_code: str, grid: shapely.Geometry, members: np.ndarray,
                xy: np.ndarray, household_codes: list[str], min_area: float) -> None:
    """Group the grid's households (lon/lat ``xy[members]``) into joint-household units."""
    if len(members) < 2:
        return
    units = plan_units(grid, xy[members])
    for j, polygon in enumerate(units.polygons):
        if polygon.geom_type != "Polygon" or polygon.area < min_area:
            continue
        plan.unit_codes.append(f"{grid_code}-{j + 1:03d}")
        plan.unit_grids.append(grid_code)
        plan.unit_heads.append(household_codes[members[units.heads[j]]])
        plan.unit_sizes.append(int(units.sizes[j]))
        plan.unit_geoms.append(polygon)
