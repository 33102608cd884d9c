"""Vector tiles: ``/tiles/{layer}/{z}/{x}/{y}.mvt`` for every layer, in the caller's scope.

``/tiles/basemap/{z}/{x}/{y}.mvt`` is the offline basemap: roads, buildings,
jurisdiction boundaries and their names in one tile, for every logged-in role, each in
the caller's scope of its layer.

Tiles are revalidated on every load (``Cache-Control: private, no-cache``) against
an ``ETag`` of their content, so an edit shows on the next load and an unchanged
tile costs a 304.

``/map/layers/{source}?city=&bbox=&zoom=`` is what the overview map draws of one of
its sources (:data:`layers.overview.SOURCES`) in the view: GeoJSON, simplified for the
zoom, in the caller's scope.
"""

from __future__ import annotations

import hashlib
import json
import math

from flask import Blueprint, Response, current_app, request

from layers.access import enter_scope, read_scope
from layers.registry import LAYERS, get_layer
from layers.tiles import BASEMAP_LAYERS, MAX_ZOOM, basemap_tile, layer_tile

from .auth import current_user
from .compress import json_response
from .db import db_engine
from .mapview import configured_basemaps, overview_layer, page_lang
from .ogcapi import NotFound
from .params import BadRequest, only_params

bp = Blueprint("tiles", __name__)
MVT = "application/vnd.mapbox-vector-tile"
# A bad SAFEGRID_BASEMAPS stops the server at start, naming the problem.
bp.record_once(lambda state: configured_basemaps(state.app.config))


def _check_request(z: int, x: int, y: int) -> None:
    if request.args:
        raise NotFound("tiles take no query parameters")
    if z > MAX_ZOOM or x >= 2**z or y >= 2**z:
        raise NotFound(f"there is no tile {z}/{x}/{y} (zoom 0-{MAX_ZOOM}, x and y < 2^zoom)")


def _mvt_response(data: bytes) -> Response:
    etag = hashlib.sha256(data).hexdigest()[:32]
    headers = {
        "ETag": f'"{etag}"',
        "Cache-Control": "private, no-cache",
        "Vary": "Authorization, Cookie",
    }
    if etag in request.if_none_match:
        return Response(status=304, headers=headers)
    return Response(data, 200, content_type=MVT, headers=headers)


@bp.get("/tiles/basemap/<int:z>/<int:x>/<int:y>.mvt")
def basemap(z: int, x: int, y: int):
    """One tile of the offline basemap (MVT layers as in :data:`BASEMAP_LAYERS`)."""
    _check_request(z, x, y)
    user = current_user()
    with db_engine(current_app).connect() as conn:
        sources = {source for source, *_ in BASEMAP_LAYERS.values()}  # each scope once
        scopes = {source: read_scope(conn, user, LAYERS[source]) for source in sources}
        enter_scope(conn, scopes["roads"])
        data = basemap_tile(conn, z, x, y, scopes)
    return _mvt_response(data)


@bp.get("/tiles/<layer>/<int:z>/<int:x>/<int:y>.mvt")
def tile(layer: str, z: int, x: int, y: int):
    """One Mapbox vector tile of ``layer``."""
    declaration = get_layer(layer)
    _check_request(z, x, y)
    with db_engine(current_app).connect() as conn:
        scope = read_scope(conn, current_user(), declaration)
        enter_scope(conn, scope)
        data = layer_tile(conn, declaration, z, x, y, scope)
    return _mvt_response(data)


def _view_box(value: str | None) -> tuple[float, float, float, float]:
    """``bbox=west,south,east,north`` (degrees), clamped to the planet."""
    try:
        w, s, e, n = (float(v) for v in (value or "").split(","))
    except ValueError:
        raise BadRequest(f"bbox must be west,south,east,north in degrees, got {value!r}"
                         ) from None
    if not all(math.isfinite(v) for v in (w, s, e, n)) or w > e or s > n:
        raise BadRequest(f"bbox {value!r}: four numbers, the lower corner first")
    return max(w, -180.0), max(s, -90.0), min(e, 180.0), min(n, 90.0)


@bp.get("/map/layers/<source>")
def overview(source: str):
    """The overview's ``source`` in ``?city=`` within ``?bbox=`` at ``?zoom=`` (GeoJSON)."""
    only_params({"city", "bbox", "zoom", "lang"})
    city = request.args.get("city")
    if not city:
        raise BadRequest("city is required (?city=CODE)")
    zoom = request.args.get("zoom", "12")
    if not zoom.isdigit() or int(zoom) > MAX_ZOOM:
        raise BadRequest(f"zoom must be a whole number 0-{MAX_ZOOM}, got {zoom!r}")
    data = overview_layer(db_engine(current_app), current_user(), city, source,
                          _view_box(request.args.get("bbox")), int(zoom), page_lang())
    return json_response(json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                         "application/geo+json" if "features" in data else "application/json",
                         revalidate=True)
