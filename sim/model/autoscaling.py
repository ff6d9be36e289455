"""The scenario's ``autoscaling:`` section: control-loop timing and named policy variants.

```yaml
autoscaling:
  default: hpa          # the variant `peaksim run` uses (absent: no autoscaling)
  interval_s: 15        # control period: decide() every 15 s (HPA sync period)
  scrape_s: 15          # metrics scraped every 15 s ...
  window_s: 60          # ... and averaged over the last 60 s
  variants:
    static-peak: {policy: static, instances: {browse: 16, order: 7}}
    hpa: {policy: target_tracking, metric: utilization, target: 0.6}
```

Each variant is validated by its policy's ``Params`` model when the scenario loads, so errors
carry field paths such as ``autoscaling.variants.hpa.target``. Checks that need the scenario's
services (unknown service names, counts beyond ``instances.max``, a predictive ``lead_s``
shorter than boot time + one interval) are in ``check_autoscaling``, which the loader calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from sim.policies.autoscaling import (
    POLICIES,
    POLICY_ALIASES,
    HpaSettings,
    KubernetesParams,
    PredictiveParams,
    ScheduledParams,
    StaticParams,
    StepParams,
)
from sim.schema import PositiveDuration, Strict, suggest

if TYPE_CHECKING:
    from sim.model.service_config import Service

PathKey = tuple[str | int, ...]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _tag(policy: str) -> str:
    # Capitalised tags: the loader drops such parts of an error location (they are not keys
    # of the YAML), so paths read autoscaling.variants.<name>.<field>.
    return "".join(part.capitalize() for part in policy.split("_"))


class _UnknownPolicy(BaseModel):
    """Stands in for a variant whose ``policy`` is missing or unknown, to report that."""

    model_config = ConfigDict(extra="allow", frozen=True)
    policy: str

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("expected a mapping with a 'policy' key and its parameters")
        return data

    @field_validator("policy")
    @classmethod
    def _unknown(cls, value: str) -> str:
        known = sorted(POLICIES)
        raise PydanticCustomError(
            "unknown_name",
            "unknown policy {value}{hint}; expected one of: {known}",
            # repr: a control character in the name must not break the one-line message
            {"value": repr(value), "hint": suggest(value, known, POLICY_ALIASES),
             "known": ", ".join(known)},
        )


def _variant_tag(value: Any) -> str:
    name = value.get("policy") if isinstance(value, dict) else getattr(value, "policy", None)
    return _tag(name) if isinstance(name, str) and name in POLICIES else "Unknown"


Variant = Annotated[
    Union[  # noqa: UP007  (built from the registry at import time)
        tuple(Annotated[cls.Params, Tag(_tag(name))] for name, cls in POLICIES.items())
        # Not in the JSON Schema: it only exists to report unknown names with a suggestion.
        + (Annotated[_UnknownPolicy, Tag("Unknown"), SkipJsonSchema()],)
    ],
    Discriminator(_variant_tag),
]
"""One variant: the Params model of the policy its ``policy`` key names."""


class AutoscalingSection(Strict):
    """The ``autoscaling`` section of a scenario (see the module docstring)."""

    # Field order matters: validators of later fields see the earlier ones in info.data.
    interval_s: PositiveDuration = 15.0
    scrape_s: PositiveDuration = 15.0
    window_s: PositiveDuration = 60.0
    variants: dict[str, Variant] = Field(default_factory=dict)
    default: str | None = None

    @field_validator("window_s")
    @classmethod
    def _check_window(cls, value: float, info: ValidationInfo) -> float:
        scrape_s = info.data.get("scrape_s")
        if scrape_s is not None and value < scrape_s:
            raise ValueError(
                f"window_s ({value:g}) must be at least scrape_s ({scrape_s:g}): "
                "a window must hold one scrape"
            )
        return value

    @field_validator("variants")
    @classmethod
    def _check_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"variant name {name!r}: expected letters, digits, '.', '_', '-'")
        return value

    @field_validator("default")
    @classmethod
    def _check_default(cls, value: str | None, info: ValidationInfo) -> str | None:
        variants = info.data.get("variants")
        if value is None or variants is None or value in variants:
            return value  # (invalid variants are reported on their own)
        known = sorted(variants)
        listed = ", ".join(known) if known else "none defined"
        raise PydanticCustomError(
            "unknown_name",
            "'{value}' is not a variant{hint}; variants: {known}",
            {"value": value, "hint": suggest(value, known), "known": listed},
        )


def check_autoscaling(
    section: AutoscalingSection, services: Mapping[str, Service]
) -> list[tuple[PathKey, str]]:
    """Problems that need the scenario's services, as (path from the scenario root, message)."""
    problems: list[tuple[PathKey, str]] = []
    for vname, params in section.variants.items():
        base: PathKey = ("autoscaling", "variants", vname)
        refs: list[tuple[PathKey, str, int | None]] = []  # path, service, count to bound
        if isinstance(params, StaticParams):
            refs += [(("instances", s), s, n) for s, n in params.instances.items()]
        if isinstance(params, ScheduledParams):
            refs += [
                (("schedule", i, "instances", s), s, n)
                for i, entry in enumerate(params.schedule)
                for s, n in entry.instances.items()
            ]
        if isinstance(params, StepParams):
            refs += [(("services", s), s, None) for s in params.services]
        if isinstance(params, PredictiveParams):
            refs += [(("services", i), s, None) for i, s in enumerate(params.services or ())]
        if isinstance(params, KubernetesParams):
            refs += [(("services", s), s, None) for s in params.services]
        own = isinstance(params, HpaSettings)
        hpa = params if own else getattr(params, "target_tracking", None)
        prefix: PathKey = () if own else ("target_tracking",)
        if isinstance(hpa, HpaSettings):
            refs += [((*prefix, "services", s), s, None) for s in hpa.services]
        for path, name, count in refs:
            if name not in services:
                problems.append((
                    (*base, *path),
                    f"names service {name!r}, which is not under 'services' "
                    f"({', '.join(sorted(services))})",
                ))
            elif count is not None and count > services[name].instances.max:
                problems.append((
                    (*base, *path),
                    f"{count} instances exceed services.{name}.instances.max "
                    f"({services[name].instances.max})",
                ))
        if isinstance(hpa, HpaSettings):
            problems += _check_hpa_bounds(hpa, services, (*base, *prefix))
        if isinstance(params, PredictiveParams):
            problems += _check_lead(params, section, services, base)
    return problems


def _check_hpa_bounds(
    hpa: HpaSettings, services: Mapping[str, Service], base: PathKey
) -> list[tuple[PathKey, str]]:
    problems: list[tuple[PathKey, str]] = []
    for name, service in services.items():
        if not hpa.enabled(name):
            continue
        config = hpa.resolve(name)
        where: PathKey = ("services", name) if name in hpa.services else ()
        if config.min_replicas > service.instances.max:
            problems.append((
                (*base, *where, "min_replicas"),
                f"min_replicas ({config.min_replicas}) exceeds services.{name}.instances.max "
                f"({service.instances.max})",
            ))
    return problems


def _check_lead(
    params: PredictiveParams,
    section: AutoscalingSection,
    services: Mapping[str, Service],
    base: PathKey,
) -> list[tuple[PathKey, str]]:
    scaled = [s for s in (params.services or tuple(services)) if s in services]
    if not scaled:
        return []
    slowest = max(scaled, key=lambda s: services[s].boot_s)
    needed = services[slowest].boot_s + section.interval_s
    if params.lead_s + 1e-9 >= needed:
        return []
    return [((*base, "lead_s"), (
        f"lead_s ({params.lead_s:g} s) must be at least boot_s of '{slowest}' "
        f"({services[slowest].boot_s:g} s) + interval_s ({section.interval_s:g} s) = "
        f"{needed:g} s: capacity started at the first control step that sees the rise "
        "must be ready when it arrives"
    ))]
