"""Run config loading and validation (adamnoise.training.config)."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from adamnoise.training.config import (
    TRAINING_DEFAULTS,
    ConfigError,
    RunConfig,
    config_differences,
    load_run_config,
    run_config_schema,
)

REPO = Path(__file__).resolve().parents[1]
TINY_YAML = REPO / "config" / "runs" / "tiny.yaml"


def raw_tiny() -> dict:
    return yaml.safe_load(TINY_YAML.read_text())


def test_example_config_loads_with_every_field():
    config = load_run_config(TINY_YAML)
    raw = raw_tiny()
    assert config.run_id == "tiny"
    assert config.data.corpus == "results/data/pydoc-char"
    assert config.data.seq_len == 64
    assert config.model == {"preset": "gpt-tiny"}
    assert config.optimizer["name"] == "adam"
    assert config.training.batch_size == 32
    assert config.training.micro_batch == 8 < config.training.batch_size  # B_simple is measured
    assert config.training.checkpoint_every > 0
    # every training key the example sets is read back unchanged
    for key, value in raw["training"].items():
        assert getattr(config.training, key) == value, key


def test_round_trip_and_defaults():
    config = RunConfig.from_dict(raw_tiny())
    assert RunConfig.from_dict(config.to_dict()) == config
    minimal = {
        "run_id": "m",
        "data": {"corpus": "x", "seq_len": 8},
        "model": {"preset": "gpt-tiny"},
        "optimizer": {"name": "adam", "lr": 1e-3},
    }
    config = RunConfig.from_dict(minimal)
    assert config.schedule == {"name": "constant"}
    for key, value in TRAINING_DEFAULTS.items():
        assert getattr(config.training, key) == value
    assert config.training.micro_batch == config.training.batch_size  # None means whole batch


@pytest.mark.parametrize(
    ("edit", "key", "fragment"),
    [
        (
            lambda r: r["training"].update(micro_batch_sizee=4),
            "training.micro_batch_sizee",
            "unknown",
        ),
        (lambda r: r.update(extra=1), "extra", "unknown"),
        (lambda r: r["data"].update(seq_len="64"), "data.seq_len", "integer"),
        (lambda r: r["training"].update(batch_size=32.0), "training.batch_size", "integer"),
        (lambda r: r["training"].update(test_at_best=1), "training.test_at_best", "true/false"),
        (lambda r: r["training"].update(seed=True), "training.seed", "integer"),
        (
            lambda r: r["training"].update(micro_batch_size=0),
            "training.micro_batch_size",
            ">= 1",
        ),
        (lambda r: r["training"].update(patience=0), "training.patience", ">= 1"),
        (lambda r: r["data"].update(train_sequences=0), "data.train_sequences", ">= 1"),
        (lambda r: r["training"].update(device="tpu"), "training.device", "one of"),
        (lambda r: r["training"].update(precision="fp16"), "training.precision", "one of"),
        (
            lambda r: r["training"].update(noise_scale_horizon=0.0),
            "training.noise_scale_horizon",
            "positive",
        ),
        (lambda r: r["training"].update(eval_every=0), "training.eval_every", "positive"),
        (lambda r: r["training"].update(max_steps=0), "training.max_steps", ">= 1"),
        (lambda r: r["data"].pop("seq_len"), "data.seq_len", "missing"),
        (lambda r: r["optimizer"].pop("name"), "optimizer.name", "missing"),
        (lambda r: r.update(training=[1]), "training", "mapping"),
    ],
)
def test_errors_name_the_offending_key(edit, key, fragment):
    raw = copy.deepcopy(raw_tiny())
    edit(raw)
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(raw)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
    assert fragment in str(info.value)


def test_schema_accepts_example_and_rejects_type_errors():
    schema = run_config_schema()
    jsonschema.validate(raw_tiny(), schema)
    bad = raw_tiny()
    bad["training"]["batch_size"] = "32"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad = raw_tiny()
    bad["training"]["unknown_key"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    assert schema["properties"]["training"]["properties"]["noise_scale_horizon"]["default"] == 1.0


def test_config_differences_names_nested_keys():
    old = RunConfig.from_dict(raw_tiny()).to_dict()
    new = copy.deepcopy(old)
    new["training"]["batch_size"] = 64
    new["optimizer"]["beta2"] = 0.95
    assert config_differences(old, new) == [
        "optimizer.beta2 (0.99 -> 0.95)",
        "training.batch_size (32 -> 64)",
    ]
    assert config_differences(old, old) == []
