"""Scenario files: the validated, frozen description of one peak-traffic experiment.

A scenario names its services (any names; the e-commerce trio is ``browse``, ``order`` and
``payment``), the traffic each receives, the SLO each must hold, and optional sections for
autoscaling, cluster/colocation, scheduled faults and load tests. ``sim.loader.load_scenario``
reads YAML into these models; every knob of the product is defined once, here.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sim.schema import Duration, PositiveDuration, Strict, TimeRef

Z99 = 2.3263478740408408
"""Standard normal 99th percentile, used to turn a lognormal (mean, p99) into (mu, sigma)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ServiceTime(Strict):
    """Per-request service-time distribution, in milliseconds.

    ``exponential`` and ``constant`` need ``mean_ms``; ``lognormal`` needs ``mean_ms`` and
    either ``p99_ms`` or ``sigma`` (of the underlying normal); ``uniform`` needs ``min_ms`` and
    ``max_ms``; ``empirical`` needs ``samples_ms`` (a list) or ``csv`` (one column of ms values,
    path relative to the scenario file).
    """

    dist: Literal["exponential", "lognormal", "constant", "uniform", "empirical"]
    mean_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)
    sigma: float | None = Field(default=None, gt=0, le=5)
    min_ms: float | None = Field(default=None, ge=0)
    max_ms: float | None = Field(default=None, gt=0)
    samples_ms: tuple[float, ...] | None = None
    csv: str | None = None

    @model_validator(mode="after")
    def _check_parameters(self) -> ServiceTime:
        if self.dist in ("exponential", "constant", "lognormal") and self.mean_ms is None:
            raise ValueError(f"dist {self.dist!r} needs mean_ms")
        if self.dist == "lognormal":
            if (self.p99_ms is None) == (self.sigma is None):
                raise ValueError("dist 'lognormal' needs exactly one of p99_ms or sigma")
            if self.p99_ms is not None:
                ratio = self.p99_ms / self.mean_ms
                if not 1.0 < ratio < math.exp(Z99 * Z99 / 2):
                    raise ValueError(
                        f"lognormal p99_ms/mean_ms must be between 1 and "
                        f"{math.exp(Z99 * Z99 / 2):.1f}, got {ratio:.3g}"
                    )
        if self.dist == "uniform":
            if self.min_ms is None or self.max_ms is None:
                raise ValueError("dist 'uniform' needs min_ms and max_ms")
            if self.min_ms >= self.max_ms:
                raise ValueError(f"min_ms ({self.min_ms}) must be below max_ms ({self.max_ms})")
        if self.dist == "empirical":
            if (self.samples_ms is None) == (self.csv is None):
                raise ValueError("dist 'empirical' needs exactly one of samples_ms or csv")
            if self.samples_ms is not None and (
                not self.samples_ms or min(self.samples_ms) < 0
            ):
                raise ValueError("samples_ms must be a non-empty list of values >= 0")
        return self

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


def _instances_before(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {"min": value, "max": value, "initial": value}
    return value


class Instances(Strict):
    """Instance counts of one service: bounds for autoscaling and the count at t=0."""

    min: int = Field(ge=0)
    max: int = Field(ge=1)
    initial: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _check_bounds(self) -> Instances:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        if self.initial is not None and not self.min <= self.initial <= self.max:
            raise ValueError(f"initial ({self.initial}) must lie within [{self.min}, {self.max}]")
        return self

    @property
    def start(self) -> int:
        """Instances ready at t=0 (``initial``, else ``min``)."""
        return self.initial if self.initial is not None else self.min


class Retries(Strict):
    """Client retries: a failed request comes back after ``backoff_ms * multiplier**k``,
    spread by ``± jitter`` (a fraction), at most ``max`` times."""

    max: int = Field(ge=0, le=20)
    backoff_ms: float = Field(default=100.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1.0)
    jitter: float = Field(default=0.0, ge=0.0, le=1.0)


class Resources(Strict):
    """What one instance of a service requests from a cluster node."""

    cores: float = Field(default=1.0, gt=0)
    memory_gb: float = Field(default=2.0, gt=0)


class Service(Strict):
    """One service: a pool of ``instances x workers`` concurrent slots with a FCFS queue.

    ``timeout_ms`` 0 means no timeout; ``max_queue`` (per instance) sheds arrivals beyond it;
    ``on_remove`` says what happens to in-flight work when an instance is removed or killed
    (``drain``: it finishes; ``fail``: it fails at once).
    """

    service_time: ServiceTime
    workers: int = Field(ge=1, le=100_000)
    instances: Annotated[Instances, BeforeValidator(_instances_before)]
    timeout_ms: float = Field(default=0.0, ge=0)
    boot_s: Duration = 0.0
    max_queue: int | None = Field(default=None, ge=0)
    retries: Retries | None = None
    balancer: Literal["least_outstanding", "random", "round_robin"] = "least_outstanding"
    on_remove: Literal["drain", "fail"] = "drain"
    price_per_hour: float = Field(default=0.10, ge=0)
    resources: Resources = Resources()


class Objectives(Strict):
    """SLO objectives of one service; latencies in ms over completed requests, error rate as a
    fraction of first attempts that finally failed (timed out or shed)."""

    p50_ms: float | None = Field(default=None, gt=0)
    p90_ms: float | None = Field(default=None, gt=0)
    p95_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)
    mean_ms: float | None = Field(default=None, gt=0)
    error_rate: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _at_least_one(self) -> Objectives:
        if not self.items():
            raise ValueError("give at least one objective (p50_ms .. p99_ms, mean_ms, error_rate)")
        return self

    def items(self) -> list[tuple[str, float]]:
        """The objectives that are set, as (name, target) pairs in a stable order."""
        return [(k, v) for k, v in self.model_dump().items() if v is not None]


class Fault(Strict):
    """A scheduled failure: at ``at``, remove ``kill_fraction`` (rounded up) or ``kill``
    instances of ``service``; in-flight work fails or drains per ``mode``. Removed instances
    come back (booting again) after ``replace_after_s`` if given."""

    at: TimeRef
    service: str
    kill_fraction: float | None = Field(default=None, gt=0, le=1)
    kill: int | None = Field(default=None, ge=1)
    mode: Literal["fail", "drain"] = "fail"
    replace_after_s: Duration | None = None

    @model_validator(mode="after")
    def _one_amount(self) -> Fault:
        if (self.kill_fraction is None) == (self.kill is None):
            raise ValueError("give exactly one of kill_fraction or kill")
        return self

    def count(self, current: int) -> int:
        """How many of ``current`` instances this fault removes."""
        if self.kill is not None:
            return min(self.kill, current)
        assert self.kill_fraction is not None
        return min(current, math.ceil(self.kill_fraction * current - 1e-9))


class LoadTest(Strict):
    """Defaults for replaying this scenario with Locust (CLI flags override them)."""

    time_scale: float = Field(default=1.0, gt=0)
    rate_scale: float = Field(default=1.0, gt=0)
    duration_s: PositiveDuration | None = None
    window_s: float = Field(default=10.0, gt=0, le=60)


from sim.traffic_config import TrafficSpec  # noqa: E402  (after the shared field types)


class Scenario(Strict):
    """A whole scenario file. Times are seconds from t=0; ``start_clock`` labels t=0."""

    name: str
    description: str = ""
    seed: int = Field(ge=0)
    duration_s: PositiveDuration
    tick_s: PositiveDuration = 1.0
    start_clock: str | None = None
    traffic: TrafficSpec
    services: dict[str, Service] = Field(min_length=1)
    slo: dict[str, Objectives] = Field(default_factory=dict)
    autoscaling: dict[str, Any] | None = None
    cluster: dict[str, Any] | None = None
    faults: tuple[Fault, ...] = ()
    loadtest: LoadTest = LoadTest()

    extra_keys: ClassVar[frozenset[str]] = frozenset({"duration"})

    _base_dir: str = PrivateAttr(default=".")
    _source: str = PrivateAttr(default="<memory>")

    @model_validator(mode="before")
    @classmethod
    def _duration_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict) and "duration" in data:
            if "duration_s" in data:
                raise ValueError("give either duration or duration_s, not both")
            data = {("duration_s" if k == "duration" else k): v for k, v in data.items()}
        return data

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("expected letters, digits, '.', '_' or '-' (it names a directory)")
        return value

    @field_validator("services")
    @classmethod
    def _check_service_names(cls, value: dict[str, Service]) -> dict[str, Service]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"service name {name!r}: expected letters, digits, '.', '_', '-'")
        return value

    @model_validator(mode="after")
    def _check_references(self) -> Scenario:
        if self.tick_s > self.duration_s:
            raise ValueError(f"tick_s ({self.tick_s}) must not exceed duration ({self.duration_s})")
        known = set(self.services)
        refs = [(("traffic", *path), name) for path, name in self.traffic.service_refs()]
        refs += [(("slo", name), name) for name in self.slo]
        refs += [(("faults", i, "service"), f.service) for i, f in enumerate(self.faults)]
        for path, name in refs:
            if name not in known:
                raise PydanticCustomError(
                    "unknown_service",
                    "names service '{name}', which is not under 'services' ({known})",
                    {"name": name, "known": ", ".join(sorted(known)), "path": path},
                )
        return self

    @property
    def base_dir(self) -> str:
        """Directory of the scenario file; relative paths inside it resolve from here."""
        return self._base_dir

    @property
    def source(self) -> str:
        """Path the scenario was read from (``<memory>`` when built in code)."""
        return self._source

    @property
    def start_clock_s(self) -> float | None:
        """Seconds after midnight at t=0, or None when the scenario has no clock."""
        from sim.units import parse_clock_s

        return parse_clock_s(self.start_clock) if self.start_clock else None
