"""Pure spatial computation: GeoDataFrames and arrays in, GeoDataFrames and numbers out."""

from .crs import gcj02_to_wgs84 as gcj02_to_wgs84
from .crs import metric_crs as metric_crs
from .crs import wgs84_to_gcj02 as wgs84_to_gcj02
from .validate import geometry_problems as geometry_problems
