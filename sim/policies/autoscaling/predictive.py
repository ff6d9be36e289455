"""``predictive``: provision for the demand forecast ``lead_s`` ahead, with headroom.

At each control step the policy forecasts the arrival rate of each service at the run times
``t, t + interval_s, ..., t + lead_s`` and provisions for the highest of them:

    instances(rps) = ceil(rps x mean_service_s / (workers x target_utilization) x (1 + headroom))

so capacity started now is ready (boot time) before the demand it is for arrives. ``lead_s``
must cover the longest boot time plus one control interval (checked at load time: an instance
started at the first control step that sees the rise must be ready before it).

Forecast sources, both honest about what they know:
- ``plan``: the scenario's own planned traffic curve (the "we know the forecast" case: the
  11.11 campaign is announced; only this source receives ``PolicyContext.forecast_rps``);
- ``learned``: only the observed history (``Observation.history``), with Holt's linear trend
  or a seasonal-naive forecaster; it never sees the planned curve.

Like AWS predictive scaling it never scales in below what a reactive floor needs: the
capacity the currently observed arrival rate needs (same formula), or, with
``target_tracking``, an HPA that runs above the forecast (the forecast capacity is fed to it
as one more recommendation, as KEDA's predictive scalers do, so the HPA's rate limits and
windows apply to it). Scale-in is smoothed: the forecast capacity is the highest one of the
last ``scale_in_stabilization_s`` (scale-out is immediate).
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from sim.policies.autoscaling.base import (
    AutoscalingPolicy,
    Observation,
    PolicyContext,
    PolicyError,
    ServiceView,
    only_changes,
)
from sim.policies.autoscaling.forecast import Forecaster, HoltForecaster, SeasonalNaiveForecaster
from sim.policies.autoscaling.hpa import HpaGroup
from sim.policies.autoscaling.hpa_config import HpaSettings, NonEmpty
from sim.schema import Duration, PositiveDuration, Strict, field_errors


class PredictiveParams(Strict):
    """``policy: predictive``: forecast-driven provisioning (see the module docstring)."""

    policy: Literal["predictive"]
    source: Literal["plan", "learned"]
    method: Literal["holt", "seasonal_naive"] | None = None
    lead_s: PositiveDuration = 300.0
    target_utilization: float = Field(default=0.6, gt=0, le=1)
    headroom: float = Field(default=0.1, ge=0, le=10)
    alpha: float = Field(default=0.5, gt=0, le=1)
    beta: float = Field(default=0.3, ge=0, le=1)
    season_s: PositiveDuration = 86400.0
    scale_in_stabilization_s: Duration = 300.0
    services: Annotated[tuple[str, ...], NonEmpty] | None = None
    target_tracking: HpaSettings | None = None

    @model_validator(mode="after")
    def _check(self) -> PredictiveParams:
        if self.source == "plan" and self.method is not None:
            raise field_errors([(("method",), "applies to source: learned only (source: plan "
                                 "follows the scenario's own curve)")])
        return self


def instances_for(rps: float, sv: ServiceView, target_utilization: float, headroom: float) -> int:
    """Instances that serve ``rps`` at ``target_utilization`` with ``headroom`` on top."""
    busy_workers = max(0.0, rps) * sv.mean_service_ms / 1000.0
    need = busy_workers / (sv.workers * target_utilization) * (1.0 + headroom)
    return max(0, math.ceil(round(need, 9)))  # round: 3.0000000001 is 3 instances, not 4


class PredictivePolicy(AutoscalingPolicy):
    """Provision ahead of the forecast demand, never below a reactive floor."""

    name: ClassVar[str] = "predictive"
    Params: ClassVar[type[PredictiveParams]] = PredictiveParams

    @classmethod
    def uses_plan(cls, params: PredictiveParams) -> bool:  # type: ignore[override]
        return params.source == "plan"

    def __init__(self, params: PredictiveParams, context: PolicyContext) -> None:
        super().__init__(params, context)
        self.p = params
        if params.source == "plan" and context.forecast_rps is None:
            raise PolicyError("predictive source 'plan' needs the scenario's planned traffic")
        names = params.services if params.services is not None else tuple(context.services)
        self.services = tuple(n for n in names if n in context.services)
        self.forecasters: dict[str, Forecaster] = {}
        if params.source == "learned":
            for name in self.services:
                if params.method == "seasonal_naive":
                    self.forecasters[name] = SeasonalNaiveForecaster(params.season_s)
                else:
                    self.forecasters[name] = HoltForecaster(params.alpha, params.beta)
        self.hpa = HpaGroup(params.target_tracking, context) if params.target_tracking else None
        self.recent: dict[str, list[tuple[float, int]]] = {n: [] for n in self.services}

    def instance_metric(self, service: str) -> str | None:
        return self.hpa.instance_metric(service) if self.hpa else None

    def horizon_s(self, t_s: float) -> list[float]:
        """Run times the forecast covers at ``t_s``: every interval up to ``t_s + lead_s``."""
        step = self.context.interval_s
        count = max(1, math.ceil(self.p.lead_s / step - 1e-9))
        return [t_s + min(k * step, self.p.lead_s) for k in range(count + 1)]

    def forecast_rps(self, service: str, t_s: float) -> float | None:
        """The forecast arrival rate of ``service`` at ``t_s`` (None: nothing known yet);
        a learned forecaster knows the history up to the last ``decide`` call."""
        if self.p.source == "plan":
            assert self.context.forecast_rps is not None
            return self.context.forecast_rps(service, t_s)
        return self.forecasters[service].forecast(t_s)

    def decide(self, obs: Observation) -> dict[str, int]:
        floors: dict[str, int] = {}
        peaks: dict[str, float] = {}
        for name in self.services:
            sv = obs.services.get(name)
            if sv is None:
                continue
            if name in self.forecasters:
                self.forecasters[name].update(obs.history.get(name, ()))
            rates = [self.forecast_rps(name, t) for t in self.horizon_s(obs.t_s)]
            known = [r for r in rates if r is not None]
            peak = max(known) if known else 0.0
            need = instances_for(peak, sv, self.p.target_utilization, self.p.headroom)
            if self.hpa is None:  # the reactive floor: what the observed rate needs now
                observed = sv.metrics.get("arrival_rps")
                if observed is not None:
                    need = max(need, instances_for(
                        observed, sv, self.p.target_utilization, self.p.headroom))
                elif not known:
                    continue  # nothing observed or forecast yet: leave the service alone
            floors[name] = self._stabilized(name, obs.t_s, need)
            peaks[name] = peak
        if self.hpa is None:
            for name, n in floors.items():
                self._reasons[name] = f"predictive: forecast peak {peaks[name]:.4g} rps -> {n}"
            return only_changes(floors, obs)
        desired = self.hpa.sync(obs, floors)
        for name in self.hpa.controllers:
            why = self.hpa.controllers[name].reason
            self._reasons[name] = f"forecast floor {floors.get(name, 0)}; hpa: {why}"
        fixed = {k: v for k, v in floors.items() if k not in self.hpa.controllers}
        return {**only_changes(fixed, obs), **desired}

    def _stabilized(self, service: str, t_s: float, need: int) -> int:
        window = self.p.scale_in_stabilization_s
        recent = [r for r in self.recent[service] if r[0] > t_s - window] + [(t_s, need)]
        self.recent[service] = recent
        return max(n for _, n in recent)
