"""``static`` and ``scheduled``: capacity decided in advance.

``static`` holds fixed counts all run long (the baseline: provision for the peak all day).

``scheduled`` is how 11.11 is actually prepared: capacity is put in place at given times
before the traffic arrives (``schedule``: at ``at``, set each named service to ``instances``).
Times are run seconds, durations or, with a scenario ``start_clock``, wall-clock times such as
``"23:50"``. A service keeps the count of the latest entry that names it; before its first
entry it is left alone.

With ``target_tracking`` the scheduled count becomes a floor under the HPA, fed to it as one
more recommendation (as KEDA's cron scaler does): the HPA scales to max(metric proposal,
scheduled count) through its usual stabilization and rate limits. A pre-warm is therefore
reached at the HPA's scale-up rate (legacy: at most doubling per sync), so schedule it a few
syncs early; after the count drops, the capacity is kept for the HPA's scale-down window.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from sim.policies.autoscaling.base import AutoscalingPolicy, Observation, PolicyContext
from sim.policies.autoscaling.hpa import HpaGroup
from sim.policies.autoscaling.hpa_config import HpaSettings, NonEmpty
from sim.schema import Strict, TimeRef, field_errors

Counts = dict[str, Annotated[int, Field(ge=0)]]


class StaticParams(Strict):
    """``policy: static``: ``instances`` maps service -> count; unnamed services keep their
    initial count."""

    policy: Literal["static"]
    instances: Counts = Field(default_factory=dict)


class StaticPolicy(AutoscalingPolicy):
    """Fixed instance counts (re-asserted every interval, so failed instances are replaced)."""

    name: ClassVar[str] = "static"
    Params: ClassVar[type[StaticParams]] = StaticParams

    def __init__(self, params: StaticParams, context: PolicyContext) -> None:
        super().__init__(params, context)
        self.counts = {
            name: params.instances.get(name, info.initial)
            for name, info in context.services.items()
        }

    def decide(self, obs: Observation) -> dict[str, int]:
        for name in self.counts:
            self._reasons[name] = "static count"
        return {name: n for name, n in self.counts.items() if name in obs.services}


class ScheduleEntry(Strict):
    """From ``at`` on, the named services run ``instances`` (a floor with target_tracking)."""

    at: TimeRef
    instances: Annotated[Counts, NonEmpty]


class ScheduledParams(Strict):
    """``policy: scheduled``: pre-warm at given times, optionally with an HPA above."""

    policy: Literal["scheduled"]
    schedule: Annotated[tuple[ScheduleEntry, ...], NonEmpty]
    target_tracking: HpaSettings | None = None

    @model_validator(mode="after")
    def _check_order(self) -> ScheduledParams:
        times = [entry.at for entry in self.schedule]
        problems = [
            (("schedule", i + 1, "at"), f"entries must be in strictly increasing order of 'at' "
             f"(this one is at {b:g} s of the run, the one before at {a:g} s)")
            for i, (a, b) in enumerate(zip(times, times[1:], strict=False))
            if b <= a
        ]
        if problems:
            raise field_errors(problems)
        return self


class ScheduledPolicy(AutoscalingPolicy):
    """Counts (or floors, with target_tracking) switched at the scheduled times."""

    name: ClassVar[str] = "scheduled"
    Params: ClassVar[type[ScheduledParams]] = ScheduledParams

    def __init__(self, params: ScheduledParams, context: PolicyContext) -> None:
        super().__init__(params, context)
        self.schedule = params.schedule
        self.hpa = (
            HpaGroup(params.target_tracking, context) if params.target_tracking else None
        )

    def instance_metric(self, service: str) -> str | None:
        return self.hpa.instance_metric(service) if self.hpa else None

    def scheduled_counts(self, t_s: float) -> dict[str, int]:
        """Count of each service named by an entry at or before ``t_s`` (latest entry wins)."""
        counts: dict[str, int] = {}
        for entry in self.schedule:
            if entry.at > t_s + 1e-9:
                break
            counts.update(entry.instances)
        return counts

    def decide(self, obs: Observation) -> dict[str, int]:
        floors = {k: v for k, v in self.scheduled_counts(obs.t_s).items() if k in obs.services}
        if self.hpa is None:
            for name, n in floors.items():
                self._reasons[name] = f"scheduled count {n}"
            return floors
        desired = self.hpa.sync(obs, floors)
        for name in self.hpa.controllers:
            floor = floors.get(name, 0)
            why = self.hpa.controllers[name].reason
            self._reasons[name] = f"scheduled floor {floor}; hpa: {why}"
        # Services the schedule names but the HPA leaves alone follow the schedule.
        fixed = {k: v for k, v in floors.items() if k not in self.hpa.controllers}
        return {**fixed, **desired}
