"""Dask (a LocalCluster, dask-geopandas partitions) gives the single-process results."""

import dask.dataframe as dd
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from distributed import Client, LocalCluster

from geo.emerging import emerging_hotspots
from geo.hotspots import count_points, gi_star, square_cells
from geo.scaleout import count_points_dask, cube_dask, emerging_hotspots_dask, gi_star_dask


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
