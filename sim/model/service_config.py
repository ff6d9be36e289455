"""Service specs of a scenario: service-time distributions, instance counts, retries,
resources, and the service pool itself (see ``Service``)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from sim.schema import (
    MAX_INSTANCES,
    MAX_LATENCY_MS,
    MAX_QUEUE,
    MIN_LATENCY_MS,
    Duration,
    Loc,
    Strict,
    field_errors,
)

Z99 = 2.3263478740408408
"""Standard normal 99th percentile, used to turn a lognormal (mean, p99) into (mu, sigma)."""

class ServiceTime(Strict):
    """Per-request service-time distribution, in milliseconds.

    ``exponential`` and ``constant`` need ``mean_ms``; ``lognormal`` needs ``mean_ms`` and
    either ``p99_ms`` or ``sigma`` (of the underlying normal); ``gamma`` needs ``mean_ms`` and
    ``shape`` (k: the squared coefficient of variation is 1/k); ``uniform`` needs ``min_ms`` and
    ``max_ms``; ``empirical`` needs ``samples_ms`` (a list) or ``csv`` (one column of ms values,
    path relative to the scenario file).
    """

    dist: Literal["exponential", "lognormal", "gamma", "constant", "uniform", "empirical"]
    mean_ms: float | None = Field(default=None, ge=MIN_LATENCY_MS, le=MAX_LATENCY_MS)
    p99_ms: float | None = Field(default=None, ge=MIN_LATENCY_MS, le=MAX_LATENCY_MS)
    sigma: float | None = Field(default=None, gt=0, le=5)
    shape: float | None = Field(default=None, ge=0.01, le=10_000)
    min_ms: float | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)
    max_ms: float | None = Field(default=None, gt=0, le=MAX_LATENCY_MS)
    samples_ms: tuple[float, ...] | None = None
    csv: str | None = None

    @model_validator(mode="after")
    def _check_parameters(self) -> ServiceTime:
        problems: list[tuple[Loc, str]] = []
        takes = _DIST_PARAMETERS[self.dist]
        for name in sorted(_ALL_PARAMETERS - set(takes)):
            if getattr(self, name) is not None:
                problems.append(((name,), f"does not apply to dist {self.dist!r}, which takes "
                                 f"{' / '.join(takes)}"))
        if self.dist in ("exponential", "constant", "lognormal", "gamma") and self.mean_ms is None:
            problems.append((("mean_ms",), f"dist {self.dist!r} needs mean_ms (> 0)"))
        if self.dist == "lognormal":
            problems += self._lognormal_problems()
        if self.dist == "gamma" and self.shape is None:
            problems.append((("shape",), "dist 'gamma' needs shape (> 0)"))
        if self.dist == "uniform":
            for name in ("min_ms", "max_ms"):
                if getattr(self, name) is None:
                    problems.append(((name,), f"dist 'uniform' needs {name}"))
            if self.min_ms is not None and self.max_ms is not None and self.min_ms >= self.max_ms:
                problems.append((("min_ms",), f"min_ms ({self.min_ms:g}) must be below max_ms "
                                 f"({self.max_ms:g})"))
        if self.dist == "empirical":
            if (self.samples_ms is None) == (self.csv is None):
                problems.append(((), "dist 'empirical' needs exactly one of samples_ms or csv"))
            if self.samples_ms is not None and (
                    not self.samples_ms or min(self.samples_ms) < 0
                    or max(self.samples_ms) > MAX_LATENCY_MS):
                problems.append((("samples_ms",), f"expected a non-empty list of values from 0 "
                                                  f"to {MAX_LATENCY_MS:,.0f} ms"))
        if problems:
            raise field_errors(problems)
        return self

    def _lognormal_problems(self) -> list[tuple[Loc, str]]:
        if self.p99_ms is None and self.sigma is None:
            return [(("p99_ms",), "dist 'lognormal' needs p99_ms (or sigma)")]
        if self.p99_ms is not None and self.sigma is not None:
            return [(("sigma",), "give p99_ms or sigma, not both")]
        if self.p99_ms is not None and self.mean_ms is not None:
            ratio = self.p99_ms / self.mean_ms
            # p99/mean = exp(Z99*sigma - sigma^2/2) peaks at sigma = Z99: higher is impossible.
            if not 1.0 < ratio < math.exp(Z99 * Z99 / 2):
                return [(("p99_ms",), f"p99_ms/mean_ms must be between 1 and "
                         f"{math.exp(Z99 * Z99 / 2):.1f} for a lognormal, got {ratio:.3g}")]
        return []

    def lognormal_params(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal, in log-milliseconds."""
        assert self.mean_ms is not None
        if self.sigma is not None:
            sigma = self.sigma
        else:
            assert self.p99_ms is not None
            gap = math.log(self.p99_ms / self.mean_ms)
            sigma = Z99 - math.sqrt(Z99 * Z99 - 2.0 * gap)
        return math.log(self.mean_ms) - sigma * sigma / 2.0, sigma


_DIST_PARAMETERS: dict[str, tuple[str, ...]] = {
    "exponential": ("mean_ms",),
    "constant": ("mean_ms",),
    "lognormal": ("mean_ms", "p99_ms", "sigma"),
    "gamma": ("mean_ms", "shape"),
    "uniform": ("min_ms", "max_ms"),
    "empirical": ("samples_ms", "csv"),
}
_ALL_PARAMETERS = frozenset(p for names in _DIST_PARAMETERS.values() for p in names)


def _instances_before(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_INSTANCES:
        return {"min": value, "max": value, "initial": value}
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_INSTANCES:
        raise ValueError(f"expected a fixed count of at most {MAX_INSTANCES:,} instances, "
                         f"got {value:,}")
    shown = str(value).lower() if isinstance(value, bool) else repr(value)
    raise ValueError(
        f"expected a fixed count (an integer >= 1) or a mapping {{min, max, initial}}, got {shown}"
    )


class Instances(Strict):
    """Instance counts of one service: bounds for autoscaling and the count at t=0."""

    min: int = Field(ge=0, le=MAX_INSTANCES)
    max: int = Field(ge=1, le=MAX_INSTANCES)
    initial: int | None = Field(default=None, ge=0, le=MAX_INSTANCES)

    @model_validator(mode="after")
    def _check_bounds(self) -> Instances:
        if self.min > self.max:
            raise field_errors([(("min",), f"min ({self.min}) must not exceed max ({self.max})")])
        if self.initial is not None and not self.min <= self.initial <= self.max:
            raise field_errors([(("initial",), f"initial ({self.initial}) must lie within "
                                 f"min..max ({self.min}..{self.max})")])
        return self

    @property
    def start(self) -> int:
        """Instances ready at t=0 (``initial``, else ``min``)."""
        return self.initial if self.initial is not None else self.min


class Retries(Strict):
    """Client retries: a failed request comes back after ``backoff_ms * multiplier**k``,
    spread by ``± jitter`` (a fraction), at most ``max`` times."""

    max: int = Field(ge=0, le=20)
    backoff_ms: float = Field(default=100.0, ge=0, le=MAX_LATENCY_MS)
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    jitter: float = Field(default=0.0, ge=0.0, le=1.0)


class Resources(Strict):
    """What one instance of a service requests from a cluster node."""

    cores: float = Field(default=1.0, gt=0, le=10_000)
    memory_gb: float = Field(default=2.0, gt=0, le=100_000)


class Service(Strict):
    """One service: a pool of ``instances x workers`` concurrent slots with a FCFS queue.

    ``timeout_ms`` 0 means no timeout; ``max_queue`` (per instance) sheds arrivals beyond it;
    ``on_remove`` says what happens to in-flight work when an instance is removed or killed
    (``drain``: it finishes; ``fail``: it fails at once).
    """

    service_time: ServiceTime
    workers: int = Field(ge=1, le=100_000)
    instances: Annotated[
        Instances, BeforeValidator(_instances_before, json_schema_input_type=int | Instances)
    ]
    timeout_ms: float = Field(default=0.0, ge=0, le=MAX_LATENCY_MS)
    boot_s: Duration = 0.0
    max_queue: int | None = Field(default=None, ge=0, le=MAX_QUEUE)
    retries: Retries | None = None
    balancer: Literal["least_outstanding", "random", "round_robin"] = "least_outstanding"
    on_remove: Literal["drain", "fail"] = "drain"
    price_per_hour: float = Field(default=0.10, ge=0, le=1e6)
    resources: Resources = Resources()
