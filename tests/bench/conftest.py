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
    print(f"\nBENCH {name}: safegrid {_fmt(ours)} | {reference_name} {_fmt(reference)} | "
          f"{reference / ours:.1f}x")


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.1f} ms"
