"""The batch job generator: arrival counts against the rate integral, size distributions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from sim.model import BatchGenerator, Dist, arrival_times_s, draw, generate_jobs


def generator(**fields: Any) -> BatchGenerator:
    return BatchGenerator.model_validate({"rate_per_min": 30, "duration_s": 60, **fields})


def test_constant_rate_gives_a_poisson_count() -> None:
    times = arrival_times_s(generator(), 3600.0, np.random.default_rng(3))
    # 30/min for an hour: mean 1800, sd 42.4 -> within 5 sd.
    assert abs(len(times) - 1800) < 5 * 42.4
    assert times.min() >= 0.0 and times.max() < 3600.0
    assert np.all(np.diff(times) >= 0)


def test_rate_curve_is_followed() -> None:
    # Rate rising linearly from 0 to 60/min (1/s) over an hour: 450 expected in the first half,
    # 1350 in the second (integrals of t/3600 per second).
    spec = generator(rate_per_min=[{"at": 0, "per_min": 0}, {"at": "1h", "per_min": 60}])
    counts = np.zeros(2)
    for seed in range(10):
        times = arrival_times_s(spec, 3600.0, np.random.default_rng(seed))
        counts += [np.sum(times < 1800), np.sum(times >= 1800)]
    counts /= 10
    assert counts[0] == pytest.approx(450, rel=0.05)
    assert counts[1] == pytest.approx(1350, rel=0.05)


def test_zero_rate_and_backlog() -> None:
    jobs = generate_jobs(generator(rate_per_min=0, backlog_jobs=7), 600.0,
                         np.random.default_rng(0))
    assert len(jobs) == 7 and all(j.submit_s == 0.0 for j in jobs)


def test_job_sizes_follow_their_distributions() -> None:
    spec = generator(
        instances={"dist": "uniform", "min": 0.2, "max": 4.4},
        cores={"dist": "choice", "values": [0.5, 2], "weights": [3, 1]},
        duration_s={"dist": "lognormal", "mean": 120, "sigma": 1.5, "max": 900},
        memory_gb_per_core=3,
        priorities={0: 1, 7: 3},
    )
    jobs = generate_jobs(spec, 36000.0, np.random.default_rng(4))
    assert len(jobs) > 10000
    assert {j.instances for j in jobs} == {1, 2, 3, 4}  # rounded, at least 1
    assert {j.cores for j in jobs} == {0.5, 2.0}
    assert np.mean([j.cores == 0.5 for j in jobs]) == pytest.approx(0.75, abs=0.02)
    assert all(j.memory_gb == 3 * j.cores for j in jobs)
    assert max(j.duration_s for j in jobs) == 900.0
    assert min(j.duration_s for j in jobs) >= 1.0
    assert np.mean([j.priority == 7 for j in jobs]) == pytest.approx(0.75, abs=0.02)


def test_lognormal_mean_is_the_given_mean() -> None:
    dist = Dist(dist="lognormal", mean=200.0, sigma=0.8)
    values = draw(dist, np.random.default_rng(9), 200_000)
    assert values.mean() == pytest.approx(200.0, rel=0.01)
    assert np.median(values) == pytest.approx(200.0 * np.exp(-0.32), rel=0.01)


def test_same_seed_same_jobs() -> None:
    spec = generator(cores={"dist": "exponential", "mean": 1.5})
    first = generate_jobs(spec, 1800.0, np.random.default_rng(12))
    assert first == generate_jobs(spec, 1800.0, np.random.default_rng(12))
    assert first != generate_jobs(spec, 1800.0, np.random.default_rng(13))


@pytest.mark.parametrize(("data", "loc", "message"), [
    ({"dist": "constant", "value": 1, "mean": 2}, ("mean",), "does not apply to dist 'constant'"),
    ({"dist": "lognormal", "mean": 2}, ("sigma",), "needs sigma"),
    ({"dist": "uniform", "min": 3, "max": 2}, ("min",), "must be below max"),
    ({"dist": "choice", "values": [1, 2], "weights": [1]}, ("weights",), "one weight per value"),
    ({"dist": "choice", "values": []}, ("values",), "at least one value"),
])
def test_bad_distributions(data: dict[str, Any], loc: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Dist.model_validate(data)
    found = [(tuple(e["loc"]), e["msg"]) for e in info.value.errors()]
    assert any(where == loc and message in msg for where, msg in found), found


def test_rate_points_must_increase() -> None:
    with pytest.raises(ValidationError, match="strictly increasing"):
        generator(rate_per_min=[{"at": 60, "per_min": 1}, {"at": 30, "per_min": 2}])
