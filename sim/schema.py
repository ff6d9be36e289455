"""Scenario schema building blocks: strict frozen models, time and duration fields.

Every scenario model derives from ``Strict``: unknown keys are rejected with a "did you mean"
hint, values are frozen after validation. Times in a scenario may be written as seconds from the
start of the run (``90``), as a duration (``"15m"``) or, when the scenario has a ``start_clock``,
as a wall-clock time (``"00:05"``); they are resolved to seconds from t=0 while validating.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sim.units import parse_clock_s, parse_duration_s


class Strict(BaseModel):
    """Frozen model that rejects unknown keys with a suggestion for the closest known one."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    extra_keys: ClassVar[frozenset[str]] = frozenset()
    """Keys accepted besides the fields (spellings a before-validator rewrites)."""

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = set(cls.extra_keys)
        for name, field in cls.model_fields.items():
            known.add(name)
            if field.alias:
                known.add(field.alias)
        for key in data:
            if not isinstance(key, str):
                raise PydanticCustomError(
                    "unknown_key", "keys must be strings, got {key}", {"key": key}
                )
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                allowed = ", ".join(sorted(known))
                raise PydanticCustomError(
                    "unknown_key",
                    "unknown key '{key}'{hint}; expected one of: {allowed}",
                    {"key": key, "hint": hint, "allowed": allowed},
                )
        return data


def _duration(value: Any) -> float:
    seconds = parse_duration_s(value)
    if seconds < 0:
        raise ValueError(f"expected a duration >= 0, got {value!r}")
    return seconds


def _positive_duration(value: Any) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration > 0, got {value!r}")
    return seconds


def resolve_time_s(value: Any, start_clock_s: float | None) -> float:
    """Seconds from t=0 for a scenario time: seconds, a duration, or a clock time."""
    if isinstance(value, str) and ":" in value:
        if start_clock_s is None:
            raise ValueError(
                f"clock time {value!r} needs a top-level 'start_clock'; or give seconds from start"
            )
        return (parse_clock_s(value) - start_clock_s) % 86400.0
    return _duration(value)


def _time_ref(value: Any, info: ValidationInfo) -> float:
    context = info.context or {}
    return resolve_time_s(value, context.get("start_clock_s"))


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds >= 0, written as a number or a string such as ``"90s"``."""

PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]
"""Seconds > 0, written as a number or a string such as ``"90s"``."""

TimeRef = Annotated[float, BeforeValidator(_time_ref)]
"""A point in the run, seconds from t=0 (accepts seconds, ``"15m"`` or clock ``"00:05"``)."""
