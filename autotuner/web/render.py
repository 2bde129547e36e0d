"""Templates: a Jinja2 environment over the package's ``templates/``, autoescaping everything."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

try:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
except ImportError as e:  # the web extra
    from autotuner.web import WebExtraMissingError

    raise WebExtraMissingError(e.name) from None


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def _speedup(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.4g} ms"


def _query(base: dict[str, Any], **changes: Any) -> str:
    """``?a=1&b=2``: the page's query with ``changes`` (None or "" drops a key)."""
    merged = {**base, **changes}
    kept = {k: v for k, v in merged.items() if v not in (None, "", False)}
    return "?" + urlencode(kept) if kept else "?"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("autotuner.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates are package data: never re-read per request
    )
    env.filters.update(num=_num, speedup=_speedup, pct=_pct, ms=_ms)
    env.globals.update(query=_query)
    return env


def render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(**context)
