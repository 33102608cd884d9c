"""Benchmarks: each compares safegrid with a named reference in the same run."""

import statistics
import time


def median_time(fn, repeat: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def report(name: str, ours: float, reference_name: str, reference: float) -> None:
    """One line: our median, the reference's, and the ratio (> 1: we are faster)."""
    print(f"\nBENCH {name}: safegrid {ours:.2f} s | {reference_name} {reference:.2f} s | "
          f"{reference / ours:.1f}x")
