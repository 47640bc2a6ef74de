"""The workflow config's schema, ``workflow/schemas/config.schema.yaml``: the one validator of the
config's structure and of each value's type, range and choices.

``check_schema(config)`` raises ``ConfigError`` naming the dotted key of the first value at fault
(``experiments.sweep.grid.lr``) and what the schema expects there; ``load_experiments`` runs it
before the rules that span several keys (``adamnoise.workflow_config``), so that every caller, not
only the Snakefile, gets the same checks. ``coerce_cli_booleans(config)`` turns the strings that
``snakemake --config toy_quadratics=false`` passes into the booleans the schema asks for.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from adamnoise.errors import ConfigError

__all__ = ["SCHEMA_PATH", "check_schema", "coerce_cli_booleans", "workflow_schema"]

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"

# what `snakemake --config key=value` passes for a boolean (any case): Snakemake itself reads
# only True and False, everything else as a YAML string
CLI_TRUE = ("true", "yes", "on")
CLI_FALSE = ("false", "no", "off")

_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


@functools.cache
def workflow_schema() -> dict[str, Any]:
    """The schema, parsed, with the figure names injected from the registry (``adamnoise
    .figures.config_schema``; cached: do not modify it)."""
    from adamnoise.figures import config_schema

    return config_schema(yaml.safe_load(SCHEMA_PATH.read_text()))


def check_schema(config: Any, schema: dict[str, Any] | None = None) -> None:
    """Raise ``ConfigError`` for the first value the schema rejects (the shallowest, so that a
    wrong section is named before the values inside it)."""
    schema = workflow_schema() if schema is None else schema
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(config))
    if errors:
        raise _config_error(min(errors, key=lambda error: len(error.absolute_path)))


def coerce_cli_booleans(config: dict[str, Any], schema: dict[str, Any] | None = None) -> list[str]:
    """Where the schema wants a boolean and the config holds ``"true"``/``"false"`` (also
    yes/no, on/off, any case), put the boolean; return the dotted keys changed. Other strings
    stay, for the schema to reject naming the key."""
    schema = workflow_schema() if schema is None else schema
    changed: list[str] = []
    _coerce(config, schema, schema, "", changed)
    return changed


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, got {ref!r}")
        node = functools.reduce(lambda n, part: n[part], ref[2:].split("/"), root)
    return node


def _coerce(value: Any, node: Any, root: dict[str, Any], key: str, changed: list[str]) -> Any:
    node = _resolve(node, root)
    if not isinstance(node, dict):
        return value
    if node.get("type") == "boolean" and isinstance(value, str):
        text = value.strip().lower()
        if text in CLI_TRUE + CLI_FALSE:
            changed.append(key)
            return text in CLI_TRUE
        return value
    if isinstance(value, dict):
        properties = node.get("properties", {})
        for name in value:
            child = properties.get(name, node.get("additionalProperties"))
            if child is not None:
                value[name] = _coerce(value[name], child, root, _join(key, name), changed)
    elif isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            value[i] = _coerce(item, node["items"], root, key, changed)
    return value


def describe(node: dict[str, Any]) -> str:
    """What a (resolved) subschema accepts: ``an integer >= 2``, ``a number in (0, 1)``."""
    if "const" in node:
        return repr(node["const"])
    if "enum" in node:
        return "one of " + ", ".join(map(str, node["enum"]))
    for combinator in ("anyOf", "oneOf"):
        if combinator in node:
            return " or ".join(describe(option) for option in node[combinator])
    kind = node.get("type")
    words = _TYPE_WORDS.get(kind, "a value") if isinstance(kind, str) else "a value"
    low = ("(", node["exclusiveMinimum"]) if "exclusiveMinimum" in node else None
    low = ("[", node["minimum"]) if "minimum" in node else low
    high = (")", node["exclusiveMaximum"]) if "exclusiveMaximum" in node else None
    high = ("]", node["maximum"]) if "maximum" in node else high
    if low and high:
        return f"{words} in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{words} {'>=' if low[0] == '[' else '>'} {low[1]}"
    if high:
        return f"{words} {'<=' if high[0] == ']' else '<'} {high[1]}"
    if kind == "array" and "minItems" in node:
        return f"{words} of at least {node['minItems']} value(s)"
    return words


def _config_error(error: jsonschema.ValidationError) -> ConfigError:
    path = list(error.absolute_path)
    index = next((i for i, part in enumerate(path) if isinstance(part, int)), len(path))
    key = ".".join(str(part) for part in path[:index])
    where = "" if index == len(path) else f"item {path[index]}: "
    value, rule, node = error.instance, error.validator_value, error.schema
    if error.validator == "required":
        missing = next(name for name in rule if name not in value)
        return ConfigError(_join(key, missing), "required key is missing")
    if error.validator == "additionalProperties":
        allowed = list(node.get("properties", {}))
        extra = next(name for name in value if name not in allowed)
        return ConfigError(_join(key, extra), f"unknown key (allowed: {', '.join(allowed)})")
    if error.validator == "uniqueItems":
        return ConfigError(key, f"values repeat: {value}")
    if error.validator == "propertyNames":
        return ConfigError(key, f"{error.message} (names allowed: {describe(rule)})")
    if error.validator in ("minItems", "maxItems"):
        bound = "at least" if error.validator == "minItems" else "at most"
        return ConfigError(key, f"{where}expected {bound} {rule} value(s), got {value!r}")
    if error.validator == "pattern":
        return ConfigError(key, f"{where}{value!r} does not match {rule}")
    if error.validator in ("enum", "const"):
        return ConfigError(key, f"{where}{value!r} is not {describe(node)}")
    return ConfigError(key, f"{where}expected {describe(node)}, got {value!r}")


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name
