"""Layer registry, PostGIS storage, import/export, the managed database and demo data."""

from .registry import LAYERS as LAYERS
from .registry import Field as Field
from .registry import Layer as Layer
from .registry import get_layer as get_layer
