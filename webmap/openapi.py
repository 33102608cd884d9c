"""The OpenAPI 3.0 document, derived from the layer registry."""

from __future__ import annotations

from layers.registry import LAYERS, Layer

__all__ = ["openapi_document"]

_TYPES = {"text": "string", "int": "integer", "float": "number", "datetime": "string"}


def _param(name: str, description: str, schema: dict, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema, "style": "form", "explode": False}


def _common_item_params(layer: Layer) -> list[dict]:
    params = [
        _param("limit", "Features per page (default 100, at most 10000).",
               {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}),
        _param("bbox", "minx,miny,maxx,maxy in bbox-crs (default CRS84).",
               {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}),
        _param("bbox-crs", "CRS of bbox.", {"type": "string", "format": "uri"}),
        _param("crs", "CRS of the response geometries.", {"type": "string", "format": "uri"}),
        _param("after", "Keyset paging: features with id greater than this.",
               {"type": "integer"}),
        _param("before", "Keyset paging: features with id smaller than this.",
               {"type": "integer"}),
        _param("f", "Format: json (GeoJSON).", {"type": "string", "enum": ["json", "geojson"]}),
    ]
    if layer.time_field:
        params.append(_param("datetime", f"Instant or interval (with ..) on {layer.time_field}.",
                             {"type": "string"}))
    for f in layer.fields:
        schema: dict = {"type": _TYPES[f.type]}
        if f.choices:
            schema["enum"] = list(f.choices)
        params.append(_param(f.name, f"Equality filter on {f.name}.", schema))
    return params


def _responses(ok: str) -> dict:
    error = {"description": "error", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}
    return {"200": {"description": ok, "content": {"application/geo+json": {
        "schema": {"type": "object"}}}}, "400": error, "401": error, "403": error,
        "404": error}


def openapi_document(base_url: str) -> dict:
    """OpenAPI 3.0.3 description of the service at ``base_url``."""
    paths: dict = {
        "/": {"get": {"summary": "Landing page", "operationId": "getLandingPage",
                      "security": [], "responses": {"200": {"description": "links"}}}},
        "/conformance": {"get": {"summary": "Conformance classes",
                                 "operationId": "getConformance", "security": [],
                                 "responses": {"200": {"description": "classes"}}}},
        "/collections": {"get": {"summary": "The layers", "operationId": "getCollections",
                                 "responses": {"200": {"description": "collections"},
                                               "401": {"description": "no credentials"}}}},
    }
    for layer in LAYERS.values():
        base = f"/collections/{layer.name}"
        paths[base] = {"get": {"summary": f"{layer.title_en} ({layer.title_zh})",
                               "operationId": f"describe_{layer.name}",
                               "responses": _responses("the collection")}}
        paths[f"{base}/queryables"] = {"get": {
            "summary": f"Queryable fields of {layer.name}",
            "operationId": f"queryables_{layer.name}", "responses": _responses("schema")}}
        paths[f"{base}/items"] = {"get": {
            "summary": f"Features of {layer.name}", "operationId": f"items_{layer.name}",
            "parameters": _common_item_params(layer), "responses": _responses("features")}}
        paths[f"{base}/items/{{featureId}}"] = {"get": {
            "summary": f"One feature of {layer.name}", "operationId": f"item_{layer.name}",
            "parameters": [{"name": "featureId", "in": "path", "required": True,
                            "schema": {"type": "integer"}},
                           _param("crs", "CRS of the geometry.", {"type": "string"})],
            "responses": _responses("the feature")}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "safegrid", "version": "0.1.0",
                 "description": "OGC API - Features for community-safety layers."},
        "servers": [{"url": base_url or "/"}],
        "paths": paths,
        "security": [{"bearer": []}, {"session": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
            "schemas": {"Error": {"type": "object", "required": ["error"],
                                  "properties": {"error": {"type": "string"}}}},
        },
    }
