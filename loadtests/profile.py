"""Replay some services' declared requests at a given rate profile: a function to call.

``replay_profile`` is the load test as a building block (calibration drives open-model steps
through it): take a scenario's services and their requests (``loadtest.requests``, or the
reference shop's), replace the traffic by step rates ``{service: [(start_s, rate_rps), ...]}``
held until ``duration_s``, run the load test against ``host`` and return its outcome
(``summary`` per service: counts, corrected latency percentiles, error rate, no_data, load
offered; ``timeseries.csv`` per window in ``run_dir``). The derived scenario is written to
``out/profile-scenario.yaml`` (kept with the results: it says exactly what was replayed).

No Locust and no gevent here: Locust runs as child processes, as for ``peaksim loadtest``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from loadtests.runner import LoadTestConfig, LoadTestOutcome, run_loadtest
from sim.errors import LoadTestError, ScenarioError
from sim.model import load_scenario

Steps = Sequence[tuple[float, float]]


def profile_scenario(scenario_path: Path, profile: Mapping[str, Steps],
                     duration_s: float) -> dict[str, Any]:
    """The scenario file's mapping with only the services of ``profile``, step traffic, no
    SLOs, autoscaling, cluster or faults of other services, and their requests."""
    if duration_s <= 0:
        raise LoadTestError(f"duration_s must be > 0, got {duration_s}")
    scenario = load_scenario(scenario_path)  # a valid scenario, problems reported as usual
    unknown = sorted(set(profile) - set(scenario.services))
    if unknown or not profile:
        raise LoadTestError(f"{scenario_path}: profile services {', '.join(unknown) or '-'} "
                            f"are not under 'services' ({', '.join(scenario.services)})")
    data = yaml.safe_load(Path(scenario_path).read_text(encoding="utf-8"))
    times = sorted({0.0, *(float(t) for steps in profile.values() for t, _ in steps)})
    keyframes = []
    for at in times:
        if at < duration_s:
            keyframes.append({"at": at, "rps": {name: _rate_at(steps, at)
                                                for name, steps in profile.items()}})
    data["traffic"] = {"kind": "keyframes", "interpolation": "step", "keyframes": keyframes}
    data.pop("duration", None)
    data["duration_s"] = duration_s
    data["services"] = {k: v for k, v in data["services"].items() if k in profile}
    data["slo"] = {k: v for k, v in (data.get("slo") or {}).items() if k in profile}
    for section in ("autoscaling", "cluster", "faults"):
        data.pop(section, None)
    loadtest = dict(data.get("loadtest") or {})
    if loadtest.get("requests"):
        loadtest["requests"] = {k: v for k, v in loadtest["requests"].items() if k in profile}
    for key in ("time_scale", "rate_scale", "duration_s"):
        loadtest.pop(key, None)
    data["loadtest"] = loadtest
    return data


def _rate_at(steps: Steps, t_s: float) -> float:
    rate = 0.0
    for start_s, rate_rps in sorted(steps):
        if rate_rps < 0:
            raise LoadTestError(f"rates must be >= 0, got {rate_rps}")
        if start_s <= t_s:
            rate = float(rate_rps)
    return rate


def replay_profile(
    scenario_path: Path, profile: Mapping[str, Steps], duration_s: float, *, host: str,
    out: Path, arrivals: str = "poisson", workers: int = 0, window_s: float = 1.0,
    request_timeout_s: float = 30.0, locustfile: Path | None = None, insecure: bool = False,
    ca_bundle: Path | None = None, allow_remote: bool = False, seed: int | None = None,
    status: Callable[[str], None] | None = None,
) -> LoadTestOutcome:
    """Replay ``profile`` (see the module docstring) against ``host``; results in ``out``.
    Raises ``LoadTestError`` / ``ScenarioError`` (the CLI's exit 2) before any request when
    the input is wrong."""
    data = profile_scenario(scenario_path, profile, duration_s)
    out.mkdir(parents=True, exist_ok=True)
    # Next to the original: relative paths (data CSVs, service-time samples) still resolve.
    derived = Path(scenario_path).resolve().parent / f".{out.name}-profile-scenario.yaml"
    derived.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    try:
        load_scenario(derived)
    except ScenarioError:
        derived.unlink(missing_ok=True)
        raise
    config = LoadTestConfig(
        derived, host=host, time_scale=1.0, rate_scale=1.0, duration_s=duration_s,
        workers=workers, out=out, arrivals=arrivals, window_s=window_s,
        request_timeout_s=request_timeout_s, seed=seed, locustfile=locustfile,
        insecure=insecure, ca_bundle=ca_bundle, allow_remote=allow_remote)
    try:
        outcome = run_loadtest(config, status)
    finally:
        (out / "profile-scenario.yaml").write_text(derived.read_text(encoding="utf-8"),
                                                   encoding="utf-8")
        derived.unlink(missing_ok=True)
    return outcome
