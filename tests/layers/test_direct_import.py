"""Point imports written straight into their table (no staging) against the staged writes.

The two paths must store the same rows and refuse the same rows for the same reasons;
the jurisdiction each point gets is also checked against PostGIS ``ST_Covers``, with
points exactly on the borders of leaf jurisdictions among them.
"""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from geo.locate import covering_pairs, first_cover, near_boundary
from geo.validate import to_served
from layers import LAYERS
from layers.errors import InputRejected
from layers.partitions import partition_name
from layers.store import SWAP_ROWS, direct_ready, write_direct, write_in, write_staged
from layers.validate import clean_features

pytestmark = pytest.mark.db

INCIDENTS = LAYERS["incidents"]
HOUSEHOLDS = LAYERS["households"]
MONTH = (2031, 5)  # a month the demo has no incidents in
LEAVES = ("SELECT code, geom FROM jurisdictions j WHERE NOT EXISTS "
          "(SELECT 1 FROM jurisdictions c WHERE c.parent_code = j.code)")


def test_first_cover_takes_the_lowest_polygon_and_flags_points_on_borders():
    left, right = shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)
    points = shapely.points([(0.5, 0.5), (1.0, 0.5), (1.5, 0.5), (3.0, 3.0),
                             (1.0 + 1e-12, 0.5), (0.5, 1.0 - 1e-6)])
    first = first_cover(*covering_pairs(points, [left, right]), len(points))
    assert first.tolist() == [0, 0, 1, -1, 1, 0]
    assert near_boundary(points, [left, right]).tolist() == [False, True, False, False,
                                                             True, False]


def _leaves(conn) -> tuple[list[str], np.ndarray]:
    rows = conn.execute(text(f"SELECT code, ST_AsBinary(geom) FROM ({LEAVES}) l "
                             "ORDER BY code")).all()
    return [r[0] for r in rows], shapely.from_wkb([bytes(r[1]) for r in rows])


def _border_points(polygons: np.ndarray) -> np.ndarray:
    """Vertices shared by two leaves (exactly on both) and edge midpoints at 7 decimals."""
    coords, owner = shapely.get_coordinates(shapely.boundary(polygons), return_index=True)
    keys = [tuple(c) for c in coords]
    owners: dict[tuple, set] = {}
    for key, k in zip(keys, owner.tolist(), strict=True):
        owners.setdefault(key, set()).add(k)
    shared = np.array([k for k, o in owners.items() if len(o) > 1])
    middles = np.round((coords[:-1] + coords[1:]) / 2, 7)[:: max(1, len(coords) // 300)]
    return shapely.points(np.vstack([shared[:: max(1, len(shared) // 300)], middles]))


def _frame(points: np.ndarray, month: tuple[int, int] = MONTH, **columns) -> gpd.GeoDataFrame:
    n = len(points)
    times = [f"{month[0]}-{month[1]:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00+08:00"
             for i in range(n)]
    frame = gpd.GeoDataFrame({"occurred_at": times, "category": "fraud",
                              "severity": [1 + i % 5 for i in range(n)], **columns},
                             geometry=list(points), crs=4326)
    return clean_features(frame, INCIDENTS)


def _written(conn, write, layer, features) -> list[tuple]:
    """The rows ``write`` stores, in id order, read back in its transaction (rolled back)."""
    names = ", ".join(f.name for f in layer.input_fields)
    with conn.begin_nested() as savepoint:
        write(conn, layer, features, "parity")
        rows = conn.execute(text(
            f"SELECT ST_AsBinary(geom), {names}, version, updated_by FROM {layer.name} "
            "WHERE updated_by = 'parity' ORDER BY id")).all()
        savepoint.rollback()
    return [(bytes(r[0]), *r[1:]) for r in rows]


def _refusal(conn, write, layer, features) -> list[tuple[int, str]]:
    with conn.begin_nested() as savepoint:
        with pytest.raises(InputRejected) as refused:
            write(conn, layer, features, "parity")
        savepoint.rollback()
    return [(p.row, p.reason) for p in refused.value.problems]


@pytest.fixture
def conn(db, demo_small):
    with db.connect() as connection, connection.begin() as outer:
        yield connection
        outer.rollback()


def _sample(conn) -> tuple[np.ndarray, np.ndarray]:
    """Random points over the leaves (some just outside) and points on their borders."""
    _codes, polygons = _leaves(conn)
    x0, y0, x1, y1 = shapely.total_bounds(polygons)
    rng = np.random.default_rng(7)
    spread = shapely.points(np.round(np.column_stack([
        rng.uniform(x0 - 0.004, x1 + 0.004, 2 * SWAP_ROWS),
        rng.uniform(y0 - 0.004, y1 + 0.004, 2 * SWAP_ROWS)]), 7))
    near = shapely.dwithin(shapely.union_all(polygons), spread, 0.008)
    return spread[near], _border_points(polygons)


def test_direct_write_stores_what_the_staged_write_stores(conn):
    spread, border = _sample(conn)
    features = _frame(np.concatenate([spread, border]))
    features = features.iloc[np.random.default_rng(3).permutation(len(features))]
    assert len(features) >= SWAP_ROWS  # the month is loaded into a partition of its own
    assert direct_ready(conn, INCIDENTS)
    staged = _written(conn, write_staged, INCIDENTS, features)
    direct = _written(conn, write_direct, INCIDENTS, features)
    assert len(direct) == len(features)
    assert direct == staged
    served = shapely.to_wkb(to_served(features.geometry.values.to_numpy())).tolist()
    assert [r[0] for r in direct] == served  # stored at the served precision, in row order


def test_each_point_goes_to_the_lowest_leaf_covering_it_as_postgis_says(conn):
    spread, border = _sample(conn)
    features = _frame(np.concatenate([spread, border]))
    write_direct(conn, INCIDENTS, features, "parity")
    mismatched = conn.execute(text(f"""
        SELECT count(*), count(*) FILTER (WHERE i.jurisdiction_code IS DISTINCT FROM
            coalesce((SELECT l.code FROM ({LEAVES}) l WHERE ST_Covers(l.geom, i.geom)
                      ORDER BY l.code LIMIT 1), i.jurisdiction_code))
        FROM incidents i WHERE i.updated_by = 'parity'""")).one()
    assert mismatched == (len(features), 0)
    on_border = conn.execute(text(f"""
        SELECT count(*) FROM incidents i WHERE i.updated_by = 'parity'
          AND (SELECT count(*) FROM ({LEAVES}) l WHERE ST_Covers(l.geom, i.geom)) > 1""")
    ).scalar_one()
    assert on_border >= 50


def test_the_big_month_becomes_a_partition_with_the_same_indexes(conn):
    name = partition_name(INCIDENTS, MONTH)
    spread, _border = _sample(conn)
    features = _frame(spread)
    assert len(features) >= SWAP_ROWS
    write_direct(conn, INCIDENTS, _frame(spread[:3]), "parity")  # creates the month
    conn.execute(text("DELETE FROM incidents WHERE updated_by = 'parity'"))
    indexes = "SELECT indexname FROM pg_indexes WHERE tablename = :t ORDER BY 1"
    before = conn.execute(text(indexes), {"t": name}).scalars().all()
    version = "SELECT version FROM layer_versions WHERE layer = 'incidents'"
    old_version = conn.execute(text(version)).scalar_one()
    write_direct(conn, INCIDENTS, features, "parity")
    assert conn.execute(text(indexes), {"t": name}).scalars().all() == before
    assert len(before) == 4
    assert conn.execute(text(version)).scalar_one() > old_version
    placed = conn.execute(text(
        "SELECT DISTINCT i.tableoid::regclass::text, c.relrowsecurity FROM incidents i "
        "JOIN pg_class c ON c.oid = i.tableoid WHERE updated_by = 'parity'")).all()
    assert placed == [(f"partitions.{name}", True)]
    stored = conn.execute(text("SELECT occurred_at FROM incidents WHERE updated_by = 'parity' "
                               "ORDER BY id")).scalars().all()
    assert stored == features["occurred_at"].tolist()  # ids ascend with the rows


def test_both_writes_refuse_the_same_rows_for_the_same_reasons(conn):
    codes, polygons = _leaves(conn)
    inside = shapely.point_on_surface(polygons[:4])
    x0, y0, _x1, _y1 = shapely.total_bounds(polygons)
    points = np.concatenate([
        inside,
        shapely.points([(x0 - 1.0, y0 - 1.0), (x0 - 0.005, y0 + 0.01)]),  # far; maybe near
        inside[:2], inside[:2], _border_points(polygons)[:5]])
    given = [None] * 6 + ["no-such-code", None, codes[3], codes[-1]] + [None] * 5
    features = _frame(points, jurisdiction_code=given)
    staged = _refusal(conn, write_staged, INCIDENTS, features)
    direct = _refusal(conn, write_direct, INCIDENTS, features)
    assert direct == staged
    assert {row for row, _ in direct} >= {5, 7}
    assert conn.execute(text("SELECT count(*) FROM incidents WHERE updated_by = 'parity'")
                        ).scalar_one() == 0


def test_both_writes_refuse_repeated_and_taken_codes_alike(conn):
    taken = conn.execute(text("SELECT code FROM households ORDER BY id LIMIT 1")).scalar_one()
    _codes, polygons = _leaves(conn)
    points = shapely.point_on_surface(polygons[:5])
    frame = gpd.GeoDataFrame({"code": ["new-1", "new-2", "new-1", taken, "new-3"],
                              "persons": [1, 2, 3, 4, 5],
                              "jurisdiction_code": [None, None, None, None, "nowhere"]},
                             geometry=list(points), crs=4326)
    features = clean_features(frame, HOUSEHOLDS)
    staged = _refusal(conn, write_staged, HOUSEHOLDS, features)
    assert _refusal(conn, write_direct, HOUSEHOLDS, features) == staged
    assert [row for row, _ in staged] == [1, 3, 4, 5]
    good = features.iloc[[0, 1, 4]].assign(jurisdiction_code=None)
    assert _written(conn, write_direct, HOUSEHOLDS, good) == \
        _written(conn, write_staged, HOUSEHOLDS, good)


def test_a_big_replace_leaves_only_the_new_rows_and_audits_the_old_count(conn):
    old = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    assert old > 0
    spread, border = _sample(conn)
    features = pd.concat([_frame(np.concatenate([spread, border])), _frame(border[:7], (2026, 3))],
                         ignore_index=True)
    version = "SELECT version FROM layer_versions WHERE layer = 'incidents'"
    old_version = conn.execute(text(version)).scalar_one()
    write_in(conn, INCIDENTS, features, mode="replace", actor="parity")
    assert conn.execute(text("SELECT count(*), count(*) FILTER (WHERE updated_by = 'parity') "
                             "FROM incidents")).one() == (len(features), len(features))
    assert conn.execute(text(version)).scalar_one() > old_version
    audit = conn.execute(text("SELECT before, after FROM audit WHERE layer = 'incidents' "
                              "ORDER BY id DESC LIMIT 1")).one()
    assert audit[0] == {"count": old} and audit[1]["added"] == len(features)


def test_both_writes_store_numbers_text_and_missing_values_alike(conn):
    _codes, polygons = _leaves(conn)
    points = shapely.point_on_surface(polygons[:4])
    frame = gpd.GeoDataFrame({"code": ["cam-a", "cam-b", "cam-c", "cam-d"],
                              "bearing": [0.0, 359.5, 1 / 3, 90],
                              "fov": [60, 0.1, 120.25, 1e-9], "range_m": [50, 999.999, 1, 2],
                              "height_m": [None, 12.5, None, 0],
                              "status": ["online", "offline", "planned", "online"]},
                             geometry=list(points), crs=4326)
    features = clean_features(frame, LAYERS["cameras"])
    direct = _written(conn, write_direct, LAYERS["cameras"], features)
    assert direct == _written(conn, write_staged, LAYERS["cameras"], features)
    assert [r[5] for r in direct] == [None, 12.5, None, 0.0]  # height_m
    assert direct[2][2] == 1 / 3  # bearing: every bit of a double
