"""Configs as trees of frozen dataclasses, on the ground floor (imports only ``errors``).

``build_dataclass(cls, raw, prefix)`` builds a dataclass from a parsed YAML mapping, checking each
value against the field's type hint and raising ``ConfigError`` that names ``prefix + key`` for an
unknown or missing key and a value of the wrong type; ``dataclass_schema(cls)`` describes the same
tree as a JSON schema. The run config (``adamnoise.training.config``) and the optimiser registry
(``adamnoise.optim.configs``) both build on them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from adamnoise.errors import ConfigError

__all__ = ["build_dataclass", "coerce", "dataclass_schema"]


def build_dataclass(cls: type, raw: Any, prefix: str = "") -> Any:
    """Dataclass ``cls`` from a parsed mapping; ``ConfigError`` names ``prefix + key`` for an
    unknown or missing key and a value of the wrong type."""
    if not isinstance(raw, dict):
        raise ConfigError(prefix.rstrip(".") or "<root>", f"expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise ConfigError(f"{prefix}{key}", f"unknown key (allowed: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(key, "required key is missing")
            continue
        values[name] = coerce(hints[name], raw[name], key)
    return cls(**values)


# the plain type hints (and dict[...]): the types a value may have, and what the error expects
_PLAIN_HINTS: dict[type, tuple[Any, str]] = {
    dict: (dict, "a mapping"),
    bool: (bool, "true/false"),
    int: (int, "an integer"),
    float: (int | float, "a number"),
    str: (str, "a string"),
}


def coerce(hint: Any, value: Any, key: str) -> Any:
    """Check ``value`` against a type hint; ints are accepted where floats are expected."""
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, key + ".")
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return coerce(inner, value, key)
    if origin is dict:
        hint = dict
    if hint in _PLAIN_HINTS:
        accepted, expected = _PLAIN_HINTS[hint]
        # bool is an int subclass: true/false is no integer or number here
        if not isinstance(value, accepted) or (isinstance(value, bool) and hint is not bool):
            raise ConfigError(key, f"expected {expected}, got {value!r}")
        return hint(value)
    raise TypeError(f"unsupported type hint {hint!r} for {key}")  # a bug here, not in the config


def _schema_of(hint: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(hint):
        return dataclass_schema(hint)
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return {"anyOf": [_schema_of(a) for a in typing.get_args(hint)]}
    if origin is dict:
        return {"type": "object"}
    return {
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        float: {"type": "number"},
        str: {"type": "string"},
        type(None): {"type": "null"},
    }[hint]


def dataclass_schema(cls: type) -> dict[str, Any]:
    """JSON schema of a dataclass tree: types, required keys, defaults (not value rules)."""
    hints = typing.get_type_hints(cls)
    properties, required = {}, []
    for f in dataclasses.fields(cls):
        prop = _schema_of(hints[f.name])
        if f.default is not dataclasses.MISSING:
            prop["default"] = f.default
        elif f.default_factory is dataclasses.MISSING:
            required.append(f.name)
        properties[f.name] = prop
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema
