"""Series thinned for drawing: about two points per pixel column, every peak and dip kept.

A 24-hour run at a 1-s tick has 86,400 points per line, a hundred per pixel column of a report
panel; drawing them all costs time and shows nothing more. Each bucket of consecutive points
(one pixel column wide) keeps the points where each drawn series is lowest and highest, so the
line still reaches every spike and every dip (a min/max envelope), and a tick without a value
(NaN) keeps the line's gap. Kept points are real points of the series, in time order.

Pure numpy: no plotting here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def envelope_indices(series: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Indices of the points to draw of ``series`` (arrays of one length sharing their x): all
    of them when there are at most ``2 * columns``; else, per bucket of ``ceil(n / columns)``
    consecutive points, where each series has its minimum and its maximum and its first NaN,
    plus the first and last point. Sorted, without repeats."""
    if columns < 1:
        raise ValueError(f"columns: expected at least 1, got {columns}")
    n = len(series[0]) if series else 0
    if any(len(values) != n for values in series):
        raise ValueError("envelope_indices: every series needs the same length")
    if n <= 2 * columns:
        return np.arange(n)
    size = -(-n // columns)  # ceil: at most `columns` buckets
    buckets = -(-n // size)
    starts = np.arange(buckets) * size
    kept = [np.array([0, n - 1])]
    for values in series:
        grid = np.full(buckets * size, np.nan)
        grid[:n] = np.asarray(values, dtype=float)
        grid = grid.reshape(buckets, size)
        missing = np.isnan(grid)
        kept.append(starts + np.argmax(np.where(missing, -np.inf, grid), axis=1))
        kept.append(starts + np.argmin(np.where(missing, np.inf, grid), axis=1))
        gaps = missing.any(axis=1)
        kept.append((starts + np.argmax(missing, axis=1))[gaps])
    indices = np.unique(np.concatenate(kept))
    return indices[indices < n]  # the padding of the last bucket


def envelope(x: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` thinned to the min/max envelope of ``y`` over ``columns`` buckets."""
    kept = envelope_indices([y], columns)
    return x[kept], y[kept]
