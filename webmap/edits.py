"""OGC API - Features, Part 4: create, replace, update and delete, with ETags.

``POST /collections/{layer}/items`` (201 + Location), ``PUT`` and ``PATCH``
(``application/merge-patch+json``) on an item with ``If-Match`` (missing: 428, stale:
412 with the current feature), ``DELETE``. Bodies over the size limit get 413.
"""

from __future__ import annotations

import json
import re

from flask import Blueprint, Response, current_app, request, url_for

from layers import edit, gridedit
from layers.access import read_scope
from layers.features import fetch_ids, fetch_item
from layers.partitions import MonthsMissing, prepare
from layers.registry import LAYERS, Layer, get_layer

from .auth import current_user
from .db import db_engine
from .params import BadRequest

bp = Blueprint("edits", __name__)

GEOJSON = "application/geo+json"
_FEATURE_TYPES = ("application/geo+json", "application/json")
MERGE_PATCH = "application/merge-patch+json"


class UnsupportedMediaType(BadRequest):
    """A body in a media type this operation does not take (HTTP 415)."""

    http_status = 415


class PreconditionRequired(BadRequest):
    """A change without ``If-Match`` (HTTP 428)."""

    http_status = 428


def _body(allowed: tuple[str, ...]) -> object:
    kind = (request.mimetype or "").lower()
    if kind not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {request.content_type or '(none)'!r} is not accepted here; "
            f"send {' or '.join(allowed)}")
    try:
        return json.loads(request.get_data(cache=False) or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


_ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*')


def if_match_version(required: bool) -> frozenset[int] | None:
    """The versions ``If-Match`` names (428 when required and missing; None: any).

    RFC 9110 §13.1.1: ``*`` matches any current version; otherwise a comma-separated
    list of entity tags, of which only strong tags that are one of our versions can
    match. Weak tags and other opaque tags are well formed but match nothing (an empty
    set: the change gets 412). Anything else is not an entity tag (400).
    """
    raw = request.headers.get("If-Match")
    if raw is None:
        if required:
            raise PreconditionRequired("this change needs If-Match with the ETag you read "
                                       "(GET the item first)")
        return None
    if raw.strip() == "*":
        return None
    versions = set()
    for part in raw.split(","):
        tag = _ENTITY_TAG.fullmatch(part)
        if tag is None:
            raise BadRequest(f"If-Match {raw!r} is not an ETag or a list of ETags "
                             '(send the ETag as read, quotes included, e.g. "3")')
        weak, value = tag.groups()
        if not weak and value.isascii() and value.isdigit():  # "²".isdigit()
            versions.add(int(value))
    return frozenset(versions)


def _feature_id(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()):
        raise edit.Missing(f"there is no feature {raw!r}")
    return int(raw)


def _written(layer: str, written: edit.Written, status: int) -> Response:
    declaration = get_layer(layer)
    with db_engine(current_app).connect() as conn:
        scope = read_scope(conn, current_user(), declaration)
        found = fetch_item(conn, declaration, written.id, scope)
    location = url_for("ogcapi.item", layer=layer, feature_id=written.id, _external=True)
    body = found[0] if found else json.dumps({"id": written.id})
    return Response(body, status, content_type=GEOJSON,
                    headers={"Location": location, "ETag": f'"{written.version}"'})


def grid_edit_response(result: gridedit.GridEdit, status: int) -> Response:
    """The edited grid (when there is one) plus ``changed``, ``versions`` and ``removed``.

    ``changed`` is a FeatureCollection of every grid the edit changed, ``versions`` maps
    their ids to their new versions (the ETags to edit them next) and ``removed`` lists
    the ids of grids it deleted; all three are GeoJSON foreign members.
    """
    grids = LAYERS["grids"]
    with db_engine(current_app).connect() as conn:
        scope = read_scope(conn, current_user(), grids)
        changed = json.loads(fetch_ids(conn, grids, result.changed, scope))
        versions = gridedit.versions(conn, result.changed)
        found = fetch_item(conn, grids, result.edited, scope) if result.edited else None
    body = json.loads(found[0]) if found else {"type": "FeatureCollection", "features": []}
    body["changed"] = {"type": "FeatureCollection", "features": changed}
    body["versions"] = {str(k): v for k, v in versions.items()}
    body["removed"] = result.removed
    headers = {}
    if found:
        headers["Location"] = url_for("ogcapi.item", layer="grids", feature_id=result.edited,
                                      _external=True)
        headers["ETag"] = f'"{found[1]}"'
    return Response(json.dumps(body, ensure_ascii=False), status,
                    content_type=GEOJSON, headers=headers)


def _item_write(layer: str, feature_id: str, plain, grid, body: object,
                version: int | None) -> Response:
    """Run one item write: grids through the topology-safe path, other layers plainly."""
    declaration = get_layer(layer)
    if layer == "grids":  # neighbours give or take area: the answer lists them
        with db_engine(current_app).begin() as conn:
            result = grid(conn, current_user(), _feature_id(feature_id), body, version)
        return grid_edit_response(result, 200)
    written = _in_transaction(declaration, lambda conn: plain(
        conn, current_user(), declaration, _feature_id(feature_id), body, version))
    return _written(layer, written, 200)


def _in_transaction(layer: Layer, write):
    """``write(conn)`` in one transaction; first making the months' partitions it needs.

    A write that finds its month without a partition is rolled back, the partition is
    made in a transaction of its own (:func:`layers.partitions.prepare`) and the write
    runs again.
    """
    engine = db_engine(current_app)
    try:
        with engine.begin() as conn:
            return write(conn)
    except MonthsMissing as missing:
        prepare(engine, layer, missing.months)
    with engine.begin() as conn:
        return write(conn)


@bp.post("/collections/<layer>/items")
def create(layer: str):
    """Add a feature (a grid takes its area from the grids it covers)."""
    declaration = get_layer(layer)
    feature = _body(_FEATURE_TYPES)
    if layer == "grids":
        with db_engine(current_app).begin() as conn:
            result = gridedit.create_grid(conn, current_user(), feature)
        return grid_edit_response(result, 201)
    written = _in_transaction(declaration, lambda conn: edit.create(
        conn, current_user(), declaration, feature))
    return _written(layer, written, 201)


@bp.put("/collections/<layer>/items/<feature_id>")
def replace(layer: str, feature_id: str):
    """Replace a feature (If-Match required)."""
    get_layer(layer)
    version = if_match_version(required=True)
    return _item_write(layer, feature_id, edit.replace, gridedit.replace_grid,
                       _body(_FEATURE_TYPES), version)


@bp.patch("/collections/<layer>/items/<feature_id>")
def update(layer: str, feature_id: str):
    """Merge-patch a feature (If-Match required)."""
    get_layer(layer)
    version = if_match_version(required=True)
    return _item_write(layer, feature_id, edit.update, gridedit.update_grid,
                       _body((MERGE_PATCH,)), version)


@bp.delete("/collections/<layer>/items/<feature_id>")
def delete(layer: str, feature_id: str):
    """Delete a feature (If-Match checked when given)."""
    declaration = get_layer(layer)
    version = if_match_version(required=False)
    if layer == "grids":
        with db_engine(current_app).begin() as conn:
            result = gridedit.delete_grid(conn, current_user(), _feature_id(feature_id),
                                          version)
        return grid_edit_response(result, 200)
    with db_engine(current_app).begin() as conn:
        edit.delete(conn, current_user(), declaration, _feature_id(feature_id), version)
    return Response(status=204)
