"""Write the bad-input corpus in tests/data/bad/ (run once; the files are committed).

Each file breaks one rule of import; tests/layers/test_bad_input.py lists what each
must be refused for. Coordinates are inside the small demo's Changsha unless the case
is about location.
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "bad"
LON, LAT = 112.985, 28.03  # inside the small demo


def feature(geometry, **props):
    return {"type": "Feature", "geometry": geometry, "properties": props}


def point(lon=LON, lat=LAT):
    return {"type": "Point", "coordinates": [lon, lat]}


def camera(code="BAD-1", **over):
    props = {"code": code, "bearing": 90, "fov": 60, "range_m": 80, "status": "online"}
    props.update(over)
    return props


def write_geojson(name, features):
    (HERE / name).write_text(json.dumps({"type": "FeatureCollection", "features": features},
                                        ensure_ascii=False), encoding="utf-8")


def main() -> None:
    HERE.mkdir(exist_ok=True)
    square = [[LON, LAT], [LON + 0.001, LAT], [LON + 0.001, LAT + 0.001], [LON, LAT + 0.001],
              [LON, LAT]]
    bowtie = [[LON, LAT], [LON + 0.001, LAT + 0.001], [LON + 0.001, LAT], [LON, LAT + 0.001],
              [LON, LAT]]
    grid = {"code": "BAD-G1", "name": "坏网格", "kind": "comprehensive"}
    write_geojson("self_intersecting_grid.geojson",
                  [feature({"type": "Polygon", "coordinates": [bowtie]}, **grid)])
    write_geojson("wrong_geometry_type_camera.geojson",
                  [feature({"type": "LineString", "coordinates": square[:2]}, **camera())])
    write_geojson("off_planet_camera.geojson", [feature(point(212.5, LAT), **camera())])
    write_geojson("projected_coordinates_without_crs.geojson",
                  [feature(point(499000.0, 3100000.0), **camera())])
    write_geojson("missing_field_camera.geojson",
                  [feature(point(), **{k: v for k, v in camera().items() if k != "status"})])
    write_geojson("missing_value_camera.geojson", [feature(point(), **camera(status=None))])
    write_geojson("unknown_field_camera.geojson", [feature(point(), **camera(colour="red"))])
    write_geojson("out_of_range_fov.geojson", [feature(point(), **camera(fov=400))])
    write_geojson("out_of_range_bearing.geojson", [feature(point(), **camera(bearing=360))])
    write_geojson("bad_category_incident.geojson",
                  [feature(point(), occurred_at="2026-05-01T20:00:00+08:00", category="alien")])
    write_geojson("outside_jurisdiction_camera.geojson", [feature(point(116.39, 39.91),
                                                                  **camera())])
    write_geojson("duplicate_code_cameras.geojson",
                  [feature(point(), **camera("DUP")), feature(point(), **camera("DUP"))])
    write_geojson("existing_code_camera.geojson", [feature(point(), **camera("CAM000001"))])
    write_geojson("unknown_reference_grid.geojson",
                  [feature({"type": "Polygon", "coordinates": [square]}, **grid,
                           jurisdiction_code="999999")])
    write_geojson("null_geometry_camera.geojson", [feature(None, **camera())])
    write_geojson("many_bad_rows_cameras.geojson",
                  [feature(point(), **camera(f"OK-{i}")) for i in range(5)]
                  + [feature(point(), **camera(f"BAD-{i}", fov=-1)) for i in range(25)])
    (HERE / "malformed.geojson").write_text('{"type": "FeatureCollection", "features": [{"ty',
                                             encoding="utf-8")
    (HERE / "bad_datetime_incidents.csv").write_text(
        "lon,lat,occurred_at,category,severity\n"
        f"{LON},{LAT},2026-05-01T20:00:00,dispute,1\n"
        f"{LON},{LAT},yesterday evening,dispute,1\n", encoding="utf-8")
    (HERE / "not_a_number_households.csv").write_text(
        "lon,lat,code,persons\n"
        f"{LON},{LAT},BAD-H1,many\n", encoding="utf-8")
    (HERE / "nan_coordinates_incidents.csv").write_text(
        "wkt,occurred_at,category\n"
        f'"POINT (nan {LAT})",2026-05-01T20:00:00,dispute\n', encoding="utf-8")
    (HERE / "no_geometry_columns.csv").write_text(
        "code,persons\nBAD-H2,3\n", encoding="utf-8")
    (HERE / "cameras.txt").write_text("not a GIS file\n", encoding="utf-8")


if __name__ == "__main__":
    main()
