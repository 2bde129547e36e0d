"""Configuration tables checked by pydantic, and its errors turned into one line a person can act on.

Why pydantic: types, ranges and unknown keys are declared once beside the fields, instead of
hand-written coercion per key. Models here are strict (``"8"`` is not an integer, ``true`` is
not a number) and forbid unknown keys. A failure becomes one :class:`ConfigError` naming the
file, the key as ``table.key``, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from autotuner.errors import ConfigError

STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
M = TypeVar("M", bound=BaseModel)

_EXPECTED = {  # pydantic error type -> what the user should have written
    "int_type": "an integer", "int_from_float": "an integer", "float_type": "a number",
    "bool_type": "true or false", "string_type": "a string", "list_type": "a list",
    "dict_type": "a table", "model_type": "a table", "tuple_type": "a list", "literal_error": None,
}  # fmt: skip


def section_model(cls: type, *, constraints: Mapping[str, Mapping[str, Any]] | None = None,
                  types: Mapping[str, Any] | None = None) -> type[BaseModel]:
    """A strict pydantic model with the fields (names, types, defaults) of dataclass ``cls``.

    The dataclass stays the one place fields are declared; ``constraints`` adds ranges
    (``{"islands": {"ge": 1}}``) and ``types`` narrows a field's type (``Literal[...]``).
    """
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = (types or {}).get(f.name, hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        fields[f.name] = (Annotated[kind, Field(**dict((constraints or {}).get(f.name, {})))], default)
    return create_model(f"{cls.__name__}Table", __config__=STRICT, **fields)


def _key(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _value(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the (nested) model that holds the key at ``loc``."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        candidates, pending = [], [field.annotation]
        while pending:  # every type nested in the annotation: unions, list items, ...
            arg = pending.pop()
            candidates.append(arg)
            pending.extend(typing.get_args(arg))
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return sorted(getattr(current, "model_fields", {}))


_TYPE_NAME = re.compile(r"^(str|int|float|bool|none|(list|dict|tuple|union)\[.*|[A-Z]\w*|function-.*|tagged-union.*)$")
_BOUNDS = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"), "less_than": ("<", "lt"),
           "less_than_equal": ("<=", "le")}  # fmt: skip


def _clean(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The key path without the union-member labels pydantic puts in it (``str``, ``ModelTable``)."""
    return tuple(p for p in loc if not (isinstance(p, str) and _TYPE_NAME.match(p)))


def _expected(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _BOUNDS:
        sign, name = _BOUNDS[kind]
        return f"expected a number {sign} {ctx.get(name)}"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} item(s)"
    if kind == "string_too_short":
        return "expected a non-empty string"
    if _EXPECTED.get(kind):
        return f"expected {_EXPECTED[kind]}"
    message = error["msg"].removeprefix("Value error, ")
    return message.replace("Input should be", "expected")


def describe(error: ValidationError, where: str, model: type[BaseModel]) -> str:
    """One line for the most specific problem (and how many more there are).

    A value that fits none of a union's members yields one error per member; the deepest one
    (the entry inside the list, the field inside the table) is the one that says what to fix.
    """
    errors = error.errors(include_url=False)
    first = max(errors, key=lambda e: len(_clean(e["loc"])))
    loc = _clean(first["loc"])
    same = [e for e in errors if _clean(e["loc"]) == loc]
    others = {c for c in (_clean(e["loc"]) for e in errors) if c != loc[: len(c)]}  # not this key or its parents
    key, value = _key(loc), _value(first.get("input"))
    if first["type"] == "extra_forbidden":
        table = _key(loc[:-1])
        text = (f"unknown key {key} = {value}; valid keys" + (f" in [{table}]" if table else "")
                + f": {', '.join(_valid_keys(model, loc))}")
    elif first["type"] == "missing":
        text = f"{key} is missing"
    else:
        wanted = list(dict.fromkeys(_expected(e).removeprefix("expected ") for e in same))
        text = f"{key} = {value}: expected {' or '.join(wanted)}"
    more = len(others)  # other keys with a problem (a union's members count once)
    return f"{where}: {text}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def validate(model: type[M], data: Any, where: str) -> M:
    """``model`` checked from ``data``; a :class:`ConfigError` of one line if it does not fit."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(describe(e, where, model)) from None
