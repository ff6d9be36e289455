"""Service-time distributions fitted to measured latencies, chosen by a goodness-of-fit test.

Input: latency samples (ms) of a light-load step, from which the network round trip has been
subtracted. The candidates ``exponential``, ``lognormal`` and ``gamma`` (location fixed at 0)
are fitted by maximum likelihood and tested with the Kolmogorov-Smirnov statistic; the p-value
comes from ``scipy.stats.goodness_of_fit``, a parametric bootstrap that refits every Monte
Carlo sample, so it stays valid although the parameters were estimated from the same data (the
classic KS table would be far too lenient). The test decides which families are adequate (not
rejected at ``REJECT_BELOW``); among those the lowest AIC wins (it charges the extra shape
parameter, so an exponential is kept when a gamma adds nothing). When every family is rejected
the measured distribution itself is used (``empirical``: its quantiles at (i + 1/2) / n).

Samples come from histograms with 2% bins: each is spread uniformly (in log space) inside its
bin with a seeded generator before testing, so ties from the binning do not inflate the
statistic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from sim.metrics import HIST_LOW_MS, HIST_RATIO

REJECT_BELOW = 0.01
"""A family whose goodness-of-fit p-value is below this is rejected."""
MC_SAMPLES = 199
"""Monte Carlo samples of the bootstrap (p-values resolve to 1/200)."""
MAX_FIT_SAMPLES = 4000
"""Larger samples are thinned to this many (the test's cost grows with n x MC_SAMPLES)."""
EMPIRICAL_POINTS = 200
"""Quantiles kept for an empirical distribution."""
MIN_SERVICE_MS = 0.01
"""Floor for a service time after subtracting the round trip (jitter can push it below 0)."""

_FAMILIES: dict[str, Any] = {
    "exponential": stats.expon,
    "lognormal": stats.lognorm,
    "gamma": stats.gamma,
}


@dataclass(frozen=True)
class DistFit:
    """One candidate's fit: parameters, KS statistic, bootstrap p-value, AIC."""

    dist: str
    mean_ms: float
    scv: float
    """Squared coefficient of variation Var[S]/E[S]^2 (1 for exponential)."""
    params: dict[str, float]
    ks_statistic: float
    p_value: float | None
    """None when no valid p-value exists (pseudo-samples from reported percentiles)."""
    aic: float

    @property
    def rejected(self) -> bool:
        return self.p_value is not None and self.p_value < REJECT_BELOW


@dataclass(frozen=True)
class Choice:
    """The chosen distribution and every candidate considered."""

    dist: str
    mean_ms: float
    scv: float
    service_time: dict[str, Any]
    """The scenario's ``service_time`` mapping (mean scaled to the corrected mean)."""
    candidates: tuple[DistFit, ...]
    n_samples: int
    reason: str
    quantiles_ms: tuple[float, ...] = field(default=())


def dequantize(bins: dict[int, int], rng: np.random.Generator) -> np.ndarray:
    """Samples (ms) from a sparse ``sim.metrics`` histogram, spread inside their bins."""
    if not bins:
        return np.empty(0)
    index = np.repeat(np.fromiter(bins, dtype=float), [bins[k] for k in bins])
    position = index + rng.random(index.size)
    return np.sort(HIST_LOW_MS * HIST_RATIO ** position)


def _fit_one(name: str, samples: np.ndarray, rng: np.random.Generator,
             with_p_value: bool) -> DistFit:
    family = _FAMILIES[name]
    if with_p_value:
        result = stats.goodness_of_fit(family, samples, known_params={"loc": 0.0},
                                       statistic="ks", n_mc_samples=MC_SAMPLES, rng=rng)
        fitted = result.fit_result.params._asdict()
        statistic, p_value = float(result.statistic), float(result.pvalue)
    else:
        names = [*(family.shapes.split(", ") if family.shapes else []), "loc", "scale"]
        fitted = dict(zip(names, family.fit(samples, floc=0.0), strict=True))
        frozen = family(**fitted)
        statistic, p_value = float(stats.kstest(samples, frozen.cdf).statistic), None
    frozen = family(**fitted)
    mean, var = (float(v) for v in frozen.stats(moments="mv"))
    log_likelihood = float(np.sum(frozen.logpdf(samples)))
    k = len(fitted) - 1  # loc is fixed
    return DistFit(name, mean, var / (mean * mean), {k: float(v) for k, v in fitted.items()},
                   statistic, p_value, 2 * k - 2 * log_likelihood)


def fit_service_time(samples_ms: np.ndarray, mean_ms: float, rng: np.random.Generator,
                     with_p_value: bool = True) -> Choice:
    """Fit the candidates to ``samples_ms`` and choose one (see the module docstring).

    ``mean_ms`` is the service-time mean estimated with the queueing correction; the chosen
    shape is rescaled to it. ``with_p_value`` False (pseudo-samples) compares KS statistics
    only and never rejects.
    """
    samples = np.sort(np.maximum(np.asarray(samples_ms, dtype=float), MIN_SERVICE_MS))
    if samples.size < 20:
        raise ValueError(f"need at least 20 light-load samples to fit a distribution, got "
                         f"{samples.size}")
    if samples.size > MAX_FIT_SAMPLES:
        samples = np.sort(rng.choice(samples, MAX_FIT_SAMPLES, replace=False))
    fits = tuple(_fit_one(name, samples, rng, with_p_value) for name in _FAMILIES)
    kept = [f for f in fits if not f.rejected]
    best = (min(kept, key=lambda f: f.aic) if kept
            else max(fits, key=lambda f: f.p_value or 0.0))
    u = (np.arange(EMPIRICAL_POINTS) + 0.5) / EMPIRICAL_POINTS
    quantiles = np.quantile(samples, u) * mean_ms / float(samples.mean())
    if best.rejected:
        reason = (f"every family rejected (best {best.dist}: KS {best.ks_statistic:.3f}, "
                  f"p {best.p_value:.3f} < {REJECT_BELOW}): the measured quantiles are used")
        scv = float(np.var(quantiles) / np.mean(quantiles) ** 2)
        spec = {"dist": "empirical",
                "samples_ms": [round(float(q), 3) for q in quantiles]}
        return Choice("empirical", mean_ms, scv, spec, fits, int(samples.size), reason,
                      tuple(float(q) for q in quantiles))
    shown_p = "n/a" if best.p_value is None else f"{best.p_value:.3f}"
    reason = f"{best.dist}: KS {best.ks_statistic:.3f}, p {shown_p}, AIC {best.aic:.1f}"
    return Choice(best.dist, mean_ms, best.scv, service_time_spec(best, mean_ms), fits,
                  int(samples.size), reason, tuple(float(q) for q in quantiles))


def service_time_spec(fit: DistFit, mean_ms: float) -> dict[str, Any]:
    """The scenario mapping of ``fit`` with its mean set to ``mean_ms``."""
    mean = round(float(mean_ms), 3)
    if fit.dist == "exponential":
        return {"dist": "exponential", "mean_ms": mean}
    if fit.dist == "lognormal":
        return {"dist": "lognormal", "mean_ms": mean, "sigma": round(fit.params["s"], 4)}
    return {"dist": "gamma", "mean_ms": mean, "shape": round(fit.params["a"], 4)}


def pseudo_samples(quantiles: dict[float, float], n: int = 1000) -> np.ndarray:
    """``n`` samples standing for a distribution known only by some quantiles (probability ->
    ms), by linear interpolation of the quantile function (0 at probability 0)."""
    probs = np.array([0.0, *sorted(quantiles)])
    values = np.array([0.0, *(quantiles[p] for p in sorted(quantiles))])
    values = np.maximum.accumulate(values)
    u = (np.arange(n) + 0.5) / n
    return np.interp(u, probs, values)
