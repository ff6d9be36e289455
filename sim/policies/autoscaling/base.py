"""The autoscaling plug-in contract: what a policy sees, what it returns, how it is built.

Policies decide, the engine acts. Every ``interval_s`` the engine builds an ``Observation``
(plain, frozen data: per-service instance counts and window-averaged metrics as an autoscaler
would scrape them, plus the observed arrival-rate history) and calls ``decide``; the policy
returns desired instance counts, which the engine clamps to the service's ``[min, max]`` and
applies (booting new instances, draining removed ones).

A policy is a pure function of the observations it has received so far: it may keep state
between calls (stabilization windows, cooldowns, forecaster state) but does no I/O, touches no
SimPy, reads no clock and draws no random numbers. Times are seconds of simulated run time
(``t_s``), never wall-clock time.

The registry (``POLICIES``) and ``build_policy`` live in ``registry.py`` beside this module;
import them from the package, ``sim.policies.autoscaling``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from sim.errors import PeaksimError

if TYPE_CHECKING:
    from sim.schema import Strict

INSTANCE_METRICS: tuple[str, ...] = ("utilization", "concurrency", "queue", "rps")
"""Metrics measured per instance (``InstanceView.metric``) and, averaged over ready instances,
per service: busy/ready workers (0..1), in-flight requests, waiting requests, arrival rate."""

SERVICE_METRICS: tuple[str, ...] = ("arrival_rps", "p95_ms", "p99_ms")
"""Metrics that only exist per service: total arrival rate and latency percentiles."""

METRICS: tuple[str, ...] = INSTANCE_METRICS + SERVICE_METRICS
"""Every key of ``ServiceView.metrics``."""


class PolicyError(PeaksimError):
    """A policy cannot be built as asked (unknown variant or policy name)."""


@dataclass(frozen=True)
class InstanceView:
    """One instance as the autoscaler sees it.

    ``ready`` is False while booting (the first ``boot_s`` after its start); ``age_s`` is the
    time since it was started; ``metric`` is the policy's per-instance metric (named by
    ``AutoscalingPolicy.instance_metric``) averaged over the scrape window, or None while no
    scrape of it exists yet.
    """

    ready: bool
    age_s: float
    metric: float | None


@dataclass(frozen=True)
class ServiceView:
    """One service at a control step.

    ``current`` = ready + booting instances (the controller's view, HPA ``currentReplicas``).
    ``metrics`` holds service-level window averages keyed by ``METRICS`` names (None when not
    yet scraped): ``utilization`` busy/ready workers, ``concurrency``/``queue``/``rps`` per
    ready instance, ``arrival_rps`` total, ``p95_ms``/``p99_ms`` latency.
    """

    name: str
    current: int
    ready: int
    booting: int
    min: int
    max: int
    workers: int
    boot_s: float
    mean_service_ms: float
    metrics: Mapping[str, float | None]
    instances: Sequence[InstanceView]


@dataclass(frozen=True)
class Observation:
    """Everything a policy may know at run time ``t_s``.

    ``clock_s`` is the wall clock (seconds after midnight) of ``t_s`` when the scenario has a
    ``start_clock``. ``history`` maps service -> ``(t_s, arrival_rps)`` samples, one per scrape
    so far, oldest first: observed values only, never the future.
    """

    t_s: float
    clock_s: float | None
    services: Mapping[str, ServiceView]
    history: Mapping[str, Sequence[tuple[float, float]]]


@dataclass(frozen=True)
class ServiceInfo:
    """Static facts of one service, known before the run (from the scenario)."""

    workers: int
    min: int
    max: int
    initial: int
    boot_s: float
    mean_service_ms: float


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may know when it is built.

    ``forecast_rps(service, t_s)`` is the scenario's planned arrival rate; ``build_policy``
    hands it only to policies that declare they use the plan (``uses_plan``), so a policy that
    learns from observations can never peek at the future curve. ``window_s`` is the metric
    averaging window (``build_policy`` fills it from the scenario's autoscaling section).
    ``start_time`` is the aware date and time of t=0 (for calendar triggers such as cron), and
    ``base_dir`` the scenario's directory (for files a policy reads, such as manifests).
    """

    services: Mapping[str, ServiceInfo]
    interval_s: float
    start_clock_s: float | None
    forecast_rps: Callable[[str, float], float] | None
    window_s: float = 60.0
    start_time: datetime | None = None
    base_dir: str = "."


class AutoscalingPolicy(ABC):
    """Base class of every autoscaling policy; ``decide`` is the whole plug-in contract.

    Subclasses set ``name`` (the scenario's ``policy:`` value) and ``Params`` (a ``Strict``
    pydantic model with a ``policy: Literal[name]`` field, validated at scenario load time).
    """

    name: ClassVar[str]
    Params: ClassVar[type[Strict]]

    def __init__(self, params: Strict, context: PolicyContext) -> None:
        self.params = params
        self.context = context
        self._reasons: dict[str, str] = {}

    @classmethod
    def uses_plan(cls, params: Strict) -> bool:
        """True when this configuration needs the scenario's planned traffic (forecast_rps)."""
        return False

    def instance_metric(self, service: str) -> str | None:
        """Which ``INSTANCE_METRICS`` name the engine should put in ``InstanceView.metric``."""
        return None

    def initial_counts(self) -> dict[str, int]:
        """Counts in place at t=0 that the policy had established before the run (services
        left out start at their initial count)."""
        return {}

    @abstractmethod
    def decide(self, obs: Observation) -> dict[str, int]:
        """Desired instance counts per service; a service left out keeps its count.

        The engine clamps the result to the service's ``[min, max]``.
        """

    def explain(self, service: str) -> str:
        """A one-line reason for the last decision about ``service`` (for scale events)."""
        return self._reasons.get(service, "")


def only_changes(desired: Mapping[str, int], obs: Observation) -> dict[str, int]:
    """``desired`` without the services whose count would not change (left out = no change)."""
    return {
        name: n
        for name, n in desired.items()
        if name in obs.services and n != obs.services[name].current
    }
