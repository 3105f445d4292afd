"""The value types of monitor's settings — durations, rates, templates, secrets — and the
strict base every settings model derives from. A leaf: `monitor.config` builds the whole
configuration from them, and each plugin (a channel, say) declares its own settings with
them, without importing the configuration that collects it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> float:
    """'15m', '1h30m', '90s', '2d' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '15m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("duration must not be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '15m'")
    return _parse_duration_text(value)


@lru_cache(maxsize=256)
def _parse_duration_text(value: str) -> float:
    """`parse_duration` of a string; cached, as 10,000 watches repeat a few intervals."""
    text = value.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {value!r} (use e.g. '90s', '15m', '2h', '1d', '1h30m')")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


Duration = Annotated[float, BeforeValidator(parse_duration)]

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")
_RATE_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_rate(value: str) -> tuple[int, float]:
    """'10/h', '100/d', '5/10m' -> (messages, per seconds)."""
    match = _RATE.match(value.lower())
    if not match or match.group(3) not in _RATE_UNITS or int(match.group(1)) < 1:
        raise ValueError(f"invalid rate {value!r} (use e.g. '10/h', '100/d', '5/10m')")
    per = int(match.group(2) or 1) * _RATE_UNITS[match.group(3)]
    if per <= 0:
        raise ValueError(f"invalid rate {value!r}: the period must not be zero")
    return int(match.group(1)), float(per)


def parsed_by(parse: Callable[[str], object]) -> AfterValidator:
    """A text field kept as written, refused at load when `parse` raises ValueError."""

    def check(value: str) -> str:
        parse(value)
        return value

    return AfterValidator(check)


RateLimit = Annotated[str, parsed_by(parse_rate)]


def parse_template(source: str | None, where: str = "") -> None:
    """Refuse a template with a syntax error at load time, naming the template's line."""
    if source is None:
        return
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        ImmutableSandboxedEnvironment().parse(source)
    except TemplateSyntaxError as err:
        raise ValueError(f"{where}template line {err.lineno}: {err.message}") from None


TemplateText = Annotated[str, parsed_by(parse_template)]


class Strict(BaseModel):
    # Unknown keys are almost always typos ("intervall"); reject them instead of ignoring.
    model_config = ConfigDict(extra="forbid", frozen=True)


def read_secret(env: str | None, file: Path | None) -> str | None:
    # Secrets live in the environment or a file, never in the config file or the logs.
    if env:
        return os.environ.get(env)
    if file:
        return file.read_text(encoding="utf-8").strip()
    return None
