"""Demand forecasters learned from observed samples only (no access to the planned curve).

Both read ``(t_s, value)`` samples, oldest first, as the autoscaler scraped them, and forecast
the value at a later run time. They are incremental: ``update`` consumes only the samples it
has not seen yet, so a forecaster is O(1) per new sample.

- ``HoltForecaster``: Holt's linear trend (double exponential smoothing). Initialised from
  the first two samples (level = y2, trend = y2 - y1, per sample step), then
  ``level = alpha*y + (1-alpha)*(level + trend)`` and
  ``trend = beta*(level - previous level) + (1-beta)*trend``. The forecast ``h`` steps
  after the last sample is ``level + h*trend`` (never below 0), with ``h`` measured in units
  of the mean sample spacing.
- ``SeasonalNaiveForecaster``: the value one season earlier (``season_s``), linearly
  interpolated between samples; with less than a season of history it falls back to the
  latest sample (naive forecast).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Forecaster(Protocol):
    """A learned forecaster: feed it the observed samples, ask for a later value."""

    def update(self, samples: Sequence[tuple[float, float]]) -> None: ...

    def forecast(self, t_s: float) -> float | None: ...


class HoltForecaster:
    """Holt's linear-trend exponential smoothing (see the module docstring)."""

    def __init__(self, alpha: float, beta: float) -> None:
        if not (0 < alpha <= 1 and 0 <= beta <= 1):
            raise ValueError("Holt needs 0 < alpha <= 1 and 0 <= beta <= 1")
        self.alpha = alpha
        self.beta = beta
        self._reset()

    def _reset(self) -> None:
        self.level = 0.0
        self.trend = 0.0
        self.seen = 0
        self.first_t_s = 0.0
        self.last_t_s = 0.0
        self._first_y = 0.0

    def update(self, samples: Sequence[tuple[float, float]]) -> None:
        """Consume the samples after the ``seen`` ones already processed."""
        if len(samples) < self.seen:  # a shorter history: start again
            self._reset()
        for t_s, y in samples[self.seen:]:
            if self.seen == 0:
                self.first_t_s, self._first_y, self.level = t_s, y, y
            elif self.seen == 1:
                self.trend = y - self._first_y
                self.level = y
            else:
                previous = self.level
                self.level = self.alpha * y + (1 - self.alpha) * (self.level + self.trend)
                self.trend = self.beta * (self.level - previous) + (1 - self.beta) * self.trend
            self.last_t_s = t_s
            self.seen += 1

    @property
    def step_s(self) -> float:
        """Mean spacing of the samples seen (the unit of the trend)."""
        return (self.last_t_s - self.first_t_s) / (self.seen - 1) if self.seen > 1 else 0.0

    def forecast(self, t_s: float) -> float | None:
        """Forecast at run time ``t_s`` (None before any sample)."""
        if self.seen == 0:
            return None
        if self.seen == 1 or self.step_s <= 0:
            return max(0.0, self.level)
        steps = max(0.0, t_s - self.last_t_s) / self.step_s
        return max(0.0, self.level + steps * self.trend)


class SeasonalNaiveForecaster:
    """The observed value one season (``season_s``) before the forecast time."""

    def __init__(self, season_s: float) -> None:
        if season_s <= 0:
            raise ValueError("season_s must be > 0")
        self.season_s = season_s
        self.samples: list[tuple[float, float]] = []

    def update(self, samples: Sequence[tuple[float, float]]) -> None:
        if len(samples) < len(self.samples):
            self.samples = []
        self.samples.extend(samples[len(self.samples):])

    def forecast(self, t_s: float) -> float | None:
        if not self.samples:
            return None
        first_t, last_t = self.samples[0][0], self.samples[-1][0]
        back = t_s - self.season_s
        while back > last_t:  # the season is shorter than the horizon: go back further
            back -= self.season_s
        if back < first_t:
            return self.samples[-1][1]
        return _interpolate(self.samples, back)


def _interpolate(samples: list[tuple[float, float]], t_s: float) -> float:
    lo, hi = 0, len(samples) - 1
    while hi - lo > 1:  # binary search for the bracketing pair
        mid = (lo + hi) // 2
        if samples[mid][0] <= t_s:
            lo = mid
        else:
            hi = mid
    (t0, y0), (t1, y1) = samples[lo], samples[hi]
    if t1 <= t0 or t_s <= t0:
        return y0 if t_s <= t0 else y1
    if t_s >= t1:
        return y1
    return y0 + (y1 - y0) * (t_s - t0) / (t1 - t0)
