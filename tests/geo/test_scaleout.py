"""Dask (a LocalCluster, dask-geopandas partitions) gives the single-process results:
hot-spot counts, Gi*, emerging hot spots, camera fields of view and covered ratios."""

import dask.dataframe as dd
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from distributed import Client, LocalCluster

from geo.coverage import coverage_ratio, fields_of_view, sector, watched
from geo.emerging import emerging_hotspots
from geo.hotspots import count_points, gi_star, square_cells
from geo.scaleout import (
    count_points_dask,
    coverage_ratio_dask,
    cube_dask,
    emerging_hotspots_dask,
    fields_of_view_dask,
    gi_star_dask,
)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def incidents():
    rng = np.random.default_rng(0)
    xy = np.vstack([rng.uniform(0, 5000, (40_000, 2)), rng.normal(3000, 150, (5000, 2))])
    time = np.datetime64("2026-01-01") + rng.integers(0, 365 * 24, len(xy)).astype(
        "timedelta64[h]")
    return xy, time


def test_gi_star_on_dask_geopandas_equals_single_process(client, incidents):
    xy, _time = incidents
    lattice = square_cells(shapely.box(0, 0, 5000, 5000), 100)
    frame = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]))
    points = dask_geopandas.from_geopandas(frame, npartitions=7)
    result = gi_star_dask(lattice, points, client=client)
    counts = count_points(lattice, xy)
    assert np.array_equal(result["count"], counts)
    assert np.array_equal(result["z"], gi_star(lattice, counts))


def test_emerging_on_dask_equals_single_process(client, incidents):
    xy, time = incidents
    lattice = square_cells(shapely.box(0, 0, 5000, 5000), 250)
    points = dd.from_pandas(pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "time": time}),
                            npartitions=5)
    edges = np.arange(np.datetime64("2026-01"), np.datetime64("2027-01"),
                      np.timedelta64(1, "M")).astype("datetime64[ns]")
    edges = np.append(edges, np.datetime64("2027-01-01", "ns"))
    cube = np.stack([count_points(lattice, xy[(time >= edges[t]) & (time < edges[t + 1])])
                     for t in range(12)])
    assert np.array_equal(cube_dask(lattice, points, edges, client), cube)
    ours = emerging_hotspots_dask(lattice, points, edges, client=client)
    single = emerging_hotspots(lattice, cube.astype(float))
    assert np.array_equal(ours["category"], single["category"])
    assert np.array_equal(ours["z"], single["z"])


def test_without_a_client_the_local_scheduler_is_used(incidents):
    xy, _time = incidents
    lattice = square_cells(shapely.box(0, 0, 5000, 5000), 200)
    points = dd.from_pandas(pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}), npartitions=3)
    assert np.array_equal(count_points_dask(lattice, points), count_points(lattice, xy))


@pytest.fixture(scope="module")
def town():
    """Footprints on a 50 m block grid (rotated, some with a courtyard), cameras in the
    streets and on walls (metres)."""
    rng = np.random.default_rng(3)
    blocks = []
    for i in range(30):
        for j in range(30):
            w, h = rng.uniform(18, 34, 2)
            block = shapely.box(i * 50, j * 50, i * 50 + w, j * 50 + h)
            if rng.random() < 0.15:
                block = block.difference(block.centroid.buffer(min(w, h) / 4, quad_segs=4))
            blocks.append(shapely.affinity.rotate(block, rng.uniform(-20, 20)))
    buildings = np.array(blocks, dtype=object)
    streets = rng.uniform(0, 1500, (330, 2))
    walls = [b.exterior.interpolate(rng.uniform(0, 1), normalized=True)
             for b in buildings[rng.choice(len(buildings), 70, replace=False)]]
    points = np.concatenate([shapely.points(streets), np.array(walls, dtype=object)])
    n = len(points)
    cameras = gpd.GeoDataFrame({
        "bearing": rng.uniform(0, 360, n), "fov": rng.choice([60.0, 90.0, 120.0, 360.0], n),
        "range_m": rng.uniform(30, 150, n),
        "status": rng.choice(["online", "offline", "planned"], n, p=[0.9, 0.05, 0.05])},
        geometry=points, index=[f"CAM{k:04d}" for k in rng.permutation(n)])
    return cameras, buildings


def test_fields_of_view_on_dask_equal_the_single_process_ones(client, town):
    cameras, buildings = town
    single = fields_of_view(cameras, buildings)
    ours = fields_of_view_dask(cameras, buildings, client=client, batch=37)
    assert ours.index.equals(cameras.index)
    assert np.array_equal(ours["online"], single["online"])
    assert shapely.equals_exact(ours.geometry.values, single.geometry.values, 1e-9).all()
    assert np.array_equal(shapely.area(ours.geometry.values), shapely.area(single.geometry.values))
    # the footprints matter: many views are smaller than their bare sectors
    sectors = [sector(p.x, p.y, b, f, r) for p, b, f, r in zip(
        cameras.geometry, cameras["bearing"], cameras["fov"], cameras["range_m"], strict=True)]
    hidden = single["online"] & (single.area < shapely.area(sectors) - 1.0)
    assert hidden.sum() > 0.5 * single["online"].sum()


def test_covered_ratios_on_dask_equal_the_single_process_ones(client, town):
    cameras, buildings = town
    views = fields_of_view(cameras, buildings).geometry.values.to_numpy()
    rng = np.random.default_rng(5)
    centres = shapely.points(rng.uniform(0, 1500, (200, 2)))
    targets = np.concatenate([
        shapely.buffer(centres[:120], rng.uniform(10, 80, 120)),  # key areas
        [shapely.LineString([(x, y), (x + 300, y + 40)]) for x, y in  # roads
         shapely.get_coordinates(centres[120:])],
        [shapely.Polygon()]])
    single = coverage_ratio(targets, watched(targets, views))
    ours = coverage_ratio_dask(targets, views, client=client, batch=16)
    assert np.array_equal(ours, single, equal_nan=True)
    assert np.isnan(ours[-1]) and 0 < np.nanmean(ours) < 1
