"""Slippy-map tile arithmetic (the standard Web Mercator formulas) for the tile tests."""

import math


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """Indices (x, y) of the tile at zoom ``z`` holding (lon, lat)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def tile_bounds(x: int, y: int, z: int) -> tuple[float, float, float, float]:
    """(lon0, lat0, lon1, lat1) of tile (x, y) at zoom ``z``."""
    n = 2**z
    lat1 = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
    lat0 = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1) / n))))
    return x / n * 360 - 180, lat0, (x + 1) / n * 360 - 180, lat1
