"""The verdict: per service and objective, did the SLO hold, and if not, when was it missed.

Whether an objective was met comes from ``summary.json``, judged by ``sim.model.slo`` with SRE
semantics (failed, timed-out and shed requests are bad events for every objective). *When* it
was missed comes from the per-tick series: for a latency objective with a per-tick column
(``p50_ms``, ``p95_ms``, ``p99_ms``, ...) the ticks whose percentile exceeded the target; for a
missed ``error_rate`` the ticks where the fraction of lost attempts exceeded it (windows holding
under 1% of the run's lost attempts are left out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.model import LATENCY_QUANTILES
from sim.report.data import ObjectiveSummary, RunData
from sim.report.derive import Window, error_fraction, errors, miss_windows
from sim.report.document import VerdictLine, fmt_objective, objective_label, plural

MIN_LOSS_SHARE = 0.01
"""An error-rate window is named only if it holds at least this share of the lost attempts."""
MAX_WINDOWS_NAMED = 3
"""A verdict sentence names at most this many windows (the SLO table lists them all)."""


@dataclass(frozen=True)
class ObjectiveResult:
    """One SLO objective of one service, with the per-tick windows above its target."""

    service: str
    objective: str
    target: float
    value: float | None
    met: bool
    windows: tuple[Window, ...]
    reason: str | None = None
    """Why it was missed (``sim.model.slo``), e.g. ``"80% of requests failed"``."""
    slo_value: float | None = None
    """Percentile objectives: the percentile over all requests (failures as infinitely slow;
    None when beyond every target)."""

    @property
    def label(self) -> str:
        return objective_label(self.objective)

    def against(self) -> str:
        """``"p99 290 ms against 800 ms"``; a percentile whose value over all requests differs
        from the one over completed attempts shows both."""
        target = fmt_objective(self.objective, self.target)
        if self.value is None:  # nothing completed: no evidence, which is a miss
            return f"{self.label} not measured (no request completed) against {target}"
        shown = fmt_objective(self.objective, self.value)
        if self.objective in LATENCY_QUANTILES:
            overall = ("beyond any target" if self.slo_value is None
                       else fmt_objective(self.objective, self.slo_value))
            if overall != shown:
                shown += f" over completed requests, {overall} over all requests"
        return f"{self.label} {shown} against {target}"


@dataclass(frozen=True)
class ServiceVerdict:
    """The verdict of one service: its objectives and the sentences that say it."""

    service: str
    met: bool
    objectives: tuple[ObjectiveResult, ...]
    lines: tuple[VerdictLine, ...]


@dataclass(frozen=True)
class RunVerdict:
    met: bool
    headline: str
    services: tuple[ServiceVerdict, ...]

    @property
    def objectives(self) -> list[ObjectiveResult]:
        return [o for s in self.services for o in s.objectives]


def when(t_s: float, start_clock_s: float | None) -> str:
    """A time in a verdict: always ``HH:MM:SS`` (or elapsed ``+H:MM:SS``), so that window
    bounds line up when read side by side."""
    if start_clock_s is None:
        total = int(round(t_s))
        return f"+{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
    total = int(round(start_clock_s + t_s)) % 86400
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def window_list(windows: tuple[Window, ...], start_clock_s: float | None,
                most: int = MAX_WINDOWS_NAMED) -> str:
    """``"between 00:00:30 and 00:04:10 and between ..."`` (``"and N more"`` past ``most``)."""
    parts = [f"between {when(w.start_s, start_clock_s)} and {when(w.end_s, start_clock_s)}"
             for w in windows[:most]]
    text = " and ".join(parts)
    if len(windows) > most:
        text += f" (and {len(windows) - most} more)"
    return text


def objective_windows(run: RunData, service: str, objective: str, target: float) -> list[Window]:
    """Per-tick windows above ``target``; empty when the series has no per-tick measure."""
    series = run.series[service]
    if objective == "error_rate":
        windows = miss_windows(series.t_s, error_fraction(series), target, run.summary.tick_s)
        # Keep the windows where the losses were: a lone timeout in a quiet tick also exceeds
        # a small target, but it does not say where the service broke.
        lost = errors(series)
        total = float(np.sum(lost))
        return [w for w in windows
                if np.sum(lost[(series.t_s >= w.start_s) & (series.t_s < w.end_s)])
                >= MIN_LOSS_SHARE * total]
    if series.has(objective):
        values = series[objective]
    else:
        return []
    return miss_windows(series.t_s, values, target, run.summary.tick_s)


def judge(run: RunData) -> RunVerdict:
    """The verdict of a run, service by service in the summary's order."""
    verdicts = tuple(_judge_service(run, name) for name in run.services)
    missed = [v.service for v in verdicts if not v.met]
    judged = [v for v in verdicts if v.objectives]
    if not judged:
        headline = "No SLO objectives are set for this scenario."
    elif not missed:
        headline = (f"SLO met: all {len(judged)} services held their SLOs." if len(judged) > 1
                    else f"SLO met: {judged[0].service} held its SLO.")
    else:
        headline = (f"SLO missed: {missed[0]} missed its SLO." if len(judged) == 1 else
                    f"SLO missed: {len(missed)} of {plural(len(judged), 'service')} missed "
                    f"({', '.join(missed)}).")
    return RunVerdict(not missed, headline, verdicts)


def _judge_service(run: RunData, name: str) -> ServiceVerdict:
    info = run.summary.services[name]
    clock = run.start_clock_s
    # Error-rate windows only for a missed objective: a single timeout in a quiet tick is above
    # any small target, and listing those for a met objective is noise.
    results = tuple(
        ObjectiveResult(name, key, o.target, o.value, o.met,
                        () if key == "error_rate" and o.met
                        else tuple(objective_windows(run, name, key, o.target)),
                        o.reason, _overall(o) if key in LATENCY_QUANTILES else o.value)
        for key, o in info.slo.items()
    )
    if not results:
        text = (f"{name} has no SLO: p99 {fmt_objective('p99_ms', info.latency_ms.p99)}, "
                f"error rate {fmt_objective('error_rate', info.error_rate)}")
        return ServiceVerdict(name, True, (), (VerdictLine(None, text),))
    met = all(r.met for r in results) and info.slo_met
    if met:
        text = f"{name} held its SLO: " + "; ".join(r.against() for r in results)
        notes = [
            f"per-tick {r.label} went above {fmt_objective(r.objective, r.target)} "
            f"{window_list(r.windows, clock)}"
            for r in results if r.windows
        ]
        if notes:
            text += " (" + "; ".join(notes) + ")"
        return ServiceVerdict(name, True, results, (VerdictLine(True, text),))
    lines = [VerdictLine(False, _missed_sentence(run, r)) for r in results if not r.met]
    held = [r for r in results if r.met]
    if held:
        lines.append(VerdictLine(True, f"{name} held its other objectives: "
                                       + "; ".join(r.against() for r in held)))
    return ServiceVerdict(name, False, results, tuple(lines))


def _overall(objective: ObjectiveSummary) -> float | None:
    """The percentile over all requests; a summary written before SRE semantics (no
    ``slo_value``) only has the one over completed attempts."""
    if "slo_value" in objective.model_fields_set:
        return objective.slo_value
    return objective.value


def _missed_sentence(run: RunData, result: ObjectiveResult) -> str:
    """``"browse missed its p99 SLO between 00:00:30 and 00:04:10: p99 reached 2.1 s against
    300 ms (whole run: 450 ms)"``."""
    clock = run.start_clock_s
    name, obj = result.service, result.objective
    target = fmt_objective(obj, result.target)
    if obj == "error_rate":
        info = run.summary.services[name]
        text = (f"{name} missed its error-rate SLO: {fmt_objective(obj, result.value)} of "
                f"requests failed against {target} allowed ({info.timed_out:,} attempts timed "
                f"out, {info.shed:,} shed, {info.failed:,} failed)")
        if result.windows:
            text += (f"; more than {target} of attempts were lost "
                     f"{window_list(result.windows, clock)}")
        return text
    if not result.windows:
        why = f": {result.reason}" if result.reason else ""
        return f"{name} missed its {result.label} SLO over the run{why} ({result.against()})"
    worst = max(w.worst for w in result.windows)
    text = (f"{name} missed its {result.label} SLO {window_list(result.windows, clock)}: "
            f"{result.label} reached {fmt_objective(obj, worst)} against {target} "
            f"(whole run: {_whole_run(result)})")
    return text + (f"; {result.reason}" if result.reason else "")


def _whole_run(result: ObjectiveResult) -> str:
    if result.value is None:
        return "not measured, no request completed"
    return fmt_objective(result.objective, result.value)
