"""Border joint defence (边界联防): border, zone, crossings, patrol sectors and routes.

The shared border of two jurisdictions, its zone, the road crossings and what covers
them, balanced patrol sectors and their routes on the road network.

Real boundaries of neighbours do not match: they leave gaps and overlap by centimetres
to metres. The border is taken as A's boundary where B's boundary lies within a
tolerance (default 5 m); everything within the tolerance of it counts as on it.

Coordinates are metric (metres), in one CRS for all inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import shapely
import shapely.ops
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

__all__ = ["Crossing", "NotNeighbours", "Patrol", "Route", "Sector", "Unreached",
           "border_chain", "border_zone", "crossing_cover", "crossings", "plan_patrols",
           "patrol_route", "patrol_sectors", "road_graph", "shared_border", "suggest_hours",
           "team_roads"]

TOLERANCE = 5.0  # metres: boundaries this close are one border
CHECKPOINT_REACH = 50.0  # metres: a checkpoint this close covers a crossing


class NotNeighbours(ValueError):
    """Two jurisdictions whose boundaries never come within the tolerance."""


def _lines(geom: BaseGeometry) -> list[shapely.LineString]:
    parts = shapely.get_parts(geom)
    return [p for p in parts if p.geom_type == "LineString" and p.length > 0]


def shared_border(a: BaseGeometry, b: BaseGeometry,
                  tolerance: float = TOLERANCE) -> BaseGeometry:
    """The A-B border: A's boundary where B's boundary is within ``tolerance`` metres.

    Where the border ends, A's outline runs on within the tolerance of B's corner; what
    lies on the outline of the two together (with gaps up to twice the tolerance
    closed) is therefore not border. Pieces shorter than four times the tolerance
    (where the boundaries only brush) are dropped. Raises :class:`NotNeighbours`, saying how far
    apart they are, when there is none.
    """
    if not (tolerance > 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be positive metres, got {tolerance!r}")
    gap = float(shapely.distance(a, b))
    if gap > tolerance:
        raise NotNeighbours(f"the two jurisdictions are {gap:.0f} m apart; their border "
                            f"must come within {tolerance:g} m")
    near = shapely.intersection(a.boundary, b.boundary.buffer(tolerance, quad_segs=4))
    together = shapely.union(a, b).buffer(tolerance, quad_segs=4).buffer(-tolerance,
                                                                          quad_segs=4)
    near = shapely.difference(near, together.boundary.buffer(tolerance / 10, quad_segs=2))
    shortest = 4 * tolerance
    pieces = [p for p in _lines(shapely.line_merge(near)) if p.length >= shortest]
    if not pieces:
        raise NotNeighbours(f"the two jurisdictions touch but share no border longer than "
                            f"{shortest:g} m")
    return shapely.line_merge(shapely.MultiLineString(pieces))


def border_zone(a: BaseGeometry, b: BaseGeometry, line: BaseGeometry,
                width: float) -> tuple[BaseGeometry, BaseGeometry]:
    """The zone ``width`` metres either side of ``line``: (A's side, B's side).

    Each side lies within its jurisdiction; where they overlap the ground is A's.
    """
    if not (width > 0 and math.isfinite(width)):
        raise ValueError(f"width must be positive metres, got {width!r}")
    band = shapely.buffer(line, width, quad_segs=8)
    side_a = shapely.intersection(band, a)
    side_b = shapely.difference(shapely.intersection(band, b), a)
    return side_a, side_b


@dataclass
class Crossing:
    """Where a road crosses the border: the point, the road's index, its position."""

    point: shapely.Point
    road: int
    at: float  # metres along the road (along its part, for a multi-part road)


def _side(point: BaseGeometry, a: BaseGeometry, b: BaseGeometry) -> str:
    return "a" if shapely.distance(a, point) <= shapely.distance(b, point) else "b"


def crossings(roads: np.ndarray, line: BaseGeometry, a: BaseGeometry,
              b: BaseGeometry, tolerance: float = TOLERANCE) -> list[Crossing]:
    """Every place a road passes from A to B across ``line``.

    The road's contacts with the border within ``2 * tolerance`` metres of each other
    along it are one passage (a road through a gap between mismatched boundaries, or
    along a wiggle, crosses once); it counts when the road is on A's side just before
    it and on B's just after (or the other way round), so a road that only touches the
    border and turns back does not. A road that crosses twice counts twice.

    Road data cut at the city limit cross too: a road piece on A's side ending within
    ``2 * tolerance`` metres of the border, and one on B's side ending within that
    distance of it and of the first end (a gap or overlap where the two cities
    digitised differently), are one crossing, at the border point nearest the middle
    of their two ends, given to the piece on A's side (``road`` is its index, ``at``
    the metres along it to its end). Each end joins at most one: where two of A's roads
    end at one point and one road goes on in B (a fork), that is one crossing; a road
    ending at the border with nothing beyond it (a dead end at the city limit), or two
    pieces that meet there from the same side, are none. These come after the
    crossings of whole roads, in the order of the roads and their parts. Metres, one
    metric CRS for all inputs.
    """
    out: list[Crossing] = []
    roads = np.asarray(roads, dtype=object)
    band = shapely.buffer(line, tolerance)
    contact = _tiles(shapely.buffer(line, tolerance / 10))
    crossed: dict[tuple[int, int], list[float]] = {}  # (road, part) -> metres of passages
    for i in shapely.STRtree(roads).query(band, predicate="intersects"):
        for k, part in enumerate(_lines(roads[i])):
            found = _passages(part, line, contact, a, b, tolerance)
            out.extend(Crossing(p, int(i), d) for p, d in found)
            crossed[(int(i), k)] = [d for _p, d in found]
    out.extend(_joined(roads, line, a, b, tolerance, crossed))
    return out


@dataclass
class _Ends:
    """Road ends near the border: where, whose, and which way their road goes from them."""

    xy: np.ndarray  # (n, 2) metres
    road: np.ndarray  # index into the roads
    part: np.ndarray  # the part of the road, counted as :func:`_lines` does
    at: np.ndarray  # metres along the part
    inward: np.ndarray  # (n, 2) unit vector from the end into its road
    on_a: np.ndarray  # the road lies on A's side behind its end
    usable: np.ndarray  # its side is clear and no passage of its road is near it


def _road_ends(roads: np.ndarray, line: BaseGeometry, a: BaseGeometry, b: BaseGeometry,
               tolerance: float, crossed: dict[tuple[int, int], list[float]]) -> _Ends:
    """The ends of road parts within ``2 * tolerance`` metres of ``line``.

    An end's side is that of its road ``4 * tolerance`` metres back from it (or of the
    road's other end, when shorter): not the end itself, which may overlap the border.
    It is not usable when that point is within ``tolerance`` of the line (a road along
    the border), or when its road part already crosses within reach of it (a whole
    road's passage, counted once by :func:`_passages`).
    """
    reach = 2 * tolerance
    parts, owner = shapely.get_parts(roads, return_index=True)
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)
    parts, owner = parts[keep], owner[keep]
    number = np.arange(len(parts)) - np.searchsorted(owner, owner)
    which = np.tile(np.arange(len(parts)), 2)
    is_end = np.repeat([False, True], len(parts))
    points = np.concatenate([np.asarray(shapely.get_point(parts, k), dtype=object)
                             for k in (0, -1)])
    near = np.sort(shapely.STRtree(points).query(shapely.buffer(line, reach),
                                                 predicate="intersects"))
    which, is_end, points = which[near], is_end[near], points[near]
    length = shapely.length(parts[which])
    at = np.where(is_end, length, 0.0)
    back = np.where(is_end, np.maximum(length - 2 * reach, 0.0), np.minimum(2 * reach, length))
    probes = shapely.line_interpolate_point(parts[which], back)
    xy, inward = shapely.get_coordinates(points), shapely.get_coordinates(probes)
    inward = inward - xy
    inward /= np.maximum(np.hypot(inward[:, 0], inward[:, 1]), 1e-9)[:, None]
    road, part = owner[which], number[which]
    margin = 2 * reach + 2 * tolerance + 1.0  # the probe's way back and a passage's step
    passed = np.array([any(abs(d - t) <= margin for d in crossed.get((int(r), int(k)), ()))
                       for r, k, t in zip(road, part, at, strict=True)], dtype=bool)
    clear = ~shapely.intersects(shapely.buffer(line, tolerance), probes)
    on_a = _on_a(probes, a, b)
    return _Ends(xy, road, part, at, inward, np.asarray(on_a, dtype=bool),
                 np.asarray(clear & ~passed, dtype=bool))


def _on_a(points: np.ndarray, a: BaseGeometry, b: BaseGeometry) -> np.ndarray:
    """Per point: nearer A than B (as :func:`_side`), by containment where that decides."""
    inside = []
    for g in (a, b):
        own = shapely.from_wkb(shapely.to_wkb(g))  # prepared, the caller's left as it was
        shapely.prepare(own)
        inside.append(np.asarray(shapely.intersects(own, points), dtype=bool))
    in_a, in_b = inside
    on_a = np.asarray(in_a & ~in_b, dtype=bool)
    unsure = np.flatnonzero(in_a == in_b)
    if len(unsure):
        on_a[unsure] = shapely.distance(a, points[unsure]) <= shapely.distance(b, points[unsure])
    return on_a


def _joined(roads: np.ndarray, line: BaseGeometry, a: BaseGeometry, b: BaseGeometry,
            tolerance: float, crossed: dict[tuple[int, int], list[float]]) -> list[Crossing]:
    """Crossings made of a road piece of A's side and one of B's meeting at the border.

    Ends within ``2 * tolerance`` metres of each other are paired cheapest first, each
    end at most once; the cost is their distance plus ``tolerance`` metres for a right
    angle between the two roads (twice that for turning back), so that at a junction on
    the border each road is paired with its own continuation.
    """
    ends = _road_ends(roads, line, a, b, tolerance, crossed)
    ours = np.flatnonzero(ends.usable & ends.on_a)
    theirs = np.flatnonzero(ends.usable & ~ends.on_a)
    if len(ours) == 0 or len(theirs) == 0:
        return []
    tree = shapely.STRtree(np.asarray(shapely.points(ends.xy[theirs]), dtype=object))
    pa, pb = tree.query(shapely.points(ends.xy[ours]), predicate="dwithin",
                        distance=2 * tolerance)
    pa, pb = ours[pa], theirs[pb]
    other = (ends.road[pa] != ends.road[pb]) | (ends.part[pa] != ends.part[pb])
    pa, pb = pa[other], pb[other]
    gap = np.hypot(*(ends.xy[pa] - ends.xy[pb]).T)
    cost = gap + tolerance * (1 + np.einsum("ij,ij->i", ends.inward[pa], ends.inward[pb]))
    used: set[int] = set()
    pairs = []
    for k in np.lexsort((pb, pa, cost)):
        if pa[k] not in used and pb[k] not in used:
            used.update((int(pa[k]), int(pb[k])))
            pairs.append(k)
    pa, pb = pa[pairs], pb[pairs]
    middle = shapely.points((ends.xy[pa] + ends.xy[pb]) / 2)
    border = np.array([line], dtype=object)
    where = shapely.line_interpolate_point(border, shapely.line_locate_point(border, middle))
    order = np.lexsort((ends.at[pa], ends.part[pa], ends.road[pa]))
    return [Crossing(where[k], int(ends.road[pa[k]]), float(ends.at[pa[k]])) for k in order]


def _tiles(band: BaseGeometry, size: float = 250.0) -> shapely.STRtree:
    """``band`` cut into squares of ``size`` metres, indexed.

    A road meets a few small pieces of a long border's buffer, not the whole of it
    (which is slow).
    """
    x0, y0, x1, y1 = band.bounds
    xs, ys = np.meshgrid(np.arange(x0, x1 + size, size), np.arange(y0, y1 + size, size))
    boxes = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + size, ys.ravel() + size)
    boxes = boxes[shapely.STRtree(boxes).query(band, predicate="intersects")]
    tiles = shapely.intersection(boxes, band)
    return shapely.STRtree(tiles[~shapely.is_empty(tiles)])


def _passages(road: shapely.LineString, line: BaseGeometry, near: shapely.STRtree,
              a: BaseGeometry, b: BaseGeometry,
              tolerance: float) -> list[tuple[shapely.Point, float]]:
    """Where ``road`` passes the border, and the metres along it.

    ``near`` holds the tiles of the line's buffer of ``tolerance / 10`` metres; a contact
    cut at a tile's edge joins up again as the stretches merge.
    """
    tiles = near.geometries.take(near.query(road, predicate="intersects"))
    contact = shapely.get_parts(shapely.intersection(road, tiles))
    stretches = []  # (from, to) metres along the road touching the border
    for piece in contact:
        coords = shapely.get_coordinates(piece)
        if len(coords) == 0:
            continue
        along = [road.project(shapely.Point(c)) for c in coords]
        stretches.append((min(along), max(along)))
    stretches.sort()
    merged: list[list[float]] = []
    for lo, hi in stretches:
        if merged and lo - merged[-1][1] <= 2 * tolerance:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    out = []
    step = 2 * tolerance + 1.0
    for lo, hi in merged:
        if lo - step < 0 or hi + step > road.length:
            continue  # the road ends at the border: it reaches it, it does not cross it
        before = road.interpolate(lo - step)
        after = road.interpolate(hi + step)
        if _side(before, a, b) != _side(after, a, b):
            middle = (lo + hi) / 2
            out.append((line.interpolate(line.project(road.interpolate(middle))), middle))
    return out


def crossing_cover(points: np.ndarray, checkpoints: np.ndarray, checkpoint_names: list[str],
                   views: np.ndarray, view_names: list[str],
                   reach: float = CHECKPOINT_REACH) -> list[tuple[bool, list[str]]]:
    """Per crossing point: (covered, what covers it).

    A checkpoint within ``reach`` metres covers it, and so does a camera whose field of
    view (with occlusion, :func:`geo.coverage.field_of_view`) holds it.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    by: list[list[str]] = [[] for _ in range(len(points))]
    if len(checkpoints):
        near = cKDTree(np.asarray(checkpoints, dtype=float).reshape(-1, 2)).query_ball_point(
            points, reach)
        for i, found in enumerate(near):
            by[i].extend(checkpoint_names[j] for j in sorted(found))
    views = np.asarray(views, dtype=object)
    if len(views) and len(points):
        # a point on the edge of a view counts as seen
        at, seen = shapely.STRtree(views).query(shapely.points(points), predicate="intersects")
        for i, j in sorted(zip(at, seen, strict=True)):
            by[i].append(view_names[j])
    return [(bool(names), names) for names in by]


# --- patrols ---------------------------------------------------------------------------

@dataclass
class Sector:
    """A stretch of the border: from/to metres along it, its line and its workload."""

    start: float
    end: float
    line: BaseGeometry
    workload: float


def border_chain(line: BaseGeometry) -> shapely.LineString:
    """The border as one line (its pieces joined end to start, nearest first)."""
    parts = _lines(line)
    if len(parts) == 1:
        return parts[0]
    chain = list(parts.pop(0).coords)
    while parts:
        end = np.array(chain[-1])
        dist = [min(np.hypot(*(np.array(p.coords[0]) - end)),
                    np.hypot(*(np.array(p.coords[-1]) - end))) for p in parts]
        nxt = parts.pop(int(np.argmin(dist)))
        coords = list(nxt.coords)
        if np.hypot(*(np.array(coords[-1]) - end)) < np.hypot(*(np.array(coords[0]) - end)):
            coords.reverse()
        chain.extend(coords)
    return shapely.LineString(chain)


def patrol_sectors(line: BaseGeometry, n: int, risk_points: np.ndarray | None = None,
                   risk_weights: np.ndarray | None = None, per_metre: float = 1.0,
                   resolution: float = 10.0) -> list[Sector]:
    """Cut the border into ``n`` sectors of equal workload.

    Workload = ``per_metre`` × length + the risk of the points (incidents, uncovered
    crossings; ``risk_weights`` each, default 1) nearest each stretch, each point's
    weight spread over 200 m of border around its projection so that the cut can
    balance it. Cuts fall on a ``resolution`` metre raster along the border.
    """
    if n < 1:
        raise ValueError(f"there must be at least one team, got {n!r}")
    chain = border_chain(line)
    total = chain.length
    steps = max(n, int(math.ceil(total / resolution)))
    edges = np.linspace(0, total, steps + 1)
    load = np.full(steps, per_metre * total / steps)
    if risk_points is not None and len(risk_points):
        pts = np.asarray(risk_points, dtype=float).reshape(-1, 2)
        w = np.ones(len(pts)) if risk_weights is None else np.asarray(risk_weights, float)
        at = np.atleast_1d(shapely.line_locate_point(chain, shapely.points(pts)))
        spread = 100.0
        for s, weight in zip(at, w, strict=True):
            lo, hi = max(0.0, s - spread), min(total, s + spread)
            share = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None)
            if share.sum() > 0:
                load += weight * share / share.sum()
    cumulative = np.concatenate([[0.0], np.cumsum(load)])
    targets = cumulative[-1] * np.arange(1, n) / n
    cut_at = np.interp(targets, cumulative, edges)
    bounds = np.concatenate([[0.0], cut_at, [total]])
    sectors = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        work = float(np.interp(hi, edges, cumulative) - np.interp(lo, edges, cumulative))
        sectors.append(Sector(float(lo), float(hi), shapely.ops.substring(chain, lo, hi), work))
    return sectors


def _components(graph: nx.Graph) -> dict:
    part_of = {}
    for k, part in enumerate(nx.connected_components(graph)):
        part_of.update(dict.fromkeys(part, k))
    return part_of


def road_graph(roads: np.ndarray, snap: float = 20.0) -> nx.Graph:
    """The road network: nodes at vertices and crossings (to 0.1 m), edges by length.

    A dead end within ``snap`` metres of a road it does not reach (a T-junction drawn a
    little short) is joined to that road's nearest vertex, as network building in GIS
    tools does with a snapping tolerance.
    """
    lines = [p for g in np.asarray(roads, dtype=object) for p in _lines(g)]
    graph: nx.Graph[tuple[float, float]] = nx.Graph()
    if not lines:
        return graph
    noded = shapely.node(shapely.MultiLineString(lines))
    for part in shapely.get_parts(noded):
        xy = np.round(shapely.get_coordinates(part), 1)
        for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:], strict=True):
            if (x0, y0) != (x1, y1):
                graph.add_edge((x0, y0), (x1, y1), weight=math.hypot(x1 - x0, y1 - y0))
    if snap > 0:
        _join_dead_ends(graph, snap)
    return graph


def _join_dead_ends(graph: nx.Graph, snap: float) -> None:
    part_of = _components(graph)
    nodes = list(graph.nodes)
    tree = cKDTree(np.array(nodes))
    for node in [n for n in nodes if graph.degree(n) == 1]:
        for j in sorted(tree.query_ball_point(node, snap),
                        key=lambda j: math.dist(node, nodes[j])):
            other = nodes[j]
            if part_of[other] != part_of[node]:
                graph.add_edge(node, other, weight=math.dist(node, other))
                break


REACH = 500.0  # metres: a stop farther than this from every usable road is not reached


@dataclass
class Route:
    """A route through stops: its line, the stops it reached and those it missed.

    ``missed`` holds (stop index, reason, metres to the nearest usable road or None);
    reasons: ``no_roads`` (no usable road at all), ``no_road`` (none within the reach),
    ``not_joined`` (a road is near, but it does not join the roads the route runs on).
    """

    line: BaseGeometry  # empty when fewer than two places are reached
    reached: list[int]
    missed: list[tuple[int, str, float | None]]


def _nearest_edges(edges: list, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per point: the index of the nearest of ``edges`` ((u, v) pairs) and its distance."""
    tree = shapely.STRtree(shapely.linestrings([[u, v] for u, v in edges]))
    (at, which), distance = tree.query_nearest(shapely.points(points), return_distance=True,
                                               all_matches=False)
    order = np.argsort(at, kind="stable")
    return which[order], distance[order]


def _snap(graph: nx.Graph, stops: np.ndarray, reach: float) -> tuple[dict, list]:
    """Each stop on the edge nearest it, within ``reach``, in the part most stops are on.

    Returns ({stop: (edge, distance)}, missed as in :class:`Route`).
    """
    edges = list(graph.edges)
    nearest, distance = _nearest_edges(edges, stops)
    part_of = _components(graph)
    near = np.flatnonzero(distance <= reach)
    missed = [(int(i), "no_road", float(distance[i])) for i in np.flatnonzero(distance > reach)]
    if len(near) == 0:
        return {}, missed
    parts = [part_of[edges[nearest[i]][0]] for i in near]
    first_seen = list(dict.fromkeys(parts))  # ties go to the part met first along the route
    main = first_seen[int(np.argmax([parts.count(p) for p in first_seen]))]
    snapped = {int(i): (edges[nearest[i]], float(distance[i]))
               for i, p in zip(near, parts, strict=True) if p == main}
    others = [int(i) for i, p in zip(near, parts, strict=True) if p != main]
    if others:
        own = [e for e in edges if part_of[e[0]] == main]
        via, gap = _nearest_edges(own, stops[others])
        for i, j, d in zip(others, via, gap, strict=True):
            if d <= reach:
                snapped[i] = (own[j], float(d))
            else:
                missed.append((i, "not_joined", float(distance[i])))
    return snapped, sorted(missed)


def _split_at(graph: nx.Graph, stops: np.ndarray, snapped: dict) -> dict[int, tuple]:
    """Put each snapped stop's foot on its edge into ``graph`` as a node; stop -> node."""
    feet: dict[tuple, list] = {}
    for i, (edge, _d) in snapped.items():
        segment = shapely.LineString(edge)
        along = segment.project(shapely.Point(stops[i]))
        foot = tuple(np.round(shapely.get_coordinates(segment.interpolate(along))[0], 1))
        feet.setdefault(edge, []).append((along, foot, i))
    node_of = {}
    for (u, v), on in feet.items():
        chain = [u, *[foot for _a, foot, _i in sorted(on)], v]
        graph.remove_edge(u, v)
        for p, q in zip(chain[:-1], chain[1:], strict=True):
            if p != q:
                graph.add_edge(p, q, weight=math.dist(p, q))
        node_of.update({i: foot for _a, foot, i in on})
    return node_of


def patrol_route(graph: nx.Graph, stops: np.ndarray, reach: float = REACH) -> Route:
    """A route on ``graph`` through ``stops`` in the given order, and the stops it missed.

    Each stop goes to the nearest point of the nearest road (edge); the route keeps to
    the connected part of the network most stops are on. A stop farther than ``reach``
    metres from every road, or near only roads that do not join that part (and farther
    than ``reach`` from it), is missed, with the reason. Consecutive stops are joined by
    shortest paths (metres, the CRS of ``graph``). ``graph`` is not changed.
    """
    stops = np.asarray(stops, dtype=float).reshape(-1, 2)
    if graph.number_of_edges() == 0:
        return Route(shapely.LineString(), [], [(i, "no_roads", None) for i in range(len(stops))])
    if len(stops) == 0:
        return Route(shapely.LineString(), [], [])
    snapped, missed = _snap(graph, stops, reach)
    graph = graph.copy()
    node_of = _split_at(graph, stops, snapped)
    path: list[tuple] = []
    for i in sorted(node_of):
        path.extend(nx.shortest_path(graph, path[-1], node_of[i], weight="weight")[1:]
                    if path else [node_of[i]])
    if len(path) < 2:  # one place only: no route, its road joins no other stop's
        lone = [(i, "not_joined", snapped[i][1]) for i in node_of]
        return Route(shapely.LineString(), [], sorted(missed + lone))
    return Route(shapely.LineString(path), sorted(node_of), missed)


def suggest_hours(hours: np.ndarray, length: int = 4) -> tuple[int, int]:
    """The ``length``-hour window of the day holding most of the incident ``hours``.

    Returns (start, end) hours; the window may wrap midnight.
    """
    counts = np.bincount(np.asarray(hours, dtype=int) % 24, minlength=24)
    windows = [counts[(np.arange(length) + h) % 24].sum() for h in range(24)]
    start = int(np.argmax(windows))
    return start, (start + length) % 24


UNCOVERED_WEIGHT = 10.0  # an unwatched crossing weighs as much as ten incidents


@dataclass
class Unreached:
    """A stop a team's route does not reach: what it is, where, why (see :class:`Route`)."""

    kind: str  # "start" / "end" of the sector, "crossing", "hot_cell"
    point: tuple[float, float]  # metres, the CRS of the plan
    reason: str  # "no_roads", "no_road", "not_joined"
    distance: float | None  # metres to the nearest usable road


@dataclass
class Patrol:
    """One team's share of the border: its sector, route and suggested hours."""

    city: str
    team: int
    sector: Sector
    route: BaseGeometry  # empty when no road joins two of the sector's stops
    stops: int
    reached: int
    hours: str  # "HH:00-HH:00"
    crossings: int
    uncovered: int
    unreached: list[Unreached] = field(default_factory=list)  # along the sector


def _sector_stops(sector: Sector, side: BaseGeometry, crossing_xy: np.ndarray,
                  hot: list[tuple[tuple[float, float], int]], width: float
                  ) -> tuple[np.ndarray, list[str]]:
    """The stops of a sector along it (start, crossings, three hottest cells, end), kinds."""
    hottest = sorted((c for c in hot if side.contains(shapely.Point(c[0]))
                      and sector.line.distance(shapely.Point(c[0])) <= width),
                     key=lambda c: -c[1])[:3]
    ends = shapely.get_coordinates(sector.line)[[0, -1]]
    stops = np.vstack([ends[:1], crossing_xy, np.array([c[0] for c in hottest]).reshape(-1, 2),
                       ends[1:]])
    kinds = ["start"] + ["crossing"] * len(crossing_xy) + ["hot_cell"] * len(hottest) + ["end"]
    # (a sector's line is a substring of the border chain, typed as any geometry)
    along = shapely.line_locate_point(  # type: ignore[call-overload]
        sector.line, shapely.points(stops))
    order = np.argsort(along, kind="stable")
    return stops[order], [kinds[i] for i in order]


def _sector_hours(sector: Sector, incident_xy: np.ndarray, incident_hours: np.ndarray,
                  width: float) -> str:
    near = shapely.distance(sector.line, shapely.points(incident_xy)) <= width \
        if len(incident_xy) else np.zeros(0, dtype=bool)
    start, end = suggest_hours(incident_hours[near] if near.sum() >= 10 else incident_hours)
    return f"{start:02d}:00-{end:02d}:00"


def team_roads(roads: np.ndarray, side: BaseGeometry, detour: float) -> nx.Graph:
    """The road network a team of ``side`` patrols on: roads within ``detour`` metres of it."""
    return road_graph(shapely.intersection(np.asarray(roads, dtype=object),
                                           shapely.buffer(side, detour)))


def plan_patrols(line: BaseGeometry, sides: dict[str, BaseGeometry],
                 teams: dict[str, int], roads: np.ndarray, crossing_xy: np.ndarray,
                 covered: list[bool], incident_xy: np.ndarray, incident_hours: np.ndarray,
                 severity: np.ndarray, hot: list[tuple[tuple[float, float], int]],
                 width: float, detour: float | None = None) -> list[Patrol]:
    """Sectors of balanced workload along ``line`` for the teams of each side.

    Workload of a stretch = its length × a rate per metre + the ``severity`` of the
    incidents nearest it + :data:`UNCOVERED_WEIGHT` per unwatched crossing; the rate
    makes length and risk weigh the same in total. ``teams`` maps each side's code to
    its number of teams: the first sectors along the border go to the first side's
    teams, the rest to the next. Each route runs on the roads within ``detour`` metres
    (default ``width``: the zone's width again) of its team's side, from the sector's
    start to its end through its crossings and its three hottest ``hot`` cells
    ((centre, count)) within ``width``, and lists the stops it could not reach and why
    (:func:`patrol_route`); hours come from the incidents within ``width`` of the sector
    (of the whole zone when fewer than ten). Metres, one metric CRS for all inputs.
    """
    detour = width if detour is None else detour
    if not (detour >= 0 and math.isfinite(detour)):
        raise ValueError(f"detour must be metres, 0 or more, got {detour!r}")
    crossing_xy = np.asarray(crossing_xy, dtype=float).reshape(-1, 2)
    incident_xy = np.asarray(incident_xy, dtype=float).reshape(-1, 2)
    watched = np.asarray(covered, dtype=bool).reshape(-1)
    xy = np.vstack([incident_xy, crossing_xy[~watched]])
    w = np.concatenate([np.asarray(severity, dtype=float),
                        np.full(int((~watched).sum()), UNCOVERED_WEIGHT)])
    chain = border_chain(line)
    per_metre = float(w.sum()) / chain.length if w.sum() > 0 else 1.0
    sectors = patrol_sectors(line, sum(teams.values()), xy, w, per_metre)
    owners = [(code, n + 1) for code in teams for n in range(teams[code])]
    graphs = {code: team_roads(roads, side, detour)
              for code, side in sides.items() if teams.get(code)}
    at = shapely.line_locate_point(chain, shapely.points(crossing_xy)) if len(crossing_xy) \
        else np.zeros(0)
    out = []
    for sector, (code, team) in zip(sectors, owners, strict=True):
        last = sector.end >= chain.length - 1e-6
        mine = (at >= sector.start) & ((at < sector.end) | last)
        stops, kinds = _sector_stops(sector, sides[code], crossing_xy[mine], hot, width)
        route = patrol_route(graphs[code], stops)
        unreached = [Unreached(kinds[i], (float(stops[i][0]), float(stops[i][1])), why, d)
                     for i, why, d in route.missed]
        out.append(Patrol(code, team, sector, route.line, len(stops), len(route.reached),
                          _sector_hours(sector, incident_xy, incident_hours, width),
                          int(mine.sum()), int((~watched[mine]).sum()), unreached))
    return out
