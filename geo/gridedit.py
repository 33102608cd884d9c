"""Topology-safe grid edits: reshape, split and merge as one re-tiling of faces.

Grids of one jurisdiction tile it (a valid coverage). An edit never moves a shared
edge on one side only: the jurisdiction boundary, every grid's boundary and the new
lines (a reshaped grid's outline, a split line) are noded together and polygonized
into faces, and each face is given an owner:

- inside the new shape of the edited grid: that grid (area taken from neighbours);
- inside the old shape but not the new one: given up, each connected piece to the
  neighbour sharing the longest edge with it;
- elsewhere: the grid that held it before; outside the jurisdiction: nobody (clipped).

Faces thinner than ``sliver`` join the neighbouring face they share most edge with,
and a grid left in pieces keeps its largest and hands the rest on the same way, so
every result is one polygon and neighbours keep identical vertices along common
edges. Before noding, the new outline is snapped to existing vertices within
``tolerance`` so a vertex dropped near a corner lands on it.

Geometries are plain shapely polygons in any CRS (the stored lon/lat serve:
re-projecting would bend untouched neighbours); ``tolerance`` and ``sliver`` are in
the same units. With ``grid_size`` the re-tiled grids are rounded to that grid (as
they are stored and served) before the coverage is checked, so what is checked is
what a client reads. Grids are keyed by an integer id; :data:`NEW` keys a grid the edit
creates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from shapely.geometry.base import BaseGeometry

from .validate import to_served

__all__ = ["NEW", "EditRefused", "Retiled", "carve", "merge", "reshape", "split"]

NEW = -1  # key of a grid the edit creates (the second half of a split, a new grid)
_GIVEN = -2  # a face the edited grid gave up, not yet handed on
_NOBODY = -3  # a face no grid holds (a gap, or outside the jurisdiction)
MOSTLY_OUTSIDE = 0.5  # a new shape with less than this share inside is refused


class EditRefused(ValueError):
    """An edit that would break the coverage or makes no sense; the message says why."""


@dataclass(frozen=True)
class Retiled:
    """The outcome of an edit.

    ``changed`` maps the key of every grid whose geometry changed (:data:`NEW` for a
    created one) to its new polygon; ``removed`` lists grids that no longer exist.
    """

    changed: dict[int, shapely.Polygon]
    removed: tuple[int, ...] = ()


@dataclass
class _Faces:
    geoms: np.ndarray  # the faces
    owner: np.ndarray  # key per face
    pairs: np.ndarray  # (i, j) of faces sharing an edge
    shared: np.ndarray  # length of that edge

    def width(self) -> np.ndarray:
        return 2 * shapely.area(self.geoms) / np.maximum(shapely.length(self.geoms), 1e-300)


def _faces(area: BaseGeometry, geoms: list[BaseGeometry],
           lines: list[BaseGeometry]) -> tuple[np.ndarray, np.ndarray]:
    """Faces of the arrangement of all boundaries and lines, inside ``area``."""
    parts = shapely.get_parts(np.array(
        [area.boundary, *shapely.boundary(np.array(geoms, dtype=object)), *lines], dtype=object))
    noded = shapely.union_all(parts[~shapely.is_empty(parts)])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 0]
    points = shapely.point_on_surface(faces)
    inside = shapely.contains(area, points)
    return faces[inside], points[inside]


def _adjacency(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tree = shapely.STRtree(faces)
    left, right = tree.query(faces, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    shared = shapely.length(shapely.intersection(shapely.boundary(faces[left]),
                                                 shapely.boundary(faces[right])))
    edge = shared > 0
    return np.column_stack([left[edge], right[edge]]), shared[edge]


def _arrange(area: BaseGeometry, grids: Mapping[int, BaseGeometry],
             lines: list[BaseGeometry]) -> tuple[_Faces, np.ndarray]:
    """Faces with their previous owner, and each face's representative point."""
    keys = np.array(list(grids), dtype=np.int64)
    geoms = list(grids.values())
    faces, points = _faces(area, geoms, lines)
    owner = np.full(len(faces), _NOBODY, dtype=np.int64)
    if len(geoms):
        point_at, grid_at = shapely.STRtree(np.array(geoms, dtype=object)).query(
            points, predicate="within")
        owner[point_at] = keys[grid_at]
    pairs, shared = _adjacency(faces) if len(faces) else (np.empty((0, 2), int), np.empty(0))
    return _Faces(faces, owner, pairs, shared), points


def _edge_to(faces: _Faces, members: np.ndarray, exclude: set[int]) -> int | None:
    """The owner sharing the longest edge with the faces ``members`` (not in ``exclude``)."""
    inside = np.zeros(len(faces.geoms), dtype=bool)
    inside[members] = True
    a, b = faces.pairs[:, 0], faces.pairs[:, 1]
    across = inside[a] != inside[b]
    other = np.where(inside[a], b, a)[across]
    lengths = faces.shared[across]
    totals: dict[int, float] = {}
    for face, length in zip(other, lengths, strict=True):
        key = int(faces.owner[face])
        if key >= NEW and key not in exclude:
            totals[key] = totals.get(key, 0.0) + float(length)
    return max(totals, key=totals.__getitem__) if totals else None


def _groups(faces: _Faces, members: np.ndarray) -> list[np.ndarray]:
    """Connected (edge-sharing) groups among the faces ``members``."""
    index = {int(f): i for i, f in enumerate(members)}
    edges = [(index[int(a)], index[int(b)]) for a, b in faces.pairs
             if int(a) in index and int(b) in index]
    rows = np.array([e[0] for e in edges], dtype=np.intp)
    cols = np.array([e[1] for e in edges], dtype=np.intp)
    graph = sparse.coo_matrix((np.ones(len(edges)), (rows, cols)),
                              shape=(len(members), len(members)))
    count, label = connected_components(graph, directed=False)
    return [members[label == g] for g in range(count)]


def _absorb_slivers(faces: _Faces, sliver: float) -> None:
    """Thin faces join the owned face they share most edge with."""
    thin = np.flatnonzero(faces.width() < sliver)
    for face in thin[np.argsort(shapely.area(faces.geoms[thin]))]:
        to = _edge_to(faces, np.array([face]), exclude={_GIVEN})
        if to is not None:
            faces.owner[face] = to


def _hand_on_given(faces: _Faces, edited: int, grid_name: Callable[[int], str]) -> None:
    for group in _groups(faces, np.flatnonzero(faces.owner == _GIVEN)):
        to = _edge_to(faces, group, exclude={edited})
        if to is None:
            raise EditRefused(
                f"the area {grid_name(edited)} would give up touches no other grid and "
                "would become a gap; keep it or move the jurisdiction's grids around it")
        faces.owner[group] = to


def _make_whole(faces: _Faces) -> None:
    """Every owner ends with one connected piece: extra pieces go to a neighbour."""
    for _ in range(8):
        moved = False
        for key in np.unique(faces.owner[faces.owner >= NEW]):
            groups = _groups(faces, np.flatnonzero(faces.owner == key))
            if len(groups) < 2:
                continue
            groups.sort(key=lambda g: -shapely.area(faces.geoms[g]).sum())
            for group in groups[1:]:
                to = _edge_to(faces, group, exclude={int(key)})
                if to is not None:
                    faces.owner[group] = to
                    moved = True
        if not moved:
            return


def _dissolve(faces: _Faces) -> dict[int, BaseGeometry]:
    out: dict[int, BaseGeometry] = {}
    for key in np.unique(faces.owner[faces.owner >= NEW]):
        out[int(key)] = shapely.coverage_union_all(faces.geoms[faces.owner == key])
    return out


def _rounded(geoms: dict[int, BaseGeometry], grid_size: float,
             stored: Mapping[int, BaseGeometry]) -> dict[int, BaseGeometry]:
    """``geoms`` on the ``grid_size`` grid (unchanged when it is 0).

    Noding can leave a point a hair off a stored vertex, which rounding may then put
    one grid step away from it; such points go back onto the stored vertex (within
    two steps), so grids the edit did not change still share their edges with it.
    """
    if not grid_size or not geoms:
        return geoms
    rounded = to_served(np.array(list(geoms.values()), dtype=object), grid_size)
    if stored:
        rounded = to_served(_onto_vertices(
            rounded, np.array(list(stored.values()), dtype=object), 2 * grid_size), grid_size)
    return dict(zip(geoms, rounded, strict=True))


_GeomsT = TypeVar("_GeomsT", BaseGeometry, np.ndarray)


def _onto_vertices(geoms: _GeomsT, others: np.ndarray, tolerance: float) -> _GeomsT:
    """``geoms`` with each vertex within ``tolerance`` of a vertex of ``others`` moved onto it.

    Only vertices move (segments are not bent towards other vertices).
    """
    existing = np.unique(shapely.get_coordinates(others), axis=0)
    if not len(existing):
        return geoms
    # (shapely's stubs give points() of an array as ``Point | ndarray``)
    tree = shapely.STRtree(shapely.points(existing))  # type: ignore[arg-type]

    def onto(coords: np.ndarray) -> np.ndarray:
        at, nearest = tree.query_nearest(shapely.points(coords), max_distance=tolerance,
                                         all_matches=False)
        out = coords.copy()
        out[at] = existing[nearest]
        return out

    return shapely.transform(geoms, onto)


def _same(a: BaseGeometry, b: BaseGeometry) -> bool:
    return bool(shapely.get_num_coordinates(a) == shapely.get_num_coordinates(b)
                and shapely.equals(a, b))


def _settle(faces: _Faces, grids: Mapping[int, shapely.Polygon], sliver: float,
            keep: set[int], grid_name: Callable[[int], str],
            grid_size: float) -> dict[int, shapely.Polygon]:
    """Slivers absorbed, pieces made whole; the grids whose geometry changed."""
    _absorb_slivers(faces, sliver)
    _make_whole(faces)
    result = _rounded(_dissolve(faces), grid_size, grids)
    for key in keep:
        if key not in result:
            raise EditRefused(f"the edit would swallow {grid_name(key)} whole; "
                              "merge the grids instead")
    polygons: dict[int, shapely.Polygon] = {}
    for key, geom in result.items():
        if not isinstance(geom, shapely.Polygon):
            raise EditRefused(f"{grid_name(key)} would fall apart into pieces")
        polygons[key] = geom
    # Noding may change an untouched grid by rounding only (a vertex a hair off a shared
    # edge, a spike of no area along nearly collinear edges): keep those grids as stored
    # when the coverage stays valid without the change.
    unmoved = {k: grids[k] for k, g in polygons.items()
               if k in grids and shapely.symmetric_difference(grids[k], g).area
               < 0.1 * sliver * sliver}
    for candidate in ({**polygons, **unmoved}, polygons):
        everything = [candidate.get(k, g) for k, g in grids.items()
                      if k in candidate or k in keep]
        everything += [g for k, g in candidate.items() if k not in grids]  # new grids too
        if len(everything) < 2 or shapely.coverage_is_valid(np.array(everything, dtype=object)):
            return {k: g for k, g in candidate.items()
                    if k not in grids or not _same(grids[k], g)}
    raise EditRefused("the grids around this edit do not form a clean coverage "
                      "(check them with /api/grids/validate) and cannot be edited safely")


def _name(key: int) -> str:
    return "the new grid" if key == NEW else f"grid {key}"


def _snap(geom: BaseGeometry, area: BaseGeometry,
          grids: Mapping[int, BaseGeometry], tolerance: float) -> BaseGeometry:
    """Move each vertex of ``geom`` within ``tolerance`` of an existing vertex onto it.

    Only vertices move (segments are not bent towards other vertices), so the parts
    of an outline that were not edited stay exactly as stored.
    """
    existing = np.array([area.boundary, *shapely.boundary(np.array(list(grids.values()),
                                                                   dtype=object))],
                        dtype=object)
    snapped = _onto_vertices(geom, existing, tolerance)
    if snapped.is_valid:
        return snapped
    # two vertices landed on one point: keep the polygonal part of the repaired shape
    parts = shapely.get_parts(shapely.make_valid(snapped))
    return shapely.union_all([p for p in parts if p.geom_type in ("Polygon", "MultiPolygon")])


def reshape(area: BaseGeometry, grids: Mapping[int, shapely.Polygon], key: int,
            new: BaseGeometry | None, *, tolerance: float, sliver: float,
            grid_name: Callable[[int], str] = _name, grid_size: float = 0.0) -> Retiled:
    """Give grid ``key`` the shape ``new`` and adjust its neighbours.

    Parameters
    ----------
    area
        The jurisdiction the grids tile.
    grids
        The grids near the edit (at least every grid the old or new shape touches),
        keyed by id. ``key`` may be :data:`NEW` for a grid being drawn; ``new`` None
        (or empty) removes grid ``key``, its area going to its neighbours.
    tolerance, sliver
        Snapping distance and the width under which a face is a sliver, in CRS units.
    grid_size
        The grid the results are rounded to, in CRS units (0: not rounded).
    grid_name
        ``key -> str`` for messages.

    Raises
    ------
    EditRefused
        The shape is invalid, mostly outside ``area``, does not overlap the grid it
        replaces, would swallow a neighbour whole or leave a gap no grid can take.
    """
    old = grids.get(key)
    grids = dict(grids)
    if new is not None and not new.is_empty:
        new = _clean_shape(new, area, grid_name(key), tolerance)
        new = _snap(new, area, grids, tolerance)
        if old is not None and not new.intersects(old):
            raise EditRefused(f"the new shape does not overlap {grid_name(key)}'s current "
                              "one; draw it where the grid is")
    else:
        new = None
        if old is None:
            raise EditRefused("nothing to do: no shape given")
    faces, points = _arrange(area, grids, [] if new is None else [new.boundary])
    if new is not None:
        taken = shapely.contains(new, points)
        faces.owner[(faces.owner == key) & ~taken] = _GIVEN
        faces.owner[taken] = key
    else:
        faces.owner[faces.owner == key] = _GIVEN
    _absorb_slivers(faces, sliver)
    _hand_on_given(faces, key, grid_name)
    keep = {k for k in grids if k != key}
    if new is not None:
        keep.add(key)
    changed = _settle(faces, grids, sliver, keep, grid_name, grid_size)
    return Retiled(changed, () if new is not None else (key,))


def _clean_shape(new: BaseGeometry, area: BaseGeometry, name: str,
                 tolerance: float) -> BaseGeometry:
    if new.geom_type not in ("Polygon", "MultiPolygon"):
        raise EditRefused(f"the new shape of {name} must be a polygon, not a {new.geom_type}")
    if not new.is_valid:
        raise EditRefused(f"the new shape of {name} is not a valid polygon: "
                          f"{shapely.is_valid_reason(new)}")
    inside = shapely.intersection(new, area).area
    if inside < MOSTLY_OUTSIDE * new.area:
        raise EditRefused(f"{100 * (1 - inside / new.area):.0f}% of the new shape of {name} "
                          "lies outside its jurisdiction")
    return new


def carve(area: BaseGeometry, grids: Mapping[int, shapely.Polygon],
          new: BaseGeometry, *, tolerance: float, sliver: float, min_area: float,
          unit_area_m2: float = 1.0, grid_name: Callable[[int], str] = _name,
          grid_size: float = 0.0) -> Retiled:
    """Cut a new grid (:data:`NEW`) with the shape ``new`` out of the grids it overlaps.

    Rules, each refused with a message naming the problem: ``new`` is one simple polygon
    without holes; at least half of it lies in ``area`` (the part outside is cut off);
    no grid it overlaps is left with less than ``min_area`` (that would cover the grid
    whole: merge grids instead); the new grid itself has at least ``min_area``.
    ``min_area`` is in CRS units squared, ``unit_area_m2`` the square metres of one
    (for the messages). Other parameters as in :func:`reshape`.
    """
    if not isinstance(new, shapely.Polygon):
        raise EditRefused(f"the new grid must be one polygon, not a {new.geom_type}")
    if new.interiors:
        raise EditRefused("the new grid must be a polygon without holes")
    if not new.is_valid:
        raise EditRefused(f"the new grid is not a valid polygon: "
                          f"{shapely.is_valid_reason(new)}")

    def m2(value: float) -> str:
        return f"{value * unit_area_m2:.0f} m²"

    for key, geom in grids.items():
        if geom.intersects(new) and shapely.difference(geom, new).area < min_area:
            raise EditRefused(f"the new grid would cover {grid_name(key)} entirely; draw it "
                              "smaller, or merge the grids instead")
    result = reshape(area, grids, NEW, new, tolerance=tolerance, sliver=sliver,
                     grid_name=grid_name, grid_size=grid_size)
    made = result.changed.get(NEW)
    if made is None or made.area < min_area:
        size = 0.0 if made is None else made.area
        raise EditRefused(f"the new grid is too small ({m2(size)} inside the jurisdiction, "
                          f"a grid needs at least {m2(min_area)}): draw it larger")
    return result


def split(area: BaseGeometry, grids: Mapping[int, shapely.Polygon], key: int,
          line: BaseGeometry, *, tolerance: float, sliver: float,
          grid_name: Callable[[int], str] = _name, grid_size: float = 0.0) -> Retiled:
    """Cut grid ``key`` in two along ``line``; the smaller half becomes :data:`NEW`.

    The line must cross the grid from edge to edge once (ends within ``tolerance``
    of the edge are snapped onto it).
    """
    if line.geom_type != "LineString" or not line.is_valid or line.length == 0:
        raise EditRefused("the split line must be a LineString of two or more points")
    target = grids[key]
    line = shapely.snap(line, target.boundary, tolerance)
    cut = shapely.intersection(line, target.buffer(tolerance))
    faces, _points = _arrange(area, grids, [cut])
    mine = np.flatnonzero(faces.owner == key)
    # Slivers along the grid's own edge are rounding, not halves.
    halves = mine[faces.width()[mine] >= sliver]
    if len(halves) != 2:
        raise EditRefused(
            f"the line cuts {grid_name(key)} into {len(halves)} part(s); draw a line that "
            "crosses it from one edge to another once")
    faces.owner[halves[np.argmin(shapely.area(faces.geoms[halves]))]] = NEW
    changed = _settle(faces, grids, sliver, set(grids) | {NEW}, grid_name, grid_size)
    return Retiled(changed)


def merge(grids: Mapping[int, shapely.Polygon], keys: list[int], *,
          grid_name: Callable[[int], str] = _name, grid_size: float = 0.0) -> Retiled:
    """Dissolve grids ``keys`` into the first; they must be connected by shared edges."""
    if len(keys) < 2 or len(set(keys)) != len(keys):
        raise EditRefused("merge needs two or more different grids")
    geoms = np.array([grids[k] for k in keys], dtype=object)
    pairs, _shared = _adjacency(geoms)
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])),
                              shape=(len(keys), len(keys))) if len(pairs) else \
        sparse.coo_matrix((len(keys), len(keys)))
    count, label = connected_components(graph, directed=False)
    if count > 1:
        apart = [grid_name(k) for k, lab in zip(keys, label, strict=True) if lab != label[0]]
        raise EditRefused(f"{', '.join(apart)} share(s) no edge with {grid_name(keys[0])}; "
                          "only adjacent grids can be merged")
    merged = _rounded({0: shapely.coverage_union_all(geoms)}, grid_size, grids)[0]
    if not isinstance(merged, shapely.Polygon):
        raise EditRefused("the grids do not dissolve into one polygon")
    return Retiled({keys[0]: merged}, tuple(keys[1:]))
