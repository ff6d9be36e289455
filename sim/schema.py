"""Scenario schema building blocks: strict frozen models, time and duration fields.

Every scenario model derives from ``Strict``: unknown keys are rejected with a "did you mean"
hint (while the known keys are still checked, so one pass reports every problem), booleans are
not taken for numbers, non-finite numbers are refused and values are frozen after validation.
Times in a scenario may be written as seconds from the start of the run (``90``), as a duration
(``"15m"``) or, when the scenario has a ``start_clock``, as a wall-clock time (``"00:05"``);
they are resolved to seconds from t=0 while validating.

Validators that find problems in named fields raise ``field_errors(...)``: one pydantic error
per field, located at that field, so that messages point at the exact key of the file.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from sim.units import parse_clock_s, parse_duration_s

Loc = tuple[str | int, ...]

# Ranges of scenario numbers (docs/scenarios.md, "Limits"): wide enough for any real system,
# narrow enough that whatever validates can run (no overflow, no empty or endless arrays).
MAX_LATENCY_MS = 86_400_000.0
"""Service times, timeouts, backoffs and SLO targets: at most a day (in ms)."""
MIN_LATENCY_MS = 0.001
"""Mean service times: at least 1 µs (the histograms' resolution)."""
MAX_INSTANCES = 100_000
"""Instances of one service (and instances a fault kills)."""
MAX_QUEUE = 10_000_000
"""``max_queue`` per instance."""
MAX_RATE_RPS = 10_000_000.0
"""A rate in the traffic section (the 2020 11.11 peak was 583,000 orders/s)."""
MIN_SCALE = 1e-6
MAX_RATE_SCALE = 1000.0
MAX_TIME_SCALE = 10_000.0


def _closest(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(word: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices``, or ``""``. ``aliases`` maps
    other names of the same thing (``hpa`` -> ``target_tracking``) so that a suggestion is made
    by meaning as well as by spelling; an alias counts only when its target is a choice."""
    options = list(choices)
    key = word.strip().lower().replace("-", "_").replace(" ", "_")
    meant = (aliases or {}).get(key)
    close = meant if meant in options else _closest(word, options)
    return f" (did you mean '{close}'?)" if close else ""


def _is_missing(detail: InitErrorDetails) -> bool:
    error = detail["type"]
    return isinstance(error, PydanticCustomError) and error.type == "missing"


def field_errors(problems: Sequence[tuple[Loc, str]], title: str = "scenario") -> ValidationError:
    """A ``ValidationError`` with one ``field_error`` per (path, message).

    Raised from a validator, each path is taken relative to the model being validated.
    """
    details = [
        InitErrorDetails(type=PydanticCustomError("field_error", message), loc=loc, input=None)
        for loc, message in problems
    ]
    return ValidationError.from_exception_data(title, details)


def _mentions(annotation: Any, kinds: tuple[type, ...]) -> bool:
    if annotation is Any:
        return bool in kinds
    if annotation in kinds:
        return True
    return any(_mentions(arg, kinds) for arg in typing.get_args(annotation))


def _bool_problems(field_name: str, annotation: Any, value: Any) -> list[tuple[Loc, str]]:
    """Booleans written where numbers belong: pydantic would read ``true`` as 1."""
    if _mentions(annotation, (bool,)) or not _mentions(annotation, (int, float)):
        return []
    expected = "expected a number, got"
    if isinstance(value, bool):
        return [((field_name,), f"{expected} {str(value).lower()}")]
    if isinstance(value, dict):
        return [((field_name, str(k)), f"{expected} {str(v).lower()}")
                for k, v in value.items() if isinstance(v, bool)]
    if isinstance(value, list | tuple):
        return [((field_name, i), f"{expected} {str(v).lower()}")
                for i, v in enumerate(value) if isinstance(v, bool)]
    return []


def _unknown_key_error(key: Any, known: set[str]) -> InitErrorDetails:
    if not isinstance(key, str):
        error = PydanticCustomError("unknown_key", "keys must be text, got {key}", {"key": key})
    else:
        error = PydanticCustomError(
            "unknown_key",
            "unknown key '{key}'{hint}; expected one of: {allowed}",
            {"key": key, "hint": suggest(key, sorted(known)), "allowed": ", ".join(sorted(known))},
        )
    return InitErrorDetails(type=error, loc=(str(key),), input=key)


def _as_details(exc: ValidationError) -> list[InitErrorDetails]:
    """Re-wrap the errors of ``exc`` so that they can be raised together with others."""
    out: list[InitErrorDetails] = []
    for error in exc.errors(include_url=False):
        detail = InitErrorDetails(
            type=PydanticCustomError(error["type"], error["msg"], error.get("ctx")),
            loc=tuple(error["loc"]),
            input=error.get("input"),
        )
        out.append(detail)
    return out


def with_problems(
    exc: ValidationError, problems: Sequence[tuple[Loc, str]], title: str = "scenario"
) -> ValidationError:
    """``exc`` plus one ``field_error`` per (path, message) whose path ``exc`` does not flag."""
    details = _as_details(exc)
    flagged = {d["loc"] for d in details}
    extra = [(loc, message) for loc, message in problems if loc not in flagged]
    return ValidationError.from_exception_data(title, details + _as_details(field_errors(extra)))


class Strict(BaseModel):
    """Frozen model that rejects unknown keys with a suggestion for the closest known one."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )
    extra_keys: ClassVar[frozenset[str]] = frozenset()
    """Keys accepted besides the fields (spellings a before-validator rewrites)."""

    @model_validator(mode="wrap")
    @classmethod
    def _reject_unknown_keys(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        known = set(cls.extra_keys)
        for name, field in cls.model_fields.items():
            known.add(name)
            if field.alias:
                known.add(field.alias)
        unknown = [key for key in data if key not in known]
        details = [_unknown_key_error(key, known) for key in unknown]
        # A misspelt required key is reported once, as unknown with its suggestion.
        meant = {_closest(key, known) for key in unknown if isinstance(key, str)}
        for name, field in cls.model_fields.items():
            if name in data:
                bad = _bool_problems(name, field.annotation, data[name])
                details += _as_details(field_errors(bad)) if bad else []
        if not details:
            return handler(data)
        # Check the rest anyway, so that one run of `peaksim validate` lists every problem.
        rest = {k: v for k, v in data.items() if k in known}
        try:
            handler(rest)
        except ValidationError as exc:
            flagged = {d["loc"] for d in details}
            for detail in _as_details(exc):
                loc = detail["loc"]
                misspelt = len(loc) == 1 and loc[0] in meant and _is_missing(detail)
                if loc not in flagged and not misspelt:
                    details.append(detail)
        raise ValidationError.from_exception_data(cls.__name__, details)


MAX_DURATION_S = 366 * 86400.0
"""Every duration and time in a scenario is at most a year (366 days)."""
MIN_POSITIVE_DURATION_S = 0.001
"""A duration that must be positive is at least 1 ms (nothing in a scenario is shorter)."""


def _duration(value: Any) -> float:
    seconds = parse_duration_s(value)
    if seconds < 0:
        raise ValueError(f"expected a duration >= 0, got {value!r}")
    return _at_most_a_year(seconds, value)


def _positive_duration(value: Any) -> float:
    seconds = parse_duration_s(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration > 0, got {value!r}")
    if seconds < MIN_POSITIVE_DURATION_S:
        raise ValueError(f"expected a duration of at least {MIN_POSITIVE_DURATION_S:g} s, "
                         f"got {value!r}")
    return _at_most_a_year(seconds, value)


def _at_most_a_year(seconds: float, value: Any) -> float:
    if seconds > MAX_DURATION_S:
        raise ValueError(f"expected at most {MAX_DURATION_S:g} s (366 days), got {value!r}")
    return seconds


def resolve_time_s(value: Any, start_clock_s: float | None) -> float:
    """Seconds from t=0 for a scenario time: seconds, a duration, or a clock time.

    A clock time is the first moment at or after t=0 with that clock reading (so with
    ``start_clock: "23:00"``, ``"00:05"`` is 3900 s).
    """
    if isinstance(value, str) and ":" in value:
        if start_clock_s is None:
            raise ValueError(
                f"clock time {value!r} needs a top-level 'start_clock'; or give seconds from start"
            )
        return (parse_clock_s(value) - start_clock_s) % 86400.0
    seconds = parse_duration_s(value)
    if seconds < 0:
        raise ValueError(f"expected a time >= 0 (seconds from the start), got {value!r}")
    return _at_most_a_year(seconds, value)


def _time_ref(value: Any, info: ValidationInfo) -> float:
    context = info.context or {}
    return resolve_time_s(value, context.get("start_clock_s"))


def _clock(value: Any) -> str:
    parse_clock_s(value)
    return str(value).strip()


_DURATION_INPUT = float | str  # what a file may hold; documented in the JSON Schema

Duration = Annotated[float, BeforeValidator(_duration, json_schema_input_type=_DURATION_INPUT)]
"""Seconds >= 0, written as a number or a string such as ``"90s"``."""

PositiveDuration = Annotated[
    float, BeforeValidator(_positive_duration, json_schema_input_type=_DURATION_INPUT)
]
"""Seconds > 0, written as a number or a string such as ``"90s"``."""

TimeRef = Annotated[float, BeforeValidator(_time_ref, json_schema_input_type=_DURATION_INPUT)]
"""A point in the run, seconds from t=0 (accepts seconds, ``"15m"`` or clock ``"00:05"``)."""

ClockTime = Annotated[str, BeforeValidator(_clock, json_schema_input_type=str)]
"""A wall-clock time ``"HH:MM"`` or ``"HH:MM:SS"``."""
