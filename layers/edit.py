"""Single-feature writes with optimistic locking: create, replace, update, delete.

Each write is one transaction: the same checks as an import (fields, geometry,
location, references, uniqueness), the caller's write role and scope, a version
bump, derived fields refreshed around the feature, and an audit row with the feature
before and after. A stale version is refused, never merged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import geopandas as gpd
import shapely
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from .access import APP_ROLE, Forbidden, enter_scope, read_scope, require_write
from .errors import InputRejected, NotFound, PreconditionFailed
from .features import Scope
from .partitions import require_months, staged_months
from .registry import Layer
from .store import (
    audit_row,
    database_problems,
    drop_stage,
    q,
    refresh_derived,
    stage,
    staged_columns,
)
from .users import User
from .validate import clean_features

__all__ = ["IfMatch", "Missing", "StaleVersion", "apply_feature", "create", "delete",
           "feature_frame", "feature_snapshot", "lock_feature", "replace", "update",
           "write_scope"]

# The version a change is based on: one version, the set an If-Match header names, or
# None for no condition.
IfMatch = int | frozenset[int] | None


class StaleVersion(PreconditionFailed):
    """The feature changed since the caller read it (HTTP 412)."""

    http_status = 412

    def __init__(self, message: str, current: str | None = None, version: int | None = None):
        super().__init__(message)
        self.current = current
        self.version = version


class Missing(NotFound):
    """No such feature, or not one the caller may see (HTTP 404)."""

    http_status = 404


@dataclass(frozen=True)
class Written:
    """The outcome of a write: feature id and new version (None after a delete)."""

    id: int
    version: int | None


def feature_snapshot(conn: Connection, layer: Layer, feature_id: int) -> dict | None:
    """The stored feature as a GeoJSON Feature dict (for the audit), or None when absent.

    Coordinates in EPSG:4326 with 9 decimals; ``properties`` holds the layer's fields
    and ``version``; ``updated_at`` and ``updated_by`` say who changed it last.
    """
    props = ", ".join(f"'{f.name}', t.{q(f.name)}" for f in layer.fields)
    return conn.execute(text(
        f"SELECT json_build_object('type', 'Feature', 'id', t.id, "
        f"'geometry', ST_AsGeoJSON(t.geom, 9)::json, 'properties', "
        f"json_build_object({props}, 'version', t.version), "
        f"'updated_at', t.updated_at, 'updated_by', t.updated_by) "
        f"FROM {q(layer.name)} t WHERE t.id = :i"), {"i": feature_id}).scalar()


def stored_geometry(conn: Connection, layer: Layer, feature_id: int) -> dict:
    """The stored geometry as GeoJSON with every bit of its coordinates (no rounding)."""
    wkb = conn.execute(text(f"SELECT ST_AsBinary(geom) FROM {q(layer.name)} WHERE id = :i"),
                       {"i": feature_id}).scalar_one()
    return shapely.geometry.mapping(shapely.from_wkb(bytes(wkb)))


def feature_frame(feature: object) -> gpd.GeoDataFrame:
    """A one-row GeoDataFrame (EPSG:4326) from a GeoJSON Feature dict, or InputRejected.

    Nothing is checked against a layer yet (:func:`layers.validate.clean_features` does).
    """
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise InputRejected("the body must be a GeoJSON Feature ({\"type\": \"Feature\", ...})")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise InputRejected("'properties' must be an object")
    try:
        geom = shapely.geometry.shape(feature["geometry"]) if feature.get("geometry") else None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InputRejected(f"'geometry' is not a GeoJSON geometry: {exc}") from None
    except shapely.errors.GEOSException as exc:
        raise InputRejected(f"'geometry' cannot be built: {exc}") from None
    except shapely.errors.ShapelyError as exc:  # an unknown "type", an empty part...
        raise InputRejected(f"'geometry' is not a GeoJSON geometry: {exc}") from None
    return gpd.GeoDataFrame([props] if props else [{}], geometry=[geom], crs=4326)


def _check(conn: Connection, layer: Layer, clean: gpd.GeoDataFrame,
           exclude_id: int | None) -> None:
    stage(conn, layer, clean)
    conn.execute(text(f"GRANT SELECT ON staging TO {APP_ROLE}"))  # the write runs as it
    problems = database_problems(conn, layer, exclude_id)
    if problems:
        raise InputRejected(f"the feature was refused for layer {layer.name}; nothing was "
                            "written", problems)


def _in_scope(conn: Connection, scope: Scope) -> None:
    """The staged feature must lie in the writer's scope (derived or given jurisdiction)."""
    if scope.condition is None:
        return
    zone = scope.rls.get("scope_zone")
    if zone:
        ok = conn.execute(text(
            "SELECT ST_Intersects(s.geom, ST_GeomFromEWKB(decode(:z, 'hex'))) FROM staging s"),
            {"z": zone}).scalar_one()
    else:
        ok = conn.execute(text(
            "SELECT coalesce(s.jurisdiction_code, s.derived_code) = ANY(:codes) FROM staging s"),
            {"codes": scope.params["scope_codes"]}).scalar_one()
    if not ok:
        raise Forbidden("the feature lies outside your jurisdiction")


def lock_feature(conn: Connection, layer: Layer, feature_id: int, scope: Scope,
                 if_match: IfMatch) -> dict:
    """The current feature (:func:`feature_snapshot`), row-locked, scope and version checked.

    Missing when the feature is not there or outside ``scope``; StaleVersion when its
    version is not the one the change was based on.

    ``if_match`` is the version the change was based on, or the set of versions an
    ``If-Match`` header names (empty: it names none, so it never matches), or None
    (no condition).
    """
    where = f" AND ({scope.condition})" if scope.condition else ""
    version = conn.execute(text(
        f"SELECT t.version FROM {q(layer.name)} t WHERE t.id = :fid{where} FOR UPDATE"),
        {**scope.params, "fid": feature_id}).scalar()
    if version is None:
        raise Missing(f"{layer.name} has no feature {feature_id} that you may see")
    before = feature_snapshot(conn, layer, feature_id)
    wanted = {if_match} if isinstance(if_match, int) else if_match
    if wanted is not None and version not in wanted:
        named = (f"not {', '.join(map(str, sorted(wanted)))}" if wanted
                 else "and If-Match names no version of it")
        raise StaleVersion(
            f"feature {feature_id} is at version {version}, {named}: reload it and "
            "apply your change again", json.dumps(before, ensure_ascii=False), version)
    return before


def _area(before: dict | None, new: shapely.Geometry | None) -> bytes | None:
    """EWKB box around the old (GeoJSON) and new geometry: what the edit can affect."""
    shapes = [shapely.geometry.shape(before["geometry"])] if before else []
    if new is not None:
        shapes.append(new)
    if not shapes:
        return None
    box = shapely.set_srid(shapely.box(*shapely.union_all(shapes).bounds), 4326)
    return shapely.to_wkb(box, include_srid=True)


def _finish(conn: Connection, layer: Layer, user: User, action: str, feature_id: int,
            before: dict | None, new: shapely.Geometry | None, refresh: bool = True) -> None:
    """Back to the owner role: refresh derived fields around the edit, then audit it.

    ``refresh`` False leaves the derived fields to a caller that changes more.
    """
    conn.execute(text("RESET ROLE"))
    if refresh:
        refresh_derived(conn, layer.name, _area(before, new))
    after = None if new is None else feature_snapshot(conn, layer, feature_id)
    audit_row(conn, user.name, layer.name, action, before, after, feature_id)
    drop_stage(conn)


def write_scope(conn: Connection, user: User, layer: Layer) -> Scope:
    """The scope ``user`` may write ``layer`` in, or Forbidden when their role may not."""
    require_write(user, layer)
    return read_scope(conn, user, layer)


def _run(conn: Connection, fn):
    try:
        return fn()
    except IntegrityError as exc:
        detail = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        raise InputRejected(f"the database refused the feature: {detail}") from None


def create(conn: Connection, user: User, layer: Layer, feature: object) -> Written:
    """Insert a feature; returns its id and version 1."""
    scope = write_scope(conn, user, layer)
    clean = clean_features(feature_frame(feature), layer)
    _check(conn, layer, clean, None)
    _in_scope(conn, scope)
    require_months(conn, layer, staged_months(conn, layer))
    names, select = staged_columns(layer)
    enter_scope(conn, scope)
    new_id = _run(conn, lambda: conn.execute(text(
        f"INSERT INTO {q(layer.name)} (geom, {', '.join(map(q, names))}, updated_by) "
        f"SELECT s.geom, {', '.join(select)}, :actor FROM staging s RETURNING id"),
        {"actor": user.name}).scalar_one())
    _finish(conn, layer, user, "insert", new_id, None, clean.geometry.iloc[0])
    return Written(new_id, 1)


def replace(conn: Connection, user: User, layer: Layer, feature_id: int, feature: object,
            if_match: IfMatch) -> Written:
    """Replace a feature's geometry and fields (PUT); ``if_match`` is the version read."""
    scope = write_scope(conn, user, layer)
    before = lock_feature(conn, layer, feature_id, scope, if_match)
    clean = clean_features(feature_frame(feature), layer)
    return apply_feature(conn, user, layer, feature_id, clean, scope, before)


def update(conn: Connection, user: User, layer: Layer, feature_id: int, patch: object,
           if_match: IfMatch) -> Written:
    """Merge-patch a feature (RFC 7396).

    Given properties change, a null clears one; a geometry, if given, replaces the old.
    """
    if not isinstance(patch, dict):
        raise InputRejected("a merge patch must be a JSON object")
    scope = write_scope(conn, user, layer)
    before = lock_feature(conn, layer, feature_id, scope, if_match)
    props = dict(before["properties"])
    props.pop("version", None)
    for f in layer.fields:
        if f.derived:
            props.pop(f.name, None)
    changes = patch.get("properties") or {}
    if not isinstance(changes, dict):
        raise InputRejected("'properties' must be an object")
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    if "jurisdiction_code" in props and "geometry" in patch and \
            "jurisdiction_code" not in changes:
        props.pop("jurisdiction_code")  # moved: derive it again from the new geometry
    merged = {"type": "Feature", "properties": props,
              "geometry": patch["geometry"] if "geometry" in patch
              else stored_geometry(conn, layer, feature_id)}
    clean = clean_features(feature_frame(merged), layer)
    return apply_feature(conn, user, layer, feature_id, clean, scope, before)


def apply_feature(conn: Connection, user: User, layer: Layer, feature_id: int,
                  clean: gpd.GeoDataFrame, scope: Scope, before: dict,
                  refresh: bool = True) -> Written:
    """Write the checked feature ``clean`` (EPSG:4326) over feature ``feature_id``.

    ``before`` is what :func:`lock_feature` returned; the version goes up by one and
    the change is audited. ``refresh`` False leaves the derived fields around it to a
    caller that changes more.
    """
    _check(conn, layer, clean, feature_id)
    _in_scope(conn, scope)
    require_months(conn, layer, staged_months(conn, layer))
    names, select = staged_columns(layer)
    sets = [f"{q(n)} = {expr}" for n, expr in zip(names, select, strict=True)]
    enter_scope(conn, scope)
    version = _run(conn, lambda: conn.execute(text(
        f"UPDATE {q(layer.name)} t SET geom = s.geom, {', '.join(sets)}, "
        f"version = t.version + 1, updated_at = now(), updated_by = :actor "
        f"FROM staging s WHERE t.id = :fid RETURNING t.version"),
        {"actor": user.name, "fid": feature_id}).scalar_one())
    _finish(conn, layer, user, "update", feature_id, before, clean.geometry.iloc[0], refresh)
    return Written(feature_id, version)


def delete(conn: Connection, user: User, layer: Layer, feature_id: int,
           if_match: IfMatch) -> Written:
    """Delete a feature (``if_match``, when given, must be its version)."""
    scope = write_scope(conn, user, layer)
    before = lock_feature(conn, layer, feature_id, scope, if_match)
    enter_scope(conn, scope)
    conn.execute(text(f"DELETE FROM {q(layer.name)} WHERE id = :fid"), {"fid": feature_id})
    _finish(conn, layer, user, "delete", feature_id, before, None)
    return Written(feature_id, None)

