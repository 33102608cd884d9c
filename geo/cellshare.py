"""Incidents shared as counts per cell: what a city gives a partner that may not see points.

A border partner may be given a city's incidents in the border zone only as counts per
square cell of a lattice both servers lay the same way: side ``size`` metres in the
zone's metric CRS, cell ``(col, row)`` covering ``[col * size, (col + 1) * size)`` by
``[row * size, (row + 1) * size)`` (the lattice of :func:`geo.hotspots.square_cells`,
whose origin is on multiples of the size). A cell's tally per side of the border
carries the count, the summed severity, the count per local hour and per category:
enough to give back every aggregate the border view shows (counts per cell for the hot
cells, totals per side, per hour and per category) and no single incident.

:func:`tally` makes the tallies from points; :func:`expand` turns tallies back into
stand-in points at the cells' centres, so the analyses that take points take them
unchanged: each stand-in carries the cell's mean severity, and the hours and
categories are dealt out over the stand-ins so their counts per cell are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CellTally", "Expanded", "cell_of", "expand", "tally"]


@dataclass(frozen=True)
class CellTally:
    """The incidents of one side of the border in one cell.

    ``col``, ``row``: the cell (see the module); ``side``: the jurisdiction code of the
    side they lie on; ``count``; ``severity``: their summed severity; ``by_hour``: 24
    counts per local hour; ``by_category``: counts per category (those with any).
    """

    col: int
    row: int
    side: str
    count: int
    severity: float
    by_hour: tuple[int, ...]
    by_category: dict[str, int]


@dataclass(frozen=True)
class Expanded:
    """Stand-in points of tallies.

    ``xy`` (N, 2) metres at the cells' centres, and per point its ``side``, local
    ``hour``, ``category`` and ``severity``.
    """

    xy: np.ndarray
    side: np.ndarray
    hour: np.ndarray
    category: np.ndarray
    severity: np.ndarray


def cell_of(xy: np.ndarray, size: float) -> np.ndarray:
    """Column and row (N, 2 integers) of the cell of side ``size`` m holding each point."""
    return np.floor(np.asarray(xy, dtype=float).reshape(-1, 2) / size).astype(np.int64)


def tally(xy: np.ndarray, side: Sequence[str], hour: np.ndarray, category: Sequence[str],
          severity: np.ndarray, size: float) -> list[CellTally]:
    """The tallies per (cell, side) of points ``xy`` (N, 2, metres).

    Ordered by row, column and side; ``hour`` is each point's local hour (0-23).
    """
    cells = cell_of(xy, size)
    groups: dict[tuple[int, int, str], list[int]] = {}
    for i, ((col, row), code) in enumerate(zip(cells.tolist(), side, strict=True)):
        groups.setdefault((row, col, str(code)), []).append(i)
    hours = np.asarray(hour, dtype=np.int64) % 24
    weights = np.asarray(severity, dtype=float)
    out = []
    for (row, col, code), members in sorted(groups.items()):
        picked = np.array(members)
        kinds: dict[str, int] = {}
        for i in members:
            kinds[str(category[i])] = kinds.get(str(category[i]), 0) + 1
        out.append(CellTally(col, row, code, len(members), float(weights[picked].sum()),
                             tuple(np.bincount(hours[picked], minlength=24).tolist()),
                             dict(sorted(kinds.items()))))
    return out


def expand(tallies: Sequence[CellTally], size: float) -> Expanded:
    """Stand-in points of ``tallies``: ``count`` points at each cell's centre."""
    n = sum(t.count for t in tallies)
    xy = np.empty((n, 2))
    side = np.empty(n, dtype=object)
    hour = np.empty(n, dtype=np.int64)
    category = np.empty(n, dtype=object)
    severity = np.empty(n)
    at = 0
    for t in tallies:
        end = at + t.count
        xy[at:end] = ((t.col + 0.5) * size, (t.row + 0.5) * size)
        side[at:end] = t.side
        hour[at:end] = np.repeat(np.arange(24), t.by_hour)[:t.count]
        category[at:end] = [k for k, c in t.by_category.items() for _ in range(c)][:t.count]
        severity[at:end] = t.severity / t.count if t.count else 0.0
        at = end
    return Expanded(xy, side, hour, category, severity)
