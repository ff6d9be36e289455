"""Scenario files: the validated, frozen description of one peak-traffic experiment.

A scenario names its services (any names; the e-commerce trio is ``browse``, ``order`` and
``payment``), the traffic each receives, the SLO each must hold, and optional sections for
autoscaling, cluster/colocation, scheduled faults and load tests. ``sim.model.loader.load_scenario``
reads YAML into these models; every knob of the product is defined once, here.
"""

from __future__ import annotations

import datetime
import math
import re
import zoneinfo
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim.model.service_config import (  # noqa: F401  (re-exported: the scenario's vocabulary)
    Z99,
    Instances,
    Resources,
    Retries,
    Service,
    ServiceTime,
)
from sim.schema import (
    MAX_INSTANCES,
    MAX_LATENCY_MS,
    ClockTime,
    Duration,
    Loc,
    PositiveDuration,
    Strict,
    TimeRef,
    field_errors,
    suggest,
    with_problems,
)
from sim.units import format_duration, parse_clock_s

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class Objectives(Strict):
    """SLO objectives of one service; latencies in ms over completed requests, error rate as a
    fraction of first attempts that finally failed (timed out or shed)."""

    p50_ms: float | None = Field(default=None, gt=0, le=MAX_LATENCY_MS)
    p90_ms: float | None = Field(default=None, gt=0, le=MAX_LATENCY_MS)
    p95_ms: float | None = Field(default=None, gt=0, le=MAX_LATENCY_MS)
    p99_ms: float | None = Field(default=None, gt=0, le=MAX_LATENCY_MS)
    mean_ms: float | None = Field(default=None, gt=0, le=MAX_LATENCY_MS)
    error_rate: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _at_least_one(self) -> Objectives:
        if not self.items():
            raise ValueError("give at least one objective (p50_ms .. p99_ms, mean_ms, error_rate)")
        return self

    def items(self) -> list[tuple[str, float]]:
        """The objectives that are set, as (name, target) pairs in a stable order."""
        return [(k, v) for k, v in self.model_dump().items() if v is not None]


class Fault(Strict):
    """A scheduled failure: at ``at``, remove ``kill_fraction`` (rounded up) or ``kill``
    instances of ``service``; in-flight work fails or drains per ``mode``.

    As a Kubernetes Deployment does, the killed instances are replaced at once by new ones
    that boot for the service's ``boot_s``; ``replace_after_s`` delays the replacements (a
    slow controller, a node to provision) and ``replace: false`` leaves the service without
    them (an autoscaler still restores its ``min``)."""

    at: TimeRef
    service: str
    kill_fraction: float | None = Field(default=None, gt=0, le=1)
    kill: int | None = Field(default=None, ge=1, le=MAX_INSTANCES)
    mode: Literal["fail", "drain"] = "fail"
    replace_after_s: Duration | None = None
    replace: bool = True

    @model_validator(mode="after")
    def _one_amount(self) -> Fault:
        if not self.replace and self.replace_after_s is not None:
            raise field_errors([(("replace_after_s",), "replace_after_s delays replacements; "
                                 "with replace: false there are none (drop one of the two)")])
        if self.kill_fraction is not None and self.kill is not None:
            raise field_errors([(("kill_fraction",), "give kill or kill_fraction, not both")])
        if self.kill_fraction is None and self.kill is None:
            raise ValueError("give kill (a number of instances) or kill_fraction (0 < f <= 1)")
        return self

    def count(self, current: int) -> int:
        """How many of ``current`` instances this fault removes."""
        if self.kill is not None:
            return min(self.kill, current)
        assert self.kill_fraction is not None
        return min(current, math.ceil(self.kill_fraction * current - 1e-9))


from sim.model.autoscaling import AutoscalingSection  # noqa: E402  (after shared types)
from sim.model.cluster_config import ClusterSection  # noqa: E402  (after shared types)
from sim.model.requests_config import LoadTest  # noqa: E402  (after shared types)
from sim.model.traffic_config import SinglesDayTraffic, TrafficSpec  # noqa: E402  (after shared types)

MAX_DURATION_S = 31 * 86400.0
"""Longest run a scenario may describe (a month: long enough for a whole shopping festival)."""


def start_clock_of(data: Any) -> float | None:
    """Seconds after midnight of a scenario mapping's ``start_clock``, if it is a valid one."""
    value = data.get("start_clock") if isinstance(data, dict) else None
    try:
        return parse_clock_s(value)
    except ValueError:
        return None  # reported by the start_clock field's own validation


_TRAFFIC: TypeAdapter[TrafficSpec] = TypeAdapter(TrafficSpec)


def _raw_refs(data: dict[str, Any], context: Any) -> list[tuple[Loc, str]]:
    """Service references of the sections of an invalid scenario that are valid themselves."""
    refs: list[tuple[Loc, str]] = []
    try:
        traffic = _TRAFFIC.validate_python(data.get("traffic"), context=context)
        refs += [(("traffic", *path), name) for path, name in traffic.service_refs()]
    except ValidationError:
        pass  # the traffic section reports its own problems
    slo, faults = data.get("slo"), data.get("faults")
    if isinstance(slo, dict):
        refs += [(("slo", name), name) for name in slo if isinstance(name, str)]
    if isinstance(faults, list):
        for i, fault in enumerate(faults):
            if isinstance(fault, dict) and isinstance(fault.get("service"), str):
                refs.append((("faults", i, "service"), fault["service"]))
    return refs


def _unknown_services(refs: list[tuple[Loc, str]], services: list[str]) -> list[tuple[Loc, str]]:
    """One problem per reference (path, name) to a service that ``services`` lacks."""
    known = ", ".join(services)
    return [
        (path, f"names service '{name}'{suggest(name, services)}, which is not under "
               f"'services' ({known})")
        for path, name in refs if name not in services
    ]


def _document_duration_spelling(schema: dict[str, Any]) -> None:
    """JSON Schema: ``duration`` ("2h") is the other spelling of ``duration_s``; give one."""
    properties = schema["properties"]
    properties["duration"] = {**properties["duration_s"], "title": "Duration"}
    schema["required"] = [k for k in schema.get("required", []) if k != "duration_s"]
    schema["oneOf"] = [{"required": ["duration_s"]}, {"required": ["duration"]}]


class Scenario(Strict):
    """A whole scenario file. Times are seconds from t=0; ``start_clock`` labels t=0."""

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=10_000)
    seed: int = Field(ge=0, le=2**63 - 1)
    duration_s: PositiveDuration
    tick_s: Annotated[PositiveDuration, Field(ge=0.01)] = 1.0
    start_clock: ClockTime | None = None
    start_date: datetime.date | None = None
    """Calendar date of t=0 (with ``start_clock``): places dated cron triggers."""
    timezone: str | None = None
    """IANA time zone of ``start_clock`` (e.g. ``Asia/Shanghai``); UTC when absent."""
    traffic: TrafficSpec
    services: dict[str, Service] = Field(min_length=1)
    slo: dict[str, Objectives] = Field(default_factory=dict)
    autoscaling: AutoscalingSection | None = None
    cluster: ClusterSection | None = None
    faults: tuple[Fault, ...] = ()
    loadtest: LoadTest = LoadTest()
    engine: Literal["exact", "fluid", "auto"] = "auto"
    """Data-plane engine (docs/engines.md); ``--engine`` overrides it."""

    extra_keys: ClassVar[frozenset[str]] = frozenset({"duration"})
    model_config = ConfigDict(json_schema_extra=_document_duration_spelling)

    _base_dir: str = PrivateAttr(default=".")
    _source: str = PrivateAttr(default="<memory>")
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _duration_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict) and "duration" in data:
            if "duration_s" in data:
                raise field_errors([(("duration",), "give duration or duration_s, not both")])
            data = {("duration_s" if k == "duration" else k): v for k, v in data.items()}
        return data

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"expected an IANA time zone such as 'Asia/Shanghai' or "
                                 f"'UTC', got {value!r}") from None
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("expected letters, digits, '.', '_' or '-' (it names a directory)")
        return value

    @field_validator("services")
    @classmethod
    def _check_service_names(cls, value: dict[str, Service]) -> dict[str, Service]:
        bad = [name for name in value if not _NAME.match(name)]
        if bad:
            raise field_errors([((name,), f"service name {name!r}: expected letters, digits, "
                                 "'.', '_' or '-' (it names columns and files)") for name in bad])
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _references_despite_errors(
        cls, data: Any, handler: Callable[[Any], Scenario], info: ValidationInfo
    ) -> Scenario:
        # Pydantic skips after-validators once a field fails; names of unknown services are
        # still worth reporting in the same pass, from the sections that do validate.
        try:
            return handler(data)
        except ValidationError as exc:
            if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
                raise
            refs = _raw_refs(data, info.context)
            problems = _unknown_services(refs, [str(k) for k in data["services"]])
            raise with_problems(exc, problems) from None

    @model_validator(mode="after")
    def _check_references(self) -> Scenario:
        problems: list[tuple[Loc, str]] = []
        if self.duration_s > MAX_DURATION_S:
            problems.append((("duration_s",), f"expected at most {format_duration(MAX_DURATION_S)}"
                             f" (31 days), got {self.duration_s:g} s"))
        if self.tick_s > self.duration_s:
            problems.append((("tick_s",), f"tick_s ({self.tick_s:g} s) must not exceed the "
                             f"duration ({format_duration(self.duration_s)})"))
        refs = [(("traffic", *path), name) for path, name in self.traffic.service_refs()]
        refs += [(("slo", name), name) for name in self.slo]
        refs += [(("faults", i, "service"), f.service) for i, f in enumerate(self.faults)]
        problems += _unknown_services(refs, list(self.services))
        problems += self._time_problems()
        if problems:
            raise field_errors(problems)
        return self

    def _time_problems(self) -> list[tuple[Loc, str]]:
        """Events placed after the end of the run never happen: most likely a clock time that
        wrapped to the next day (``"22:59"`` with ``start_clock: "23:00"``)."""
        problems: list[tuple[Loc, str]] = []
        events: list[tuple[Loc, float]] = [
            (("traffic", "flash_sales", i, "at"), sale.at)
            for i, sale in enumerate(self.traffic.flash_sales)
        ]
        events += [(("faults", i, "at"), fault.at) for i, fault in enumerate(self.faults)]
        for path, at_s in events:
            if at_s >= self.duration_s:
                problems.append((path, f"happens {format_duration(at_s)} after the start, at or "
                                 f"after the end of the run ({format_duration(self.duration_s)})"))
        traffic = self.traffic
        if (
            isinstance(traffic, SinglesDayTraffic)
            and traffic.midnight is None
            and self.start_clock is None
        ):
            problems.append((("traffic", "midnight"), "singles_day needs 'midnight' (a time "
                                 "from the start) or a top-level 'start_clock'"))
        return problems

    @classmethod
    def model_validate(cls, obj: Any, *, context: Any | None = None, **kwargs: Any) -> Self:
        """Validate a scenario mapping; clock times resolve against its own ``start_clock``
        unless ``context`` says otherwise."""
        if context is None:
            context = {"start_clock_s": start_clock_of(obj)}
        return super().model_validate(obj, context=context, **kwargs)

    @property
    def base_dir(self) -> str:
        """Directory of the scenario file; relative paths inside it resolve from here."""
        return self._base_dir

    @property
    def source(self) -> str:
        """Path the scenario was read from (``<memory>`` when built in code)."""
        return self._source

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        """The file line holding ``path`` (or its nearest enclosing key); None if unknown."""
        for end in range(len(path), -1, -1):
            line = self._lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    @property
    def start_time(self) -> datetime.datetime | None:
        """The aware date and time of t=0 (``start_date``, default 2000-01-01, at
        ``start_clock`` in ``timezone``, default UTC), or None without a start clock."""
        clock_s = self.start_clock_s
        if clock_s is None:
            return None
        midnight = datetime.datetime.combine(
            self.start_date or datetime.date(2000, 1, 1), datetime.time(),
            tzinfo=zoneinfo.ZoneInfo(self.timezone or "UTC"))
        return midnight + datetime.timedelta(seconds=clock_s)

    @property
    def start_clock_s(self) -> float | None:
        """Seconds after midnight at t=0, or None when the scenario has no clock."""
        return parse_clock_s(self.start_clock) if self.start_clock else None
