"""Layers read by Dask batch jobs: incidents step by step, on the workers.

A province's incidents do not fit one process, so a batch job never reads them whole:
each Dask partition is one time step (a calendar month for monthly steps: one
PostgreSQL partition of ``incidents``, see :mod:`layers.partitions`), read by the
worker that counts it. Workers connect with the database URL they are given, so they
need safegrid installed and a route to the database.
"""

from __future__ import annotations

import datetime as dt

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from .db import engine
from .incidents import read_incidents

__all__ = ["incidents_by_step"]

_META = pd.DataFrame({"x": pd.Series(dtype=float), "y": pd.Series(dtype=float),
                      "time": pd.Series(dtype="datetime64[ns]")})


def _utc(edge: np.datetime64) -> dt.datetime:
    return dt.datetime.fromisoformat(str(edge.astype("datetime64[us]"))).replace(tzinfo=dt.UTC)


def _read_step(url: str, code: str, start: dt.datetime, end: dt.datetime, crs: str,
               category: str | None) -> pd.DataFrame:
    """Incidents of jurisdiction ``code`` in [start, end): metric ``x``, ``y`` and UTC time."""
    with engine(url, pooled=False).connect() as conn:  # no connection stays on the worker
        incidents = read_incidents(conn, crs, jurisdiction=code, start=start, end=end,
                                   category=category)
    return pd.DataFrame({"x": incidents.xy[:, 0], "y": incidents.xy[:, 1],
                         "time": (incidents.epoch * 1e9).astype("datetime64[ns]")})


def incidents_by_step(url: str, code: str, edges: np.ndarray, crs: str,
                      category: str | None = None) -> dd.DataFrame:
    """The incidents of jurisdiction ``code`` as a lazy Dask DataFrame, one partition per step.

    ``edges`` are the steps' UTC bounds (datetime64, ascending); ``x`` and ``y`` are in
    metres in ``crs``, ``time`` is UTC. Nothing is read until the frame is computed, and
    then each partition by the worker that handles it.
    """
    edges = np.asarray(edges, dtype="datetime64[us]")
    parts = [dask.delayed(_read_step)(url, code, _utc(lo), _utc(hi), crs, category)
             for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return dd.from_delayed(parts, meta=_META, verify_meta=False)
