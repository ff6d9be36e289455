"""Interference: how a busy node slows the online instances on it.

Colocated batch work competes with online instances for caches, memory bandwidth and
hyper-threads, so an online request takes longer on a busy node. peaksim models this as a
service-time multiplier that depends on the node's CPU utilization (online busy cores plus
batch cores, over the node's cores), given as a piecewise-linear curve. Alibaba reports keeping
the online latency impact of colocation under ~5% (REFERENCE.md); the default curve is that
mild: no inflation up to 50% busy, x1.05 at 80%, x1.15 at a saturated node.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import field_validator

from sim.schema import Loc, Strict, field_errors

if TYPE_CHECKING:
    import numpy as np


def _check_curve(points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    if not points:
        raise ValueError("give at least one [utilization, factor] point")
    problems: list[tuple[Loc, str]] = []
    for i, (util, factor) in enumerate(points):
        if not 0.0 <= util <= 1.0:
            problems.append(((i, 0), f"utilization must lie within 0..1, got {util:g}"))
        if factor < 1.0:
            problems.append(((i, 1), f"an inflation factor must be >= 1, got {factor:g}"))
    xs = [p[0] for p in points]
    if any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
        problems.append(((), "points must be in strictly increasing order of utilization"))
    if problems:
        raise field_errors(problems)
    return points


class Interference(Strict):
    """Service-time inflation of an online instance as a function of its node's CPU
    utilization (online busy cores + batch cores, over the node's cores).

    ``curve`` lists ``[utilization, factor]`` points, interpolated linearly; below the first
    point the first factor holds, above the last the last. The default is mild: no inflation
    up to 50% busy, x1.05 at 80%, x1.15 at 100%.
    """

    enabled: bool = True
    curve: tuple[tuple[float, float], ...] = ((0.5, 1.0), (0.8, 1.05), (1.0, 1.15))

    @field_validator("curve")
    @classmethod
    def _validate_curve(
        cls, value: tuple[tuple[float, float], ...]
    ) -> tuple[tuple[float, float], ...]:
        return _check_curve(value)

    def inflation_factor(self, node_cpu_utilization: float) -> float:
        """Service-time multiplier (>= 1) at a node utilization in 0..1 (clipped)."""
        if not self.enabled:
            return 1.0
        u = min(max(node_cpu_utilization, 0.0), 1.0)
        points = self.curve
        if u <= points[0][0]:
            return points[0][1]
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            if u <= x1:
                return y0 + (y1 - y0) * (u - x0) / (x1 - x0)
        return points[-1][1]

    def inflation_factors(self, node_cpu_utilization: np.ndarray) -> np.ndarray:
        """Vectorised ``inflation_factor`` over an array of utilizations."""
        import numpy as np  # here: the scenario schema itself does not need numpy

        u = np.clip(np.asarray(node_cpu_utilization, dtype=float), 0.0, 1.0)
        if not self.enabled:
            return np.ones(u.shape)
        xs, ys = zip(*self.curve, strict=True)
        return np.interp(u, xs, ys)


def node_cpu_utilization(
    node_mcpu: int, batch_mcpu: int, online: Iterable[tuple[int, float]]
) -> float:
    """CPU utilization (0..1) of a node of ``node_mcpu`` millicores: batch containers are busy
    on all the cores they hold (``batch_mcpu``), each online instance on its cores times its
    busy fraction (``online``: (mcpu, fraction) pairs)."""
    busy_mcpu = batch_mcpu + sum(mcpu * fraction for mcpu, fraction in online)
    return min(1.0, busy_mcpu / node_mcpu)
