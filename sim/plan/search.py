"""Search, by simulation, for the smallest instance count per service that holds its SLO.

Services do not interact in the model (each has its own arrivals, pool and queue), so every
simulation runs all of them, each at its own candidate count, and one run answers one question
per service. Per service the search keeps the largest count seen to miss (``lo``, 0 at first:
no instances hold nothing) and the smallest seen to hold (``hi``). From the queueing estimate
it gallops -- down by 1, 2, 4, ... while counts hold, up by 1, 2, 4, ... while they miss --
until it has a hold and a miss, then bisects until they are adjacent. A good estimate settles a
service in two runs (the estimate holds, one less misses).

Every run uses the same seed, so a service sees the same arrivals and service times whatever its
count (common random numbers): the comparison between counts is not blurred by sampling noise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.engine import RunLimits, RunResult, simulate
from sim.model import Scenario


@dataclass(frozen=True)
class Trial:
    """One simulation of the window: the counts it ran and, per service, its summary (the
    ``services`` entry of summary.json) and its highest per-tick utilization."""

    counts: dict[str, int]
    services: dict[str, dict[str, Any]]
    peak_utilization: dict[str, float]

    def held(self, service: str) -> bool:
        return bool(self.services[service]["slo_met"])


@dataclass
class _State:
    lo: int = 0
    hi: int | None = None
    step: int = 1
    candidate: int = 1
    done: bool = False


@dataclass
class CountSearch:
    """Runs trials of ``scenario`` (the peak window) with fixed counts and remembers them.

    ``base`` holds the counts of the services not searched (any count: they do not interact).
    ``on_trial`` is told the counts of each new simulation before it starts.
    """

    scenario: Scenario
    seed: int | None
    base: Mapping[str, int]
    on_trial: Callable[[dict[str, int]], None] | None = None
    trials: list[Trial] = field(default_factory=list)
    limits: RunLimits | None = None

    def trial(self, counts: Mapping[str, int]) -> Trial:
        """The trial of ``counts`` (completed by ``base``), simulated once."""
        full = {**self.base, **counts}
        for done in self.trials:
            if done.counts == full:
                return done
        if self.on_trial is not None:
            self.on_trial(full)
        result = simulate(self.scenario, seed=self.seed, instances=full, limits=self.limits)
        made = Trial(full, result.summary()["services"], _peak_utilization(result))
        self.trials.append(made)
        return made

    def minimum_counts(
        self, start: Mapping[str, int], cap: Mapping[str, int]
    ) -> dict[str, int | None]:
        """Per service, the smallest count that held (None if ``cap`` did not hold), searched
        from ``start`` (see the module docstring)."""
        states = {name: _State(candidate=max(1, min(n, cap[name]))) for name, n in start.items()}
        while not all(s.done for s in states.values()):
            counts = {name: (s.candidate if not s.done else s.hi or s.candidate)
                      for name, s in states.items()}
            trial = self.trial(counts)
            for name, s in states.items():
                if not s.done:
                    _advance(s, counts[name], trial.held(name), cap[name])
        return {name: s.hi for name, s in states.items()}

    def trial_with(self, service: str, count: int) -> Trial | None:
        """A trial in which ``service`` ran ``count`` instances, if any (the latest)."""
        for done in reversed(self.trials):
            if done.counts.get(service) == count:
                return done
        return None


def _advance(s: _State, count: int, held: bool, cap: int) -> None:
    if held:
        s.hi = count
    else:
        s.lo = count
    if s.hi is not None and s.hi - s.lo <= 1:
        s.done = True
    elif s.hi is None:  # still missing: climb, doubling the step, up to the cap
        if count >= cap:
            s.done = True
        else:
            s.candidate = min(cap, count + s.step)
            s.step *= 2
    elif held and s.lo == 0 and s.hi > s.step:  # still holding and no miss seen: descend
        s.candidate = s.hi - s.step
        s.step *= 2
    else:
        s.candidate = (s.lo + s.hi) // 2


def _peak_utilization(result: RunResult) -> dict[str, float]:
    out = {}
    for name, series in result.services.items():
        util = series.columns["utilization"]
        out[name] = float(util.max()) if util.size else 0.0
    return out
