"""The ``cluster.batch`` section: a batch workload, generated or read from a v2018 trace CSV.

A batch *job* is a number of identical instances (containers), each asking for some cores and
memory for some duration at full speed. Jobs either come from a ``generator`` (arrivals at
``rate_per_min``, sizes drawn from distributions, seeded from the scenario seed) or from a
``csv`` in the public Alibaba cluster-trace v2018 ``batch_task`` schema (see ``sim.model.batch``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from sim.schema import Loc, Strict, TimeRef, field_errors

_DIST_PARAMETERS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "uniform": ("min", "max"),
    "exponential": ("mean", "max"),
    "lognormal": ("mean", "sigma", "max"),
    "choice": ("values", "weights"),
}
_ALL_PARAMETERS = frozenset(p for names in _DIST_PARAMETERS.values() for p in names)


def _number_is_constant(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


MAX_DIST_VALUE = 1e7
"""Largest parameter of a batch distribution (instances, cores or seconds: 115 days)."""


class Dist(Strict):
    """A distribution of positive values (a bare number means ``constant``).

    ``constant``: ``value``; ``uniform``: ``min``..``max``; ``exponential``: ``mean``;
    ``lognormal``: ``mean`` and ``sigma`` (of the underlying normal); ``choice``: ``values``
    with optional ``weights``. ``max`` truncates an exponential or lognormal draw.
    """

    dist: Literal["constant", "uniform", "exponential", "lognormal", "choice"]
    value: float | None = Field(default=None, gt=0, le=MAX_DIST_VALUE)
    min: float | None = Field(default=None, gt=0, le=MAX_DIST_VALUE)
    max: float | None = Field(default=None, gt=0, le=MAX_DIST_VALUE)
    mean: float | None = Field(default=None, gt=0, le=MAX_DIST_VALUE)
    sigma: float | None = Field(default=None, gt=0, le=5)
    values: tuple[Annotated[float, Field(gt=0, le=MAX_DIST_VALUE)], ...] | None = None
    weights: tuple[Annotated[float, Field(ge=0)], ...] | None = None

    @model_validator(mode="after")
    def _check_parameters(self) -> Dist:
        takes = _DIST_PARAMETERS[self.dist]
        problems: list[tuple[Loc, str]] = [
            ((name,), f"does not apply to dist {self.dist!r}, which takes {' / '.join(takes)}")
            for name in sorted(_ALL_PARAMETERS - set(takes)) if getattr(self, name) is not None
        ]
        optional = {"weights"} if self.dist == "uniform" else {"max", "weights"}
        problems += [((name,), f"dist {self.dist!r} needs {name}")
                     for name in takes if name not in optional and getattr(self, name) is None]
        low, high = self.min, self.max
        if self.dist == "uniform" and low is not None and high is not None and low >= high:
            problems.append((("min",), f"min ({low:g}) must be below max ({high:g})"))
        if self.values is not None and not self.values:
            problems.append((("values",), "give at least one value"))
        weights, values = self.weights, self.values
        if weights is not None and values is not None and (
            len(weights) != len(values) or sum(weights) <= 0
        ):
            problems.append((("weights",), "give one weight per value, not all zero"))
        if problems:
            raise field_errors(problems)
        return self

    def upper_bound(self) -> float | None:
        """The largest value a draw can take, or None when unbounded."""
        if self.dist == "constant":
            return self.value
        if self.dist == "choice":
            assert self.values is not None
            return max(self.values)
        return self.max


PositiveDist = Annotated[
    Dist, BeforeValidator(_number_is_constant, json_schema_input_type=float | Dist)
]


class RatePoint(Strict):
    """The job arrival rate at one point of the run (jobs per minute)."""

    at: TimeRef
    per_min: float = Field(ge=0, le=1_000_000)


def _rate_before(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [{"at": 0, "per_min": value}]
    return value


class BatchGenerator(Strict):
    """Jobs arriving as a Poisson process of ``rate_per_min`` jobs per minute (a constant, or
    ``[{at, per_min}, ...]`` points interpolated linearly and held beyond the ends).

    Each job has ``instances`` containers (rounded, >= 1) of ``cores`` cores each (rounded to
    millicores), ``memory_gb_per_core`` GB per core, running ``duration_s`` seconds at full
    speed, at a priority level drawn from ``priorities`` (level -> weight; higher levels are
    preempted last). ``backlog_jobs`` jobs are already queued at t=0 so that batch fills the
    cluster from the start, as it does in a colocated fleet.
    """

    rate_per_min: Annotated[
        tuple[RatePoint, ...],
        BeforeValidator(_rate_before, json_schema_input_type=float | list[RatePoint]),
    ]
    instances: PositiveDist = Dist(dist="constant", value=1)
    cores: PositiveDist = Dist(dist="constant", value=1)
    memory_gb_per_core: float = Field(default=4.0, gt=0)
    duration_s: PositiveDist
    priorities: dict[int, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {0: 1.0}, min_length=1
    )
    backlog_jobs: int = Field(default=0, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _check(self) -> BatchGenerator:
        problems: list[tuple[Loc, str]] = []
        times = [p.at for p in self.rate_per_min]
        if not times:
            problems.append((("rate_per_min",), "give a rate or at least one {at, per_min} point"))
        if any(b <= a for a, b in zip(times, times[1:], strict=False)):
            problems.append((("rate_per_min",), "points must be in strictly increasing 'at'"))
        if sum(self.priorities.values()) <= 0:
            problems.append((("priorities",), "at least one priority weight must be > 0"))
        if problems:
            raise field_errors(problems)
        return self

    def memory_gb_for(self, cores: float | None) -> float:
        """Memory (GB) of a container with ``cores`` cores (0 when unknown)."""
        return 0.0 if cores is None else cores * self.memory_gb_per_core


_CSV_OPTIONS = ("machine_memory_gb", "offset_s", "statuses", "sample_fraction", "on_bad_row",
                "priority")


class BatchWorkload(Strict):
    """A ``generator`` or a ``csv`` of jobs in the Alibaba v2018 ``batch_task`` schema.

    CSV options: ``machine_memory_gb`` (GB that ``plan_mem`` 100 stands for; the trace
    normalises memory to one machine and does not publish its size), ``offset_s`` (the trace
    time that becomes t=0; default: the earliest ``start_time`` read), ``statuses`` (rows kept;
    the trace also lists failed and unfinished tasks), ``sample_fraction`` (keep this share of
    the tasks, drawn with the scenario seed: the real trace comes from ~4,000 machines),
    ``on_bad_row`` (``error`` or ``skip``) and ``priority`` (the level given to every task).
    """

    generator: BatchGenerator | None = None
    csv: str | None = Field(default=None, min_length=1)
    machine_memory_gb: float = Field(default=100.0, gt=0)
    offset_s: float | None = Field(default=None, ge=0)
    statuses: tuple[str, ...] = ("Terminated",)
    sample_fraction: float = Field(default=1.0, gt=0, le=1)
    on_bad_row: Literal["error", "skip"] = "error"
    priority: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> BatchWorkload:
        if (self.generator is None) == (self.csv is None):
            raise ValueError("give exactly one of 'generator' or 'csv'")
        if not self.statuses:
            raise field_errors([(("statuses",), "give at least one task status to keep")])
        if self.generator is not None:
            stray = [name for name in _CSV_OPTIONS if name in self.model_fields_set]
            if stray:
                raise field_errors([((name,), "applies to 'csv' workloads only") for name in stray])
        return self
