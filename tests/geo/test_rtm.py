"""Risk terrain modelling against independent references: a known Poisson model, statsmodels
fitted directly, brute-force proximity and kernel sums."""

import math

import numpy as np
import pytest
import shapely
import statsmodels.api as sm

from geo.hotspots import square_cells
from geo.rtm import (
    RiskFactor,
    candidate_columns,
    default_distances,
    density,
    density_high,
    feature_points,
    fit_terrain,
    lasso_path,
    operationalise,
    proximity,
    single_column_deviance,
)

CELL = 100.0
SIDE = 4000.0


def _centroids():
    lattice = square_cells(shapely.box(0, 0, SIDE, SIDE), CELL)
    return shapely.get_coordinates(shapely.centroid(lattice.cells.geometry.values))


def _brute_density(xy, points, h):
    """An explicit quartic kernel sum, one centre and one point at a time."""
    out = np.zeros(len(xy))
    for i, (x, y) in enumerate(xy):
        for px, py in points:
            d = math.hypot(x - px, y - py)
            if d < h:
                out[i] += 3 / (math.pi * h * h) * (1 - (d / h) ** 2) ** 2
    return out


@pytest.fixture(scope="module")
def synthetic():
    """Cells of 100 m over 4 km; incidents Poisson with two true factors and two noise ones.

    True: within 200 m of a bar (rr 3); high density (mean + 2 sd) of shops at 300 m
    (rr 2). Noise: parks and a road, which do nothing.
    """
    rng = np.random.default_rng(7)
    xy = _centroids()
    bars = shapely.points(rng.uniform(300, SIDE - 300, (25, 2)))
    centres = rng.uniform(500, SIDE - 500, (4, 2))
    shops = shapely.points(np.vstack([c + rng.normal(0, 120, (15, 2)) for c in centres]
                                     + [rng.uniform(0, SIDE, (40, 2))]))
    parks = shapely.points(rng.uniform(0, SIDE, (25, 2)))
    road = np.array([shapely.LineString([(0, 1234), (SIDE, 2900)])])
    near_bar = np.array([min(shapely.distance(shapely.Point(p), b) for b in bars) <= 200
                         for p in xy], dtype=float)
    dens = _brute_density(xy, shapely.get_coordinates(shops), 300.0)
    high_shops = ((dens - dens.mean()) / dens.std() > 2).astype(float)
    y = rng.poisson(np.exp(-0.3 + math.log(3) * near_bar + math.log(2) * high_shops))
    factors = [RiskFactor("bars", bars), RiskFactor("shops", shops),
               RiskFactor("parks", parks), RiskFactor("road", road)]
    model = fit_terrain(xy, y, factors, default_distances(CELL), folds=5, seed=3)
    return xy, y, factors, model


def test_the_true_factors_are_found_with_their_relative_risks(synthetic):
    _xy, _y, _factors, model = synthetic
    rows = {r["factor"]: r for r in model.factors}
    assert set(rows) == {"bars", "shops"}
    assert rows["bars"]["operationalisation"] == "proximity"
    assert abs(rows["bars"]["distance"] - 200) <= 50
    assert rows["shops"]["operationalisation"] == "density"
    assert abs(rows["shops"]["distance"] - 300) <= 50
    assert rows["bars"]["relative_risk"] == pytest.approx(3, rel=0.25)  # the truth within 25 %
    assert rows["shops"]["relative_risk"] == pytest.approx(2, rel=0.25)
    assert all(r["p_value"] < 0.001 for r in rows.values())
    assert model.candidates > 20 and model.penalty > 0
    assert model.model == "poisson" and model.dispersion < 1.5


def test_the_refit_is_statsmodels_glm_on_the_same_design(synthetic):
    xy, y, factors, model = synthetic
    by_name = {f.name: f for f in factors}
    columns = [operationalise(xy, by_name[s.factor], s.kind, s.distance)
               for s in model.selected]
    fit = sm.GLM(y, sm.add_constant(np.column_stack(columns)),
                 family=sm.families.Poisson()).fit()
    coef = {s.factor: b for s, b in zip(model.selected, fit.params[1:], strict=True)}
    for row in model.factors:
        assert row["coefficient"] == pytest.approx(coef[row["factor"]], abs=1e-6)
    assert model.intercept == pytest.approx(fit.params[0], abs=1e-6)
    assert model.aic == pytest.approx(fit.aic, rel=1e-9)


def test_rrs_is_one_at_least_and_monotone_in_the_linear_predictor(synthetic):
    _xy, _y, _factors, model = synthetic
    assert model.rrs.min() == pytest.approx(1.0)
    order = np.argsort(model.linear_predictor, kind="stable")
    assert np.all(np.diff(model.rrs[order]) >= -1e-12)
    assert model.rrs.max() == pytest.approx(
        math.prod(r["relative_risk"] for r in model.factors), rel=1e-9)


def test_an_overdispersed_count_gets_a_negative_binomial_by_aic():
    rng = np.random.default_rng(11)
    xy = _centroids()
    bars = shapely.points(rng.uniform(300, SIDE - 300, (25, 2)))
    near = proximity(xy, bars, 200.0)
    mu = np.exp(0.2 + math.log(3) * near)
    y = rng.negative_binomial(1.0, 1.0 / (1.0 + mu))  # NB2 with alpha 1: mean mu
    model = fit_terrain(xy, y, [RiskFactor("bars", bars)], (100.0, 200.0, 300.0),
                        folds=4, seed=1)
    assert model.dispersion > 1.5 and model.model == "negbin"
    nb = sm.NegativeBinomial(y, sm.add_constant(proximity(xy, bars, model.factors[0][
        "distance"]))).fit(disp=0)
    assert model.aic == pytest.approx(nb.aic, rel=1e-6)
    assert model.factors[0]["relative_risk"] == pytest.approx(3, rel=0.25)


def test_the_lasso_path_is_statsmodels_lasso_at_the_same_penalty():
    """glum minimises deviance / 2n + a |b|_1, statsmodels -loglike / n + a |b|_1: for a
    Poisson the two differ by a constant, so the same ``a`` gives the same optimum."""
    rng = np.random.default_rng(5)
    x = (rng.random((400, 30)) < 0.25).astype(float)
    y = rng.poisson(np.exp(-0.5 + 1.0 * x[:, 0] + 0.7 * x[:, 3]))
    design = sm.add_constant(x)
    weights = np.r_[0.0, np.ones(30)]
    top = np.abs(x.T @ (y - y.mean())).max() / len(y)
    penalties = top * np.array([0.9, 0.5, 0.2, 0.05])
    tight = lasso_path(y, x, penalties, gradient_tol=1e-10)
    used = lasso_path(y, x, penalties)  # the tolerance fit_terrain uses
    model = sm.GLM(y, design, family=sm.families.Poisson())

    def objective(beta, alpha):  # statsmodels' lasso objective: per cell
        eta = design @ beta
        return -(y * eta - np.exp(eta)).sum() / len(y) + alpha * np.abs(beta[1:]).sum()

    for k, (alpha, beta) in enumerate(zip(penalties, tight, strict=True)):
        theirs = model.fit_regularized(method="elastic_net", alpha=alpha * weights,
                                       L1_wt=1.0, maxiter=1000).params
        # at least as good an optimum (statsmodels, started cold, stalls at the smallest
        # penalty; the path's warm starts do better there)
        assert objective(beta, alpha) <= objective(theirs, alpha) + 1e-12
        if k < 3:
            # both converged: a gradient below 1e-10 leaves the coefficients within
            # ~1e-10 / (smallest curvature, ~0.05 here); statsmodels' own tolerance
            # (1e-7 on the coefficients) dominates
            assert np.allclose(beta, theirs, rtol=0, atol=1e-6)
            assert np.array_equal(beta[1:] != 0, np.abs(theirs[1:]) > 0)
    # fit_terrain's tolerance (gradient 1e-6): coefficients within 1e-5 of the tight fit
    assert np.allclose(used, tight, rtol=0, atol=1e-5)
    # a path restarted from where it stopped is the path in one go
    again = lasso_path(y, x, penalties[2:], start=tight[1], gradient_tol=1e-10)
    assert np.allclose(again, tight[2:], rtol=0, atol=1e-8)


def test_the_deviance_of_one_column_alone_is_statsmodels_glm_fold_by_fold():
    rng = np.random.default_rng(9)
    x = (rng.random((500, 6)) < [0.05, 0.2, 0.5, 0.8, 0.3, 0.1]).astype(float)
    x[:, 5] = 0.0
    x[:4, 5] = 1.0  # only in fold 0's cells below: constant on fold 0's training cells
    y = rng.poisson(np.exp(-0.2 + 0.9 * x[:, 1] + 0.4 * x[:, 2]))
    fold = np.arange(500) % 4
    fold[:4] = 0
    ours = single_column_deviance(y, x, fold)
    assert ours[5] == math.inf
    for j in range(5):
        total = 0.0
        for k in range(4):
            train, test = fold != k, fold == k
            design = sm.add_constant(x[:, j])
            fit = sm.GLM(y[train], design[train], family=sm.families.Poisson()).fit(
                tol=1e-12)
            mu = fit.predict(design[test])
            with np.errstate(divide="ignore", invalid="ignore"):
                term = np.where(y[test] > 0, y[test] * np.log(y[test] / mu), 0.0)
            total += 2 * np.sum(term - (y[test] - mu))
        assert ours[j] == pytest.approx(total / len(y), rel=1e-9)


def test_proximity_equals_shapely_distance_one_cell_at_a_time():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (60, 2))
    geoms = np.array([shapely.Point(200, 300), shapely.LineString([(0, 900), (1000, 700)]),
                      shapely.box(600, 100, 700, 250)])
    for d in (50.0, 120.0, 333.0):
        brute = [float(min(shapely.Point(p).distance(g) for g in geoms) <= d) for p in xy]
        assert proximity(xy, geoms, d).tolist() == brute
        absence = operationalise(xy, RiskFactor("g", geoms, absence=True), "absence", d)
        assert absence.tolist() == [1 - b for b in brute]


def test_density_equals_an_explicit_kernel_sum():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 1000, (50, 2))
    pts = rng.uniform(0, 1000, (30, 2))
    for h in (150.0, 400.0):
        assert np.allclose(density(xy, shapely.points(pts), h), _brute_density(xy, pts, h),
                           rtol=1e-12, atol=1e-18)
    # lines are points every h/4 along them; polygons a point on their surface
    line = shapely.LineString([(0, 0), (1000, 0)])
    assert len(feature_points(np.array([line]), 100.0)) == 10
    square = shapely.box(0, 0, 10, 10)
    assert shapely.contains_xy(square, *feature_points(np.array([square]), 5.0)[0])
    dens = density(xy, shapely.points(pts), 400.0)
    z = (dens - dens.mean()) / dens.std()
    assert density_high(xy, shapely.points(pts), 400.0).tolist() == (z > 2).astype(
        float).tolist()


def test_constant_and_repeated_columns_are_left_out():
    xy = np.array([[0.0, 0.0], [1000.0, 0.0], [2000.0, 0.0]])
    names, x = candidate_columns(xy, [RiskFactor("a", shapely.points([[0.0, 10.0]]))],
                                 (50.0, 60.0, 5000.0))
    # 50 and 60 m give the same proximity column; 5000 m is every cell (constant)
    assert [(n.kind, n.distance) for n in names if n.kind == "proximity"] == [
        ("proximity", 50.0)]
    assert x.shape == (3, len(names))


def test_a_fold_trained_on_no_incident_is_fitted():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (40, 2))
    counts = np.zeros(40)
    counts[3] = 1  # one incident: one of the two folds trains on none
    factor = RiskFactor("a", shapely.points(rng.uniform(0, 1000, (5, 2))))
    model = fit_terrain(xy, counts, [factor], (100.0, 200.0, 300.0), folds=2, seed=0)
    assert model.rrs.min() == pytest.approx(1.0) and len(model.cv_deviance) >= 1
    path = lasso_path(np.zeros(10), np.eye(10)[:, :3], np.array([0.5, 0.1]))
    assert np.all(path[:, 1:] == 0) and np.all(path[:, 0] == math.log(1e-12))


def test_bad_inputs_are_refused():
    xy = _centroids()[:10]
    with pytest.raises(ValueError, match="folds"):
        fit_terrain(xy, np.ones(10), [], (100.0,), folds=1)
    with pytest.raises(ValueError, match="no incidents"):
        fit_terrain(xy, np.zeros(10), [], (100.0,))
    with pytest.raises(ValueError, match="cell size"):
        default_distances(0)
