"""Topology-safe grid edits in the database: reshape, create, delete, split, merge, restore.

Each edit is one transaction. It takes a lock on the grids' jurisdiction (so two
edits of one jurisdiction run one after the other and each sees the other's
result), checks the caller's version of the edited grid (412 when stale), lets
:mod:`geo.gridedit` re-tile the grids near the edit in the stored lon/lat, and
writes every grid that changed with a version bump and an audit row. Derived
fields are refreshed around the edit and the joint-household units of every changed
grid are marked stale.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo import gridedit
from geo.gridedit import NEW, EditRefused
from geo.validate import SERVED_GRID, geometry_problems

from .access import require_within
from .edit import (
    IfMatch,
    Missing,
    StaleVersion,
    apply_feature,
    create,
    feature_frame,
    feature_snapshot,
    lock_feature,
    stored_geometry,
    write_scope,
)
from .errors import SafegridError, UnknownJurisdiction
from .features import Scope
from .gridcheck import grid_history
from .registry import LAYERS
from .store import audit_row, refresh_derived
from .users import User
from .validate import clean_features

__all__ = ["MIN_GRID_M2", "GridEdit", "GridEditRefused", "StaleVersion", "carve_grid",
           "create_grid", "delete_grid",
           "merge_grids", "replace_grid", "restore_grid", "split_grid", "update_grid",
           "versions", "write_shape"]

GRIDS = LAYERS["grids"]
METRES_PER_DEGREE = 111_320.0  # the longest a degree gets, so tolerances stay within
SNAP_M = 0.5  # vertices this close to an existing one land on it
SLIVER_M = 0.5  # faces thinner than this are absorbed
MARGIN = 0.2  # grids within this share of the edit's size around it are re-tiled
MIN_GRID_M2 = 100.0  # a carved grid, and what it leaves of a grid, is at least this big


class GridEditRefused(SafegridError):
    """An edit that would break the grids' coverage (HTTP 422); nothing was written."""

    http_status = 422


@dataclass(frozen=True)
class GridEdit:
    """The outcome of an edit.

    The grids it changed (created ones included) and removed, and the grid the edit was
    about (None after a delete).
    """

    changed: list[int]
    removed: list[int]
    edited: int | None


def _jurisdiction_of(conn: Connection, grid_id: int) -> str:
    row = conn.execute(text("SELECT jurisdiction_code FROM grids WHERE id = :i"),
                       {"i": grid_id}).first()
    if row is None:
        raise Missing(f"grids has no feature {grid_id} that you may see")
    return row[0]


def _lock(conn: Connection, code: str) -> shapely.Geometry:
    """Serialise edits of one jurisdiction's grids; return its polygon (EPSG:4326)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('grids:' || :c))"), {"c": code})
    row = conn.execute(text("SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
                       {"c": code}).first()
    if row is None:
        raise GridEditRefused(f"jurisdiction {code!r} of this grid does not exist")
    return shapely.from_wkb(bytes(row[0]))


def _nearby(conn: Connection, code: str, shapes: list[shapely.Geometry]
            ) -> tuple[dict[int, shapely.Geometry], dict[int, str]]:
    """Grids of jurisdiction ``code`` within a margin of ``shapes``: geometry and code."""
    x0, y0, x1, y1 = shapely.union_all(shapes).bounds
    pad = MARGIN * max(x1 - x0, y1 - y0) + SNAP_M / METRES_PER_DEGREE
    rows = conn.execute(text(
        "SELECT id, code, ST_AsBinary(geom) FROM grids WHERE jurisdiction_code = :c "
        "AND geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) ORDER BY id"),
        {"c": code, "x0": x0 - pad, "y0": y0 - pad, "x1": x1 + pad, "y1": y1 + pad}).all()
    return ({r[0]: shapely.from_wkb(bytes(r[2])) for r in rows},
            {r[0]: r[1] for r in rows})


def _all_grids(conn: Connection, code: str
               ) -> tuple[dict[int, shapely.Geometry], dict[int, str]]:
    """Every grid of jurisdiction ``code``: geometry and code."""
    rows = conn.execute(text("SELECT id, code, ST_AsBinary(geom) FROM grids "
                             "WHERE jurisdiction_code = :c ORDER BY id"), {"c": code}).all()
    return ({r[0]: shapely.from_wkb(bytes(r[2])) for r in rows},
            {r[0]: r[1] for r in rows})


def _fits_outside(conn: Connection, code: str, grids: dict[int, shapely.Geometry],
                  result: gridedit.Retiled) -> bool:
    """Whether the changed grids still match the grids the edit did not look at.

    Noding the grids near an edit can put a vertex on a long grid far from the edit,
    on an edge it shares with a grid outside the set; that grid would not have it.
    """
    changed = [g for k, g in result.changed.items() if k not in result.removed]
    if not changed:
        return True
    box = shapely.box(*shapely.union_all(changed).bounds)
    rows = conn.execute(text(
        "SELECT ST_AsBinary(geom) FROM grids WHERE jurisdiction_code = :c "
        "AND NOT (id = ANY(:ids)) AND geom && ST_GeomFromEWKB(:b)"),
        {"c": code, "ids": list(grids), "b": _ewkb(box)}).scalars().all()
    tree = shapely.STRtree(np.array(changed, dtype=object))
    outside = [g for g in (shapely.from_wkb(bytes(w)) for w in rows)
               if len(tree.query(g, predicate="intersects"))]
    if not outside:
        return True
    edges = shapely.coverage_invalid_edges(np.array(changed + outside, dtype=object))
    return bool(shapely.is_empty(edges[:len(changed)]).all())


def _retile(conn: Connection, code: str, shapes: list[shapely.Geometry], edit
            ) -> tuple[gridedit.Retiled, dict[int, shapely.Geometry]]:
    """Run ``edit(grids, grid_name)`` on the grids near ``shapes`` (or on all of them).

    When the result would not match the grids around that set, the edit runs again on
    every grid of the jurisdiction. Returns the result and the grids it was computed on.
    """
    grids, codes = _nearby(conn, code, shapes)
    result = _refused(lambda: edit(grids, _namer(codes)))
    if _fits_outside(conn, code, grids, result):
        return result, grids
    grids, codes = _all_grids(conn, code)
    return _refused(lambda: edit(grids, _namer(codes))), grids


def _namer(codes: dict[int, str]):
    return lambda key: "the new grid" if key == NEW else f"grid {codes.get(key, key)}"


def _refused(fn):
    try:
        return fn()
    except EditRefused as exc:
        raise GridEditRefused(str(exc)) from None


_TOLERANCES = {"tolerance": SNAP_M / METRES_PER_DEGREE, "sliver": SLIVER_M / METRES_PER_DEGREE,
               "grid_size": SERVED_GRID}


def _ewkb(geom: shapely.Geometry) -> bytes:
    return shapely.to_wkb(shapely.set_srid(geom, 4326), include_srid=True)


def write_shape(conn: Connection, user: User, grid_id: int, geom: shapely.Geometry) -> None:
    """Store a new shape for a grid (version bump, audit row); no checks, no refresh."""
    before = feature_snapshot(conn, GRIDS, grid_id)
    conn.execute(text(
        "UPDATE grids SET geom = ST_GeomFromEWKB(:g), version = version + 1, "
        "updated_at = now(), updated_by = :actor WHERE id = :i"),
        {"g": _ewkb(geom), "actor": user.name, "i": grid_id})
    audit_row(conn, user.name, "grids", "update", before, feature_snapshot(conn, GRIDS, grid_id),
              grid_id)


def _remove(conn: Connection, user: User, grid_id: int, heir: str | None) -> None:
    """Delete a grid; its units go to ``heir`` (a grid code), stale, or are deleted."""
    before = feature_snapshot(conn, GRIDS, grid_id)
    code = before["properties"]["code"]
    if heir:
        conn.execute(text("UPDATE household_units SET grid_code = :h, status = 'stale' "
                          "WHERE grid_code = :c"), {"h": heir, "c": code})
    else:
        conn.execute(text("DELETE FROM household_units WHERE grid_code = :c"), {"c": code})
    conn.execute(text("DELETE FROM grids WHERE id = :i"), {"i": grid_id})
    audit_row(conn, user.name, "grids", "delete", before, None, grid_id)


def _moved(old: dict[int, shapely.Geometry], new: dict[int, shapely.Geometry]
           ) -> shapely.Geometry:
    """Where grid membership can have changed: the symmetric differences of the shapes."""
    return shapely.union_all([shapely.symmetric_difference(old[k], g)
                              for k, g in new.items() if k in old])


def _finish(conn: Connection, user: User, changed_ids: list[int],
            area: shapely.Geometry) -> None:
    """Refresh derived fields where the grids changed; mark reshaped grids' units stale."""
    if not area.is_empty:
        refresh_derived(conn, "grids", _ewkb(area))
    if changed_ids:
        conn.execute(text(
            "UPDATE household_units SET status = 'stale' WHERE status IS DISTINCT FROM "
            "'stale' AND grid_code IN (SELECT code FROM grids WHERE id = ANY(:ids))"),
            {"ids": changed_ids})


class _Target(NamedTuple):
    """The grid an edit is about, checked and locked."""

    before: dict  # its stored state (for the audit and 412 answers)
    code: str  # its jurisdiction
    area: shapely.Geometry  # the jurisdiction's polygon
    scope: Scope  # what the user may write


def _prepare(conn: Connection, user: User, grid_id: int, if_match: IfMatch) -> _Target:
    """Scope and write checks, the jurisdiction lock, then the version check."""
    scope = write_scope(conn, user, GRIDS)
    code = _jurisdiction_of(conn, grid_id)
    area = _lock(conn, code)
    return _Target(lock_feature(conn, GRIDS, grid_id, scope, if_match), code, area, scope)


def _clean(feature: object, code: str) -> gpd.GeoDataFrame:
    frame = feature_frame(feature)
    given = frame.get("jurisdiction_code")
    if given is not None and given.iloc[0] not in (None, code):
        raise GridEditRefused(f"a grid cannot move from jurisdiction {code} to "
                              f"{given.iloc[0]}; draw a new grid there instead")
    frame["jurisdiction_code"] = code
    return clean_features(frame, GRIDS)


def _reshaped(conn: Connection, user: User, grid_id: int, clean: gpd.GeoDataFrame,
              target: _Target) -> GridEdit:
    """Apply the cleaned feature to grid ``grid_id`` and re-tile its neighbours."""
    before, code, area, scope = target
    old = shapely.geometry.shape(stored_geometry(conn, GRIDS, grid_id))
    new = clean.geometry.iloc[0]
    if new.equals_exact(old, 0):  # fields only: the grids stay exactly as they are
        grids, result = {grid_id: old}, gridedit.Retiled({})
    else:
        result, grids = _retile(conn, code, [old, new], lambda near, name: gridedit.reshape(
            area, near, grid_id, new, grid_name=name, **_TOLERANCES))
    clean = clean.set_geometry([result.changed.get(grid_id, grids[grid_id])], crs=4326)
    apply_feature(conn, user, GRIDS, grid_id, clean, scope, before, refresh=False)
    for key, geom in result.changed.items():
        if key != grid_id:
            write_shape(conn, user, key, geom)
    area = _moved(grids, result.changed)
    if clean["code"].iloc[0] != before["properties"]["code"]:
        area = shapely.union_all([area, result.changed.get(grid_id, grids[grid_id])])
    _finish(conn, user, sorted(result.changed), area)
    return GridEdit(sorted(set(result.changed) | {grid_id}), [], grid_id)


def replace_grid(conn: Connection, user: User, grid_id: int, feature: object,
                 if_match: IfMatch) -> GridEdit:
    """PUT a grid: new fields and shape; neighbours give or take the difference."""
    target = _prepare(conn, user, grid_id, if_match)
    return _reshaped(conn, user, grid_id, _clean(feature, target.code), target)


def update_grid(conn: Connection, user: User, grid_id: int, patch: object,
                if_match: IfMatch) -> GridEdit:
    """Merge-patch a grid (RFC 7396); a new geometry is applied as in :func:`replace_grid`."""
    if not isinstance(patch, dict):
        raise GridEditRefused("a merge patch must be a JSON object")
    target = _prepare(conn, user, grid_id, if_match)
    before = target.before
    changes = patch.get("properties") or {}
    if not isinstance(changes, dict):
        raise GridEditRefused("'properties' must be an object")
    props = {k: v for k, v in before["properties"].items()
             if k in GRIDS.field_names and not GRIDS.get_field(k).derived}
    props.update(changes)
    props = {k: v for k, v in props.items() if v is not None}
    merged = {"type": "Feature", "properties": props,
              "geometry": patch["geometry"] if "geometry" in patch
              else stored_geometry(conn, GRIDS, grid_id)}
    return _reshaped(conn, user, grid_id, _clean(merged, target.code), target)


def restore_grid(conn: Connection, user: User, grid_id: int, version: int,
                 if_match: IfMatch) -> GridEdit:
    """Give a grid the shape it had at ``version`` again (its neighbours adjust)."""
    target = _prepare(conn, user, grid_id, if_match)
    before = target.before
    versions = {v["version"]: v for v in grid_history(conn, user, grid_id)}
    if version not in versions:
        raise GridEditRefused(f"grid {grid_id} has no version {version}; it has "
                              f"{', '.join(map(str, sorted(versions)))}")
    if version == before["properties"]["version"]:
        raise GridEditRefused(f"grid {grid_id} is at version {version} already")
    feature = {"type": "Feature", "geometry": versions[version]["geometry"],
               "properties": {k: v for k, v in before["properties"].items()
                              if k in GRIDS.field_names and not GRIDS.get_field(k).derived}}
    return _reshaped(conn, user, grid_id, _clean(feature, target.code), target)


def create_grid(conn: Connection, user: User, feature: object) -> GridEdit:
    """Draw a new grid: its area is taken from the grids it covers."""
    write_scope(conn, user, GRIDS)
    clean = clean_features(feature_frame(feature), GRIDS)
    new = clean.geometry.iloc[0]
    code = clean["jurisdiction_code"].iloc[0] if "jurisdiction_code" in clean else None
    if code is None:
        code = _containing_jurisdiction(conn, new)
    require_within(conn, user, code)
    area = _lock(conn, code)
    result, _grids = _retile(conn, code, [new], lambda near, name: gridedit.reshape(
        area, near, NEW, new, grid_name=name, **_TOLERANCES))
    clean["jurisdiction_code"] = code
    clean = clean.set_geometry([result.changed[NEW]], crs=4326)
    written = create(conn, user, GRIDS, json.loads(clean.to_json(drop_id=True))["features"][0])
    for key, geom in result.changed.items():
        if key != NEW:
            write_shape(conn, user, key, geom)
    changed = sorted({k for k in result.changed if k != NEW} | {written.id})
    _finish(conn, user, changed, result.changed[NEW])
    return GridEdit(changed, [], written.id)


def _containing_jurisdiction(conn: Connection, geom: shapely.Geometry) -> str:
    """The lowest-level jurisdiction holding most of ``geom``."""
    row = conn.execute(text(
        "SELECT code FROM jurisdictions j WHERE ST_Intersects(j.geom, ST_GeomFromEWKB(:g)) "
        "AND NOT EXISTS (SELECT 1 FROM jurisdictions c WHERE c.parent_code = j.code) "
        "ORDER BY ST_Area(ST_Intersection(j.geom, ST_GeomFromEWKB(:g))) DESC LIMIT 1"),
        {"g": _ewkb(geom)}).first()
    if row is None:
        raise GridEditRefused("the new grid lies in no jurisdiction")
    return row[0]


def delete_grid(conn: Connection, user: User, grid_id: int, if_match: IfMatch) -> GridEdit:
    """Remove a grid; each piece of its area joins the neighbour it shares most edge with."""
    _before, code, area, _scope = _prepare(conn, user, grid_id, if_match)
    old = shapely.geometry.shape(stored_geometry(conn, GRIDS, grid_id))
    grids, _codes = _nearby(conn, code, [old])
    if len(grids) > 1:
        result, _grids = _retile(conn, code, [old], lambda near, name: gridedit.reshape(
            area, near, grid_id, None, grid_name=name, **_TOLERANCES))
    else:
        result = gridedit.Retiled({}, (grid_id,))  # the last grid: nothing to hand on
    for key, geom in result.changed.items():
        write_shape(conn, user, key, geom)
    _remove(conn, user, grid_id, None)
    changed = sorted(result.changed)
    _finish(conn, user, changed, old)
    return GridEdit(changed, [grid_id], None)


def split_grid(conn: Connection, user: User, grid_id: int, line: object,
               if_match: IfMatch) -> GridEdit:
    """Cut a grid in two along a GeoJSON LineString; the smaller half is a new grid."""
    try:
        cut = shapely.geometry.shape(line)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError,
            shapely.errors.ShapelyError) as exc:
        raise GridEditRefused(f"'line' is not a GeoJSON LineString: {exc}") from None
    before, code, area, _scope = _prepare(conn, user, grid_id, if_match)
    old = shapely.geometry.shape(stored_geometry(conn, GRIDS, grid_id))
    result, _grids = _retile(conn, code, [old], lambda near, name: gridedit.split(
        area, near, grid_id, cut, grid_name=name, **_TOLERANCES))
    props = before["properties"]
    new_code, new_name = _next_code(conn, code, props["code"], props["name"])
    write_shape(conn, user, grid_id, result.changed[grid_id])
    written = create(conn, user, GRIDS, {
        "type": "Feature", "geometry": shapely.geometry.mapping(result.changed[NEW]),
        "properties": {"code": new_code, "name": new_name, "kind": props["kind"],
                       "jurisdiction_code": code}})
    for key, geom in result.changed.items():
        if key not in (NEW, grid_id):
            write_shape(conn, user, key, geom)
    changed = sorted({k for k in result.changed if k != NEW} | {written.id})
    _finish(conn, user, changed, result.changed[NEW])
    return GridEdit(changed, [], grid_id)


def versions(conn: Connection, ids: list[int]) -> dict[int, int]:
    """``id -> version`` of the stored grids ``ids``."""
    return dict(conn.execute(text("SELECT id, version FROM grids WHERE id = ANY(:i)"),
                             {"i": list(ids)}).all())


def _next_code(conn: Connection, jurisdiction: str, code: str, name: str) -> tuple[str, str]:
    """A free code (and name) for a grid cut from grid ``code``."""
    taken = {r[0] for r in conn.execute(text("SELECT code FROM grids WHERE code LIKE :p"),
                                        {"p": f"{jurisdiction}%"})}
    numbers = [int(m.group(1)) for c in taken
               if (m := re.fullmatch(re.escape(jurisdiction) + r"(\d+)", c))]
    if numbers:
        n = max(numbers) + 1
        width = len(code) - len(jurisdiction) if code.startswith(jurisdiction) else 3
        return f"{jurisdiction}{n:0{max(width, 1)}d}", re.sub(r"第\d+网格$", "", name) + \
            f"第{n}网格"
    n = 2
    while f"{code}-{n}" in taken:
        n += 1
    return f"{code}-{n}", f"{name}-{n}"


def merge_grids(conn: Connection, user: User, ids: list[int],
                versions: dict[int, int] | None = None) -> GridEdit:
    """Dissolve adjacent grids of one kind into the first; their units join it (stale).

    Grids of different kinds are refused: a dedicated grid (专属网格) is a key area's own.
    """
    scope = write_scope(conn, user, GRIDS)
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise GridEditRefused("merge needs two or more different grid ids")
    codes = {_jurisdiction_of(conn, i) for i in ids}
    if len(codes) > 1:
        raise GridEditRefused(f"the grids belong to different jurisdictions "
                              f"({', '.join(sorted(codes))}); only grids of one can be merged")
    code = codes.pop()
    _lock(conn, code)
    befores = {i: lock_feature(conn, GRIDS, i, scope, (versions or {}).get(i)) for i in ids}
    kinds = {b["properties"]["kind"] for b in befores.values()}
    if len(kinds) > 1:
        raise GridEditRefused("grids of different kinds (comprehensive and dedicated) cannot "
                              "be merged: a dedicated grid keeps its own area; change one "
                              "grid's kind first")
    grids = {r[0]: shapely.from_wkb(bytes(r[1])) for r in conn.execute(text(
        "SELECT id, ST_AsBinary(geom) FROM grids WHERE id = ANY(:i)"), {"i": ids})}
    names = {i: b["properties"]["code"] for i, b in befores.items()}
    result = _refused(lambda: gridedit.merge(grids, ids, grid_name=_namer(names),
                                             grid_size=SERVED_GRID))
    write_shape(conn, user, ids[0], result.changed[ids[0]])
    for gone in result.removed:
        _remove(conn, user, gone, names[ids[0]])
    _finish(conn, user, [ids[0]], shapely.union_all([grids[k] for k in result.removed]))
    return GridEdit([ids[0]], list(result.removed), ids[0])





def carve_grid(conn: Connection, user: User, jurisdiction: str, geometry: object,
               kind: str, name: str | None = None,
               versions: dict[int, int] | None = None) -> GridEdit:
    """Draw a new grid in community ``jurisdiction``, carved out of the grids it overlaps.

    ``geometry`` is a GeoJSON Polygon (EPSG:4326) without holes; the part outside the
    community is cut off (refused when that is half of it or more). No grid it overlaps
    may be left with less than :data:`MIN_GRID_M2` (it would be covered whole: merge
    instead), and the new grid has at least that much. ``kind`` is ``comprehensive``
    or ``dedicated``; ``name`` defaults to the community's name and the grid's number
    (its code is the community's code and the next free number). ``versions`` maps
    grid ids to the versions the caller read: a grid changed since then is a 412.
    Households are counted into the new boundaries and the units of every grid that
    gave up area are marked stale, as for a split.
    """
    scope = write_scope(conn, user, GRIDS)
    row = conn.execute(text(
        "SELECT name, EXISTS (SELECT 1 FROM jurisdictions c WHERE c.parent_code = j.code) "
        "FROM jurisdictions j WHERE code = :c"), {"c": jurisdiction}).first()
    if row is None:
        raise UnknownJurisdiction(f"jurisdiction {jurisdiction!r} does not exist")
    require_within(conn, user, jurisdiction)
    if row[1]:
        raise GridEditRefused(f"jurisdiction {jurisdiction} is not a community: draw the new "
                              "grid in one of its communities")
    if kind not in ("comprehensive", "dedicated"):
        raise GridEditRefused(f"kind {kind!r} is not a grid kind: comprehensive or dedicated")
    new = _carve_shape(geometry)
    area = _lock(conn, jurisdiction)
    for grid_id, version in sorted((versions or {}).items()):
        if _jurisdiction_of(conn, grid_id) != jurisdiction:
            raise GridEditRefused(f"grid {grid_id} is not in jurisdiction {jurisdiction}")
        lock_feature(conn, GRIDS, grid_id, scope, version)
    unit_m2 = METRES_PER_DEGREE ** 2 * math.cos(math.radians(new.centroid.y))
    result, grids = _retile(conn, jurisdiction, [new], lambda near, name: gridedit.carve(
        area, near, new, min_area=MIN_GRID_M2 / unit_m2, unit_area_m2=unit_m2,
        grid_name=name, **_TOLERANCES))
    code, default_name = _free_code(conn, jurisdiction, row[0])
    written = create(conn, user, GRIDS, {
        "type": "Feature", "geometry": shapely.geometry.mapping(result.changed[NEW]),
        "properties": {"code": code, "name": (name or "").strip() or default_name,
                       "kind": kind, "jurisdiction_code": jurisdiction}})
    for key, geom in result.changed.items():
        if key != NEW:
            write_shape(conn, user, key, geom)
    changed = sorted({k for k in result.changed if k != NEW} | {written.id})
    _finish(conn, user, changed,
            shapely.union_all([_moved(grids, result.changed), result.changed[NEW]]))
    return GridEdit(changed, [], written.id)


def _carve_shape(geometry: object) -> shapely.Geometry:
    """The drawn shape as a shapely geometry, or a refusal naming what is wrong with it."""
    try:
        new = shapely.geometry.shape(geometry)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError,
            shapely.errors.ShapelyError) as exc:
        raise GridEditRefused(f"'geometry' is not a GeoJSON Polygon: {exc}") from None
    reason = geometry_problems([new], "Polygon")[0]
    if reason and not reason.startswith(("invalid geometry", "geometry is a")):
        raise GridEditRefused(f"the new grid's geometry is refused: {reason}")
    return new


def _free_code(conn: Connection, jurisdiction: str, community: str) -> tuple[str, str]:
    """The next free grid code of a community (its code and a number) and a name."""
    taken = conn.execute(text("SELECT code FROM grids WHERE code LIKE :p"),
                         {"p": f"{jurisdiction}%"}).scalars().all()
    numbered = [m.group(1) for c in taken
                if (m := re.fullmatch(re.escape(jurisdiction) + r"(\d+)", c))]
    n = max((int(x) for x in numbered), default=0) + 1
    width = max((len(x) for x in numbered), default=3)
    return f"{jurisdiction}{n:0{width}d}", f"{community}第{n}网格"
