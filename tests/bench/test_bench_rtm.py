"""Risk terrain on the city demo (seed 1): one city (430100) on 300 m cells, its incidents
of a year, the factors layers.rtm draws (key areas by category, arterial and motorway
roads, checkpoints as absence, offline cameras) at the default six distances. geo.rtm's
whole selection (cross-validated lasso path, one column per factor, refit, BIC) against
two references timed in the same run: one statsmodels Poisson GLM on the full candidate
design (no selection at all), and the hot-spot Gi* of the same counts. Then the same on
250 000 synthetic cells (50 m over 25 km) with two true factors among five."""

import math
import time

import numpy as np
import pytest
import shapely

from geo.crs import Projection
from geo.hotspots import count_points, gi_star, square_cells
from geo.rtm import (
    RiskFactor,
    candidate_columns,
    default_distances,
    density_high,
    fit_terrain,
    proximity,
)

from .conftest import bench_line, median_time, report

pytestmark = pytest.mark.bench

CITY = "430100"
CELL = 300.0


@pytest.fixture(scope="module")
def city():
    import datetime as dt

    from layers.demo import generate

    layers = generate("city", 1, end=dt.date(2026, 10, 31))
    jur = layers["jurisdictions"]
    area_ll = jur.loc[jur["code"] == CITY].geometry.iloc[0]
    projection = Projection.over(area_ll)
    area = projection.project(area_ll)
    lattice = square_cells(area, CELL, cover=True)
    inc = layers["incidents"]
    xy = np.column_stack(projection.project_xy(inc.geometry.x.to_numpy(),
                                               inc.geometry.y.to_numpy()))
    counts = count_points(lattice, xy)
    distances = default_distances(CELL)
    zone = shapely.buffer(area, max(distances))
    groups: dict[str, list] = {}
    named = [("key_areas", lambda r: f"key_areas:{r['category']}"),
             ("roads", lambda r: f"roads:{r['class']}"
              if r["class"] in ("arterial", "motorway") else None),
             ("checkpoints", lambda r: "checkpoints"),
             ("cameras", lambda r: "cameras:offline" if r["status"] == "offline" else None)]
    for layer, name_of in named:
        for _, row in layers[layer].iterrows():
            geom = projection.project(row.geometry)
            name = name_of(row)
            if name and shapely.intersects(geom, zone):
                groups.setdefault(name, []).append(geom)
    factors = [RiskFactor(n, np.array(g, dtype=object), absence=n == "checkpoints")
               for n, g in sorted(groups.items())]
    centroids = shapely.get_coordinates(shapely.centroid(lattice.cells.geometry.values))
    return lattice, centroids, counts, factors, distances


def test_terrain_vs_one_glm_on_the_full_design_and_gi_star(city):
    import statsmodels.api as sm

    lattice, centroids, counts, factors, distances = city
    t0 = time.perf_counter()
    model = fit_terrain(centroids, counts, factors, distances, folds=5, seed=0)
    ours = time.perf_counter() - t0
    names, x = candidate_columns(centroids, factors, distances)

    def full_glm():
        return sm.GLM(counts, sm.add_constant(x), family=sm.families.Poisson()).fit()

    glm = median_time(full_glm, repeat=3)
    gi = median_time(lambda: gi_star(lattice, counts), repeat=3)
    assert model.rrs.min() == pytest.approx(1.0) and model.factors
    bench_line(f"risk terrain, city {CITY}: {len(counts):,} cells of {CELL:g} m, "
               f"{int(counts.sum()):,} incidents, {len(factors)} factors, {len(names)} "
               f"candidate columns, {len(model.factors)} selected ({model.model})")
    report("risk terrain (5-fold CV lasso path + refit)", ours,
           "statsmodels Poisson GLM on the full design, no selection", glm)
    report("risk terrain (5-fold CV lasso path + refit)", ours, "Gi* of the same counts", gi)
    bench_line(f"  the terrain takes {ours / glm:.0f} times one full-design GLM fit "
               f"(penalty path of {len(model.cv_deviance)} penalties x 6 fits, then the "
               "refits)")


def test_terrain_on_250_000_cells_vs_one_glm_on_the_full_design():
    """Incidents Poisson with rr 3 within 100 m of a bar and rr 2 at a high density of
    shops (150 m); parks, roads and police posts (absence) do nothing."""
    import statsmodels.api as sm

    cell, side = 50.0, 25_000.0
    rng = np.random.default_rng(42)
    g = (np.arange(int(side / cell)) + 0.5) * cell
    xx, yy = np.meshgrid(g, g)
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    bars = shapely.points(rng.uniform(0, side, (400, 2)))
    centres = rng.uniform(1000, side - 1000, (30, 2))
    shops = shapely.points(np.vstack([c + rng.normal(0, 120, (15, 2)) for c in centres]
                                     + [rng.uniform(0, side, (300, 2))]))
    factors = [RiskFactor("bars", bars), RiskFactor("shops", shops),
               RiskFactor("parks", shapely.points(rng.uniform(0, side, (300, 2)))),
               RiskFactor("roads", np.array([shapely.LineString(rng.uniform(0, side, (2, 2)))
                                             for _ in range(20)])),
               RiskFactor("posts", shapely.points(rng.uniform(0, side, (60, 2))),
                          absence=True)]
    counts = rng.poisson(np.exp(-2.5 + math.log(3) * proximity(xy, bars, 100.0)
                                + math.log(2) * density_high(xy, shops, 150.0)))
    distances = default_distances(cell)
    t0 = time.perf_counter()
    names, x = candidate_columns(xy, factors, distances)
    columns = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = fit_terrain(xy, counts, factors, distances, folds=5, seed=0)
    ours = time.perf_counter() - t0
    glm = median_time(lambda: sm.GLM(counts, sm.add_constant(x),
                                     family=sm.families.Poisson()).fit(), repeat=1)
    rows = {r["factor"]: r for r in model.factors}
    assert set(rows) == {"bars", "shops"}
    assert rows["bars"]["relative_risk"] == pytest.approx(3, rel=0.1)
    assert rows["shops"]["relative_risk"] == pytest.approx(2, rel=0.1)
    bench_line(f"risk terrain, synthetic: {len(counts):,} cells of {cell:g} m, "
               f"{int(counts.sum()):,} incidents, {len(factors)} factors, {len(names)} "
               f"candidate columns ({columns:.1f} s to build), {len(model.factors)} selected")
    report("risk terrain on 250 000 cells (columns + 5-fold CV lasso path + refit)", ours,
           "statsmodels Poisson GLM on the full design, no selection", glm)
