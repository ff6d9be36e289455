"""Durations and wall-clock labels shared by scenario parsing, plots and reports."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def parse_duration_s(value: object) -> float:
    """Seconds from a number (seconds) or a string such as ``"90s"``, ``"15m"``, ``"2h"``.

    Raises ``ValueError`` with the accepted forms when the value cannot be read.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90, '90s', '15m' or '2h'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNIT_S[m.group(2)]
    raise ValueError(f"expected a duration such as 90, '90s', '15m' or '2h', got {value!r}")


def parse_clock_s(value: str) -> float:
    """Seconds after midnight for an ``"HH:MM"`` or ``"HH:MM:SS"`` wall-clock string."""
    m = _CLOCK.match(value)
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
