"""Grid partition: safegrid's ``partition`` against spopt's ``MaxPHeuristic`` on the
same 40x40 lattice (time and coefficient of variation), and 20 000 units alone."""

import time

import numpy as np
import pandas as pd
import pytest
import shapely

from geo.grids import coefficient_of_variation, partition, polsby_popper, regular_grid

from .conftest import bench_line, median_time, report

pytestmark = pytest.mark.bench

TARGET = 1000


def _lattice(n: int):
    g = regular_grid(shapely.box(0, 0, n, n), 1.0)
    g["w"] = np.random.default_rng(0).integers(10, 60, len(g))
    return g


def _cv(units, labels) -> float:
    return coefficient_of_variation(pd.Series(units.w.to_numpy()).groupby(labels).sum().values)


def test_partition_vs_spopt_maxp_on_a_40x40_lattice():
    import libpysal
    from spopt.region import MaxPHeuristic

    units = _lattice(40)
    ours = median_time(lambda: partition(units, "w", TARGET))
    labels = partition(units, "w", TARGET)
    w = libpysal.weights.Rook.from_dataframe(units, use_index=False, silence_warnings=True)
    t0 = time.perf_counter()
    np.random.seed(0)
    model = MaxPHeuristic(units, w, attrs_name=["w"], threshold_name="w", threshold=TARGET,
                          top_n=2)
    model.solve()
    theirs = time.perf_counter() - t0
    ours_cv, their_cv = _cv(units, labels), _cv(units, np.asarray(model.labels_))
    report("partition 40x40 lattice", ours, "spopt MaxPHeuristic (1 run)", theirs)
    bench_line(f"  CV safegrid {ours_cv:.3f} ({labels.max() + 1} grids) | "
          f"spopt {their_cv:.3f} ({len(set(model.labels_))} regions)")
    assert ours_cv <= their_cv


def test_partition_of_20000_units():
    units = _lattice(141)  # 19 881 cells
    t0 = time.perf_counter()
    labels = partition(units, "w", TARGET)
    elapsed = time.perf_counter() - t0
    regions = units.assign(r=labels).dissolve("r").geometry.values
    bench_line(f"partition {len(units)} units into {labels.max() + 1} grids: "
          f"{elapsed:.2f} s (goal <= 10 s), CV {_cv(units, labels):.3f}, median "
          f"Polsby-Popper {np.median(polsby_popper(regions)):.2f}")
