"""Service-time samplers built from a scenario's ``service_time`` spec (milliseconds).

Shared by the simulator and the reference shop so that both draw from the same distribution.
Samplers take the random generator they draw from; they keep no random state of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.model.inputfiles import read_csv_rows
from sim.model.scenario import ServiceTime
from sim.schema import MAX_LATENCY_MS


@dataclass(frozen=True)
class Sampler:
    """Draws service times in ms. ``mean_ms`` and ``second_moment_ms2`` are exact for the
    distribution (used by queueing estimates)."""

    spec: ServiceTime
    samples_ms: np.ndarray | None = None

    def sample_ms(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent service times in ms (float64)."""
        s = self.spec
        if s.dist == "exponential":
            return rng.exponential(s.mean_ms, n)
        if s.dist == "constant":
            return np.full(n, float(s.mean_ms))
        if s.dist == "lognormal":
            mu, sigma = s.lognormal_params()
            return rng.lognormal(mu, sigma, n)
        if s.dist == "gamma":
            shape = float(s.shape)  # type: ignore[arg-type]
            return rng.gamma(shape, float(s.mean_ms) / shape, n)  # type: ignore[arg-type]
        if s.dist == "uniform":
            return rng.uniform(s.min_ms, s.max_ms, n)
        assert self.samples_ms is not None
        return self.samples_ms[rng.integers(0, len(self.samples_ms), n)]

    @property
    def mean_ms(self) -> float:
        s = self.spec
        if s.dist in ("exponential", "constant", "lognormal", "gamma"):
            return float(s.mean_ms)  # type: ignore[arg-type]
        if s.dist == "uniform":
            return (float(s.min_ms) + float(s.max_ms)) / 2.0  # type: ignore[arg-type]
        assert self.samples_ms is not None
        return float(self.samples_ms.mean())

    @property
    def second_moment_ms2(self) -> float:
        """E[S^2] in ms^2 (Pollaczek-Khinchine needs it)."""
        s, m = self.spec, self.mean_ms
        if s.dist == "exponential":
            return 2.0 * m * m
        if s.dist == "constant":
            return m * m
        if s.dist == "lognormal":
            mu, sigma = s.lognormal_params()
            return float(np.exp(2 * mu + 2 * sigma * sigma))
        if s.dist == "gamma":
            return m * m * (1.0 + 1.0 / float(s.shape))  # type: ignore[arg-type]
        if s.dist == "uniform":
            a, b = float(s.min_ms), float(s.max_ms)  # type: ignore[arg-type]
            return (a * a + a * b + b * b) / 3.0
        assert self.samples_ms is not None
        return float(np.mean(self.samples_ms**2))


def sampler_for(spec: ServiceTime, base_dir: str = ".") -> Sampler:
    """Sampler for ``spec``; an empirical CSV is read (relative to ``base_dir``) now.

    Raises ``ValueError`` naming the file when the CSV cannot be used.
    """
    if spec.dist != "empirical":
        return Sampler(spec)
    if spec.samples_ms is not None:
        return Sampler(spec, np.asarray(spec.samples_ms, dtype=float))
    assert spec.csv is not None
    return Sampler(spec, _read_samples(Path(base_dir) / spec.csv))


def _read_samples(path: Path) -> np.ndarray:
    rows = [row for row in read_csv_rows(path, "samples file") if row and row[0].strip()]
    values: list[float] = []
    for number, row in enumerate(rows, start=1):
        try:
            values.append(float(row[0]))
        except ValueError:
            if number == 1:
                continue  # a header row
            raise ValueError(
                f"{path}: row {number}: expected a number of ms, got {row[0]!r}"
            ) from None
    if not values or min(values) < 0 or max(values) > MAX_LATENCY_MS or not all(
            math.isfinite(v) for v in values):
        raise ValueError(f"{path}: expected service times from 0 to {MAX_LATENCY_MS:,.0f} ms "
                         f"(at least one)")
    return np.asarray(values, dtype=float)
