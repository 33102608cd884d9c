"""Grid planning endpoints: generate, validate, history, split, merge, carve, restore, units.

Split, merge, carve and restore answer like a grid edit through the items endpoint: the
edited grid (if any) with ``changed`` (every grid changed, a FeatureCollection) and
``removed`` (ids). ``If-Match`` on split and restore is checked when given; merge and
carve take ``versions`` (grid id -> the version read) for the grids they change.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from layers.access import read_scope
from layers.features import fetch_ids
from layers.gridcheck import grid_history, validate_grids
from layers.gridedit import carve_grid, merge_grids, restore_grid, split_grid
from layers.gridgen import TARGETS, Generated, generate_grids, plain
from layers.registry import LAYERS
from layers.units import regenerate_units

from .auth import current_user
from .db import db_engine
from .edits import grid_edit_response, if_match_version
from .params import BadRequest, json_body, only_params

bp = Blueprint("grids_api", __name__)


# What the answer to a generation says about the weight used, in the page language.
TEXT = {
    "zh": {"households": "按住户数划分，每个网格约{target}户",
           "population": "按人口（住户登记人数）划分，每个网格约{target}人",
           "buildings": "按建筑面积（占地面积×层数，层数=高度÷3米，至少1层）划分，"
                        "每个网格约{target}平方米",
           "area": "按面积划分，每个网格约{target}平方米",
           "chosen_households": "未指定权重：该辖区有住户数据，",
           "chosen_buildings": "未指定权重：该辖区没有住户数据，",
           "chosen_area": "未指定权重：该辖区没有住户和建筑数据，"},
    "en": {"households": "planned by households, about {target} households per grid",
           "population": "planned by population (persons of the registered households), "
                         "about {target} persons per grid",
           "buildings": "planned by building floor area (footprint × floors, floors = "
                        "height ÷ 3 m, at least 1), about {target} m² per grid",
           "area": "planned by area, about {target} m² per grid",
           "chosen_households": "No weight given: the jurisdiction has households, so ",
           "chosen_buildings": "No weight given: the jurisdiction has no households, so ",
           "chosen_area": "No weight given: the jurisdiction has neither households nor "
                          "buildings, so "},
}


def generation_note(generated: Generated, lang: str) -> str:
    """What the grids were balanced on, for a person reading ``lang``."""
    t = TEXT[lang]
    note = t[generated.weight].format(target=plain(generated.target))
    return t[f"chosen_{generated.weight}"] + note if generated.chosen else \
        note[0].upper() + note[1:]


@bp.post("/api/grids/generate")
def generate():
    """Partition every community under ``jurisdiction`` into grids of about a target weight.

    ``weight`` is households, population, buildings or area (default: households when
    there are any, else buildings, else area); the target of each is its own field
    (:data:`layers.gridgen.TARGETS`). The answer is the new grids with ``weight``,
    ``target`` and a ``note`` in the page language (``?lang=zh|en``) saying what they
    follow.
    """
    only_params({"lang"})
    lang = request.args.get("lang", "zh")
    if lang not in TEXT:
        raise BadRequest(f"lang must be zh or en, got {lang!r}")
    fields = {t.field: int if t.whole else (int, float) for t in TARGETS.values()}
    body = json_body({"jurisdiction": str, "weight": str, **fields, "replace": bool},
                     {"jurisdiction"})
    targets = {w: body[t.field] for w, t in TARGETS.items() if t.field in body}
    engine = db_engine(current_app)
    with engine.begin() as conn:
        generated = generate_grids(conn, current_user(), body["jurisdiction"], targets,
                                   body.get("replace", False), weight=body.get("weight"))
    with engine.connect() as conn:
        features = fetch_ids(conn, LAYERS["grids"], generated.ids,
                             read_scope(conn, current_user(), LAYERS["grids"]))
    target = generated.target
    about = json.dumps({"weight": generated.weight,
                        "target": int(target) if target.is_integer() else target,
                        "note": generation_note(generated, lang)}, ensure_ascii=False)
    return Response(f'{{"type": "FeatureCollection", {about[1:-1]}, "features": {features}}}',
                    201, content_type="application/geo+json")


@bp.get("/api/grids/validate")
def validate():
    """``{valid, problems}`` for the grids of every community under ``?jurisdiction=``."""
    only_params({"jurisdiction"})
    code = request.args.get("jurisdiction")
    if not code:
        raise BadRequest("jurisdiction is required (?jurisdiction=CODE)")
    with db_engine(current_app).connect() as conn:
        report = validate_grids(conn, current_user(), code)
    return Response(json.dumps(report, ensure_ascii=False), 200,
                    content_type="application/json")


@bp.get("/api/grids/<int:grid_id>/history")
def history(grid_id: int):
    """Every stored version of a grid, oldest first."""
    only_params(set())
    with db_engine(current_app).connect() as conn:
        versions = grid_history(conn, current_user(), grid_id)
    return Response(json.dumps({"versions": versions}, ensure_ascii=False), 200,
                    content_type="application/json")


@bp.post("/api/grids/<int:grid_id>/split")
def split(grid_id: int):
    """Cut a grid in two along ``line`` (a GeoJSON LineString crossing it)."""
    body = json_body({"line": dict}, {"line"})
    version = if_match_version(required=False)
    with db_engine(current_app).begin() as conn:
        result = split_grid(conn, current_user(), grid_id, body["line"], version)
    return grid_edit_response(result, 200)


def _versions(body: dict) -> dict[int, int]:
    """``versions`` of a body: grid id -> the version the caller read."""
    versions = body.get("versions") or {}
    try:
        return {int(k): int(v) for k, v in versions.items()}
    except (TypeError, ValueError):
        raise BadRequest("versions must map grid ids to the versions you read") from None


@bp.post("/api/grids/merge")
def merge():
    """Dissolve adjacent grids ``ids`` into the first (optional ``versions`` as read)."""
    body = json_body({"ids": list, "versions": dict}, {"ids"})
    ids = body["ids"]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise BadRequest("ids must be a list of grid ids (integers)")
    versions = _versions(body)
    with db_engine(current_app).begin() as conn:
        result = merge_grids(conn, current_user(), ids, versions)
    return grid_edit_response(result, 200)


@bp.post("/api/grids/carve")
def carve():
    """Draw a new grid in a community, carved out of the grids it overlaps (201)."""
    body = json_body({"jurisdiction": str, "geometry": dict, "kind": str, "name": str,
                      "versions": dict}, {"jurisdiction", "geometry", "kind"})
    versions = _versions(body)
    with db_engine(current_app).begin() as conn:
        result = carve_grid(conn, current_user(), body["jurisdiction"], body["geometry"],
                            body["kind"], body.get("name"), versions)
    return grid_edit_response(result, 201)


@bp.post("/api/grids/<int:grid_id>/restore")
def restore(grid_id: int):
    """Give a grid the shape of an earlier ``version`` (see its history)."""
    body = json_body({"version": int}, {"version"})
    version = if_match_version(required=False)
    with db_engine(current_app).begin() as conn:
        result = restore_grid(conn, current_user(), grid_id, body["version"], version)
    return grid_edit_response(result, 200)


@bp.post("/api/grids/<int:grid_id>/units")
def units(grid_id: int):
    """Regenerate the joint-household units of a grid (5-15 households, ~10)."""
    if request.get_data(cache=False).strip() not in (b"", b"{}"):
        raise BadRequest("this takes no body (send {} or nothing)")
    only_params(set())
    engine = db_engine(current_app)
    with engine.begin() as conn:
        ids = regenerate_units(conn, current_user(), grid_id)
    with engine.connect() as conn:
        layer = LAYERS["household_units"]
        features = fetch_ids(conn, layer, ids, read_scope(conn, current_user(), layer))
    return Response(f'{{"type": "FeatureCollection", "features": {features}}}', 201,
                    content_type="application/geo+json")
