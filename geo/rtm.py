"""Risk terrain modelling (RTM): which features of a place raise the risk of incidents there.

Each candidate risk factor (a named set of points, lines or polygons: schools, arterial
roads, checkpoints...) is *operationalised* at several distances ``d`` as a 0/1 column
over the cells of a lattice:

- ``proximity``: the cell's centre lies within ``d`` metres of a feature of the factor;
- ``density``: the kernel density of the factor's features at the cell's centre
  (quartic kernel of bandwidth ``d``, the kernel of :func:`geo.hotspots.kde`), standardised
  over the cells, is above the mean plus two standard deviations. This is how RTMDx turns
  a density into a risk layer (Caplan & Kennedy 2016, ch. 2). Features enter a density as
  points: points as they are, polygons by a point on their surface, lines by points every
  ``d / 4`` metres along them (so a longer line weighs more);
- ``absence``: for factors whose risk is being *far* from them (checkpoints, police
  posts): the cell's centre is *not* within ``d`` metres of any feature.

The default distances are 0.5, 1, 1.5, 2, 2.5 and 3 cell sizes. Columns constant over
the cells, or equal to one already built, are left out.

Selection follows RTMDx's two stages (Caplan & Kennedy 2016, ch. 2), with choices of ours
where the book leaves them open:

1. A lasso-penalised Poisson regression of the incident counts on every column
   (glum's ``GeneralizedLinearRegressor``, Poisson, ``l1_ratio=1``, along the path with
   warm starts; the intercept is not penalised; the same optimum as statsmodels'
   ``GLM.fit_regularized`` elastic net with ``L1_wt=1`` at the same penalty, since
   glum's deviance / 2n is statsmodels' -loglike / n plus a constant), the penalty
   chosen by ``folds``-fold cross-validation over a path of penalties (cells shuffled
   into folds with ``seed``, the path falling 1000-fold in log steps from the penalty
   that keeps every column out, as glmnet's does): the penalty kept has the smallest
   mean held-out Poisson deviance. (The sparser "one standard error" rule missed a true
   factor of relative risk 2 in our tests.)
2. Of the columns the lasso keeps, at most one per factor: the one with the smallest
   cross-validated deviance on its own (same folds, unpenalised Poisson with an
   intercept, closed-form for a 0/1 column: :func:`single_column_deviance`). These
   are refitted without penalty as a Poisson GLM; factors whose coefficient is not
   positive are dropped (they do not raise risk: a protective factor is modelled by
   its ``absence`` variant) and the model refitted; then
   factors are dropped one at a time while that lowers the BIC (backward only; RTMDx's
   stepwise stage also scores models by BIC). When the
   Poisson model is overdispersed (Pearson chi² / residual df > 1.5) a negative binomial
   (NB2, statsmodels ``NegativeBinomial``) is fitted too, and the model with the lower
   AIC is kept, as RTMDx chooses between the two.

The relative risk value of a factor is ``exp(coefficient)``; the relative risk score of a
cell is ``exp(sum of coefficient x column)`` divided by its lowest value over the cells,
so the least risky cell scores 1.

All lengths are metres in the one metric CRS of the cells and the factors.

References
----------
Caplan, J. M., Kennedy, L. W. and Miller, J. (2011). Risk terrain modeling: brokering
    criminological theory and GIS methods for crime forecasting. *Justice Quarterly*
    28(2), 360-381. doi:10.1080/07418825.2010.486037
Kennedy, L. W., Caplan, J. M. and Piza, E. (2011). Risk clusters, hotspots, and spatial
    intelligence: risk terrain modeling as an algorithm for police resource allocation
    strategies. *Journal of Quantitative Criminology* 27(3), 339-362.
    doi:10.1007/s10940-010-9126-2
Caplan, J. M. and Kennedy, L. W. (2016). *Risk Terrain Modeling: Crime Prediction and
    Risk Reduction*. University of California Press, Oakland. ISBN 9780520282933.
Tibshirani, R. (1996). Regression shrinkage and selection via the lasso. *Journal of the
    Royal Statistical Society: Series B (Methodological)* 58(1), 267-288.
    doi:10.1111/j.2517-6161.1996.tb02080.x
Friedman, J., Hastie, T. and Tibshirani, R. (2010). Regularization paths for generalized
    linear models via coordinate descent. *Journal of Statistical Software* 33(1), 1-22.
    doi:10.18637/jss.v033.i01 (the penalty path).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from scipy.spatial import cKDTree

__all__ = [
    "DEFAULT_MULTIPLES",
    "KINDS",
    "Operationalisation",
    "RiskFactor",
    "TerrainModel",
    "candidate_columns",
    "default_distances",
    "density",
    "density_high",
    "feature_points",
    "fit_terrain",
    "lasso_path",
    "operationalise",
    "proximity",
    "refit",
    "single_column_deviance",
]

DEFAULT_MULTIPLES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
KINDS = ("proximity", "density", "absence")
OVERDISPERSED = 1.5  # Pearson chi² / residual df above which a negative binomial is tried
HIGH_Z = 2.0  # a density above mean + 2 sd is a high density
PENALTIES = 12  # penalties on the lasso path
CHUNK = 4  # penalties fitted at a time on the cross-validated path
GRADIENT_TOL = 1e-6  # glum's stopping rule: largest gradient of the objective


@dataclass(frozen=True)
class RiskFactor:
    """A candidate risk factor: a name and its features (shapely, metric CRS).

    ``absence``: the risk is being far from the features (operationalised as
    ``absence`` only); otherwise as ``proximity`` and ``density``.
    """

    name: str
    geometries: np.ndarray
    absence: bool = False


@dataclass(frozen=True)
class Operationalisation:
    """One 0/1 column: ``factor`` as ``kind`` (proximity, density, absence) at ``distance`` m."""

    factor: str
    kind: str
    distance: float


@dataclass
class TerrainModel:
    """A fitted risk terrain.

    ``rrs``: the relative risk score of each cell (lowest 1); ``factors``: one row per
    selected factor (factor, operationalisation, distance in metres, coefficient,
    relative_risk, p_value), highest relative risk first; ``model``: ``poisson`` or
    ``negbin``; ``aic`` of that model; ``penalty``: the lasso penalty chosen by
    cross-validation (statsmodels' scale: per cell); ``dispersion``: Pearson chi² / df
    of the Poisson refit; ``linear_predictor``: sum of coefficient x column per cell.
    """

    rrs: np.ndarray
    factors: list[dict]
    model: str
    aic: float
    penalty: float
    intercept: float
    dispersion: float
    candidates: int
    linear_predictor: np.ndarray = field(repr=False)
    selected: list[Operationalisation] = field(default_factory=list)
    negbin_alpha: float | None = None
    cv_deviance: list[dict] = field(default_factory=list, repr=False)


def default_distances(cell: float, multiples: tuple[float, ...] = DEFAULT_MULTIPLES
                      ) -> tuple[float, ...]:
    """The distances (metres) at which factors are tried: ``multiples`` of ``cell`` metres."""
    if not (cell > 0 and math.isfinite(cell)):
        raise ValueError(f"cell size must be positive metres, got {cell!r}")
    return tuple(float(m * cell) for m in multiples)


def proximity(centroids: np.ndarray, geometries: np.ndarray, distance: float) -> np.ndarray:
    """1.0 where a centre (n, 2) lies within ``distance`` metres of a geometry, else 0.0."""
    xy = np.asarray(centroids, dtype=float).reshape(-1, 2)
    out = np.zeros(len(xy))
    geoms = np.asarray(geometries, dtype=object)
    if len(geoms) == 0 or len(xy) == 0:
        return out
    tree = shapely.STRtree(geoms)
    hits = tree.query(shapely.points(xy), predicate="dwithin", distance=float(distance))
    out[np.unique(hits[0])] = 1.0
    return out


def feature_points(geometries: np.ndarray, spacing: float) -> np.ndarray:
    """The features as points (m, 2) for a density.

    Points as they are (each part of a multipoint), polygons by a point on their surface,
    lines by points every ``spacing`` metres along each part (at least its midpoint).
    """
    out = []
    for geom in shapely.get_parts(np.asarray(geometries, dtype=object)):
        kind = shapely.get_type_id(geom)
        if kind == 0:  # Point
            out.append(shapely.get_coordinates(geom))
        elif kind in (1, 2):  # LineString, LinearRing
            length = shapely.length(geom)
            steps = max(1, int(math.ceil(length / spacing)))
            at = (np.arange(steps) + 0.5) * length / steps
            out.append(shapely.get_coordinates(shapely.line_interpolate_point(geom, at)))
        elif kind == 3:  # Polygon
            out.append(shapely.get_coordinates(shapely.point_on_surface(geom)))
        else:  # a nested collection
            out.append(feature_points(shapely.get_parts(geom), spacing))
    return np.vstack(out) if out else np.empty((0, 2))


def density(centroids: np.ndarray, geometries: np.ndarray, bandwidth: float) -> np.ndarray:
    """Quartic kernel density of the features (per m²) at each centre (n, 2).

    ``3 / (pi h^2) (1 - (d/h)^2)^2`` for each feature point within ``h`` = ``bandwidth``
    metres (:func:`feature_points` with spacing ``h / 4``).
    """
    xy = np.asarray(centroids, dtype=float).reshape(-1, 2)
    h = float(bandwidth)
    points = feature_points(geometries, h / 4)
    if len(points) == 0 or len(xy) == 0:
        return np.zeros(len(xy))
    pairs = cKDTree(xy).sparse_distance_matrix(cKDTree(points), h, output_type="coo_matrix")
    u2 = (pairs.data / h) ** 2
    k = 3.0 / (math.pi * h * h) * (1 - u2) ** 2
    return np.bincount(pairs.row, weights=k, minlength=len(xy))


def density_high(centroids: np.ndarray, geometries: np.ndarray, bandwidth: float) -> np.ndarray:
    """1.0 where :func:`density` is above its mean + 2 sd over the centres, else 0.0."""
    d = density(centroids, geometries, bandwidth)
    sd = d.std()
    if not sd > 0:
        return np.zeros(len(d))
    return ((d - d.mean()) / sd > HIGH_Z).astype(float)


def operationalise(centroids: np.ndarray, factor: RiskFactor, kind: str,
                   distance: float) -> np.ndarray:
    """The 0/1 column of ``factor`` as ``kind`` at ``distance`` metres over the centres."""
    if kind == "proximity":
        return proximity(centroids, factor.geometries, distance)
    if kind == "absence":
        return 1.0 - proximity(centroids, factor.geometries, distance)
    if kind == "density":
        return density_high(centroids, factor.geometries, distance)
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def candidate_columns(centroids: np.ndarray, factors: list[RiskFactor],
                      distances: tuple[float, ...]
                      ) -> tuple[list[Operationalisation], np.ndarray]:
    """Every operationalisation of every factor at every distance: (names, X (n, p)).

    Columns constant over the cells, or equal to an earlier one, are left out.
    """
    names: list[Operationalisation] = []
    columns: list[np.ndarray] = []
    seen: set[bytes] = set()
    for factor in factors:
        kinds = ("absence",) if factor.absence else ("proximity", "density")
        for kind in kinds:
            for d in sorted(distances):
                col = operationalise(centroids, factor, kind, d)
                key = col.astype(np.uint8).tobytes()
                if col.min() == col.max() or key in seen:
                    continue
                seen.add(key)
                names.append(Operationalisation(factor.name, kind, float(d)))
                columns.append(col)
    x = np.column_stack(columns) if columns else np.empty((len(centroids), 0))
    return names, x


def _statsmodels() -> Any:
    """``statsmodels.api``, imported on first use (it takes a second to load)."""
    import statsmodels.api as sm  # type: ignore[import-untyped]

    return sm


def _folds(n: int, folds: int, seed: int) -> np.ndarray:
    """Each cell's fold, 0..folds-1, shuffled with ``seed``."""
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, dtype=np.int64)
    out[order] = np.arange(n) % folds
    return out


def _poisson_deviance(y: np.ndarray, mu: np.ndarray) -> float:
    mu = np.maximum(mu, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2.0 * np.sum(term - (y - mu)))


def lasso_path(counts: np.ndarray, x: np.ndarray, penalties: np.ndarray,
               start: np.ndarray | None = None, gradient_tol: float = GRADIENT_TOL
               ) -> np.ndarray:
    """Lasso Poisson coefficients (intercept first) at each of the decreasing ``penalties``.

    glum's ``GeneralizedLinearRegressor`` (Poisson, ``l1_ratio=1``) along the path, each
    fit warm-started from the previous one; the intercept is not penalised. glum
    minimises ``deviance / (2 n) + penalty x |b|_1``; the Poisson deviance over 2 n is
    ``-loglike / n`` plus a constant, so the penalty is on statsmodels' scale (the mean
    log-likelihood per cell) unchanged. ``start``: coefficients (intercept first) the
    first fit starts from; ``gradient_tol``: each fit stops when no component of the
    objective's gradient (its subgradient for a zero coefficient) exceeds it. Rows
    follow ``penalties``; shape (len(penalties), 1 + p).
    """
    from glum import GeneralizedLinearRegressor  # type: ignore[import-untyped]

    y = np.asarray(counts, dtype=float)
    design = np.asarray(x, dtype=float)
    if np.ptp(y) == 0:  # one count everywhere (a fold with no incident): no column helps
        out = np.zeros((len(penalties), 1 + design.shape[1]))
        out[:, 0] = math.log(max(float(y[0]), 1e-12))  # the mean (at least 1e-12)
        return out
    model = GeneralizedLinearRegressor(
        family="poisson", l1_ratio=1.0, alpha_search=True,
        alphas=np.asarray(penalties, dtype=float), gradient_tol=gradient_tol, max_iter=1000,
        start_params=start)
    with _one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # line-search notices at tiny penalties: usable
        model.fit(design, y)
    return np.column_stack([np.asarray(model.intercept_path_, dtype=float),
                            np.asarray(model.coef_path_, dtype=float).reshape(
                                len(penalties), design.shape[1])])


def _penalty_path(y: np.ndarray, x: np.ndarray, count: int) -> np.ndarray:
    """From the smallest penalty that keeps every column out, down 1000-fold (log steps)."""
    gradient = np.abs(x.T @ (y - y.mean())) / len(y)
    top = float(gradient.max()) if len(gradient) else 0.0
    if not top > 0:
        return np.array([1.0])
    return top * np.logspace(0, -3, count)


def _choose_penalty(y: np.ndarray, x: np.ndarray, fold: np.ndarray, folds: int,
                    penalties: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Index of the penalty with the least mean held-out deviance; the deviances; the fit.

    The path stops two penalties after the deviance last fell (the smaller penalties
    cost the most and only overfit further): each fold's path is fitted ``CHUNK``
    penalties at a time, warm-started from where it stopped. The fit is the lasso on
    every cell at the chosen penalty (intercept first).
    """
    starts: list[np.ndarray | None] = [None] * folds
    means: list[float] = []
    for first in range(0, len(penalties), CHUNK):
        alphas = penalties[first:first + CHUNK]
        deviance = np.zeros(len(alphas))
        for k in range(folds):
            train, test = fold != k, fold == k
            betas = lasso_path(y[train], x[train], alphas, starts[k])
            starts[k] = betas[-1]
            eta = betas[:, 0] + x[test] @ betas[:, 1:].T  # (test cells, penalties)
            deviance += [_poisson_deviance(y[test], np.exp(eta[:, i]))
                         for i in range(len(alphas))]
        for value in deviance:
            means.append(float(value) / len(y))
            if len(means) - 1 - int(np.argmin(means)) >= 2:
                break
        if len(means) - 1 - int(np.argmin(means)) >= 2:
            break
    at = int(np.argmin(means))
    fitted = lasso_path(y, x, penalties[:at + 1])[-1]
    return at, np.array(means), fitted


def single_column_deviance(counts: np.ndarray, x: np.ndarray, fold: np.ndarray
                           ) -> np.ndarray:
    """Mean held-out Poisson deviance of an unpenalised Poisson on each 0/1 column alone.

    For each column of ``x`` (n, p) of 0/1 values and each fold ``k`` of ``fold`` (n,):
    the Poisson GLM with an intercept and that column, fitted on the other folds,
    predicts fold ``k``; the deviances of every fold summed, over n. With one 0/1 column
    the fit is closed-form: its fitted mean is the mean count of the training cells with
    the column's value (the maximum likelihood, which an IRLS such as statsmodels'
    reaches iteratively). A mean of 0 (no incident where the column is 1) is the limit of
    a coefficient falling without end; as :func:`_poisson_deviance` a mean is taken as
    at least 1e-12. ``inf`` for a column constant on some fold's training cells.
    """
    y = np.asarray(counts, dtype=float)
    x = np.asarray(x, dtype=float)
    total = np.zeros(x.shape[1])
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        ones_n = x[train].sum(axis=0)
        ones_y = x[train].T @ y[train]
        zeros_n, zeros_y = train.sum() - ones_n, y[train].sum() - ones_y
        with np.errstate(divide="ignore", invalid="ignore"):
            mu1 = np.maximum(ones_y / ones_n, 1e-12)
            mu0 = np.maximum(zeros_y / zeros_n, 1e-12)
        yt = y[test]
        t1_y, t1_n = x[test].T @ yt, x[test].sum(axis=0)
        t0_y, t0_n = yt.sum() - t1_y, test.sum() - t1_n
        with np.errstate(divide="ignore", invalid="ignore"):
            ylogy = float(np.sum(np.where(yt > 0, yt * np.log(yt), 0.0)))
        deviance = 2.0 * (ylogy - t1_y * np.log(mu1) - t0_y * np.log(mu0) - yt.sum()
                          + t1_n * mu1 + t0_n * mu0)
        total += np.where((ones_n == 0) | (zeros_n == 0), math.inf, deviance)
    return total / len(y)


@dataclass
class _Refit:
    model: str
    params: np.ndarray  # intercept first
    pvalues: np.ndarray
    aic: float
    bic: float
    dispersion: float
    alpha: float | None
    columns: list[int] = field(default_factory=list)


def _positive(y: np.ndarray, x: np.ndarray, chosen: list[int]) -> _Refit:
    """:func:`refit` on the ``chosen`` columns, less those whose coefficient is not positive."""
    while True:
        fit = refit(y, x[:, chosen])
        negative = {j for j, b in zip(chosen, fit.params[1:], strict=True) if b <= 0}
        if not negative:
            fit.columns = list(chosen)
            return fit
        chosen = [j for j in chosen if j not in negative]


def refit(y: np.ndarray, x: np.ndarray) -> _Refit:
    """The unpenalised model on columns ``x`` (n, k): Poisson, or NB2 when better.

    The Poisson GLM (intercept added); when overdispersed (Pearson chi² / residual df
    above 1.5) also a negative binomial (NB2), kept when its AIC is lower.
    """
    sm = _statsmodels()
    design = np.column_stack([np.ones(len(y)), x])
    poisson = sm.GLM(y, design, family=sm.families.Poisson()).fit()
    df = max(float(poisson.df_resid), 1.0)
    dispersion = float(poisson.pearson_chi2) / df
    n = math.log(len(y))
    best = _Refit("poisson", np.asarray(poisson.params), np.asarray(poisson.pvalues),
                  float(poisson.aic), -2 * float(poisson.llf) + n * design.shape[1],
                  dispersion, None)
    if dispersion > OVERDISPERSED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = sm.NegativeBinomial(y, design, loglike_method="nb2").fit(
                start_params=np.r_[poisson.params, 0.1], disp=0, maxiter=200)
        if np.isfinite(nb.aic) and nb.aic < best.aic:
            k = design.shape[1]
            best = _Refit("negbin", np.asarray(nb.params)[:k], np.asarray(nb.pvalues)[:k],
                          float(nb.aic), -2 * float(nb.llf) + n * (k + 1), dispersion,
                          float(np.asarray(nb.params)[k]))
    return best


def fit_terrain(centroids: np.ndarray, counts: np.ndarray, factors: list[RiskFactor],
                distances: tuple[float, ...], folds: int = 5, seed: int = 0,
                penalties: int = PENALTIES) -> TerrainModel:
    """Select risk factors for the incident ``counts`` per cell and score every cell.

    Parameters
    ----------
    centroids : (n, 2) cell centres, metres in the factors' CRS.
    counts : (n,) incidents per cell.
    factors : the candidate factors (features in the same metric CRS).
    distances : metres at which each factor is operationalised
        (:func:`default_distances`).
    folds, seed : cross-validation folds (at least 2) and the seed shuffling cells into them.
    penalties : how many penalties the lasso path tries.

    Returns
    -------
    A :class:`TerrainModel` (see the module's description of the method).
    """
    y = np.asarray(counts, dtype=float)
    xy = np.asarray(centroids, dtype=float).reshape(-1, 2)
    if len(y) != len(xy):
        raise ValueError(f"{len(y)} counts for {len(xy)} cells")
    if folds < 2 or folds > len(y):
        raise ValueError(f"folds must be between 2 and the number of cells, got {folds}")
    if y.sum() <= 0:
        raise ValueError("no incidents in the cells: nothing to model")
    names, x = candidate_columns(xy, factors, distances)
    with _one_thread():
        return _select(y, x, names, _folds(len(y), folds, seed), folds, penalties)


def _one_thread() -> Any:
    """A context in which BLAS and OpenMP (glum's) run on one thread (threadpoolctl).

    The designs are small (thousands of cells by a few hundred columns): threads spinning
    against each other on a shared machine made the fits several times slower.
    """
    return _thread_controller().limit(limits=1)


@functools.cache
def _thread_controller() -> Any:
    """The thread pools loaded (threadpoolctl), glum's OpenMP among them; built once."""
    import glum  # noqa: F401  (loads its OpenMP library)
    from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

    return ThreadpoolController()


def _select(y: np.ndarray, x: np.ndarray, names: list[Operationalisation], fold: np.ndarray,
            folds: int, penalties: int) -> TerrainModel:
    """The two stages of :func:`fit_terrain` on the candidate columns ``x``."""
    path = _penalty_path(y, x, penalties)
    penalty, chosen, cv = 0.0, [], []
    if x.shape[1]:
        at, mean, fitted = _choose_penalty(y, x, fold, folds, path)
        penalty = float(path[at])
        cv = [{"penalty": float(a), "deviance": float(d)} for a, d in zip(path, mean,
                                                                          strict=False)]
        beta = fitted[1:]
        chosen = _one_per_factor(y, x, names, np.flatnonzero(np.abs(beta) > 1e-8), fold)
    return _terrain(y, x, names, chosen, penalty, cv)


def _one_per_factor(y: np.ndarray, x: np.ndarray, names: list[Operationalisation],
                    kept: np.ndarray, fold: np.ndarray) -> list[int]:
    """Of the ``kept`` columns, the one per factor with the lowest CV deviance alone."""
    best: dict[str, tuple[float, int]] = {}
    scores = single_column_deviance(y, x[:, kept], fold)
    for j, score in zip(kept, scores, strict=True):
        factor = names[j].factor
        if factor not in best or score < best[factor][0]:
            best[factor] = (float(score), int(j))
    return sorted(j for _, j in best.values())


def _terrain(y: np.ndarray, x: np.ndarray, names: list[Operationalisation],
             chosen: list[int], penalty: float, cv: list[dict]) -> TerrainModel:
    """Refit on the ``chosen`` columns, dropping those not raising risk; the terrain."""
    fit = _positive(y, x, chosen)
    while fit.columns:  # backward elimination by BIC
        trials = [_positive(y, x, [c for c in fit.columns if c != j]) for j in fit.columns]
        trial = min(trials, key=lambda t: t.bic)
        if trial.bic >= fit.bic:
            break
        fit = trial
    chosen = fit.columns
    coef = fit.params[1:]
    eta = x[:, chosen] @ coef if chosen else np.zeros(len(y))
    rows: list[dict[str, Any]] = [
        {"factor": names[j].factor, "operationalisation": names[j].kind,
         "distance": names[j].distance, "coefficient": float(b),
         "relative_risk": float(math.exp(b)), "p_value": float(p)}
        for j, b, p in zip(chosen, coef, fit.pvalues[1:], strict=True)]
    rows.sort(key=lambda r: -r["relative_risk"])
    return TerrainModel(rrs=np.exp(eta - eta.min()), factors=rows, model=fit.model,
                        aic=fit.aic, penalty=penalty, intercept=float(fit.params[0]),
                        dispersion=fit.dispersion, candidates=x.shape[1],
                        linear_predictor=eta, selected=[names[j] for j in chosen],
                        negbin_alpha=fit.alpha, cv_deviance=cv)
