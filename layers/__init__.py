"""Everything that touches the store: the layer registry, PostGIS and the queries over it.

The registry (:mod:`layers.registry`, :mod:`layers.models`) declares each layer once; storage
(:mod:`layers.store`, :mod:`layers.validate`, :mod:`layers.pgcopy`, :mod:`layers.partitions`)
checks and writes features; :mod:`layers.io` and :mod:`layers.osm` bring files and
OpenStreetMap in and out; :mod:`layers.features`, :mod:`layers.edit` and :mod:`layers.tiles`
serve OGC API – Features and vector tiles. The analyses over stored data read through one
module each for shared inputs (:mod:`layers.incidents`, :mod:`layers.jurisdictions`) and run
the pure computations of :mod:`geo`: grids (:mod:`layers.gridgen`, :mod:`layers.gridedit`,
:mod:`layers.gridcheck`, :mod:`layers.units`), hot spots (:mod:`layers.hotspots`,
:mod:`layers.runs`), safety and the monthly notice (:mod:`layers.safety`,
:mod:`layers.report`), coverage (:mod:`layers.coverage`), the border (:mod:`layers.border`),
the overview map (:mod:`layers.overview`) and Dask jobs (:mod:`layers.scaleout`). Access and
users are :mod:`layers.access` and :mod:`layers.users`; every error is a class of
:mod:`layers.errors` carrying its HTTP status; :mod:`layers.db` and :mod:`layers.cluster` are
the database and the managed local cluster; :mod:`layers.demo` generates the demo cities.
``docs/architecture.md`` maps each capability to its modules and tests.
"""

from .registry import LAYERS as LAYERS
from .registry import Field as Field
from .registry import Layer as Layer
from .registry import get_layer as get_layer
