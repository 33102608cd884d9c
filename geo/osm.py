"""OpenStreetMap tags mapped to safegrid's layers: pure functions, no IO.

Each ``*_of`` function takes one OSM object's tags (a ``dict`` of text) and returns the
safegrid values, or ``None`` when the object does not belong in that layer. The tables
below are the documented mapping; :mod:`layers.osm` reads the file and applies them.

Roads (``highway=*`` ways, :data:`ROAD_CLASSES`)

=====================================================================  ==========
OSM ``highway``                                                        safegrid
=====================================================================  ==========
motorway, trunk (and their ``*_link``)                                 motorway
primary, secondary (and their ``*_link``)                              arterial
tertiary, tertiary_link                                                collector
residential, unclassified, living_street, service, road               local
footway, path, pedestrian, cycleway, steps, track, bridleway           path
=====================================================================  ==========

Other values (construction, proposed, platform, corridor...) are skipped.

Buildings: ``height`` in metres (``12``, ``12 m``, ``12.5``; feet ``40 ft`` or ``40'``
are converted), else ``building:levels`` x :data:`LEVEL_HEIGHT_M` (3 m), else none.

Cameras (``man_made=surveillance`` nodes): bearing from ``camera:direction``
(or ``direction``) in degrees clockwise from north or a compass word (N, NNE ... NW),
field of view from ``camera:angle``, mounting height from ``height``. Untagged values
take :data:`CAMERA_DEFAULTS` and are listed as defaulted. ``surveillance:type=guard``
(a person) and ``surveillance:type=ALPR`` are kept only when they are cameras (ALPR
is, guard is not).

Jurisdictions (``boundary=administrative``): :data:`ADMIN_LEVELS` follows the Chinese
convention in OpenStreetMap (4 province, 5 prefecture city, 6 district or county,
8 street or township, 9-10 community or village).
"""

from __future__ import annotations

import math
import re

import numpy as np
import shapely

__all__ = [
    "ADMIN_LEVELS",
    "CAMERA_DEFAULTS",
    "COMPASS",
    "KEY_AREA_TAGS",
    "LEVEL_HEIGHT_M",
    "RAIL_CORRIDOR_M",
    "ROAD_CLASSES",
    "admin_level_of",
    "building_height_m",
    "camera_of",
    "checkpoint_kind_of",
    "jurisdiction_code_of",
    "jurisdiction_level_of",
    "key_area_category_of",
    "parents_by_containment",
    "parse_direction",
    "parse_length_m",
    "rail_corridors",
    "road_class_of",
]

ROAD_CLASSES: dict[str, str] = {
    "motorway": "motorway", "motorway_link": "motorway",
    "trunk": "motorway", "trunk_link": "motorway",
    "primary": "arterial", "primary_link": "arterial",
    "secondary": "arterial", "secondary_link": "arterial",
    "tertiary": "collector", "tertiary_link": "collector",
    "residential": "local", "unclassified": "local", "living_street": "local",
    "service": "local", "road": "local",
    "footway": "path", "path": "path", "pedestrian": "path", "cycleway": "path",
    "steps": "path", "track": "path", "bridleway": "path",
}

# Metres per storey when a building has ``building:levels`` but no ``height``.
LEVEL_HEIGHT_M = 3.0

# (key, value) -> key area category; of several keys, the one first in this table wins.
KEY_AREA_TAGS: dict[tuple[str, str], str] = {
    ("amenity", "school"): "school",
    ("amenity", "kindergarten"): "kindergarten",
    ("amenity", "hospital"): "hospital",
    ("amenity", "marketplace"): "market",
    ("amenity", "townhall"): "government_hall",
    ("office", "government"): "government_hall",
    ("amenity", "nightclub"): "entertainment",
    ("amenity", "cinema"): "entertainment",
    ("amenity", "theatre"): "entertainment",
    ("amenity", "karaoke_box"): "entertainment",
    ("amenity", "casino"): "entertainment",
    ("amenity", "bar"): "entertainment",
    ("amenity", "stripclub"): "entertainment",
    ("leisure", "amusement_arcade"): "entertainment",
    ("leisure", "adult_gaming_centre"): "entertainment",
    ("leisure", "dance"): "entertainment",
    ("leisure", "park"): "park",
    ("shop", "mall"): "mall",
    ("aeroway", "aerodrome"): "airport",
    ("railway", "station"): "station",
    ("public_transport", "station"): "station",
    ("landuse", "port"): "port",
    ("landuse", "harbour"): "port",
    ("industrial", "port"): "port",
    ("barrier", "border_control"): "border_port",
}

# Railway lines kept as a corridor polygon this many metres each side of the track.
RAIL_CORRIDOR_M = 30.0
RAIL_VALUES = ("rail",)

# Values for cameras that OSM does not say; the import lists the cameras that took them.
CAMERA_DEFAULTS: dict[str, object] = {
    "bearing": 0.0,  # north
    "fov": 90.0,  # degrees; 360 for camera:type=panning or revolving=yes (it turns round)
    "range_m": 50.0,
    "status": "online",  # mapped cameras are ones a surveyor saw in place
}

COMPASS: dict[str, float] = {
    name: i * 22.5 for i, name in enumerate(
        ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE",
         "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW"))
}

ADMIN_LEVELS: dict[int, str] = {
    4: "province", 5: "city", 6: "district", 8: "street", 9: "community", 10: "community",
}

_NUMBER = r"([-+]?\d+(?:[.,]\d+)?)"
_LENGTH = re.compile(rf"^\s*{_NUMBER}\s*(m|metres?|meters?|ft|feet|'|)\s*$", re.IGNORECASE)


def road_class_of(tags: dict[str, str]) -> str | None:
    """The safegrid road class of a ``highway=*`` way (:data:`ROAD_CLASSES`), or None."""
    return ROAD_CLASSES.get(tags.get("highway", ""))


def parse_length_m(text: str | None) -> float | None:
    """A length in metres from an OSM value: ``12``, ``12 m``, ``12.5``, ``40 ft``; else None.

    A comma decimal (``12,5``) is read as a point; negative or non-finite values are None.
    """
    if not text:
        return None
    match = _LENGTH.match(text)
    if not match:
        return None
    value = float(match.group(1).replace(",", "."))
    if match.group(2).lower() in ("ft", "feet", "'"):
        value *= 0.3048
    return value if math.isfinite(value) and value >= 0 else None


def building_height_m(tags: dict[str, str]) -> float | None:
    """Height in metres: ``height``, else ``building:levels`` x :data:`LEVEL_HEIGHT_M`."""
    height = parse_length_m(tags.get("height"))
    if height is not None:
        return height
    try:
        levels = float(tags.get("building:levels", "").replace(",", "."))
    except ValueError:
        return None
    if not math.isfinite(levels) or levels < 0:
        return None
    return levels * LEVEL_HEIGHT_M


def key_area_category_of(tags: dict[str, str]) -> str | None:
    """The key area category of an object (:data:`KEY_AREA_TAGS`), or None.

    Keys are tried in the order they first appear in the table (amenity, office,
    leisure, shop, ...); the first key whose value is listed decides.
    """
    for key, values in _KEY_AREA_KEYS.items():
        value = tags.get(key)
        if value is not None and value in values:
            return values[value]
    return None


# KEY_AREA_TAGS by key, keys in the order they first appear
_KEY_AREA_KEYS: dict[str, dict[str, str]] = {}
for (_key, _value), _category in KEY_AREA_TAGS.items():
    _KEY_AREA_KEYS.setdefault(_key, {})[_value] = _category


def parse_direction(text: str | None) -> float | None:
    """A bearing in degrees [0, 360) clockwise from north: ``90``, ``-45``, ``NE``; else None.

    Of a range (``0-90``, ``0;90``) or a list, the first value is taken.
    """
    if not text:
        return None
    first = re.split(r"[;]|(?<=\d)-", text.strip())[0].strip()
    if first.upper() in COMPASS:
        return COMPASS[first.upper()]
    try:
        value = float(first)
    except ValueError:
        return None
    return value % 360.0 if math.isfinite(value) else None


def camera_of(tags: dict[str, str]) -> tuple[dict, list[str]] | None:
    """Camera fields of a ``man_made=surveillance`` object, and the fields defaulted.

    Returns None when the object is not a camera (not surveillance, or
    ``surveillance:type`` other than camera or ALPR, such as a guard).
    """
    if tags.get("man_made") != "surveillance":
        return None
    kind = tags.get("surveillance:type", "camera").lower()
    if kind not in ("camera", "alpr"):
        return None
    fields: dict = {"bearing": parse_direction(tags.get("camera:direction")
                                               or tags.get("direction")),
                    "fov": _angle(tags.get("camera:angle")),
                    "range_m": None, "status": None,
                    "height_m": parse_length_m(tags.get("height"))}
    if fields["fov"] is None and (tags.get("camera:type") == "panning"
                                  or tags.get("revolving") == "yes"):
        fields["fov"] = 360.0
    defaulted = [name for name in CAMERA_DEFAULTS if fields[name] is None]
    for name in defaulted:
        fields[name] = CAMERA_DEFAULTS[name]
    return fields, defaulted


def _angle(text: str | None) -> float | None:
    """A field of view in degrees (0, 360]: ``60``, ``60°``; else None."""
    if not text:
        return None
    try:
        value = float(text.strip().rstrip("°").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and 0 < value <= 360 else None


def checkpoint_kind_of(tags: dict[str, str]) -> str | None:
    """``police_station`` for ``amenity=police``, else None."""
    return "police_station" if tags.get("amenity") == "police" else None


def admin_level_of(tags: dict[str, str]) -> int | None:
    """The ``admin_level`` of a ``boundary=administrative`` object, or None."""
    if tags.get("boundary") != "administrative":
        return None
    try:
        return int(tags.get("admin_level", "").strip())
    except ValueError:
        return None


def jurisdiction_level_of(admin_level: int, tags: dict[str, str],
                          levels: dict[int, str] | None = None) -> str | None:
    """The safegrid level of an ``admin_level`` (:data:`ADMIN_LEVELS`, or ``levels``).

    A level-10 area (or any mapped to ``community``) is a ``village`` when its name ends
    in 村 or it is tagged ``place=village``/``hamlet``.
    """
    level = (levels if levels is not None else ADMIN_LEVELS).get(admin_level)
    if level == "community" and (tags.get("name", "").endswith("村")
                                 or tags.get("place") in ("village", "hamlet")):
        return "village"
    return level


def jurisdiction_code_of(tags: dict[str, str]) -> list[str]:
    """Candidate codes of an administrative area, best first: ISO3166-2, ref:admin, ref."""
    return [tags[k].strip() for k in ("ISO3166-2", "ref:admin", "ref") if tags.get(k, "").strip()]


def parents_by_containment(geoms: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """For each area, the index of the smallest area of a higher rank containing it, or -1.

    ``geoms`` are polygons (any one CRS); ``ranks`` are numbers, lower is higher up
    (province 0 ... village 5). An area contains another when the other's
    representative point lies in it and it is larger.
    """
    geoms = np.asarray(geoms, dtype=object)
    ranks = np.asarray(ranks)
    points = shapely.point_on_surface(geoms)
    areas = shapely.area(geoms)
    parents = np.full(len(geoms), -1)
    tree = shapely.STRtree(geoms)
    child, holder = tree.query(points, predicate="within")
    best = np.full(len(geoms), np.inf)
    for c, h in zip(child, holder, strict=True):
        if ranks[h] < ranks[c] and areas[h] > areas[c] and areas[h] < best[c]:
            best[c], parents[c] = areas[h], h
    return parents


def rail_corridors(lines_m: np.ndarray, half_width_m: float = RAIL_CORRIDOR_M
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Railway lines (metric CRS) as corridor polygons, overlapping corridors merged.

    Returns the corridor polygons (metres) and, per line, the index of its corridor.
    """
    buffers = shapely.buffer(np.asarray(lines_m, dtype=object), half_width_m)
    if len(buffers) == 0:
        return np.array([], dtype=object), np.array([], dtype=int)
    merged = shapely.get_parts(shapely.union_all(buffers))
    tree = shapely.STRtree(merged)
    line_idx, corridor_idx = tree.query(shapely.point_on_surface(buffers), predicate="within")
    which = np.full(len(buffers), -1)
    which[line_idx] = corridor_idx
    return merged, which
