"""Each key of the workflow config is checked once: the schema owns structure, types, ranges and
choices (every key it declares, named when wrong), the package the rules across keys (configs the
schema accepts); one ConfigError names the key; booleans from ``snakemake --config`` are read."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from snakemake.cli import parse_config

from adamnoise.config_schema import check_schema, coerce_cli_booleans, workflow_schema
from adamnoise.errors import ConfigError
from adamnoise.workflow_config import load_experiments

EXPERIMENT = {
    "description": "every key the schema knows",
    "dataset": "pydoc-char",
    "seq_len": 32,
    "train_sequences": 200,
    "budget": {"epochs": 1, "reference_batch_size": 8, "exponent": 0.5},
    "model": {"preset": "gpt-tiny"},
    "optimizer": {"name": "adam"},
    "schedule": {"name": "constant"},
    "training": {"micro_batch_size": 4},
    "tie_betas": False,
    "pack": 2,
    "grid": {
        "batch_size": [8, "full"],
        "beta1": [0.9],
        "beta2": [0.9, 0.999],
        # with beta1 and beta2: the schema accepts both, the package does not (a rule across keys)
        "betas": {
            "normal_curve": {
                "through": {"beta1": 0.9, "beta2": 0.999},
                "beta1_range": [0.9, 0.99],
                "points": 4,
            }
        },
        "lr": [1.0e-3],
        "seed": [0],
    },
    "figures": ["beta2_sweep"],
    "resources": {"gpus": 0, "cpus": 1, "mem_mb": 1000, "runtime": 10},
}
# a config with every key of the schema, valid for the schema
FULL = {
    "results": "results",
    "resources_dir": "resources",
    "active": ["e"],
    "toy_quadratics": False,
    "wikitext2_mirrors": ["https://example.org/wikitext-2-v1.zip"],
    "experiments": {"e": EXPERIMENT, "f": copy.deepcopy(EXPERIMENT)},
    "comparisons": {"c": {"description": "", "figure": "optimizer_gap", "experiments": ["e", "f"]}},
}
WRONG = {"a": "mapping"}  # the wrong type for every key that is not a mapping


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    root = workflow_schema()
    while "$ref" in node:
        node = root["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


def schema_keys(node=None, path=()):
    """(path, schema) of every key the schema declares, names of experiments etc. from FULL."""
    node = resolve(workflow_schema() if node is None else node)
    if path:
        yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schema_keys(child, (*path, name))
    if isinstance(node.get("additionalProperties"), dict):
        name = next(iter(get(FULL, path)))
        yield from schema_keys(node["additionalProperties"], (*path, name))


def get(config, path):
    for part in path:
        config = config[part]
    return config


def with_value(path, value):
    config = copy.deepcopy(FULL)
    get(config, path[:-1])[path[-1]] = value
    return config


KEYS = list(schema_keys())
IDS = [".".join(path) for path, _ in KEYS]


def test_the_full_config_holds_every_key_of_the_schema_and_is_valid():
    assert len(KEYS) > 40
    for path, _ in KEYS:
        get(FULL, path)  # a KeyError names a schema key this test does not exercise
    check_schema(FULL)


@pytest.mark.parametrize(("path", "node"), KEYS, ids=IDS)
def test_the_schema_types_every_key_and_names_it(path, node):
    assert {"type", "enum"} & set(node), f"{'.'.join(path)} accepts any value: give it a type"
    wrong = "a string" if node.get("type") == "object" else WRONG
    with pytest.raises(ConfigError) as error:
        check_schema(with_value(path, wrong))
    assert error.value.key == ".".join(path)
    assert f"{wrong!r}" in str(error.value)


@pytest.mark.parametrize(
    ("path", "node"), [(p, n) for p, n in KEYS if "items" in n], ids=lambda x: x
)
def test_the_schema_checks_every_list_item_naming_the_list(path, node):
    with pytest.raises(ConfigError, match=r"item 1: ") as error:
        check_schema(with_value(path, [get(FULL, path)[0], WRONG]))
    assert error.value.key == ".".join(path)


def product_config(**changes) -> dict:
    """A valid config of one experiment over a beta1 x beta2 grid, with changes at dotted keys
    of the experiment (``grid.lr``); None deletes the key."""
    experiment = copy.deepcopy(EXPERIMENT)
    for key in ("budget", "pack", "train_sequences", "figures"):
        del experiment[key]
    del experiment["grid"]["betas"]
    experiment["grid"]["batch_size"] = [8]
    config = {"active": ["e"], "experiments": {"e": experiment}}
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = get(config, ("experiments", "e", *parents))
        if value is None:
            del node[last]
        else:
            node[last] = value
    return config


RULES_ACROSS_KEYS = [  # (changes, key named): each a config the schema accepts
    ({"dataset": "imagenet"}, "dataset"),
    ({"grid.beta1": None}, "grid.beta1"),
    ({"grid.betas": EXPERIMENT["grid"]["betas"]}, "grid.beta1"),
    ({"tie_betas": True, "grid.beta1": None, "grid.beta2": None, "grid.betas": {
        "normal_curve": {"through": {"beta1": 0.9, "beta2": 0.999}, "beta1_range": [0.9, 0.99],
                         "points": 4}}}, "tie_betas"),
    ({"optimizer.lr": 0.1}, "optimizer.lr"),
    ({"training.seed": 1}, "training.seed"),
    ({"optimizer": {"name": "no-such-optimizer"}}, "optimizer.name"),
    ({"optimizer": {"name": "adam", "momentum": 0.9}}, "optimizer.momentum"),
    ({"optimizer": {"name": "sgd"}, "grid.beta2": [0.9, 0.99]}, "grid.beta2"),
    ({"model": {"preset": "gpt-huge"}}, "model"),
    ({"schedule": {"name": "cosine"}}, "schedule.name"),
    ({"training": {"epochs": "many"}}, "training.epochs"),
    ({"grid.batch_size": [10**6]}, "grid.batch_size"),
    ({"train_sequences": 10**9}, "train_sequences"),
    ({"budget": {"epochs": 1, "reference_batch_size": 8, "exponent": 0.5},
      "training": {"epochs": 2}}, "training.epochs"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "key"), RULES_ACROSS_KEYS, ids=lambda x: str(x)[:40])
def test_rules_across_keys_are_the_packages_and_name_the_key(changes, key):
    config = product_config(**changes)
    check_schema(config)  # not the schema's: checked once, by the package
    with pytest.raises(ConfigError) as error:
        load_experiments(config)
    assert error.value.key == f"experiments.e.{key}", error.value


def test_the_active_list_is_checked_against_the_experiments():
    config = product_config()
    config["active"] = ["e", "nope"]
    check_schema(config)
    with pytest.raises(ConfigError, match=r"^active: unknown experiment 'nope' \(defined: e\)"):
        load_experiments(config)


def test_a_valid_config_loads():
    assert load_experiments(product_config())["e"].run_ids() == [
        "bs8_b1-0.9_b2-0.9_lr-0.001_s0",
        "bs8_b1-0.9_b2-0.999_lr-0.001_s0",
    ]


# ---------------------------------------------------------------------------------------------
# booleans from the command line
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("false", False), ("False", False), ("no", False), ("true", True), ("TRUE", True)],
)
def test_a_boolean_from_snakemake_config_is_read_as_one(text, value):
    overrides = parse_config([f"toy_quadratics={text}"])  # what `snakemake --config` passes
    config = {**product_config(), **overrides}
    # Snakemake reads True and False itself; the rest arrives as a string
    assert coerce_cli_booleans(config) == ([] if text in ("True", "False") else ["toy_quadratics"])
    assert config["toy_quadratics"] is value
    check_schema(config)


def test_a_nested_boolean_is_read_and_a_wrong_word_is_named():
    config = product_config(tie_betas="yes")
    assert coerce_cli_booleans(config) == ["experiments.e.tie_betas"]
    assert config["experiments"]["e"]["tie_betas"] is True
    config = {**product_config(), **parse_config(["toy_quadratics=maybe"])}
    assert coerce_cli_booleans(config) == []
    with pytest.raises(ConfigError, match=r"^toy_quadratics: expected true or false, got 'maybe'"):
        check_schema(config)


# ---------------------------------------------------------------------------------------------
# the one ConfigError
# ---------------------------------------------------------------------------------------------


def test_a_config_error_is_placed_by_key_not_by_rewriting_its_message():
    error = ConfigError("data.seq_len", "must be >= 1, got 0")
    assert isinstance(error, ValueError) and str(error) == "data.seq_len: must be >= 1, got 0"
    placed = error.renamed({"data.seq_len": "seq_len"}).under("experiments.e", note="run x")
    assert placed.key == "experiments.e.seq_len"
    assert str(placed) == "experiments.e.seq_len: must be >= 1, got 0 (run x)"
    assert error.renamed({"data": "x"}).key == "x.seq_len"
    assert error.renamed({"data.seq": "x"}) is error  # whole parts of the key only
    assert ConfigError("", "no key").under("a").key == "a"
    copied = pickle.loads(pickle.dumps(placed))
    assert (copied.key, str(copied)) == (placed.key, str(placed))
