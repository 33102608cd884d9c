"""Near-repeat analysis: the Knox table of space-time bands with a permutation test.

Every pair of incidents is placed in one space band (their distance, metres in the
metric CRS of ``xy``) and one time band (the difference of their times, days). The
Knox table counts the pairs per (space band, time band) cell; the expected count of a
cell is its mean over Monte Carlo permutations of the times among the incidents
(locations stay fixed), as in Johnson et al. (2007) and Ratcliffe's Near Repeat
Calculator. A cell with more pairs than expected (Knox ratio > 1, small pseudo
p-value) says that incidents close in space follow each other closely in time.

Bands are closed on their upper edge, as in the calculator: with ``edges = [0, 100,
200]`` the bands are ``[0, 100]``, ``(100, 200]`` and "beyond" ``(200, inf)``. With
whole-day times the time edges ``[0, 7, 14]`` are the calculator's "0-7 days" and
"8-14 days". The last row and the last column of every table are "beyond".
The calculator's separate "same location" row is not split out: distance 0 is in the
first space band.

Only pairs within the largest finite space edge are found (a KD-tree over strips of
incidents sorted by x, so that the search holds one strip's candidates at a time) and
binned once, kept as 32-bit indices in blocks per space band; a permutation re-bins
their time differences only, several permutations per pass over each block. The
"beyond" space row needs no pairs at all: permuting the times does not change the
multiset of times, so the number of pairs of all incidents per time band is the same in
every permutation (counted once from the sorted times), and the beyond row is that
total minus the close rows.

References
----------
Knox, G. (1964). The detection of space-time interactions. Journal of the Royal
Statistical Society, Series C (Applied Statistics), 13(1), 25-30.

Johnson, S. D., Bernasco, W., Bowers, K. J., Elffers, H., Ratcliffe, J., Rengert, G.,
& Townsley, M. (2007). Space-time patterns of risk: a cross national assessment of
residential burglary victimization. Journal of Quantitative Criminology, 23(3),
201-219. https://doi.org/10.1007/s10940-007-9025-3

Ratcliffe, J. H. (2009). Near Repeat Calculator (software). Temple University,
Philadelphia, PA, and the National Institute of Justice, Washington, DC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = [
    "CLASSES",
    "NearRepeatResult",
    "RiskZone",
    "band_edges",
    "classify",
    "close_pairs",
    "knox_table",
    "risk_zones",
    "to_days",
]

CLASSES = ("originator", "near_repeat", "isolated")
DAY = np.timedelta64(1, "D")
MAX_BANDS = 1000
PAIR_BLOCK = 1 << 16  # pairs re-binned at a time: keeps the block in the CPU cache
STRIP = 1 << 12  # points whose close pairs are searched at a time
PERM_BATCH = 8  # permutations counted in one pass over the pairs


@dataclass(frozen=True)
class NearRepeatResult:
    """A Knox table with its permutation test.

    ``space_edges`` (metres) and ``time_edges`` (days) are the finite band edges;
    tables are ``(len(space_edges), len(time_edges))``: one row per finite space band
    plus "beyond", one column per finite time band plus "beyond". ``expected`` is the
    mean count over the permutations; ``p_value`` is ``(1 + number of permutations
    with a count >= observed) / (permutations + 1)``; ``knox_ratio`` is observed /
    expected, NaN where expected is 0 (no permutation put a pair in that cell). With
    ``permutations == 0`` expected, p-values and ratios are all NaN.
    """

    space_edges: np.ndarray
    time_edges: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    p_value: np.ndarray
    knox_ratio: np.ndarray
    permutations: int
    seed: int | None


@dataclass(frozen=True)
class RiskZone:
    """Area of elevated risk after recent incidents, in the metric CRS of the input.

    ``until`` is when the risk ends (days, or ``datetime64`` when the times were);
    ``incidents`` are the positions of the incidents whose circles make the zone.
    """

    geometry: shapely.Polygon | shapely.MultiPolygon
    until: float | np.datetime64
    incidents: np.ndarray


def band_edges(width: float, count: int) -> np.ndarray:
    """Edges ``0, width, 2 width, ... count * width`` of ``count`` equal bands."""
    if not (np.isfinite(width) and width > 0):
        raise ValueError(f"band width must be a positive number, got {width!r}")
    if int(count) < 1:
        raise ValueError(f"number of bands must be at least 1, got {count!r}")
    return np.arange(int(count) + 1) * float(width)


def to_days(t: np.ndarray | Sequence) -> np.ndarray:
    """Event times as float days.

    Numbers pass through; ``datetime64`` (taken as UTC) and zone-aware timestamps
    become days since 1970-01-01 00:00 UTC.
    """
    arr = np.asarray(t)
    if arr.dtype == object:  # zone-aware timestamps: their UTC instants
        arr = pd.to_datetime(arr, utc=True).tz_convert(None).to_numpy()
    if np.issubdtype(arr.dtype, np.datetime64):
        if np.isnat(arr).any():
            raise ValueError("event times contain NaT (a missing time)")
        return (arr - np.datetime64(0, "s")) / DAY
    out = np.asarray(arr, dtype=float)
    if not np.isfinite(out).all():
        raise ValueError("event times must be finite numbers of days")
    return out


def _check_edges(edges: np.ndarray | Sequence[float], what: str) -> np.ndarray:
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or len(e) < 2 or e[0] != 0 or not np.isfinite(e).all() \
            or (np.diff(e) <= 0).any():
        raise ValueError(f"{what} edges must start at 0 and increase, finite, with at "
                         f"least one band; got {list(np.atleast_1d(e))}")
    return e


def _inputs(xy: np.ndarray, t: np.ndarray | Sequence) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(xy, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"xy must be an (n, 2) array of metres, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("xy contains a coordinate that is not a finite number")
    days = to_days(t)
    if days.shape != (len(pts),):
        raise ValueError(f"{len(pts)} locations but {days.size} times")
    return pts, days


def _band(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Band of each value; bands closed on their upper edge, ``len(edges) - 1`` beyond."""
    return np.maximum(np.searchsorted(edges, values, side="left") - 1, 0)


def close_pairs(xy: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of points at most ``radius`` metres apart, and their distances.

    Metres in the metric CRS of ``xy``; ``i``, ``j`` are positions in ``xy``, each
    unordered pair once (which of the two comes first is not defined).
    """
    found = list(_strips_of_pairs(xy, radius))
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return (np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found]),
            np.concatenate([f[2] for f in found]))


def _strips_of_pairs(xy: np.ndarray,
                     radius: float) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`close_pairs` strip by strip: no more than one strip's candidates held."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    order, key = _sort_long_side(xy)
    pts = xy[order]
    reach = _reach(radius)
    a = 0
    while a < len(pts) - 1:
        ij, a = _strip_pairs(key, pts, a, reach)
        i, j = ij[:, 0], ij[:, 1]
        d = np.hypot(pts[i, 0] - pts[j, 0], pts[i, 1] - pts[j, 1])
        keep = d <= radius
        yield order[i[keep]], order[j[keep]], d[keep]


def _sort_long_side(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order of ``pts`` along the longer side of their box, and that coordinate sorted.

    Close pairs are then close in memory, and strips of the pair search seldom narrow.
    """
    side = np.ptp(pts, axis=0) if len(pts) else np.zeros(2)
    order = np.argsort(pts[:, int(side[1] > side[0])], kind="stable")
    return order, np.ascontiguousarray(pts[order, int(side[1] > side[0])])


def _reach(radius: float) -> float:
    """Radius of the KD-tree search: a hair wider than asked.

    The pairs found are then cut by our own distance, so that the tree's rounding does
    not decide pairs exactly on the edge.
    """
    return float(radius) * (1 + 1e-9) + 1e-9


def _pairs_within(sorted_t: np.ndarray, gap: float) -> int:
    """Number of pairs of all events whose times differ by at most ``gap`` days.

    A bisection on ``t[j] - t[i] <= gap`` itself (not ``t[j] <= t[i] + gap``), so that
    rounding decides exactly as it does for the pairs' own differences.
    """
    n = len(sorted_t)
    first = np.arange(n)
    lo, hi = first.copy(), np.full(n, n)  # t[lo] - t[i] <= gap; hi: first known not to be
    while (active := hi - lo > 1).any():
        mid = (lo + hi) // 2
        ok = sorted_t[np.minimum(mid, n - 1)] - sorted_t <= gap
        lo = np.where(active & ok, mid, lo)
        hi = np.where(active & ~ok, mid, hi)
    return int((lo - first).sum())


def _time_totals(t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Pairs of all events per time band (the beyond band last)."""
    st = np.sort(t)
    n = len(t)
    cum = np.array([_pairs_within(st, e) for e in edges[1:]] + [n * (n - 1) // 2])
    return np.diff(cum, prepend=0)


@dataclass(frozen=True)
class _Pairs:
    """Close pairs grouped by space band, in blocks: ``blocks[s]`` holds (i, j) arrays."""

    blocks: list[list[tuple[np.ndarray, np.ndarray]]]
    per_band: np.ndarray  # pairs per finite space band


def _strip_pairs(key: np.ndarray, pts: np.ndarray, a: int,
                 reach: float) -> tuple[np.ndarray, int]:
    """Pairs ``(i, j)``, ``i < j``, within ``reach`` of the strip of ``pts`` from ``a``.

    ``key`` is the sorting coordinate of ``pts``. The strip is ``STRIP`` points or, when
    those lie closer together, points up to ``reach`` further along (at most
    ``16 * STRIP``). All partners of the strip lie before the first point more than
    ``reach`` beyond its last one: a KD-tree of those finds them. Returns the pairs
    (32-bit) and the end of the strip.
    """
    n = len(key)
    b = min(max(a + STRIP, int(np.searchsorted(key, key[a] + reach, side="right"))),
            a + 16 * STRIP, n)
    hi = int(np.searchsorted(key, key[b - 1] + reach, side="right"))
    tree = cKDTree(pts[a:hi], balanced_tree=False, compact_nodes=False)
    local = tree.query_pairs(reach, output_type="ndarray")  # first < second
    local = local[local[:, 0] < b - a]
    return local.astype(np.int32) + np.int32(a), b


def _banded_pairs(key: np.ndarray, pts: np.ndarray, edges: np.ndarray) -> _Pairs:
    """Pairs of ``pts`` within the last space edge, grouped by space band.

    ``pts`` are sorted by ``key``, one of their coordinates. The pairs are found strip
    by strip (each pair in the strip of its first point), so that no more than one
    strip's candidates are held beside the result; distances by ``np.hypot`` as
    :func:`close_pairs`.
    """
    bands = len(edges) - 1
    radius = float(edges[-1])
    reach = _reach(radius)
    x, y = np.ascontiguousarray(pts[:, 0]), np.ascontiguousarray(pts[:, 1])
    blocks: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(bands)]
    per_band = np.zeros(bands, dtype=np.int64)
    a = 0
    while a < len(pts) - 1:
        ij, a = _strip_pairs(key, pts, a, reach)
        i, j = ij[:, 0], ij[:, 1]
        d = np.hypot(x[i] - x[j], y[i] - y[j])
        band = _band(d, edges)
        band[d > radius] = bands  # a hair beyond: dropped
        order = np.argsort(band.astype(np.uint16), kind="stable")
        count = np.bincount(band, minlength=bands + 1)
        i, j = i[order], j[order]
        start = 0
        for s in range(bands):
            for lo in range(start, start + int(count[s]), PAIR_BLOCK):
                hi = min(lo + PAIR_BLOCK, start + int(count[s]))
                blocks[s].append((i[lo:hi].copy(), j[lo:hi].copy()))
            start += int(count[s])
        per_band += count[:bands]
    return _Pairs(blocks, per_band)


def _close_rows(times: list[np.ndarray], pairs: _Pairs,
                time_edges: np.ndarray) -> list[np.ndarray]:
    """Close-row counts (finite space bands x time bands with beyond) per array of times.

    One table per array in ``times``; each block of pairs is read once for all of them.
    """
    finite = time_edges[1:]
    cum = np.zeros((len(times), len(pairs.blocks), len(finite)), dtype=np.int64)
    for s, blocks in enumerate(pairs.blocks):
        for bi, bj in blocks:
            bi, bj = bi.astype(np.intp), bj.astype(np.intp)  # np.take casts int32 slowly
            for q, tq in enumerate(times):
                dt = np.take(tq, bi)
                np.subtract(dt, np.take(tq, bj), out=dt)
                np.abs(dt, out=dt)
                for k, edge in enumerate(finite):
                    cum[q, s, k] += np.count_nonzero(dt <= edge)
    return [np.column_stack([np.diff(c, prepend=0, axis=1), pairs.per_band - c[:, -1]])
            for c in cum]


def knox_table(xy: np.ndarray, t: np.ndarray | Sequence,
               space_edges: np.ndarray | Sequence[float] | None = None,
               time_edges: np.ndarray | Sequence[float] | None = None,
               permutations: int = 99, seed: int | None = 0,
               workers: int = 1) -> NearRepeatResult:
    """Knox table of incident pairs by space and time band, with a permutation test.

    Parameters
    ----------
    xy : (n, 2) array
        Incident locations, metres in a metric CRS.
    t : (n,) array
        Incident times: days (float) or ``datetime64`` (see :func:`to_days`).
    space_edges, time_edges : sequence of float, optional
        Finite band edges from 0, metres and days; bands are closed on their upper
        edge. Default ``band_edges(100, 3)`` (0-100, 101-200, 201-300 m) and
        ``band_edges(7, 4)`` (0-7, 8-14, 15-21, 22-28 days).
    permutations : int
        Monte Carlo permutations of the times. Permutation ``k`` gives incident ``i``
        the time ``t[perm[i]]`` where ``perm`` is the ``k``-th
        ``rng.permutation(n)`` of ``np.random.default_rng(seed)``.
    seed : int or None
        Seed of the permutations.
    workers : int
        Threads counting permutations (results do not depend on it).

    Returns
    -------
    NearRepeatResult
    """
    pts, days = _inputs(xy, t)
    s_edges = _check_edges(band_edges(100, 3) if space_edges is None else space_edges,
                           "space")
    t_edges = _check_edges(band_edges(7, 4) if time_edges is None else time_edges, "time")
    if len(s_edges) > MAX_BANDS or len(t_edges) > MAX_BANDS:
        raise ValueError(f"at most {MAX_BANDS} space and {MAX_BANDS} time bands, got "
                         f"{len(s_edges) - 1} and {len(t_edges) - 1}")
    if int(permutations) < 0:
        raise ValueError(f"permutations must be 0 or more, got {permutations!r}")
    order, key = _sort_long_side(pts)
    pairs = _banded_pairs(key, pts[order], s_edges)
    totals = _time_totals(days, t_edges)
    observed = _with_beyond(_close_rows([days[order]], pairs, t_edges)[0], totals)
    rng = np.random.default_rng(seed)
    rows = _permuted(days, order, pairs, t_edges, rng, int(permutations), workers)
    sims = np.stack([_with_beyond(r, totals) for r in rows]) if rows else \
        np.zeros((0, *observed.shape), dtype=np.int64)
    return _result(s_edges, t_edges, observed, sims, int(permutations), seed)


def _with_beyond(close: np.ndarray, totals: np.ndarray) -> np.ndarray:
    return np.vstack([close, totals - close.sum(axis=0)])


def _permuted(days: np.ndarray, order: np.ndarray, pairs: _Pairs, t_edges: np.ndarray,
              rng: np.random.Generator, permutations: int, workers: int) -> list[np.ndarray]:
    """Close rows of each permutation, in permutation order.

    The permuted times are drawn in order by the calling thread, ``PERM_BATCH`` per
    worker at a time (each worker counts its share of a batch in one pass over the
    pairs), so the result does not depend on ``workers``.
    """
    n, workers = len(days), max(1, workers)
    out: list[np.ndarray] = []
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for start in range(0, permutations, PERM_BATCH * workers):
            batch = [days[rng.permutation(n)][order]
                     for _ in range(min(PERM_BATCH * workers, permutations - start))]
            parts = [batch[k::workers] for k in range(workers) if batch[k::workers]]
            if pool is None:
                counted = [_close_rows(part, pairs, t_edges) for part in parts]
            else:
                counted = list(pool.map(lambda part: _close_rows(part, pairs, t_edges), parts))
            rows: list[np.ndarray] = [np.empty(0)] * len(batch)
            for k, tables in enumerate(counted):
                rows[k::workers] = tables
            out.extend(rows)
    finally:
        if pool is not None:
            pool.shutdown()
    return out


def _result(s_edges: np.ndarray, t_edges: np.ndarray, observed: np.ndarray,
            sims: np.ndarray, permutations: int, seed: int | None) -> NearRepeatResult:
    if permutations:
        expected = sims.mean(axis=0)
        p_value = ((sims >= observed).sum(axis=0) + 1) / (permutations + 1)
    else:
        expected = np.full(observed.shape, np.nan)
        p_value = np.full(observed.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, observed / expected, np.nan)
    return NearRepeatResult(s_edges, t_edges, observed, expected, p_value, ratio,
                            permutations, seed)


def classify(xy: np.ndarray, t: np.ndarray | Sequence, space_m: float,
             days: float) -> np.ndarray:
    """Each incident as ``"originator"``, ``"near_repeat"`` or ``"isolated"`` (Ratcliffe).

    Two incidents are linked when they are at most ``space_m`` metres apart (metric CRS
    of ``xy``) and their times at most ``days`` apart (both edges inclusive, as the Knox
    bands: pass ``result.space_edges[k]`` and ``result.time_edges[k]`` to use the first
    ``k`` bands). Of two linked incidents the later one is a near repeat and the earlier
    one an originator; equal times are ordered by position in the input. An incident
    that is both (it follows one and is followed by another) is a near repeat: that
    label takes precedence. An incident linked to none is isolated.

    Returns
    -------
    (n,) array of str
    """
    pts, t_days = _inputs(xy, t)
    if not (np.isfinite(space_m) and space_m >= 0 and np.isfinite(days) and days >= 0):
        raise ValueError(f"space_m and days must be finite and >= 0, got {space_m!r}, "
                         f"{days!r}")
    earlier_of = np.zeros(len(pts), dtype=bool)
    later_of = np.zeros(len(pts), dtype=bool)
    for i, j, _ in _strips_of_pairs(pts, float(space_m)):
        linked = np.abs(t_days[i] - t_days[j]) <= days
        i, j = i[linked], j[linked]
        i_first = (t_days[i] < t_days[j]) | ((t_days[i] == t_days[j]) & (i < j))
        earlier_of[np.where(i_first, i, j)] = True
        later_of[np.where(i_first, j, i)] = True
    labels = np.full(len(pts), "isolated", dtype=object)
    labels[earlier_of] = "originator"
    labels[later_of] = "near_repeat"  # after the originators: near repeat takes precedence
    return labels.astype(str)


def risk_zones(xy: np.ndarray, t: np.ndarray | Sequence, as_of: float | np.datetime64,
               space_m: float, days: float, quad_segs: int = 16) -> list[RiskZone]:
    """Areas of elevated near-repeat risk after the latest incidents.

    Every incident with ``as_of - days <= t <= as_of`` draws a circle of radius
    ``space_m`` metres (a polygon of ``4 * quad_segs`` sides, metric CRS of ``xy``)
    whose risk lasts until ``t + days``. Circles whose polygons intersect (touching
    included), directly or through a chain of others, are merged into one zone; a zone
    lasts until the latest end among its circles. Zones come latest end first.
    """
    pts, t_days = _inputs(xy, t)
    if not (np.isfinite(space_m) and space_m > 0 and np.isfinite(days) and days >= 0):
        raise ValueError(f"space_m must be > 0 and days >= 0, got {space_m!r}, {days!r}")
    now = float(to_days(np.asarray([as_of]))[0])
    recent = np.flatnonzero((t_days >= now - days) & (t_days <= now))
    if not len(recent):
        return []
    circles = np.asarray(shapely.buffer(shapely.points(pts[recent]), space_m,
                                        quad_segs=quad_segs))
    a, b = shapely.STRtree(circles).query(circles, predicate="intersects")
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(recent),) * 2)
    _, component = connected_components(graph, directed=False)
    as_datetime = np.issubdtype(np.asarray(t).dtype, np.datetime64)
    zones = []
    for c in range(int(component.max()) + 1):
        members = np.flatnonzero(component == c)
        end = float(t_days[recent[members]].max() + days)
        until: float | np.datetime64 = end
        if as_datetime:
            until = np.datetime64(0, "ms") + np.timedelta64(round(end * 86_400_000), "ms")
        area = shapely.union_all(circles[members])
        assert isinstance(area, shapely.Polygon | shapely.MultiPolygon)
        zones.append(RiskZone(area, until, recent[members]))
    return sorted(zones, key=lambda z: -float(to_days(np.asarray([z.until]))[0]))
