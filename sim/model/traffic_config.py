"""Traffic sections of a scenario: which curve each service's request rate follows.

Kinds (the ``kind`` key): ``constant``, ``keyframes``, ``singles_day`` (the 11.11 preset) and
``trace`` (replay of a CSV). Every kind also takes ``flash_sales`` (bursts on top of the curve),
``noise`` (seeded multiplicative noise), ``rate_scale`` and ``time_scale``. The curves
themselves live in ``sim.model.traffic``.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from sim.schema import (
    MAX_RATE_RPS,
    MAX_RATE_SCALE,
    MAX_TIME_SCALE,
    MIN_SCALE,
    Duration,
    Loc,
    PositiveDuration,
    Strict,
    TimeRef,
    field_errors,
)

PositiveRates = dict[str, Annotated[float, Field(gt=0, le=MAX_RATE_RPS)]]
NonNegativeRates = dict[str, Annotated[float, Field(ge=0, le=MAX_RATE_RPS)]]


class FlashSale(Strict):
    """A burst: from ``at`` the rate is multiplied by up to ``multiplier`` for ``duration_s``,
    reached over ``ramp_s`` and left over ``ramp_s``; ``services`` limits it (default: all)."""

    at: TimeRef
    duration_s: PositiveDuration
    multiplier: float = Field(gt=0, le=1000)
    ramp_s: Duration = 10.0
    services: tuple[str, ...] | None = None


class Noise(Strict):
    """Multiplicative lognormal noise with log-standard-deviation ``sigma``, drawn at knots
    every ``interval_s`` and interpolated linearly between them; mean factor 1."""

    sigma: float = Field(gt=0, le=1)
    interval_s: PositiveDuration = 60.0
    seed: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _check_interval(self) -> Noise:
        # Knots are drawn for the whole run, one per interval and service: keep them few.
        if self.interval_s < 1.0:
            got = f"got {self.interval_s:g} s"
            raise field_errors([(("interval_s",), f"expected at least 1 s, {got}")])
        return self


class _TrafficBase(Strict):
    """Options shared by every traffic kind.

    ``time_scale`` compresses time: the served curve is ``base(t * time_scale)``.
    ``rate_scale`` multiplies every rate.
    """

    rate_scale: float = Field(default=1.0, ge=MIN_SCALE, le=MAX_RATE_SCALE)
    time_scale: float = Field(default=1.0, ge=MIN_SCALE, le=MAX_TIME_SCALE)
    noise: Noise | None = None
    flash_sales: tuple[FlashSale, ...] = ()

    def base_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [
            (("flash_sales", i, "services", j), name)
            for i, sale in enumerate(self.flash_sales)
            for j, name in enumerate(sale.services or ())
        ]


class ConstantTraffic(_TrafficBase):
    """The same rate all run long: ``rps`` maps service -> requests per second."""

    kind: Literal["constant"]
    rps: PositiveRates = Field(min_length=1)

    def service_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("rps", name), name) for name in self.rps] + self.base_refs()


class Keyframe(Strict):
    """Rates of the named services at one point of the run (missing services: 0)."""

    at: TimeRef
    rps: NonNegativeRates = Field(min_length=1)


class KeyframesTraffic(_TrafficBase):
    """Rates given at keyframes and interpolated between them (``linear``, ``step`` or
    ``log``: geometric, for orders-of-magnitude ramps). Before the first keyframe and after the
    last one the rate holds its end value."""

    kind: Literal["keyframes"]
    interpolation: Literal["linear", "step", "log"] = "linear"
    keyframes: tuple[Keyframe, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_order(self) -> KeyframesTraffic:
        problems: list[tuple[Loc, str]] = []
        for i in range(1, len(self.keyframes)):
            before, at = self.keyframes[i - 1].at, self.keyframes[i].at
            if at <= before:
                problems.append((("keyframes", i, "at"), f"keyframes must be in increasing time "
                                 f"order: {at:g} s is not after the previous keyframe "
                                 f"({before:g} s)"))
        if not any(v > 0 for k in self.keyframes for v in k.rps.values()):
            problems.append((("keyframes",), "at least one keyframe rate must be > 0"))
        if problems:
            raise field_errors(problems)
        return self

    def service_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        refs = [
            (("keyframes", i, "rps", name), name)
            for i, frame in enumerate(self.keyframes)
            for name in frame.rps
        ]
        return refs + self.base_refs()


class SinglesDayTraffic(_TrafficBase):
    """The 11.11 preset (shape from REFERENCE.md; the 2020 order peak came 26 s after midnight).

    Before ``midnight`` the rate climbs from ``evening_ratio`` x peak (two hours before) to
    ``pre_midnight_ratio`` x peak; within ``ramp_s`` after midnight it rises almost vertically to
    ``peak_rps``; it then decays with time constant ``decay_s`` towards ``plateau_ratio`` x peak,
    which follows the daily pattern (low at 4-6 am, climbing after 7, daily high 20-22 h) when
    ``daily_pattern`` is on. ``peak_delay_s`` shifts a service's curve (payments trail orders).
    ``midnight`` defaults to the midnight after ``start_clock``.
    """

    kind: Literal["singles_day"]
    peak_rps: PositiveRates = Field(min_length=1)
    midnight: TimeRef | None = None
    ramp_s: PositiveDuration = 26.0
    decay_s: PositiveDuration = 900.0
    evening_ratio: float = Field(default=0.08, gt=0, le=1)
    pre_midnight_ratio: float = Field(default=0.15, gt=0, le=1)
    plateau_ratio: float = Field(default=0.3, gt=0, le=1)
    daily_pattern: bool = True
    peak_delay_s: dict[str, Annotated[float, Field(ge=0, le=3600)]] = Field(default_factory=dict)

    def service_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        refs = [(("peak_rps", name), name) for name in self.peak_rps]
        refs += [(("peak_delay_s", name), name) for name in self.peak_delay_s]
        return refs + self.base_refs()


class TraceTraffic(_TrafficBase):
    """Replay of a CSV: a ``t_s`` column and one ``<service>_rps`` column per service, path
    relative to the scenario file; interpolated ``linear`` or ``step`` between rows."""

    kind: Literal["trace"]
    path: str = Field(min_length=1)
    interpolation: Literal["linear", "step"] = "linear"

    def service_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        # The CSV's columns are checked against the services when the trace is loaded.
        return self.base_refs()


TRAFFIC_KINDS: tuple[str, ...] = tuple(
    get_args(cls.model_fields["kind"].annotation)[0]
    for cls in (ConstantTraffic, KeyframesTraffic, SinglesDayTraffic, TraceTraffic)
)
"""The values ``traffic.kind`` accepts."""

TrafficSpec = Annotated[
    ConstantTraffic | KeyframesTraffic | SinglesDayTraffic | TraceTraffic,
    Field(discriminator="kind"),
]
