"""The HTTP bad-input corpus: requests the server must refuse with a 4xx, writing nothing.

Each :class:`Case` is one request (user, method, path, headers, body) with the status it
must get and a word the JSON answer must contain. ``{camera}``, ``{camera_etag}``,
``{camera_version}``, ``{stale_etag}`` and ``{grid}`` in a path, header or string body
stand for a camera of city 430100, its ETag, the version in it, an ETag it never had,
and a grid of the demo; the test fills them
in from the small demo. ``tests/webmap/test_bad_requests.py`` runs them all.

Cases came from the write, grid, hot-spot, coverage, border, OGC API and tile tests of
tests/webmap/ (issues 2-7), gathered here, and from the schemathesis run of
tests/webmap/test_fuzz.py (NUL characters, far-off years, odd digits, unknown geometry
types).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

GEOJSON = {"Content-Type": "application/geo+json"}
JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}

CITY = "430100"  # the city of the police and planner demo users
OTHER_CITY = "430300"  # a neighbour of CITY
DISTRICT = "430102"
AREA = "430102"  # a district with cameras and key areas

CAMERA_PROPS = {"code": "T-CAM-1", "bearing": 10, "fov": 70, "range_m": 90,
                "status": "online"}
POINT = {"type": "Point", "coordinates": [112.985, 28.03]}
LINE = {"type": "LineString", "coordinates": [[112.98, 28.03], [112.99, 28.04]]}
BOWTIE = {"type": "Polygon", "coordinates": [[[112.98, 28.03], [112.99, 28.04],
                                              [112.99, 28.03], [112.98, 28.04],
                                              [112.98, 28.03]]]}


def camera(props: dict | None = None, geometry: object = POINT) -> dict:
    """A camera feature in city 430100, with ``props`` changed."""
    return {"type": "Feature", "geometry": geometry, "properties": {**CAMERA_PROPS,
                                                                   **(props or {})}}


@dataclass(frozen=True)
class Case:
    """One bad request and what the server must answer."""

    name: str
    user: str | None
    method: str
    path: str
    status: int
    word: str
    body: object = None  # a str is sent as is, anything else as JSON
    headers: dict = field(default_factory=dict)

    def data(self) -> str | None:
        """The body as sent."""
        if self.body is None or isinstance(self.body, str):
            return self.body
        return json.dumps(self.body, ensure_ascii=False)


def _item_writes() -> list[Case]:
    """OGC API Part 4: POST, PUT, PATCH and DELETE of a feature."""
    items = "/collections/cameras/items"
    one = items + "/{camera}"
    matched = {**GEOJSON, "If-Match": "{camera_etag}"}
    post = lambda name, body, status, word, headers=GEOJSON: Case(  # noqa: E731
        name, "police", "POST", items, status, word, body, headers)
    return [
        post("malformed JSON", "{not json", 400, "not valid JSON", JSON),
        post("not a Feature", '{"type": "Point"}', 422, "GeoJSON Feature", JSON),
        post("wrong content type", camera(), 415, "not accepted", {"Content-Type": "text/plain"}),
        post("wrong geometry type", camera(geometry=LINE), 422, "geometry is a LineString"),
        Case("a multi-part road with an empty part", "admin", "POST", "/collections/roads/items",
             422, "not a GeoJSON geometry",
             {"type": "Feature", "properties": {"name": "x", "class": "local"},
              "geometry": {"type": "MultiLineString",
                           "coordinates": [[[112.98, 28.03], [112.99, 28.04]], {}]}}, GEOJSON),
        post("unknown geometry type", camera(geometry={"type": "Blob", "coordinates": []}),
             422, "not a GeoJSON geometry"),
        post("bad geometry coordinates",
             camera(geometry={"type": "Point", "coordinates": "here"}), 422, "geometry"),
        post("off the planet", camera(geometry={"type": "Point", "coordinates": [190.0, 28.0]}),
             422, "off the planet"),
        post("outside every jurisdiction",
             camera(geometry={"type": "Point", "coordinates": [116.39, 39.91]}), 422,
             "outside every jurisdiction"),
        post("unknown field", camera({"colour": "red"}), 422, "unknown field(s) 'colour'"),
        post("out of range", camera({"range_m": 5000}), 422, "out of range"),
        post("bad choice", camera({"status": "asleep"}), 422, "'asleep' is not one of"),
        post("missing value", camera({"status": None}), 422, "missing a value"),
        post("existing code", camera({"code": "CAM000001"}), 422, "already exists"),
        post("NUL in a text field", camera({"code": "T-CAM\u0000"}), 422, "NUL character"),
        post("an object for a text field", camera({"code": {"a": 1}}), 422,
             "not a text value"),
        Case("self-intersecting key area", "planner", "POST", "/collections/key_areas/items",
             422, "Self-intersection",
             {"type": "Feature", "geometry": BOWTIE,
              "properties": {"name": "坏", "category": "park"}}, GEOJSON),
        Case("wrong CRS (projected coordinates)", "planner", "POST",
             "/collections/key_areas/items", 422, "off the planet",
             {"type": "Feature", "geometry": {"type": "Point",
                                              "coordinates": [3_122_000.0, 688_000.0]},
              "properties": {"name": "投影", "category": "park"}}, GEOJSON),
        Case("PUT without If-Match", "police", "PUT", one, 428, "If-Match", camera(),
             GEOJSON),
        Case("PUT with a stale If-Match", "police", "PUT", one, 412, "version", camera(),
             {**GEOJSON, "If-Match": "{stale_etag}"}),
        Case("PUT with a bad If-Match", "police", "PUT", one, 400, "not an ETag", camera(),
             {**GEOJSON, "If-Match": "yesterday"}),
        Case("PUT with a superscript digit in If-Match", "police", "PUT", one, 412,
             "version", camera(), {**GEOJSON, "If-Match": '"²"'}),
        Case("PUT with an opaque If-Match that matches nothing", "police", "PUT", one, 412,
             "version", camera(), {**GEOJSON, "If-Match": '"stale-version"'}),
        Case("PUT with a weak If-Match (never matches)", "police", "PUT", one, 412,
             "version", camera(), {**GEOJSON, "If-Match": 'W/"{camera_version}"'}),
        Case("PUT with an unquoted If-Match list", "police", "PUT", one, 400,
             "not an ETag", camera(), {**GEOJSON, "If-Match": '"1", 2'}),
        Case("PUT of an invalid geometry", "police", "PUT", one, 422, "geometry",
             camera(geometry={"type": "Point", "coordinates": [112.98]}), matched),
        Case("PATCH as plain JSON", "police", "PATCH", one, 415, "merge-patch",
             '{"properties": {}}', {**JSON, "If-Match": "{camera_etag}"}),
        Case("PATCH without If-Match", "police", "PATCH", one, 428, "If-Match",
             {"properties": {"fov": 80}}, MERGE),
        Case("PATCH with a stale If-Match", "police", "PATCH", one, 412, "version",
             {"properties": {"fov": 80}}, {**MERGE, "If-Match": "{stale_etag}"}),
        Case("PATCH out of range", "police", "PATCH", one, 422, "out of range",
             {"properties": {"bearing": 360}}, {**MERGE, "If-Match": "{camera_etag}"}),
        Case("PATCH with an unknown field", "police", "PATCH", one, 422, "unknown field",
             {"properties": {"colour": "red"}}, {**MERGE, "If-Match": "{camera_etag}"}),
        Case("DELETE with a stale If-Match", "police", "DELETE", one, 412, "version",
             headers={"If-Match": "{stale_etag}"}),
        Case("DELETE of a superscript id", "police", "DELETE", items + "/%C2%B2", 404,
             "no feature"),
        Case("DELETE by a viewer", "viewer", "DELETE", one, 403, "may not"),
        Case("POST by a viewer", "viewer", "POST", items, 403, "may not", camera(), GEOJSON),
        Case("POST without credentials", None, "POST", items, 401, "", camera(), GEOJSON),
    ]


def _grid_edits() -> list[Case]:
    """Grid generation, split, merge, restore and units."""
    gen = lambda user, body, status, word: Case(  # noqa: E731
        f"generate {word}", user, "POST", "/api/grids/generate", status, word, body, JSON)
    grid = "/api/grids/{grid}"
    return [
        gen("planner", {"jurisdiction": DISTRICT, "target_households": 0}, 422,
            "whole number"),
        gen("planner", {"jurisdiction": DISTRICT, "target_households": "300"}, 400,
            "must be a int"),
        gen("planner", {"jurisdiction": DISTRICT, "target_households": 300, "colour": 1}, 400,
            "unknown field"),
        gen("planner", {"target_households": 300}, 400, "missing field"),
        gen("planner", {"jurisdiction": "999999", "target_households": 300}, 400,
            "does not exist"),
        gen("planner", {"jurisdiction": "430302", "target_households": 300, "replace": True},
            403, "outside your jurisdiction"),
        gen("viewer", {"jurisdiction": DISTRICT, "target_households": 300, "replace": True},
            403, "may not edit grids"),
        gen("planner", [1, 2], 400, "JSON object"),
        gen("planner", {"jurisdiction": "4301\u0000", "target_households": 300}, 400,
            "NUL character"),
        Case("split along a line that misses", "planner", "POST", grid + "/split", 422,
             "part", {"line": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}, JSON),
        Case("split along a non-line", "planner", "POST", grid + "/split", 422, "LineString",
             {"line": {"type": "Nope"}}, JSON),
        Case("split with a string line", "planner", "POST", grid + "/split", 400,
             "line must be", {"line": "x"}, JSON),
        Case("split without a line", "planner", "POST", grid + "/split", 400, "missing", {},
             JSON),
        Case("merge one grid", "planner", "POST", "/api/grids/merge", 422, "two or more",
             '{"ids": [{grid}]}', JSON),
        Case("merge a non-list", "planner", "POST", "/api/grids/merge", 400, "ids must be",
             '{"ids": {grid}}', JSON),
        Case("merge a fraction", "planner", "POST", "/api/grids/merge", 400, "integers",
             '{"ids": [{grid}, 1.5]}', JSON),
        Case("restore a version never had", "planner", "POST", grid + "/restore", 422,
             "no version", {"version": 99}, JSON),
        Case("restore the current version", "planner", "POST", grid + "/restore", 422,
             "already", {"version": 1}, JSON),
        Case("restore a string version", "planner", "POST", grid + "/restore", 400,
             "version must be", {"version": "1"}, JSON),
        Case("restore an unknown grid", "planner", "POST", "/api/grids/999999/restore", 404,
             "no feature", {"version": 1}, JSON),
        Case("units by a viewer", "viewer", "POST", grid + "/units", 403, "may not"),
        Case("units of an unknown grid", "planner", "POST", "/api/grids/999999/units", 404,
             "no feature"),
        Case("units with a body", "planner", "POST", grid + "/units", 400, "", {"target": 12},
             JSON),
        Case("units with a parameter", "planner", "POST", grid + "/units?x=1", 400,
             "unknown parameter"),
        Case("validate without a jurisdiction", "planner", "GET", "/api/grids/validate", 400,
             "jurisdiction"),
        Case("validate an unknown jurisdiction", "planner", "GET",
             "/api/grids/validate?jurisdiction=999999", 400, "999999"),
        Case("validate another city", "planner", "GET",
             "/api/grids/validate?jurisdiction=430302", 403, "outside"),
        Case("validate with an unknown parameter", "planner", "GET",
             f"/api/grids/validate?jurisdiction={DISTRICT}&x=1", 400, "unknown parameter"),
        Case("validate without credentials", None, "GET",
             f"/api/grids/validate?jurisdiction={DISTRICT}", 401, "authentication required"),
    ]


def _hotspots() -> list[Case]:
    """Hot-spot and safety-index parameters."""
    bad = [
        (f"/api/hotspots?jurisdiction={CITY}&method=x", "unknown method"),
        (f"/api/hotspots?jurisdiction={CITY}&cell=1", "more than 1 metre"),
        (f"/api/hotspots?jurisdiction={CITY}&cell=-4", "more than 1 metre"),
        (f"/api/hotspots?jurisdiction={CITY}&cell=abc", "not a number"),
        (f"/api/hotspots?jurisdiction={CITY}&cell=3", "more than 5,000,000"),
        (f"/api/hotspots?jurisdiction={CITY}&from=2026-05-01&to=2026-01-01", "must be before"),
        (f"/api/hotspots?jurisdiction={CITY}&from=yesterday", "not an RFC 3339"),
        (f"/api/hotspots?jurisdiction={CITY}&from=0001-01-01", "the year 1 is not in"),
        (f"/api/hotspots?jurisdiction={CITY}&to=9999-12-31", "the year 9999 is not in"),
        ("/api/hotspots?jurisdiction=999999", "unknown jurisdiction"),
        ("/api/hotspots?jurisdiction=%00", "NUL character"),
        ("/api/hotspots", "jurisdiction is required"),
        (f"/api/hotspots?jurisdiction={CITY}&category=nope", "unknown category"),
        (f"/api/hotspots?jurisdiction={CITY}&neighbours=far", "neighbours"),
        (f"/api/hotspots?jurisdiction={CITY}&shape=tri", "square or hex"),
        (f"/api/hotspots?jurisdiction={CITY}&fdr=maybe", "true or false"),
        (f"/api/hotspots?jurisdiction={CITY}&colour=red", "unknown parameter"),
        (f"/api/hotspots/emerging?jurisdiction={CITY}&step=day", "week or month"),
        (f"/api/hotspots/emerging?jurisdiction={CITY}&from=2026-01-01&to=2026-01-20&step=month",
         "fewer than two time steps"),
        (f"/api/hotspots/emerging?jurisdiction={CITY}&from=0001-01-01", "the year 1"),
        (f"/api/hotspots/evaluate?jurisdiction={CITY}&share=2", "share"),
        # periods and cubes too large to count
        (f"/api/hotspots/emerging?jurisdiction={CITY}&from=1900-01-01&to=2026-01-01",
         "at most 600"),
        (f"/api/hotspots/emerging?jurisdiction={CITY}&step=week&from=2010-01-01&"
         "to=2026-01-01", "at most 600"),
        (f"/api/hotspots?jurisdiction={CITY}&from=1900-01-01&to=2026-01-01", "at most 600"),
        (f"/api/hotspots/evaluate?jurisdiction={CITY}&train_from=1900-01-01&"
         "train_to=2025-12-31&test_from=2026-01-01&test_to=2026-03-31", "at most 600"),
        (f"/api/hotspots/emerging?jurisdiction={CITY}&cell=5&from=2025-01-01&to=2026-12-31",
         "more than 20,000,000"),
        (f"/api/hotspots/evaluate?jurisdiction={CITY}&train_from=2026-01-01&"
         "train_to=2026-06-30&test_from=2026-05-01&test_to=2026-09-30",
         "starts before training ends"),
        (f"/api/hotspots/evaluate?jurisdiction={CITY}&method=x", "unknown method"),
    ]
    return [Case(path.removeprefix("/api/"), "police", "GET", path, 400, word)
            for path, word in bad] + [
        Case("safety index without a jurisdiction", "planner", "GET", "/api/safety-index",
             400, "jurisdiction is required"),
        Case("safety index of an unknown jurisdiction", "planner", "GET",
             "/api/safety-index?jurisdiction=999999", 400, "unknown jurisdiction"),
        Case("safety index to soon", "planner", "GET",
             "/api/safety-index?jurisdiction=430102&to=soon", 400, "RFC 3339"),
        Case("safety index to year 1", "planner", "GET",
             "/api/safety-index?jurisdiction=430102&to=0001-01-01", 400, "the year 1"),
        Case("safety index of another city", "planner", "GET",
             "/api/safety-index?jurisdiction=430200", 403, "outside your jurisdiction"),
    ]


def _coverage() -> list[Case]:
    """Coverage queries, what-if and siting."""
    gets = [
        ("/api/coverage", 400, "jurisdiction is required"),
        (f"/api/coverage?jurisdiction={AREA}&target=parks", 400, "unknown target 'parks'"),
        ("/api/coverage?jurisdiction=999999", 400, "unknown jurisdiction"),
        (f"/api/coverage?jurisdiction={AREA}&school_buffer=-5", 400, "school_buffer"),
        (f"/api/coverage?jurisdiction={AREA}&school_buffer=abc", 400, "not a number"),
        (f"/api/coverage?jurisdiction={AREA}&off=NOPE-1", 400, "NOPE-1"),
        (f"/api/coverage?jurisdiction={AREA}&planned=maybe", 400, "planned must be"),
        (f"/api/coverage?jurisdiction={AREA}&colour=red", 400, "unknown parameter"),
        (f"/api/coverage/gaps?jurisdiction={AREA}&limit=0", 400, "limit must be"),
        (f"/api/coverage/gaps?jurisdiction={AREA}&days=0", 400, "days must be"),
        (f"/api/coverage/gaps?jurisdiction={AREA}&days=1.5", 400, "whole number"),
        ("/api/coverage/views?jurisdiction=%00", 400, "NUL character"),
        ("/api/coverage?jurisdiction=430302", 403, "outside your jurisdiction"),
        ("/api/coverage/runs/987654321", 404, "no coverage run"),
    ]
    good = {"jurisdiction": AREA, "target": "key_areas", "k": 3}
    cam = {"lon": 112.98, "lat": 28.2, "bearing": 10, "fov": 90, "range_m": 50}
    posts = [
        ("siting", "not json", 400, "not valid JSON"),
        ("siting", {"target": "key_areas", "k": 3}, 400, "missing field(s) 'jurisdiction'"),
        ("siting", {**good, "k": 0}, 400, "k must be 1 to"),
        ("siting", {**good, "k": 1000}, 400, "k must be 1 to"),
        ("siting", {**good, "k": "3"}, 400, "k must be a int"),
        ("siting", {**good, "k": True}, 400, "k must be a int"),
        ("siting", {**good, "fov": 400}, 400, "fov must be in"),
        ("siting", {**good, "range_m": 0}, 400, "range_m must be in"),
        ("siting", {**good, "bearings": 0}, 400, "bearings must be"),
        ("siting", {**good, "spacing": 0.5}, 400, "spacing must be"),
        ("siting", {**good, "colour": 1}, 400, "unknown field(s) 'colour'"),
        ("siting", {**good, "target": "parks"}, 400, "unknown target"),
        ("siting", {**good, "jurisdiction": "430302"}, 403, "outside your jurisdiction"),
        ("what-if", {"jurisdiction": AREA, "add": [{**cam, "bearing": 360}]}, 400,
         "add[0]: bearing"),
        ("what-if", {"jurisdiction": AREA, "add": [{**cam, "range_m": 5000}]}, 400,
         "add[0]: range_m"),
        ("what-if", {"jurisdiction": AREA, "add": [{**cam, "lat": 95}]}, 400, "not on Earth"),
        ("what-if", {"jurisdiction": AREA, "add": [{"lon": 1}]}, 400, "exactly"),
        ("what-if", {"jurisdiction": AREA, "add": [{**cam, "fov": "wide"}]}, 400,
         "fov must be a number"),
        ("what-if", {"jurisdiction": AREA, "off": [3]}, 400, "off must be a list"),
        ("what-if", {"jurisdiction": AREA, "off": ["NOPE-2"]}, 400, "NOPE-2"),
        ("what-if", {"jurisdiction": "\u0000"}, 400, "NUL character"),
    ]
    return [Case(path.removeprefix("/api/"), "police", "GET", path, status, word)
            for path, status, word in gets] + [
        Case(f"{where} {json.dumps(body, ensure_ascii=True)}", "police", "POST",
             f"/api/coverage/{where}", status, word, body, JSON)
        for where, body, status, word in posts]


def _border() -> list[Case]:
    """The shared border and patrol planning."""
    a, b = CITY, OTHER_CITY
    gets = [
        (f"/api/border?a={a}", 400, "a and b are required"),
        (f"/api/border?a={a}&b=999999", 400, "unknown jurisdiction '999999'"),
        (f"/api/border?a={a}&b={a}", 422, "both"),
        (f"/api/border?a={a}&b={b}&width=0", 422, "width must be"),
        (f"/api/border?a={a}&b={b}&width=30000", 422, "width must be"),
        (f"/api/border?a={a}&b={b}&width=wide", 400, "not a number"),
        (f"/api/border?a={a}&b={b}&colour=red", 400, "unknown parameter"),
        (f"/api/border?a=%00&b={b}", 400, "NUL character"),
        ("/api/border?a=430203&b=430303", 422, "m apart"),
    ]
    patrols = [
        ("partner", {"a": a, "b": b, "teams": {a: 2}}, 422, "teams must give"),
        ("partner", {"a": a, "b": b, "teams": {a: -1, b: 1}}, 422, "whole number from 0"),
        ("partner", {"a": a, "b": b, "teams": {a: 0, b: 0}}, 422, "at least one team"),
        ("partner", {"a": a, "b": b, "teams": {a: 1.5, b: 1}}, 422, "whole number"),
        ("partner", {"a": a, "b": b, "teams": [1, 2]}, 400, "teams must be a dict"),
        ("partner", {"a": a, "teams": {a: 1}}, 400, "missing field(s) 'b'"),
        ("partner", {"a": a, "b": b, "width": -5, "teams": {a: 1, b: 1}}, 422,
         "width must be"),
        ("partner", {"a": "\u0000", "b": b, "teams": {a: 1}}, 400, "NUL character"),
        ("viewer", {"a": a, "b": b, "teams": {a: 1, b: 1}}, 403, "may not edit patrol_routes"),
        ("planner", {"a": a, "b": b, "teams": {a: 1, b: 1}}, 403, "may not edit patrol_routes"),
    ]
    return [Case(path.removeprefix("/api/"), "admin", "GET", path, status, word)
            for path, status, word in gets] + [
        Case(f"patrols by {user} {json.dumps(body, ensure_ascii=True)}", user, "POST",
             "/api/border/patrols", status, word, body, JSON)
        for user, body, status, word in patrols]


def _items_and_tiles() -> list[Case]:
    """OGC API item queries and vector tile addresses."""
    params = [
        ("cameras", "colour=red", "unknown parameter 'colour'"),
        ("cameras", "limit=0", "limit must be at least 1"),
        ("cameras", "limit=ten", "is not a whole number"),
        ("cameras", "bbox=1,2,3", "bbox"),
        ("cameras", "bbox=113,28,112,29", "lower corner"),
        ("cameras", "bbox=500,0,501,1", "off the planet"),
        ("incidents", "datetime=yesterday", "RFC 3339"),
        ("incidents", "datetime=../..", "at least one end"),
        ("incidents", "datetime=2026-03-01/2026-02-01", "the start is after the end"),
        ("incidents", "datetime=0001-01-01/9999-12-31", "the year 1 is not in"),
        ("roads", "datetime=2026-01-01", "no time field"),
        ("cameras", "crs=EPSG:2000", "is not supported"),
        ("cameras", "status=broken", "is not one of"),
        ("cameras", "fov=wide", "is not a valid float"),
        ("cameras", "limit=5&after=x", "is not a feature id"),
        ("cameras", "f=html", "is not offered"),
        ("cameras", "code=%00", "NUL character"),
    ]
    tiles = [("/tiles/grids/3/8/1.mvt", "there is no tile"),
             ("/tiles/grids/30/0/0.mvt", "there is no tile"),
             ("/tiles/nowhere/1/0/0.mvt", "nowhere"),
             ("/tiles/grids/1/0/0.mvt?x=1", "no query parameters")]
    return [Case(f"items {query}", "admin", "GET", f"/collections/{layer}/items?{query}", 400,
                 word) for layer, query, word in params] + [
        Case(f"tile {path}", "admin", "GET", path, 404, word) for path, word in tiles] + [
        Case("item with a superscript id", "admin", "GET", "/collections/cameras/items/%C2%B2",
             404, "no feature")] + [
        Case(f"NUL in the query of {path}", "admin", "GET", f"{path}?lang=%00", 400,
             "NUL character") for path in ("/map", "/map/plan", "/reports/notice")]


CASES: list[Case] = (_item_writes() + _grid_edits() + _hotspots() + _coverage() + _border()
                     + _items_and_tiles())
