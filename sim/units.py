"""Durations and wall-clock labels shared by scenario parsing, plots and reports."""

from __future__ import annotations

import math
import re

# A sign is accepted so that "-5m" is reported as out of range rather than as unreadable;
# compound forms ("1h30m", as format_duration writes them) read back.
_DURATION = re.compile(r"^\s*([-+]?)\s*((?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*)+|\d+(?:\.\d+)?)\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def parse_duration_s(value: object) -> float:
    """Seconds from a number (seconds) or a string such as ``"90s"``, ``"15m"``, ``"2h"``,
    ``"1h30m"`` or ``"250ms"`` (units ms, s, m, h, d; a bare number is seconds).

    The result may be negative (callers check their range); it is always finite. Raises
    ``ValueError`` with the accepted forms when the value cannot be read.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite duration, got {value!r}")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            parts = _DURATION_PART.findall(m.group(2))
            seconds = sum(float(number) * _UNIT_S[unit or None] for number, unit in parts)
            return -seconds if m.group(1) == "-" else seconds
    shown = "true" if value is True else "false" if value is False else repr(value)
    raise ValueError(f"expected a duration such as 90, '90s', '15m' or '2h', got {shown}")


def parse_clock_s(value: object) -> float:
    """Seconds after midnight for an ``"HH:MM"`` or ``"HH:MM:SS"`` wall-clock string.

    Raises ``ValueError`` for anything else (including numbers: YAML 1.1 reads an unquoted
    ``23:00`` as the base-60 integer 1380, which peaksim's loader prevents).
    """
    m = _CLOCK.match(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"expected a clock time 'HH:MM' or 'HH:MM:SS', got {value!r}")
    h, mi, se = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 23 or mi > 59 or se > 59:
        raise ValueError(f"expected a clock time between 00:00 and 23:59:59, got {value!r}")
    return float(h * 3600 + mi * 60 + se)


def clock_label(t_s: float, start_clock_s: float | None) -> str:
    """Label for simulation time ``t_s``: wall-clock ``HH:MM[:SS]`` if t=0 has a clock, else
    elapsed ``+H:MM:SS``."""
    if start_clock_s is None:
        total = int(round(t_s))
        return f"+{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
    total = int(round(start_clock_s + t_s)) % 86400
    h, rem = divmod(total, 3600)
    mi, se = divmod(rem, 60)
    return f"{h:02d}:{mi:02d}" if se == 0 else f"{h:02d}:{mi:02d}:{se:02d}"


def format_duration(seconds: float) -> str:
    """Human-readable duration: ``"2h"``, ``"15m"``, ``"1h30m"``, ``"45s"``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    h, rem = divmod(s, 3600)
    mi, se = divmod(rem, 60)
    parts = [f"{h}h" if h else "", f"{mi}m" if mi else "", f"{se}s" if se else ""]
    return "".join(parts)
