"""Traffic curves: how many requests per second each service receives at time t.

``TrafficModel(scenario).rate_rps(service, t_s)`` is the one traffic function of peaksim: the
simulator draws its arrivals from it and the Locust shape paces its requests by it. It depends on
numpy and the scenario schema only (no SimPy, no Locust).

The served curve is ``rate_scale * base(t * time_scale) * flash(u) * noise(u)`` with
``u = t * time_scale`` the scenario's own time; the scales multiply those of the scenario's
``traffic`` section with those passed in (the load tester replays a 2-hour peak in minutes).
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from sim.errors import Problem, ScenarioError
from sim.model.inputfiles import read_csv_rows
from sim.model.scenario import Scenario
from sim.model.traffic_config import (
    ConstantTraffic,
    KeyframesTraffic,
    SinglesDayTraffic,
    TraceTraffic,
)

# Relative traffic of an ordinary day by clock hour (0..24), normalised to its evening high.
# Shape from 2012 Taobao traffic data (REFERENCE.md): low at 4-6 am, climbing after 7 am,
# level after 10 am, daily maximum 20-22 h.
_DAY_HOURS = np.arange(25, dtype=float)
_DAY_LEVEL = np.array(
    [0.60, 0.42, 0.28, 0.18, 0.12, 0.10, 0.12, 0.20, 0.38, 0.58, 0.75, 0.82, 0.84, 0.83, 0.82,
     0.82, 0.83, 0.85, 0.88, 0.92, 0.98, 1.00, 0.97, 0.82, 0.60]
)
_EVENING_S = 7200.0  # the pre-midnight build-up starts two hours before midnight
_BUILDUP_TAU_S = 1800.0  # crowds gather towards midnight: an exponential build-up


class TrafficModel:
    """Per-service request-rate curves of one scenario (after rate and time scaling).

    ``rate_scale`` and ``time_scale`` multiply the scenario's own; ``duration_s`` is the
    scaled run length (scenario duration / total time scale). Rates are in requests/s.
    Raises ``ScenarioError`` when a referenced trace file is unusable.
    """

    def __init__(self, scenario: Scenario, rate_scale: float = 1.0, time_scale: float = 1.0):
        if rate_scale <= 0 or time_scale <= 0:
            raise ValueError("rate_scale and time_scale must be > 0")
        spec = scenario.traffic
        self.scenario = scenario
        self.spec = spec
        self.services: tuple[str, ...] = tuple(scenario.services)
        self.rate_scale = spec.rate_scale * rate_scale
        self.time_scale = spec.time_scale * time_scale
        self.duration_s = scenario.duration_s / self.time_scale
        self._trace: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
        self._midnight_s: float | None = None
        if isinstance(spec, TraceTraffic):
            self._trace = _read_trace(Path(scenario.base_dir) / spec.path, self.services)
        if isinstance(spec, SinglesDayTraffic):
            self._midnight_s = _midnight(spec, scenario.start_clock_s)
        if isinstance(spec, KeyframesTraffic) and spec.interpolation == "log":
            for i, frame in enumerate(spec.keyframes):
                for name in self.services:
                    if name in _keyframe_services(spec) and frame.rps.get(name, 0.0) <= 0:
                        raise ScenarioError([Problem(
                            scenario.source, f"traffic.keyframes[{i}].rps.{name}",
                            "log interpolation needs a rate > 0 at every keyframe")])
        self._noise_knots = self._draw_noise(scenario)

    # ----------------------------------------------------------------- public API
    def rate_rps(self, service: str, t_s: float) -> float:
        """Request rate of ``service`` at run time ``t_s`` (requests/s)."""
        return float(self.rates_rps(service, np.asarray([t_s], dtype=float))[0])

    def rates_rps(self, service: str, t_s: np.ndarray) -> np.ndarray:
        """Vectorised ``rate_rps`` over an array of run times (seconds)."""
        if service not in self.services:
            raise KeyError(f"unknown service {service!r}; known: {', '.join(self.services)}")
        u = np.asarray(t_s, dtype=float) * self.time_scale
        rates = self._base(service, u) * self._flash(service, u)
        if self._noise_knots is not None:
            rates = rates * self._noise(service, u)
        return rates * self.rate_scale

    def peak(self, service: str, step_s: float | None = None) -> tuple[float, float]:
        """(peak rate rps, time s) of ``service`` on a grid of ``step_s`` (default 1 s of
        scenario time, so a 26 s ramp is resolved)."""
        step = step_s if step_s is not None else 1.0 / self.time_scale
        grid = np.arange(0.0, self.duration_s + step / 2, step)
        rates = self.rates_rps(service, grid)
        i = int(np.argmax(rates))
        return float(rates[i]), float(grid[i])

    def expected_count(self, service: str, t0_s: float, t1_s: float, step_s: float = 0.1) -> float:
        """Expected number of arrivals in [t0, t1): the integral of the rate (trapezoid rule)."""
        n = max(2, int(math.ceil((t1_s - t0_s) / step_s)) + 1)
        grid = np.linspace(t0_s, t1_s, n)
        return float(np.trapezoid(self.rates_rps(service, grid), grid))

    # ----------------------------------------------------------------- curves
    def _base(self, service: str, u: np.ndarray) -> np.ndarray:
        spec = self.spec
        if isinstance(spec, ConstantTraffic):
            return np.full(u.shape, spec.rps.get(service, 0.0))
        if isinstance(spec, KeyframesTraffic):
            return _keyframes(spec, service, u)
        if isinstance(spec, SinglesDayTraffic):
            assert self._midnight_s is not None
            if service not in spec.peak_rps:
                return np.zeros(u.shape)
            return _singles_day(spec, service, u, self._midnight_s, self.scenario.start_clock_s)
        assert self._trace is not None
        times, columns = self._trace
        if service not in columns:
            return np.zeros(u.shape)
        if spec.interpolation == "step":
            idx = np.clip(np.searchsorted(times, u, side="right") - 1, 0, len(times) - 1)
            return columns[service][idx]
        return np.interp(u, times, columns[service])

    def _flash(self, service: str, u: np.ndarray) -> np.ndarray:
        factor = np.ones(u.shape)
        for sale in self.spec.flash_sales:
            if sale.services is not None and service not in sale.services:
                continue
            ramp = max(sale.ramp_s, 1e-9)
            rise = np.clip((u - sale.at) / ramp, 0.0, 1.0)
            fall = np.clip((sale.at + sale.duration_s + ramp - u) / ramp, 0.0, 1.0)
            factor *= 1.0 + (sale.multiplier - 1.0) * np.minimum(rise, fall)
        return factor

    def _draw_noise(self, scenario: Scenario) -> dict[str, np.ndarray] | None:
        noise = self.spec.noise
        if noise is None:
            return None
        seed = noise.seed if noise.seed is not None else scenario.seed
        n = int(math.ceil(scenario.duration_s / noise.interval_s)) + 2
        knots = {}
        for name in self.services:
            rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
            knots[name] = np.exp(noise.sigma * rng.standard_normal(n) - noise.sigma**2 / 2)
        return knots

    def _noise(self, service: str, u: np.ndarray) -> np.ndarray:
        assert self._noise_knots is not None and self.spec.noise is not None
        knots = self._noise_knots[service]
        grid = np.arange(len(knots)) * self.spec.noise.interval_s
        return np.interp(u, grid, knots)


def _keyframe_services(spec: KeyframesTraffic) -> set[str]:
    return {name for frame in spec.keyframes for name in frame.rps}


def _keyframes(spec: KeyframesTraffic, service: str, u: np.ndarray) -> np.ndarray:
    times = np.array([k.at for k in spec.keyframes])
    values = np.array([k.rps.get(service, 0.0) for k in spec.keyframes])
    if spec.interpolation == "step":
        idx = np.clip(np.searchsorted(times, u, side="right") - 1, 0, len(times) - 1)
        return values[idx]
    if spec.interpolation == "log":
        if not np.any(values > 0):
            return np.zeros(u.shape)
        return np.exp(np.interp(u, times, np.log(values)))
    return np.interp(u, times, values)


def _midnight(spec: SinglesDayTraffic, start_clock_s: float | None) -> float:
    if spec.midnight is not None:
        return spec.midnight
    if start_clock_s is None:
        raise ScenarioError([Problem(
            "<scenario>", "traffic.midnight",
            "singles_day needs 'midnight' (seconds from start) or a top-level 'start_clock'")])
    return (86400.0 - start_clock_s) % 86400.0


def day_level(clock_s: np.ndarray) -> np.ndarray:
    """Relative traffic of an ordinary day at clock time (s after midnight), evening high = 1."""
    hours = np.mod(clock_s, 86400.0) / 3600.0
    return np.interp(hours, _DAY_HOURS, _DAY_LEVEL)


def _singles_day(
    spec: SinglesDayTraffic, service: str, u: np.ndarray, midnight_s: float,
    start_clock_s: float | None,
) -> np.ndarray:
    peak = spec.peak_rps[service]
    x = u - midnight_s - spec.peak_delay_s.get(service, 0.0)
    # Before midnight: exponential build-up from the evening level to the pre-midnight level.
    lo, hi = spec.evening_ratio, spec.pre_midnight_ratio
    tail = math.exp(-_EVENING_S / _BUILDUP_TAU_S)
    build = (np.exp(np.clip(x, -_EVENING_S, 0.0) / _BUILDUP_TAU_S) - tail) / (1.0 - tail)
    before = lo + (hi - lo) * build
    # The midnight rise: half a cosine from the pre-midnight level to the peak within ramp_s.
    phase = np.clip(x / spec.ramp_s, 0.0, 1.0)
    rising = hi + (1.0 - hi) * (0.5 - 0.5 * np.cos(np.pi * phase))
    # After the peak: exponential decay towards the plateau, which follows the daily pattern.
    clock = (start_clock_s + u) if start_clock_s is not None else (u - midnight_s)
    plateau = np.full(u.shape, spec.plateau_ratio)
    if spec.daily_pattern:
        plateau = spec.plateau_ratio * day_level(clock) / _DAY_LEVEL[0]
    plateau = np.minimum(plateau, 1.0)
    since_peak = np.maximum(x - spec.ramp_s, 0.0)
    after = plateau + (1.0 - plateau) * np.exp(-since_peak / spec.decay_s)
    level = np.where(x < 0, before, np.where(x < spec.ramp_s, rising, after))
    return peak * level


def _read_trace(path: Path, services: tuple[str, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    where = "traffic.path"
    try:
        rows = read_csv_rows(path, "trace")
    except ValueError as exc:
        raise ScenarioError([Problem("<scenario>", where, str(exc))]) from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise ScenarioError([Problem("<scenario>", where,
                                     f"trace {path.name}: expected a header and at least one row")])
    header = [h.strip() for h in rows[0]]
    problems = []
    if "t_s" not in header:
        problems.append(f"trace {path.name}: expected a 't_s' column, got {header}")
    for col in header:
        if col != "t_s" and not (col.endswith("_rps") and col[:-4] in services):
            problems.append(f"trace {path.name}: column {col!r} is not '<service>_rps' "
                            f"for a service of the scenario ({', '.join(services)})")
    if problems:
        raise ScenarioError([Problem("<scenario>", where, p) for p in problems])
    values: list[list[float]] = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ScenarioError([Problem("<scenario>", where,
                                         f"trace {path.name}: row {number} has {len(row)} "
                                         f"cells, expected {len(header)} like the header")])
        try:
            numbers = [float(cell) for cell in row]
        except ValueError:
            raise ScenarioError([Problem("<scenario>", where,
                                         f"trace {path.name}: row {number}: expected numbers, "
                                         f"got {row}")]) from None
        if not all(np.isfinite(numbers)):
            raise ScenarioError([Problem("<scenario>", where,
                                         f"trace {path.name}: row {number}: expected finite "
                                         f"numbers, got {row}")])
        values.append(numbers)
    table = np.array(values, dtype=float)
    times = table[:, header.index("t_s")]
    if np.any(np.diff(times) <= 0):
        raise ScenarioError([Problem("<scenario>", where,
                                     f"trace {path.name}: t_s must be strictly increasing")])
    if np.any(table < 0):
        raise ScenarioError([Problem("<scenario>", where,
                                     f"trace {path.name}: rates and times must be >= 0")])
    columns = {col[:-4]: table[:, i] for i, col in enumerate(header) if col != "t_s"}
    return times, columns
