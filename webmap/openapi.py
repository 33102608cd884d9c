"""The OpenAPI 3.0 document, derived from the layer registry."""

from __future__ import annotations

from geo.validate import accepted_types
from layers.gridgen import TARGETS, WEIGHTS
from layers.registry import LAYERS, Field, Layer

from .params import DEFAULT_LIMIT, MAX_LIMIT
from .warnings_api import openapi_paths as warnings_paths

__all__ = ["limit_param", "openapi_document"]

_TYPES = {"text": "string", "int": "integer", "float": "number", "datetime": "string"}


def _param(name: str, description: str, schema: dict, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema, "style": "form", "explode": False}


def limit_param() -> dict:
    """``limit``, shared by every items path (``#/components/parameters/limit``).

    Clients read the page size they may ask for from this one place (QGIS reads it
    only here, not from the parameters of a path).
    """
    return _param("limit", f"Features per page (default {DEFAULT_LIMIT}, at most "
                  f"{MAX_LIMIT}; more is answered with {MAX_LIMIT}).",
                  {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                   "default": DEFAULT_LIMIT})


def _common_item_params(layer: Layer) -> list[dict]:
    params = [
        {"$ref": "#/components/parameters/limit"},
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
        params.append(_param("datetime", f"Instant or interval on {layer.time_field}; an "
                             "open end is '..', empty, or a date in the year 0000 or 9999.",
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


_ID = {"name": "featureId", "in": "path", "required": True, "schema": {"type": "integer"}}
_IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False,
                  "description": "ETags of a page read before: 304 when it is unchanged.",
                  "schema": {"type": "string"}}
_IF_MATCH = {"name": "If-Match", "in": "header", "required": False,
             "description": "The ETag of the version the change is based on.",
             "schema": {"type": "string"}}


def _errors(*codes: str) -> dict:
    return {code: {"description": "error", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for code in codes}


def _field_schema(f: Field) -> dict:
    schema: dict = {"type": _TYPES[f.type]}
    if f.type == "datetime":
        schema["format"] = "date-time"
    if f.choices:
        schema["enum"] = list(f.choices)
    if f.minimum is not None:
        schema["minimum"] = f.minimum
        if f.exclusive_minimum:
            schema["exclusiveMinimum"] = True
    if f.maximum is not None:
        schema["maximum"] = f.maximum
        if f.exclusive_maximum:
            schema["exclusiveMaximum"] = True
    if not f.required:
        schema["nullable"] = True
    return schema


def _feature_schema(layer: Layer, patch: bool = False) -> dict:
    """A GeoJSON Feature of ``layer`` (in CRS84); for a merge patch nothing is required."""
    geometry = {"type": "object", "required": ["type", "coordinates"], "properties": {
        "type": {"type": "string", "enum": accepted_types(layer.geometry)},
        "coordinates": {"type": "array"}}}
    props = {"type": "object", "additionalProperties": False,
             "properties": {f.name: _field_schema(f) for f in layer.input_fields}}
    required = [f.name for f in layer.input_fields if f.required]
    if required and not patch:
        props["required"] = required
    feature = {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["Feature"]}, "geometry": geometry,
        "properties": props}}
    if not patch:
        feature["required"] = ["type", "geometry", "properties"]
    return feature


def _write_op(layer: Layer, summary: str, body_type: str, ok: str, etag: bool = False) -> dict:
    patch = body_type == "application/merge-patch+json"
    op: dict = {
        "summary": f"{summary} of {layer.name}",
        "operationId": f"{summary.split()[0].lower()}_{layer.name}",
        "requestBody": {"required": True, "content": {body_type: {
            "schema": _feature_schema(layer, patch)}}},
        "responses": {ok: {"description": "written", "content": {"application/geo+json": {
            "schema": {"type": "object"}}}},
            **_errors("400", "401", "403", "413", "415", "422")},
    }
    if etag:
        op["parameters"] = [_ID, {**_IF_MATCH, "required": True}]
        op["responses"].update(_errors("404", "412", "428"))
    return op


def _json_op(summary: str, operation: str, properties: dict, required: list[str],
             ok: str = "200", path_id: bool = False, if_match: bool = False) -> dict:
    body = {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}
    op: dict = {"summary": summary, "operationId": operation,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": body}}},
                "responses": {ok: {"description": "done", "content": {
                    "application/geo+json": {"schema": {"type": "object"}}}},
                    **_errors("400", "401", "403", "404", "409", "412", "422")}}
    params = ([{**_ID, "name": "gridId"}] if path_id else []) + \
        ([_IF_MATCH] if if_match else [])
    if params:
        op["parameters"] = params
    return op


def _generate_op() -> dict:
    """``POST /api/grids/generate``: a weight and one target per weight, by its unit."""
    targets = {t.field: {"type": "integer" if t.whole else "number", "minimum": t.low,
                         "maximum": t.high, "description": f"{t.unit} per grid (weight {w})"}
               for w, t in TARGETS.items()}
    op = _json_op(
        "Partition every community under a jurisdiction into grids of about a target "
        "weight; the answer names the weight used (households, else buildings, else area "
        "when none is given) with a note in the page language",
        "generate_grids",
        {"jurisdiction": {"type": "string"},
         "weight": {"type": "string", "enum": list(WEIGHTS)},
         **targets, "replace": {"type": "boolean"}}, ["jurisdiction"], ok="201")
    op["parameters"] = [_param("lang", "Language of the note.",
                               {"type": "string", "enum": ["zh", "en"]})]
    return op


def _grid_paths() -> dict:
    """The grid-planning operations (``/api/grids/...``)."""
    grid_id = [{**_ID, "name": "gridId"}]
    line = {"type": "object", "description": "GeoJSON LineString crossing the grid"}
    return {
        "/api/grids/generate": {"post": _generate_op()},
        "/api/grids/validate": {"get": {
            "summary": "Gaps, overlaps, slivers, outside parts and invalid rings",
            "operationId": "validate_grids",
            "parameters": [_param("jurisdiction", "Jurisdiction code.", {"type": "string"},
                                  required=True)],
            "responses": {"200": {"description": "{valid, problems}"},
                          **_errors("400", "401", "403", "404")}}},
        "/api/grids/{gridId}/history": {"get": {
            "summary": "Every version of a grid", "operationId": "grid_history",
            "parameters": grid_id,
            "responses": {"200": {"description": "{versions}"},
                          **_errors("400", "401", "403", "404")}}},
        "/api/grids/{gridId}/split": {"post": _json_op(
            "Cut a grid in two along a line", "split_grid", {"line": line}, ["line"],
            path_id=True, if_match=True)},
        "/api/grids/merge": {"post": _json_op(
            "Dissolve adjacent grids into the first", "merge_grids",
            {"ids": {"type": "array", "items": {"type": "integer"}, "minItems": 2},
             "versions": {"type": "object", "additionalProperties": {"type": "integer"}}},
            ["ids"])},
        "/api/grids/carve": {"post": _json_op(
            "Draw a new grid in a community, carved out of the grids it overlaps",
            "carve_grid",
            {"jurisdiction": {"type": "string", "description": "community code"},
             "geometry": {"type": "object", "description": "GeoJSON Polygon without "
                          "holes, at least half inside the community, >= 100 m²"},
             "kind": {"type": "string", "enum": ["comprehensive", "dedicated"]},
             "name": {"type": "string"},
             "versions": {"type": "object", "additionalProperties": {"type": "integer"}}},
            ["jurisdiction", "geometry", "kind"], ok="201")},
        "/api/grids/{gridId}/restore": {"post": _json_op(
            "Give a grid the shape of an earlier version", "restore_grid",
            {"version": {"type": "integer", "minimum": 1}}, ["version"], path_id=True,
            if_match=True)},
        "/api/grids/{gridId}/units": {"post": {
            "summary": "Regenerate the joint-household units of a grid",
            "operationId": "grid_units", "parameters": grid_id,
            "responses": {"201": {"description": "the units", "content": {
                "application/geo+json": {"schema": {"type": "object"}}}},
                **_errors("400", "401", "403", "404")}}},
    }


def _risk_paths() -> dict:
    """The risk operations (``/api/risk/...``)."""
    return {
        "/api/risk/places": {"get": {
            "summary": "Risk grading of places (风险分级): every key area and grid of a "
                       "jurisdiction with its risk level (1 低, 2 一般, 3 较大, 4 重大), score "
                       "(0-100) and reasons (incidents, risk terrain, CCTV coverage, "
                       "category); saved as a run (kind risk_places)",
            "operationId": "risk_places",
            "parameters": [
                _param("jurisdiction", "Jurisdiction code.", {"type": "string"}, required=True),
                _param("from", "Start of the period (default `days` before `to`); not "
                       "with `days`.", {"type": "string"}),
                _param("to", "End of the period (default now).", {"type": "string"}),
                _param("days", "Length of the period in days, counted back from `to` "
                       "(default 365); not with `from`.",
                       {"type": "integer", "minimum": 1, "maximum": 3660}),
            ],
            "responses": {"200": {
                "description": "{jurisdiction, run_id, levels, key_areas, grids, parameters, "
                               "summary}",
                "content": {"application/json": {"schema": {"type": "object"}}}},
                **_errors("400", "401", "403", "404")}}},
        "/api/risk/terrain": {"get": {
        "summary": "Risk terrain model of a jurisdiction: cells with their relative risk score "
                   "(rrs, lowest cell 1), the selected risk factors with relative risk values "
                   "and p-values, the model, and PAI on the following period next to Gi* and "
                   "KDE; saved as a run",
        "operationId": "risk_terrain",
        "parameters": [
            _param("jurisdiction", "Jurisdiction code.", {"type": "string"}, required=True),
            _param("from", "Start of the period (default a year before `to`).",
                   {"type": "string"}),
            _param("to", "End of the period (default now).", {"type": "string"}),
            _param("cell", "Cell size in metres; chosen from the data when absent.",
                   {"type": "number", "minimum": 1, "exclusiveMinimum": True}),
            _param("category", "Incident category.", {"type": "string"}),
            _param("distances", "Distances in metres the factors are tried at, "
                   "comma-separated (default multiples of the cell size).", {"type": "string"}),
            _param("folds", "Folds of the cross-validation (default 5).",
                   {"type": "integer", "minimum": 2, "maximum": 20}),
            _param("seed", "Seed of the folds (default 0).",
                   {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}),
            _param("hours", "Local hours of the day kept, e.g. '22-6' (Asia/Shanghai).",
                   {"type": "string"}),
            _param("weekdays", "Local ISO weekdays kept, e.g. '1-5'.", {"type": "string"}),
        ],
        "responses": {"200": {"description": "cells, factors, model, validation", "content": {
            "application/geo+json": {"schema": {"type": "object"}}}},
            **_errors("400", "401", "403", "404", "422")}}}}


def _hotspot_paths() -> dict:
    """The hot-spot operations (``/api/hotspots...``)."""
    common = [
        _param("jurisdiction", "Jurisdiction code.", {"type": "string"}, required=True),
        _param("cell", "Cell size in metres (> 1); chosen from the data when absent.",
               {"type": "number", "minimum": 1, "exclusiveMinimum": True}),
        _param("category", "Incident category.", {"type": "string"}),
        _param("shape", "Cell shape.", {"type": "string", "enum": ["square", "hex"]}),
        _param("neighbours", "'queen' or a distance band in metres.", {"type": "string"}),
    ]
    times = [_param("hours", "Local hours of the day kept, e.g. '22-6' (22:00 to 05:59) or "
                    "'7-9,17-19' (Asia/Shanghai).", {"type": "string"}),
             _param("weekdays", "Local ISO weekdays kept, e.g. '1-5' (Monday to Friday) or "
                    "'6,7'.", {"type": "string"})]
    common += times
    period = [_param("from", "Start (date or date-time; default a year before `to`).",
                     {"type": "string"}),
              _param("to", "End (date or date-time; default now).", {"type": "string"})]
    plain = [common[0], common[2], *period, *times]

    def op(summary: str, operation: str, params: list, base: list | None = None,
           missing: str = "403") -> dict:
        return {"get": {"summary": summary, "operationId": operation,
                        "parameters": (common if base is None else base) + params,
                        "responses": {"200": {"description": "cells or figures"},
                                      **_errors("400", "401", "403", missing)}}}

    return {
        "/api/hotspots": op("Cells with Gi* (z, p, p_fdr, class), KDE density or counts",
                            "hotspots", period + [
                                _param("method", "gi, kde or count.", {
                                    "type": "string", "enum": ["gi", "kde", "count"]}),
                                _param("fdr", "Classes from FDR-corrected p (default true).",
                                       {"type": "boolean"}),
                                _param("bandwidth", "KDE search radius in metres.",
                                       {"type": "number"})]),
        "/api/hotspots/emerging": op("Emerging hot-spot category per cell",
                                     "emerging_hotspots", period + [
                                         _param("step", "week or month.", {
                                             "type": "string", "enum": ["week", "month"]}),
                                         _param("time_window", "Previous steps in the "
                                                "neighbourhood.", {"type": "integer"})]),
        "/api/hotspots/evaluate": op("PAI, PEI and RRI of a method", "evaluate_hotspots", [
            _param(n, d, {"type": "string"}) for n, d in (
                ("train_from", "Training start."), ("train_to", "Training end."),
                ("test_from", "Test start (default: the training end)."),
                ("test_to", "Test end."))] + [
            _param("method", "gi, kde or count.", {"type": "string"}),
            _param("share", "Share of the area in the hot-spot map (default 0.05).",
                   {"type": "number"})]),
        "/api/hotspots/near-repeat": op(
            "Knox table of incident pairs by space and time band (permutation test), "
            "near-repeat classes and the latest risk zones; saved as a run", "near_repeat",
            [_param("space_bands", "Upper edges of the space bands in metres, increasing "
                    "(default 100,200,300).", {"type": "string"}),
             _param("time_bands", "Upper edges of the time bands in days, increasing "
                    "(default 7,14,21,28).", {"type": "string"}),
             _param("permutations", "Monte Carlo permutations (default 99).",
                    {"type": "integer", "minimum": 0, "maximum": 999}),
             _param("seed", "Seed of the permutations (default 0).",
                    {"type": "integer", "minimum": 0}),
             _param("band", "metres,days of the classes and risk zones (default the first "
                    "space and time bands).", {"type": "string"})], plain),
        "/api/hotspots/clock": op(
            "Incidents by local weekday and hour (7 x 24), of the jurisdiction and of a grid",
            "incident_clock", [_param("grid", "A grid id: its clock too.",
                                      {"type": "integer"})], plain, "404"),
        "/api/safety-index": {"get": {
            "summary": "Safety index (score 0-100, level 1-5) of the grids of a jurisdiction",
            "operationId": "safety_index",
            "parameters": [common[0], _param("to", "End of the 12 months (default now).",
                                             {"type": "string"})],
            "responses": {"200": {"description": "grids"}, **_errors("400", "401", "403")}}},
        "/api/hotspots/runs": {"get": {
            "summary": "Saved runs, newest first", "operationId": "hotspot_runs",
            "parameters": [_param("jurisdiction", "Only this jurisdiction's runs.",
                                  {"type": "string"})],
            "responses": {"200": {"description": "{runs}"}, **_errors("400", "401")}}},
        "/api/hotspots/runs/{runId}": {"get": {
            "summary": "One saved run", "operationId": "hotspot_run",
            "parameters": [{**_ID, "name": "runId"}],
            "responses": {"200": {"description": "the run"}, **_errors("401", "404")}}},
    }


def _coverage_paths() -> dict:
    """The camera coverage operations (``/api/coverage...``)."""
    code = _param("jurisdiction", "Jurisdiction code.", {"type": "string"}, required=True)
    targets = ["key_areas", "school_zones", "grids", "roads"]
    scene = [code,
             _param("off", "Camera codes switched off, comma-separated (what-if).",
                    {"type": "string"}),
             _param("planned", "Count cameras with status planned (default false).",
                    {"type": "boolean"})]
    target = [_param("target", "What to cover (default key_areas).",
                     {"type": "string", "enum": targets}),
              _param("school_buffer", "School safety zone radius in metres (default 200).",
                     {"type": "number", "minimum": 0, "maximum": 2000})]

    def get(summary: str, operation: str, params: list) -> dict:
        return {"get": {"summary": summary, "operationId": operation, "parameters": params,
                        "responses": {"200": {"description": "features"},
                                      **_errors("400", "401", "403")}}}

    body = {"jurisdiction": {"type": "string"}, "target": {"type": "string", "enum": targets},
            "school_buffer": {"type": "number"}, "planned": {"type": "boolean"},
            "off": {"type": "array", "items": {"type": "string"}},
            "days": {"type": "integer", "minimum": 1, "maximum": 3660}}
    camera = {"type": "object", "additionalProperties": False,
              "required": ["lon", "lat", "bearing", "fov", "range_m"],
              "properties": {k: {"type": "number"} for k in
                             ("lon", "lat", "bearing", "fov", "range_m")}}
    return {
        "/api/coverage": get("Targets with covered_ratio (and covered metres) and a summary",
                             "coverage", scene + target),
        "/api/coverage/views": get("Cameras with their fields of view (occluded by buildings)",
                                   "coverage_views", scene),
        "/api/coverage/gaps": get("Uncovered pieces of the targets with risk, riskiest first",
                                  "coverage_gaps", scene + target + [
                                      _param("days", "Incidents of this many days make the "
                                             "risk (default 365).", {"type": "integer"}),
                                      _param("limit", "At most this many gaps (default 1000).",
                                             {"type": "integer"})]),
        "/api/coverage/what-if": {"post": _json_op(
            "Coverage with cameras switched off or added, and before", "coverage_what_if",
            {**body, "add": {"type": "array", "items": camera}}, ["jurisdiction"])},
        "/api/coverage/siting": {"post": _json_op(
            "k proposed cameras with bearing, fov, range_m and gain; coverage before/after",
            "coverage_siting", {**body, "k": {"type": "integer", "minimum": 1, "maximum": 200},
                                "fov": {"type": "number"}, "range_m": {"type": "number"},
                                "bearings": {"type": "integer"},
                                "spacing": {"type": "number"}}, ["jurisdiction", "k"])},
        "/api/coverage/runs": {"get": {
            "summary": "Saved gap and siting runs, newest first", "operationId": "coverage_runs",
            "parameters": [_param("jurisdiction", "Only this jurisdiction's runs.",
                                  {"type": "string"})],
            "responses": {"200": {"description": "{runs}"}, **_errors("400", "401")}}},
        "/api/coverage/runs/{runId}": {"get": {
            "summary": "One saved coverage run", "operationId": "coverage_run",
            "parameters": [{**_ID, "name": "runId"}],
            "responses": {"200": {"description": "the run"}, **_errors("401", "404")}}},
    }


def _border_paths() -> dict:
    """The border joint defence operations (``/api/border...``)."""
    pair = [_param("a", "First jurisdiction code.", {"type": "string"}, required=True),
            _param("b", "Second jurisdiction code (a neighbour of a).", {"type": "string"},
                   required=True)]
    paths = {
        "/api/border": {"get": {
            "summary": "The shared border: line, zone (a feature per side), road crossings "
                       "with cover, incidents of both sides, hot cells, key areas, the "
                       "cameras that see into the zone (each with its side and server); "
                       "`sources` "
                       "says per side which server its data came from (this one, or the "
                       "partner city's registered with `safegrid peers add`), as of when, "
                       "and whether it is a kept copy (stale) or missing, and why",
            "operationId": "border",
            "parameters": pair + [
                _param("width", "Metres either side of the border (default 2000, at most "
                       "20000).", {"type": "number"}),
                _param("tolerance", "Metres within which the two boundaries are one border "
                       "(default 5).", {"type": "number"}),
                _param("days", "Incidents of this many days (default 365).",
                       {"type": "integer"})],
            "responses": {"200": {"description": "the border"},
                          **_errors("400", "401", "403", "422")}}},
        "/api/border/patrols": {"post": _json_op(
            "Patrol sectors of balanced workload and each team's stored route",
            "border_patrols",
            {"a": {"type": "string"}, "b": {"type": "string"}, "width": {"type": "number"},
             "tolerance": {"type": "number"}, "days": {"type": "integer"},
             "teams": {"type": "object", "additionalProperties": {
                 "type": "integer", "minimum": 0, "maximum": 50}}},
            ["a", "b", "teams"])},
    }
    plan = paths["/api/border/patrols"]["post"]
    plan["summary"] += (": with a partner city's server, its teams' routes are written there "
                        "(409 when a route there changed meanwhile, 502 when that server does "
                        "not answer usably; nothing is written on either side)")
    plan["responses"].update(_errors("409", "502"))
    paths["/api/border"]["get"]["responses"]["200"]["description"] = (
        "the border; 200 also when the partner's server is down (its kept side, marked "
        "stale, or our side alone, saying why)")
    return paths


def _cells_paths() -> dict:
    """The incident cells a border partner given no incident points reads instead."""
    number = {"type": "number"}
    return {
        "/collections/incident_cells": {"get": {
            "summary": "Incidents of the border zone as counts per cell (border partners "
                       "only)", "operationId": "describe_incident_cells",
            "responses": _responses("the collection")}},
        "/collections/incident_cells/items": {"get": {
            "summary": "Our incidents in the partner's border zone as counts per 250 m cell "
                       "and side (count, summed severity, per local hour, per category); "
                       "border partners only",
            "operationId": "items_incident_cells",
            "parameters": [
                _param("bbox", "The cells meeting this box (lon/lat).", {"type": "string"}),
                _param("datetime", "The period of the incidents (RFC 3339 interval).",
                       {"type": "string"}),
                _param("width", "Metres either side of the border, as /api/border.", number),
                _param("tolerance", "Metres, as /api/border.", number),
                _param("limit", "Cells per page.", {"type": "integer", "minimum": 1}),
                _param("after", "The last id of the page before.", {"type": "integer"}),
                _IF_NONE_MATCH],
            "responses": {**_responses("the cells (weak ETag)"),
                          "304": {"description": "unchanged (no body)"}}}},
    }


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
            "parameters": [*_common_item_params(layer), _IF_NONE_MATCH],
            "responses": {**_responses("features (with a weak ETag: the layer's version, "
                                       "the reader's scope and the query)"),
                          "304": {"description": "unchanged since the ETag given in "
                                                 "If-None-Match (no body)"}}}}
        paths[f"{base}/items/{{featureId}}"] = {"get": {
            "summary": f"One feature of {layer.name}", "operationId": f"item_{layer.name}",
            "parameters": [{"name": "featureId", "in": "path", "required": True,
                            "schema": {"type": "integer"}},
                           _param("crs", "CRS of the geometry.", {"type": "string"})],
            "responses": _responses("the feature")}}
        for method, summary, body_type in (
                ("post", "Add a feature", "application/geo+json"),):
            paths[f"{base}/items"][method] = _write_op(layer, summary, body_type, "201")
        item = paths[f"{base}/items/{{featureId}}"]
        item["put"] = _write_op(layer, "Replace a feature", "application/geo+json", "200",
                                etag=True)
        item["patch"] = _write_op(layer, "Merge-patch a feature",
                                  "application/merge-patch+json", "200", etag=True)
        item["delete"] = {"summary": f"Delete a feature of {layer.name}",
                          "operationId": f"delete_{layer.name}",
                          "parameters": [_ID, _IF_MATCH],
                          "responses": {"204": {"description": "deleted"},
                                        **_errors("400", "401", "403", "404", "412")}}
        if layer.name == "grids":  # the neighbours that took the area
            item["delete"]["responses"]["200"] = {
                "description": "deleted; the grids changed", "content": {
                    "application/geo+json": {"schema": {"type": "object"}}}}
        paths[f"/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.mvt"] = {"get": {
            "summary": f"Vector tile of {layer.name}", "operationId": f"tile_{layer.name}",
            "parameters": [{"name": n, "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 0}}
                           for n in ("z", "x", "y")],
            "responses": {"200": {"description": "tile", "content": {
                "application/vnd.mapbox-vector-tile": {"schema": {
                    "type": "string", "format": "binary"}}}},
                "304": {"description": "unchanged"}, **_errors("401", "403", "404")}}}
    paths.update(_cells_paths())
    paths.update(_grid_paths())
    paths.update(_hotspot_paths())
    paths.update(_risk_paths())
    paths.update(warnings_paths())
    paths.update(_coverage_paths())
    paths.update(_border_paths())
    return {
        "openapi": "3.0.3",
        "info": {"title": "safegrid", "version": "0.1.0",
                 "description": "OGC API - Features for community-safety layers."},
        "servers": [{"url": base_url or "/"}],
        "paths": paths,
        "security": [{"bearer": []}, {"basic": []}, {"session": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic", "description":
                          "user name and API token (or password), for API clients"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
            "parameters": {"limit": limit_param()},
            "schemas": {"Error": {"type": "object", "required": ["error"],
                                  "properties": {"error": {"type": "string"}}}},
        },
    }
