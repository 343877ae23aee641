"""Durations in configuration: ``15m``, ``8h``, ``1d 2h``, ``90`` (seconds) or a number."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

__all__ = ["Duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*")
#: Nothing in authcore needs more than ten years; larger values are typos.
_MAX_SECONDS = 10 * 365 * 86400.0


def parse_duration(value: object) -> float:
    """Return *value* in seconds; raise :class:`ValueError` for anything else.

    Accepts non-negative numbers (seconds) and strings made of ``<number><unit>``
    parts, units ``ms s m h d w``.
    """
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '15m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 64:
            raise ValueError("duration string too long")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            pos, seconds = 0, 0.0
            if not text:
                raise ValueError("empty duration")
            while pos < len(text):
                match = _PART.match(text, pos)
                if match is None:
                    raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 8h, 1d)")
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
    else:
        raise ValueError("a duration is a number of seconds or a string like '15m'")
    if not 0 <= seconds <= _MAX_SECONDS or seconds != seconds:
        raise ValueError("duration out of range (0 to 10 years)")
    return seconds


#: A pydantic field type holding seconds as a float.
Duration = Annotated[float, BeforeValidator(parse_duration)]
