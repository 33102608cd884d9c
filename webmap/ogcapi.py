"""OGC API - Features, Part 1 (core, GeoJSON, OpenAPI 3.0) and Part 2 (CRS), reading.

Resources: ``/`` (landing), ``/conformance``, ``/openapi`` (service description),
``/collections``, ``/collections/{layer}``, ``/collections/{layer}/items``,
``/collections/{layer}/items/{id}`` and ``/collections/{layer}/queryables``; for a
border partner given our incidents only as counts per cell, ``/collections/incident_cells``
(:func:`layers.border.partner_incident_cells`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import shapely
from flask import Blueprint, Response, current_app, redirect, request, url_for

from layers.access import Forbidden, enter_scope, read_scope
from layers.border import BorderQuery, partner_incident_cells
from layers.errors import NotFound
from layers.features import (
    CRS84,
    OUTPUT_CRS,
    Scope,
    collection_extent,
    fetch_item,
    fetch_page,
    table_version,
)
from layers.peerclient import CELLS
from layers.registry import LAYERS, get_layer

from .auth import current_user
from .db import db_engine
from .openapi import openapi_document
from .params import BadRequest, cells_query, item_query, only_params, parse_crs_uri
from .ratelimit import charge, page_cost

bp = Blueprint("ogcapi", __name__)

GEOJSON = "application/geo+json"
OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/optimistic-locking-etags",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
]


def _link(href: str, rel: str, type_: str = "application/json", title: str = "") -> dict:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


def _url(endpoint: str, **values) -> str:
    return url_for(endpoint, _external=True, **values)


def _json(body: dict | list, status: int = 200, content_type: str = "application/json"):
    return Response(json.dumps(body, ensure_ascii=False), status, content_type=content_type)


def _check_no_params(allowed: set[str] = frozenset({"f"})) -> None:
    only_params(allowed)
    if request.args.get("f", "json") != "json":
        raise BadRequest(f"f={request.args['f']!r} is not offered; use f=json")


@bp.get("/")
def landing():
    """Landing page: links to the API description, conformance and the collections.

    A browser (preferring HTML, no ``f``) is sent to the web map instead.
    """
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if "f" not in request.args and best == "text/html":
        return redirect(url_for("pages.map_page"))
    _check_no_params()
    return _json({
        "title": "safegrid",
        "description": "Community-safety layers (平安建设): grids, households, key areas, "
                       "cameras, checkpoints, roads, buildings, incidents.",
        "links": [
            _link(_url("ogcapi.landing"), "self", title="this document"),
            _link(_url("ogcapi.openapi"), "service-desc", OPENAPI_TYPE, "the API definition"),
            _link(_url("ogcapi.conformance"), "conformance", title="conformance classes"),
            _link(_url("ogcapi.collections"), "data", title="the layers"),
            _link(_url("pages.map_page"), "alternate", "text/html", "the web map"),
        ],
    })


@bp.get("/conformance")
def conformance():
    """The conformance classes implemented."""
    _check_no_params()
    return _json({"conformsTo": CONFORMANCE})


@bp.get("/openapi")
def openapi():
    """The OpenAPI 3.0 document of this service."""
    _check_no_params()
    return _json(openapi_document(_url("ogcapi.landing").rstrip("/")),
                 content_type=OPENAPI_TYPE)


def _collection(conn, layer) -> dict:
    items = _url("ogcapi.items", layer=layer.name)
    body = {
        "id": layer.name,
        "title": layer.title_zh,
        "description": layer.title_en,
        "itemType": "feature",
        "links": [
            _link(_url("ogcapi.collection", layer=layer.name), "self"),
            _link(items, "items", GEOJSON, "the features"),
            _link(_url("ogcapi.queryables", layer=layer.name),
                  "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                  "application/schema+json", "queryable fields"),
        ],
        "crs": list(OUTPUT_CRS),
        "storageCrs": CRS84,
        "extent": collection_extent(conn, layer),
    }
    return body


def _readable(conn, layer) -> bool:
    """Whether the caller may read ``layer`` (the others are left out of the list)."""
    try:
        read_scope(conn, current_user(), layer)
    except Forbidden:
        return False
    return True


@bp.get("/collections")
def collections():
    """The layers the caller may read."""
    _check_no_params()
    with db_engine(current_app).connect() as conn:
        listed = [_collection(conn, layer) for layer in LAYERS.values()
                  if _readable(conn, layer)]
    if current_user().role == "border_partner":
        listed.append(_cells_collection())
    return _json({
        "links": [_link(_url("ogcapi.collections"), "self")],
        "collections": listed,
        "crs": list(OUTPUT_CRS),
    })


@bp.get("/collections/<layer>")
def collection(layer: str):
    """One layer's description."""
    _check_no_params()
    declaration = get_layer(layer)
    with db_engine(current_app).connect() as conn:
        read_scope(conn, current_user(), declaration)
        return _json(_collection(conn, declaration))


@bp.get("/collections/<layer>/queryables")
def queryables(layer: str):
    """JSON Schema of the fields that can filter items (``?field=value``)."""
    _check_no_params()
    declaration = get_layer(layer)
    with db_engine(current_app).connect() as conn:
        read_scope(conn, current_user(), declaration)
    types = {"text": "string", "int": "integer", "float": "number", "datetime": "string"}
    properties: dict = {"geometry": {"$ref": "https://geojson.org/schema/Geometry.json"}}
    for f in declaration.fields:
        prop: dict = {"title": f.title_zh or f.name, "type": types[f.type]}
        if f.type == "datetime":
            prop["format"] = "date-time"
        if f.choices:
            prop["enum"] = list(f.choices)
        if f.minimum is not None:
            prop["exclusiveMinimum" if f.exclusive_minimum else "minimum"] = f.minimum
        if f.maximum is not None:
            prop["exclusiveMaximum" if f.exclusive_maximum else "maximum"] = f.maximum
        properties[f.name] = prop
    return _json({
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": _url("ogcapi.queryables", layer=layer),
        "type": "object",
        "title": declaration.title_zh,
        "properties": properties,
    }, content_type="application/schema+json")


def _page_links(layer: str, page) -> list[dict]:
    args = {k: v for k, v in request.args.items() if k not in ("after", "before")}
    links = [_link(_url("ogcapi.items", layer=layer, **request.args), "self", GEOJSON),
             _link(_url("ogcapi.collection", layer=layer), "collection")]
    if page.more_after:
        links.append(_link(_url("ogcapi.items", layer=layer, **args, after=page.last_id),
                           "next", GEOJSON, "next page"))
    if page.more_before:
        links.append(_link(_url("ogcapi.items", layer=layer, **args, before=page.first_id),
                           "prev", GEOJSON, "previous page"))
    return links


def _items_etag(layer: str, version: int | None, scope: Scope) -> str | None:
    """Weak validator of an items page: the layer's version, the reader's scope, the query.

    None when the layer's writes are not tracked. The version is read before the page,
    so a write committed in between can only make the next request send it again.
    """
    if version is None:
        return None
    key = json.dumps([layer, version, scope.personal, sorted(scope.rls.items()),
                      request.host_url, request.query_string.decode("latin-1")])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@bp.get("/collections/<layer>/items")
def items(layer: str):
    """A page of features (GeoJSON built in PostGIS), with next/prev links.

    The answer carries a weak ``ETag`` (:func:`_items_etag`); a request naming it in
    ``If-None-Match`` gets ``304 Not Modified`` with no body, and the page is not read.
    """
    declaration = get_layer(layer)
    query = item_query(request.args, declaration)
    with db_engine(current_app).connect() as conn:
        scope = read_scope(conn, current_user(), declaration)
        tag = _items_etag(layer, table_version(conn, layer), scope)
        headers = {"Content-Crs": f"<{query.crs}>"}
        if tag:
            headers.update({"ETag": f'W/"{tag}"', "Cache-Control": "private, no-cache",
                            "Vary": "Authorization, Cookie"})
            if request.if_none_match.contains_weak(tag):
                return Response(status=304, headers=headers)
        enter_scope(conn, scope)
        page = fetch_page(conn, declaration, query, scope)
    charge(page_cost(page.returned, page.counted))
    head = {"type": "FeatureCollection", "numberMatched": page.matched,
            "numberReturned": page.returned, "links": _page_links(layer, page)}
    prefix = json.dumps(head, ensure_ascii=False)[:-1]
    body = f'{prefix}, "features": {page.features_json}}}'
    return Response(body, 200, content_type=GEOJSON, headers=headers)


@bp.get("/collections/<layer>/items/<feature_id>")
def item(layer: str, feature_id: str):
    """One feature, with its version as ETag."""
    declaration = get_layer(layer)
    _check_no_params({"f", "crs"})
    crs = parse_crs_uri(request.args.get("crs"), "crs")
    if not (feature_id.isascii() and feature_id.isdigit()):
        raise NotFound(f"{layer} has no feature {feature_id!r}")
    with db_engine(current_app).connect() as conn:
        scope = read_scope(conn, current_user(), declaration)
        enter_scope(conn, scope)
        found = fetch_item(conn, declaration, int(feature_id), scope, crs)
    if found is None:
        raise NotFound(f"{layer} has no feature {feature_id} that you may see")
    feature, version = found
    links = json.dumps([
        _link(_url("ogcapi.item", layer=layer, feature_id=feature_id), "self", GEOJSON),
        _link(_url("ogcapi.collection", layer=layer), "collection"),
    ])
    body = feature[:-1] + f', "links": {links}}}'
    return Response(body, 200, content_type=GEOJSON,
                    headers={"Content-Crs": f"<{crs}>", "ETag": f'"{version}"'})



def _cells_collection() -> dict:
    return {
        "id": CELLS,
        "title": "警情网格统计（边界区）",
        "description": "Incidents of the border zone as counts per 250 m cell and side of "
                       "the border (count, summed severity, per local hour, per category); "
                       "items take width, tolerance (metres) and datetime",
        "itemType": "feature",
        "links": [_link(_url("ogcapi.cells_collection"), "self"),
                  _link(_url("ogcapi.cells_items"), "items", GEOJSON, "the cells")],
        "crs": [CRS84],
        "storageCrs": CRS84,
    }


def _partner_only():
    user = current_user()
    if user.role != "border_partner":
        raise Forbidden(f"{CELLS} is what a border partner is given of the incidents in "
                        "its zone; other roles read the incidents and the analysis API")
    return user


@bp.get("/collections/incident_cells")
def cells_collection():
    """The description of the incident cells (border partners only)."""
    _check_no_params()
    _partner_only()
    return _json(_cells_collection())


@bp.get("/collections/incident_cells/items")
def cells_items():
    """Our incidents in the partner's border zone as counts per cell, a page of them.

    ``width`` and ``tolerance`` (metres) lay the zone as ``/api/border`` does, for the
    pair of the partner's city (``a``) and ours (``b``); ``datetime`` bounds the period;
    ``bbox`` keeps the cells that meet it; ``limit`` and ``after`` page by id.
    """
    user = _partner_only()
    args = cells_query(request.args, LAYERS["incidents"])
    query = BorderQuery(user.partner, user.jurisdiction,
                        **{k: args[k] for k in ("width", "tolerance") if args[k] is not None})
    with db_engine(current_app).connect() as conn:
        version = (table_version(conn, "incidents"), table_version(conn, "jurisdictions"))
        headers = {"Content-Crs": f"<{CRS84}>"}
        if None not in version:  # both tables' writes are tracked: a validator holds
            tag = hashlib.sha256(json.dumps([CELLS, version, user.id, request.host_url,
                                             request.query_string.decode("latin-1")])
                                 .encode()).hexdigest()[:32]
            headers.update({"ETag": f'W/"{tag}"', "Cache-Control": "private, no-cache",
                            "Vary": "Authorization, Cookie"})
            if request.if_none_match.contains_weak(tag):
                return Response(status=304, headers=headers)
        features = partner_incident_cells(conn, user, query, args["start"], args["end"])
    body = _cells_page(features, args)
    return Response(json.dumps(body, ensure_ascii=False), 200, content_type=GEOJSON,
                    headers=headers)


def _cells_page(features: list[dict], args: dict) -> dict:
    """The page of ``features`` (ordered by id) after ``after`` meeting ``bbox``."""
    if args["bbox"] is not None:
        box = shapely.box(*args["bbox"])
        features = [f for f in features if shapely.intersects(
            box, shapely.from_geojson(json.dumps(f["geometry"])))]
    matched = len(features)
    if args["after"] is not None:
        features = [f for f in features if f["id"] > args["after"]]
    page = features[:args["limit"]]
    query = {k: v for k, v in request.args.items() if k != "after"}
    links = [_link(_url("ogcapi.cells_items", **request.args), "self", GEOJSON),
             _link(_url("ogcapi.cells_collection"), "collection")]
    if len(features) > len(page):
        links.append(_link(_url("ogcapi.cells_items", **query, after=page[-1]["id"]),
                           "next", GEOJSON, "next page"))
    return {"type": "FeatureCollection", "numberMatched": matched,
            "numberReturned": len(page), "timeStamp":
            dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "links": links, "features": page}
