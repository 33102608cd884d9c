"""Grid partitioning: balanced, compact, contiguous regions of small areal units.

``partition`` groups units (blocks, lattice cells) into regions whose weight (for
example households) is close to a target: recursive coordinate bisection on the
units' centroids gives compact, balanced starting regions in O(n log n); regions
that came out in pieces are mended (each piece beyond the heaviest joins the
neighbour it shares most boundary with), then boundary units move between adjacent
regions while that brings both closer to the target and keeps the donor connected
(an empty unit also moves to a much lighter neighbour, so a region walled off from
weight by empty land grows through it).
Contiguity is by shared edge (rook), so each region dissolves to one polygon.

``grid_plan`` does this for a jurisdiction cut by its streets, weighing each block by
the points it holds (households; buildings at their representative points, weighed by
floor area, see ``floor_area``) and/or by its area.

Coordinates are those of the input: use a metric CRS for ``regular_grid`` sizes in
metres and for Polsby-Popper on real data.

References
----------
.. [1] Berger, M. J., & Bokhari, S. H. (1987). A partitioning strategy for nonuniform
   problems on multiprocessors. *IEEE Transactions on Computers*, C-36(5), 570-580.
   https://doi.org/10.1109/TC.1987.1676942 (recursive coordinate bisection)
.. [2] Polsby, D. D., & Popper, R. D. (1991). The third criterion: compactness as a
   procedural safeguard against partisan gerrymandering. *Yale Law & Policy Review*,
   9(2), 301-353. https://doi.org/10.2139/ssrn.2936284 (``polsby_popper``)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

if TYPE_CHECKING:
    from pyproj import CRS

__all__ = ["WeightedPoints", "coefficient_of_variation", "coordinate_bisection", "floor_area",
           "grid_plan", "partition", "polsby_popper", "regular_grid", "rook_pairs"]


def rook_pairs(geoms: np.ndarray, tolerance: float = 1e-9) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, of polygons sharing a boundary of positive length.

    Corner contacts do not count: regions built from rook neighbours dissolve to a
    single polygon.
    """
    geoms = np.asarray(geoms, dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return np.empty((0, 2), dtype=np.int64)
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[left]),
                                                 shapely.boundary(geoms[right])))
    edge = shared > tolerance
    return np.column_stack([left[edge], right[edge]])


def _neighbours(n: int, pairs: np.ndarray) -> list[np.ndarray]:
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    csr = sparse.csr_matrix(graph + graph.T)
    return [csr.indices[csr.indptr[i]:csr.indptr[i + 1]] for i in range(n)]


def coordinate_bisection(xy: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Recursive coordinate bisection of points into ``k`` parts of near-equal weight.

    Parameters
    ----------
    xy : (n, 2) point coordinates, in any projected CRS (metres): each cut is across
        the longer side of the points' extent.
    weight : (n,) non-negative weight per point (households, persons); all zero cuts
        by the number of points.
    k : the number of parts, at least 1.

    Returns
    -------
    (n,) part label per point, 0 to k - 1.
    """
    labels = np.zeros(len(xy), dtype=np.int64)
    stack = [(np.arange(len(xy)), k, 0)]
    while stack:
        idx, parts, first = stack.pop()
        if parts == 1 or len(idx) <= 1:
            labels[idx] = first
            continue
        pts = xy[idx]
        axis = int(np.ptp(pts[:, 1]) > np.ptp(pts[:, 0]))
        order = idx[np.lexsort((pts[:, 1 - axis], pts[:, axis]))]
        left_parts = parts // 2
        cum = np.cumsum(weight[order])
        total = cum[-1]
        if total > 0:
            cut = int(np.searchsorted(cum, total * left_parts / parts)) + 1
        else:
            cut = round(len(order) * left_parts / parts)
        cut = min(max(cut, 1), len(order) - 1)
        if total > 0 and cut > 1:  # the nearer of the two cuts around the ideal weight
            ideal = total * left_parts / parts
            if abs(cum[cut - 2] - ideal) < abs(cum[cut - 1] - ideal):
                cut -= 1
        stack.append((order[:cut], left_parts, first))
        stack.append((order[cut:], parts - left_parts, first + left_parts))
    return labels


def _components(members: np.ndarray, neighbours: list[np.ndarray],
                labels: np.ndarray, label: int) -> list[np.ndarray]:
    """Connected pieces of one region (BFS over same-label neighbours)."""
    seen: set[int] = set()
    pieces = []
    for start in members:
        if start in seen:
            continue
        piece, queue = [start], deque([start])
        seen.add(start)
        while queue:
            u = queue.popleft()
            for v in neighbours[u]:
                if labels[v] == label and v not in seen:
                    seen.add(v)
                    piece.append(v)
                    queue.append(v)
        pieces.append(np.array(piece))
    return pieces


def _mend(labels: np.ndarray, weight: np.ndarray, neighbours: list[np.ndarray],
          pairs: np.ndarray) -> np.ndarray:
    """Give every piece but the heaviest of a split region to its best neighbour."""
    n = len(labels)
    for _ in range(20):
        same = labels[pairs[:, 0]] == labels[pairs[:, 1]]
        graph = sparse.coo_matrix((np.ones(same.sum()), (pairs[same, 0], pairs[same, 1])),
                                  shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        moved = False
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            pieces = np.unique(comp[members])
            if len(pieces) <= 1:
                continue
            keep = max(pieces, key=lambda c: (weight[comp == c].sum(), (comp == c).sum()))
            for c in pieces:
                if c == keep:
                    continue
                piece = np.flatnonzero(comp == c)
                outside = np.concatenate([neighbours[u] for u in piece])
                outside = outside[labels[outside] != label]
                if len(outside) == 0:
                    continue  # an island: no neighbour to join
                labels[piece] = np.bincount(labels[outside]).argmax()
                moved = True
        if not moved:
            break
    return labels


def _still_connected(region: set[int], removed: int, neighbours: list[np.ndarray]) -> bool:
    rest = region - {removed}
    if not rest:
        return False
    start = next(iter(rest))
    seen, queue = {start}, deque([start])
    while queue:
        u = queue.popleft()
        for v in neighbours[u]:
            if v in rest and v not in seen:
                seen.add(v)
                queue.append(v)
    return len(seen) == len(rest)


def _balance(labels: np.ndarray, weight: np.ndarray, neighbours: list[np.ndarray],
             pairs: np.ndarray, target: float, passes: int = 30) -> np.ndarray:
    """Move boundary units to adjacent regions while both get closer to the target.

    When no such move is left, empty units may also cross towards a region much
    lighter than its neighbour, so that it grows through empty land to weight it can
    take (only then: plans that balance without it stay as they are).
    """
    k = labels.max() + 1
    through_empty = False
    region_weight = np.bincount(labels, weights=weight, minlength=k)
    regions = [set(np.flatnonzero(labels == r).tolist()) for r in range(k)]
    for _ in range(passes):
        moved = 0
        boundary = pairs[labels[pairs[:, 0]] != labels[pairs[:, 1]]]
        # heaviest donors first
        order = np.argsort(-np.maximum(region_weight[labels[boundary[:, 0]]],
                                       region_weight[labels[boundary[:, 1]]]))
        for i, j in boundary[order]:
            a, b = labels[i], labels[j]
            if a == b:
                continue
            if region_weight[a] < region_weight[b]:
                i, j, a, b = j, i, b, a  # move from the heavier region a to b
            w = weight[i]
            before = abs(region_weight[a] - target) + abs(region_weight[b] - target)
            after = abs(region_weight[a] - w - target) + abs(region_weight[b] + w - target)
            empty_step = through_empty and w == 0 and \
                region_weight[a] - region_weight[b] > 0.2 * target
            if (after >= before - 1e-9 and not empty_step) or \
                    not _still_connected(regions[a], i, neighbours):
                continue
            labels[i] = b
            regions[a].discard(i)
            regions[b].add(i)
            region_weight[a] -= w
            region_weight[b] += w
            moved += 1
        if moved == 0 and through_empty:
            break
        through_empty = through_empty or moved == 0
    return labels


def partition(units: gpd.GeoDataFrame, weight: str, target: float, *,
              balance_passes: int = 30, initial: np.ndarray | None = None) -> np.ndarray:
    """Label contiguous, compact regions of ``units`` with ``weight`` near ``target``.

    Parameters
    ----------
    units
        Polygons that tile the area (blocks, lattice cells), any CRS.
    weight
        Column of non-negative weights (households, population...).
    target
        Wanted weight per region; the number of regions is ``round(total / target)``.
    initial
        Start from these labels (say, a coarser partition carried down to finer
        units) instead of the bisection; the number of regions is then theirs.

    Returns
    -------
    numpy.ndarray
        Region label (0..k-1) per unit, in the order of ``units``.
    """
    if target <= 0 or not math.isfinite(target):
        raise ValueError(f"target must be a positive number, got {target}")
    w = units[weight].to_numpy(dtype=float)
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError(f"column {weight!r} must hold finite, non-negative weights")
    n = len(units)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    geoms = units.geometry.to_numpy()
    if initial is not None:
        _, labels = np.unique(np.asarray(initial), return_inverse=True)
        k = int(labels.max()) + 1
    else:
        k = max(1, min(n, round(w.sum() / target)))
        labels = coordinate_bisection(shapely.get_coordinates(shapely.centroid(geoms)), w, k)
    pairs = rook_pairs(geoms)
    if len(pairs) == 0:
        return labels
    neighbours = _neighbours(n, pairs)
    labels = _mend(labels, w, neighbours, pairs)
    # balance towards the mean the k regions can reach, not the nominal target
    labels = _balance(labels, w, neighbours, pairs, w.sum() / k, balance_passes)
    _, labels = np.unique(labels, return_inverse=True)  # dense 0..k-1
    return labels


def coefficient_of_variation(values: np.ndarray) -> float:
    """Standard deviation over mean (population formula); 0 for a single value."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or values.mean() == 0:
        return 0.0
    return float(values.std() / values.mean())


def polsby_popper(geoms: np.ndarray) -> np.ndarray:
    """Polsby-Popper compactness 4*pi*area/perimeter^2 (1 for a disc), per polygon."""
    geoms = np.asarray(geoms, dtype=object)
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(perimeter > 0, 4 * np.pi * shapely.area(geoms) / perimeter**2, 0.0)


def regular_grid(area: shapely.Geometry, size: float, shape: str = "square",
                 crs: CRS | str | int | None = None) -> gpd.GeoDataFrame:
    """Square or hexagonal cells covering ``area``, clipped to it.

    ``size`` is the side of a square or the circumradius of a hexagon, in the units of
    the area's CRS (use a metric CRS). Columns ``row`` and ``col`` index the cells.
    """
    if size <= 0 or not math.isfinite(size):
        raise ValueError(f"size must be a positive number, got {size}")
    if shape not in ("square", "hex"):
        raise ValueError(f"shape must be 'square' or 'hex', got {shape!r}")
    x0, y0, x1, y1 = shapely.bounds(area)
    cells: np.ndarray
    if shape == "square":
        cols = np.arange(math.floor(x0 / size), math.ceil(x1 / size))
        rows = np.arange(math.floor(y0 / size), math.ceil(y1 / size))
        cc, rr = np.meshgrid(cols, rows)
        cells = shapely.box(cc * size, rr * size, (cc + 1) * size, (rr + 1) * size).ravel()
    else:
        dx, dy = 1.5 * size, math.sqrt(3) * size
        cols = np.arange(math.floor(x0 / dx) - 1, math.ceil(x1 / dx) + 2)
        rows = np.arange(math.floor(y0 / dy) - 1, math.ceil(y1 / dy) + 2)
        cc, rr = np.meshgrid(cols, rows)
        cx = cc * dx
        cy = rr * dy + (cc % 2) * dy / 2
        angles = np.radians(np.arange(0, 360, 60))
        ring_x = cx.ravel()[:, None] + size * np.cos(angles)[None, :]
        ring_y = cy.ravel()[:, None] + size * np.sin(angles)[None, :]
        cells = np.asarray(shapely.polygons(np.stack([ring_x, ring_y], axis=2)))
    rows_out, cols_out = rr.ravel(), cc.ravel()
    # Snapping to a fine grid makes the vertices neighbours share identical (they are
    # computed per cell, and the clip adds some on the area's edge).
    clipped = shapely.set_precision(shapely.intersection(cells, area), size * 1e-7)
    # (a WKB round trip drops the fixed precision model, which would slow every later
    # overlay on these cells several times over)
    clipped = shapely.from_wkb(shapely.to_wkb(clipped))
    keep = ~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)
    return gpd.GeoDataFrame({"row": rows_out[keep], "col": cols_out[keep]},
                            geometry=clipped[keep], crs=crs)


def hand_on_parts(grids: np.ndarray) -> np.ndarray:
    """Grids of a coverage made one polygon each: stray parts join a neighbour.

    A grid that comes in several parts (a lobe joined to the rest by a neck that
    rounding to the stored precision pinched to a point) keeps its largest part and
    hands each other part to the neighbour sharing the longest edge with it. The
    parts' vertices must match the neighbours' (as after pointwise rounding), so
    every result is a coverage union. Grids with no neighbour to take a part stay as
    they are.
    """
    out = np.array(grids, dtype=object, copy=True)
    tree = shapely.STRtree(out)
    for i in np.flatnonzero(shapely.get_num_geometries(out) > 1):
        parts = sorted(shapely.get_parts(out[i]), key=lambda p: -p.area)
        out[i] = parts[0]
        for part in parts[1:]:
            near = [j for j in tree.query(part) if j != i]
            shared = [shapely.intersection(part.boundary, out[j].boundary).length
                      for j in near]
            if not shared or max(shared) == 0:
                out[i] = shapely.union_all([out[i], part])
                continue
            j = near[int(np.argmax(shared))]
            out[j] = shapely.coverage_union_all(np.array([out[j], part], dtype=object))
    return out


def renode(polys: np.ndarray) -> np.ndarray:
    """Make polygons that tile an area share identical vertices along common edges.

    Pieces cut separately (a block clipped by a grid line, its neighbour not) leave
    T-junctions; noding every boundary together and re-dissolving the faces gives a
    coverage that ``shapely.coverage_is_valid`` accepts, with the same shapes.
    """
    polys = np.asarray(polys, dtype=object)
    lines = shapely.union_all(shapely.boundary(polys))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    faces = faces[shapely.area(faces) > 0]
    owner_face, owner = shapely.STRtree(polys).query(shapely.point_on_surface(faces),
                                                     predicate="within")
    out = np.array(polys, dtype=object, copy=True)
    for i in np.unique(owner):
        merged = shapely.coverage_union_all(faces[owner_face[owner == i]])
        out[i] = merged if merged.geom_type == "Polygon" else shapely.make_valid(merged)
    return out


def street_blocks(area: shapely.Geometry, roads: np.ndarray,
                  extra_lines: np.ndarray | None = None) -> np.ndarray:
    """The faces of ``area`` cut by ``roads`` (and ``extra_lines``); dead ends cut nothing.

    All lines are noded together, so neighbouring faces share identical vertices.
    """
    roads = np.asarray(roads, dtype=object)
    inside = roads[shapely.intersects(roads, area)] if len(roads) else roads
    # Clip to a box around the area, not to the area: a clipped end is computed and may
    # miss the boundary by a rounding error, leaving a dangle instead of a cut.
    frame = shapely.box(*shapely.bounds(shapely.buffer(area, 1.0)))
    cuts = [shapely.boundary(area), *shapely.intersection(inside, frame)]
    if extra_lines is not None:
        cuts.extend(extra_lines)
    lines = shapely.union_all(cuts)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    keep = shapely.within(shapely.point_on_surface(faces), area) & (shapely.area(faces) > 0)
    return faces[keep]


def floor_area(footprint_m2: np.ndarray, height_m: np.ndarray) -> np.ndarray:
    """Floor area of buildings, m²: footprint × floors, floors = max(1, round(height / 3)).

    Parameters
    ----------
    footprint_m2 : (n,) footprint area of each building, square metres.
    height_m : (n,) height in metres; NaN where unknown (the footprint alone counts,
        as one floor). A floor is taken as 3 m; the number of floors is rounded half
        up and is at least one.

    Returns
    -------
    (n,) floor area per building, square metres.
    """
    footprint = np.asarray(footprint_m2, dtype=float)
    height = np.asarray(height_m, dtype=float)
    floors = np.where(np.isfinite(height), np.maximum(1.0, np.floor(height / 3.0 + 0.5)), 1.0)
    return footprint * floors


def _owner(polys: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Index of the polygon holding each point (N, 2); -1 for none.

    A point on an edge two polygons share goes to the first of them, so each point is
    weighed once.
    """
    owner = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0 or len(polys) == 0:
        return owner
    point, poly = shapely.STRtree(polys).query(shapely.points(points), predicate="intersects")
    order = np.lexsort((poly, point))
    point, poly = point[order], poly[order]
    first = np.r_[True, point[1:] != point[:-1]]
    owner[point[first]] = poly[first]
    return owner


def _weigh(polys: np.ndarray, points: np.ndarray, weights: np.ndarray,
           per_area: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per polygon: total weight, heaviest single point, number of points.

    The total is the weights of the points inside plus ``per_area`` times the area.
    """
    owner = _owner(polys, points)
    inside = owner >= 0
    total: np.ndarray = np.bincount(owner[inside], weights=weights[inside],
                                    minlength=len(polys))
    heaviest = np.zeros(len(polys))
    np.maximum.at(heaviest, owner[inside], weights[inside])
    counts = np.bincount(owner[inside], minlength=len(polys))
    if per_area:
        total = total + per_area * shapely.area(polys)
    return total, heaviest, counts


def _cut_lines(block: shapely.Geometry, size: float) -> list[shapely.Geometry]:
    """Horizontal and vertical lines every ``size`` across ``block``, clipped to it."""
    x0, y0, x1, y1 = shapely.bounds(block)
    xs = np.arange(math.floor(x0 / size) + 1, math.ceil(x1 / size)) * size
    ys = np.arange(math.floor(y0 / size) + 1, math.ceil(y1 / size)) * size
    lines = [shapely.LineString([(x, y0), (x, y1)]) for x in xs]
    lines += [shapely.LineString([(x0, y), (x1, y)]) for y in ys]
    return [c for c in shapely.intersection(lines, block) if not c.is_empty]


def _finer(units: np.ndarray, weighed: tuple[np.ndarray, np.ndarray, np.ndarray],
           share: float, above: float, smallest: float) -> list[shapely.Geometry]:
    """Lines cutting each unit heavier than ``above`` into cells of about ``share``.

    A unit whose whole weight is one point (a single building) is not cut: no line
    can divide a point.
    """
    total, heaviest, _ = weighed
    lines: list[shapely.Geometry] = []
    for unit, weight, top in zip(units, total, heaviest, strict=True):
        size = math.sqrt(shapely.area(unit) * share / max(weight, 1e-12))
        if weight > above and weight > top and size > smallest:
            lines += _cut_lines(unit, size)
    return lines


def _refine_boundaries(area: shapely.Geometry, roads: np.ndarray, weighed: WeightedPoints,
                       cuts: list, units: gpd.GeoDataFrame, labels: np.ndarray,
                       target: float) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Cut the units along grid boundaries finer and balance again from ``labels``.

    Interior blocks stay whole (their streets stay grid boundaries); only where two
    grids meet is a block split, and only as far as balancing moves its cells.
    """
    polys = np.asarray(units.geometry.values)
    pairs = rook_pairs(polys)
    if len(pairs) == 0 or labels.max() == 0:
        return units, labels
    edge = np.unique(pairs[labels[pairs[:, 0]] != labels[pairs[:, 1]]])
    edge_weights = (units["weight"].to_numpy()[edge], units["heaviest"].to_numpy()[edge],
                    units["points"].to_numpy()[edge])
    fine = _finer(polys[edge], edge_weights, target / 30, target / 30, 0.0)
    if not fine:
        return units, labels
    cells = street_blocks(area, roads, np.array(cuts + fine, dtype=object))
    parent_cell, parent = shapely.STRtree(polys).query(
        shapely.point_on_surface(cells), predicate="within")
    if len(np.unique(parent_cell)) != len(cells):
        return units, labels  # a cell straddles two units (rounding): keep the coarse plan
    start = np.empty(len(cells), dtype=np.int64)
    start[parent_cell] = labels[parent]
    fine_units = weighed.units(cells)
    return fine_units, partition(fine_units, "weight", target, initial=start)


@dataclass(frozen=True)
class WeightedPoints:
    """What a plan weighs: points with weights, plus a weight per unit of area.

    ``xy`` (N, 2) positions, ``weights`` (N,) their weights, ``per_area`` the weight of
    one square unit of the CRS (0: area does not count).
    """

    xy: np.ndarray
    weights: np.ndarray
    per_area: float = 0.0

    def units(self, polys: np.ndarray) -> gpd.GeoDataFrame:
        """``polys`` with their ``weight``, ``heaviest`` point and number of ``points``."""
        total, heaviest, counts = _weigh(polys, self.xy, self.weights, self.per_area)
        return gpd.GeoDataFrame({"weight": total, "heaviest": heaviest, "points": counts},
                                geometry=polys)


def _weighed(points: np.ndarray, weights: np.ndarray | None,
             per_area: float) -> WeightedPoints:
    """Check and bundle what :func:`grid_plan` weighs."""
    xy = np.asarray(points, dtype=float).reshape(-1, 2)
    w = np.ones(len(xy)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(xy),):
        raise ValueError(f"weights must have one value per point ({len(xy)}), "
                         f"got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and non-negative")
    if not math.isfinite(per_area) or per_area < 0:
        raise ValueError(f"per_area must be a finite, non-negative number, got {per_area}")
    return WeightedPoints(xy, w, float(per_area))


def _street_units(area: shapely.Geometry, roads: np.ndarray, weighed: WeightedPoints,
                  target: float) -> tuple[np.ndarray, list[shapely.Geometry]]:
    """Street blocks, those too heavy to balance cut finer; and the cut lines."""
    units = street_blocks(area, roads)
    cuts: list[shapely.Geometry] = []
    smallest = math.sqrt(shapely.area(area)) / 2000  # points closer than this stay together
    for _ in range(5):  # weight clusters: a cell may need cutting again
        new = _finer(units, _weigh(units, weighed.xy, weighed.weights, weighed.per_area),
                     target / 6, target / 3, smallest)
        if not new:
            break
        cuts += new
        units = street_blocks(area, roads, np.array(cuts, dtype=object))
    return units, cuts


def grid_plan(area: shapely.Geometry, roads: np.ndarray, points: np.ndarray,
              target: float, *, weights: np.ndarray | None = None,
              per_area: float = 0.0) -> gpd.GeoDataFrame:
    """Grids for ``area``: street blocks, heavy ones cut finer, partitioned to ``target``.

    Parameters
    ----------
    area
        The jurisdiction (one polygon), in any CRS: only areas and positions within it
        are compared, so the stored lon/lat serve, and keep its boundary exact.
    roads
        Road lines in the same CRS; grid boundaries follow them where they cut the area.
    points
        (N, 2) positions of what is weighed, in the same CRS: households, or each
        building's representative point. A point weighs in the block that holds it.
    target
        Weight wanted per grid (households, persons, m² of floor area, m² of area).
    weights
        (N,) weight of each point; default 1 each (a count, as of households).
    per_area
        Weight of one square unit of the CRS added to every block: the m² per CRS unit²
        plans by plain area (with no points); 0 (default) leaves area out.

    Returns
    -------
    geopandas.GeoDataFrame
        One polygon per grid with its ``weight`` and its number of ``points``; together
        they tile ``area`` as a valid coverage.
    """
    weighed = _weighed(points, weights, per_area)
    blocks, cuts = _street_units(area, roads, weighed, target)
    units = weighed.units(blocks)
    labels = partition(units, "weight", target)
    units, labels = _refine_boundaries(area, roads, weighed, cuts, units, labels, target)
    grids = np.array([shapely.coverage_union_all(units.geometry.values[labels == g])
                      for g in range(labels.max() + 1)], dtype=object)
    if len(grids) > 1:
        # Drop the vertices that cutting left along straight shared edges (the outline
        # stays exactly the area's); a vertex is removed only where that moves no
        # point across an edge.
        simpler = shapely.coverage_simplify(grids, math.sqrt(shapely.area(area)) * 1e-5,
                                            simplify_boundary=False)
        if (_owner(simpler, weighed.xy) == _owner(grids, weighed.xy)).all() and \
                shapely.coverage_is_valid(simpler):
            grids = simpler
    total, _, counts = _weigh(grids, weighed.xy, weighed.weights, weighed.per_area)
    return gpd.GeoDataFrame({"weight": total, "points": counts}, geometry=grids)


def coverage_problems(area: shapely.Geometry, grids: np.ndarray, *,
                      min_area: float = 0.01, sliver_width: float = 0.5,
                      min_width: float = 0.0) -> gpd.GeoDataFrame:
    """Everything that keeps ``grids`` from tiling ``area`` exactly, one row per problem.

    ``kind`` is ``invalid`` (a bad ring; ``detail`` says why), ``overlap``, ``gap``,
    ``outside`` (part of a grid beyond the area), ``sliver`` (a gap or overlap thinner
    than ``sliver_width``) or ``unmatched_edge`` (neighbours whose shared edge has
    different vertices). ``grids`` lists the positions of the grids involved. Units
    are those of the CRS (use a metric one); pieces under ``min_area`` or thinner than
    ``min_width`` (the precision coordinates are kept at: a vertex rounded off a
    straight boundary leaves a strip that thin) are ignored.
    """
    grids = np.asarray(grids, dtype=object)
    rows: list[tuple[str, list[int], shapely.Geometry, str]] = []
    for i in np.flatnonzero(~shapely.is_valid(grids)):
        rows.append(("invalid", [int(i)], grids[i], shapely.is_valid_reason(grids[i])))
    fixed = np.array([shapely.make_valid(g) for g in grids], dtype=object)

    def width(piece: shapely.Geometry) -> float:
        return 2 * shapely.area(piece) / max(shapely.length(piece), 1e-12)  # a strip's width

    def pieces(geom: shapely.Geometry) -> list[shapely.Geometry]:
        return [p for p in shapely.get_parts(shapely.make_valid(geom))
                if p.geom_type in ("Polygon", "MultiPolygon") and p.area > min_area
                and width(p) >= min_width]

    def kind_of(piece: shapely.Geometry, default: str) -> str:
        return "sliver" if width(piece) < sliver_width else default

    left, right = shapely.STRtree(fixed).query(fixed, predicate="intersects")
    for i, j in zip(left[left < right], right[left < right], strict=True):
        for piece in pieces(shapely.intersection(fixed[i], fixed[j])):
            rows.append((kind_of(piece, "overlap"), [int(i), int(j)], piece, ""))
    union = shapely.union_all(fixed) if len(fixed) else shapely.Polygon()
    for piece in pieces(shapely.difference(area, union)):
        rows.append((kind_of(piece, "gap"), [], piece, ""))
    for g, grid in enumerate(fixed):
        for piece in pieces(shapely.difference(grid, area)):
            rows.append(("outside", [g], piece, ""))
    if len(fixed) > 1 and not rows:
        edges = shapely.coverage_invalid_edges(fixed)
        for i in np.flatnonzero(~shapely.is_empty(edges)):
            rows.append(("unmatched_edge", [int(i)], edges[i], "vertices differ from the "
                                                               "neighbour's"))
    return gpd.GeoDataFrame(
        {"kind": [r[0] for r in rows], "grids": [r[1] for r in rows],
         "detail": [r[3] for r in rows]},
        geometry=[r[2] for r in rows])
