"""geometries stored as served

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Features are served as GeoJSON with 7 decimals; from this revision on every write
stores its geometry on that grid (rounded vertex by vertex, repeated points removed),
so a client reads exactly the shapes topology checks saw. This revision brings the
stored rows onto the grid the same way, with GEOS in Python (pointwise rounding keeps
two neighbours' shared vertices shared; PostGIS' ST_SnapToGrid multiplies where GEOS
divides and can land one unit in the last place away). A geometry that pointwise
rounding leaves invalid is repaired as new writes are (split where pinched, else
noded); one whose type that would change stays as it is. Rows already on the grid are
not touched. There is no downgrade: the rounding cannot be undone, and the older code
reads rounded rows as they are.

This revision holds its own copy of the rounding (a migration must not change when
the application's code does).
"""

import numpy as np
import shapely
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

GRID = 1e-7
TABLES = ("jurisdictions", "grids", "household_units", "key_areas", "roads", "buildings",
          "patrol_routes", "households", "cameras", "checkpoints", "incidents")
BATCH = 20_000


def _repaired(rounded, original):
    """A valid version of an invalid rounded geometry: split where pinched, else noded."""
    if rounded is not None:
        fixed = shapely.make_valid(rounded)
        polygonal = [p for p in shapely.get_parts(fixed)
                     if p.geom_type in ("Polygon", "MultiPolygon")]
        if polygonal and set(map(tuple, shapely.get_coordinates(fixed))) <= \
                set(map(tuple, shapely.get_coordinates(rounded))):
            return polygonal[0] if len(polygonal) == 1 else shapely.MultiPolygon(
                [q for p in polygonal for q in shapely.get_parts(p)])
    return shapely.set_precision(original, GRID)


def _rounded(geoms: np.ndarray) -> np.ndarray:
    """Pointwise rounding (repeated points removed, repaired as new writes are); a row
    whose geometry would change type (a pinched polygon) keeps its geometry as it is."""
    out = shapely.set_precision(geoms, GRID, mode="pointwise")
    fixed = []
    for g in out:
        try:
            fixed.append(shapely.remove_repeated_points(g, 0.0))
        except shapely.errors.GEOSException:
            fixed.append(None)
    out = np.array(fixed, dtype=object)
    for i in np.flatnonzero(~shapely.is_valid(out)):
        out[i] = _repaired(out[i], geoms[i])
    kept = shapely.get_type_id(out) != shapely.get_type_id(geoms)
    out[kept] = geoms[kept]
    return out


def _round_rows(table: str) -> None:
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.text(
            f'SELECT id, ST_AsBinary(geom) FROM "{table}" WHERE id > :last '
            f"ORDER BY id LIMIT {BATCH}"), {"last": last}).all()
        if not rows:
            return
        last = rows[-1][0]
        geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
        rounded = _rounded(geoms)
        changed = [{"i": r[0], "g": shapely.to_wkb(g, include_srid=False)}
                   for r, old, g in zip(rows, geoms, rounded, strict=True)
                   if not shapely.equals_exact(old, g, 0.0)
                   or shapely.get_num_coordinates(old) != shapely.get_num_coordinates(g)]
        if changed:
            conn.execute(sa.text(
                f'UPDATE "{table}" SET geom = CASE WHEN GeometryType(geom) LIKE \'MULTI%\' '
                f"THEN ST_Multi(ST_GeomFromWKB(:g, 4326)) ELSE ST_GeomFromWKB(:g, 4326) END "
                f"WHERE id = :i"), changed)


def upgrade() -> None:
    for table in TABLES:
        _round_rows(table)


def downgrade() -> None:
    pass
