"""Config mistakes named before any job: an empty `active`, a sweep of one value, a YAML syntax
error (file and line)."""

from __future__ import annotations

import copy

import pytest
import yaml
from test_workflow import SMALLEST

from adamnoise.errors import ConfigError
from adamnoise.io import load_yaml
from adamnoise.workflow_config import load_experiments, one_value_sweeps

CONFIG = yaml.safe_load(SMALLEST.read_text())


def test_an_empty_active_list_is_rejected_naming_the_key():
    config = copy.deepcopy(CONFIG)
    config["active"] = []
    with pytest.raises(ConfigError, match=r"^active: empty; .*smallest"):
        load_experiments(config)


def test_a_one_value_sweep_is_named_a_warning_for_a_sweep_and_an_error_for_predictions():
    config = copy.deepcopy(CONFIG)
    smallest = config["experiments"]["smallest"]
    smallest["grid"]["beta2"] = [0.999]
    smallest["figures"] = ["beta2_sweep", "noise_scale"]
    experiment = load_experiments(config)["smallest"]
    (warning,) = one_value_sweeps(experiment)
    assert warning.startswith("experiments.smallest.grid.beta2: one value; figure 'beta2_sweep'")
    smallest["figures"] = ["beta2_predictions"]
    with pytest.raises(ConfigError, match=r"^experiments\.smallest\.grid\.beta2: one value"):
        one_value_sweeps(load_experiments(config)["smallest"])
    assert one_value_sweeps(load_experiments(CONFIG)["smallest"]) == []


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("active: [smallest]\nexperiments:\n  smallest: {dataset: pydoc-char\n")
    with pytest.raises(ValueError, match=rf"^{path}:4:1: invalid YAML: "):
        load_yaml(path)
