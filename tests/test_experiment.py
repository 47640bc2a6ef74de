"""Experiment configs expand into stable grids of runs; bad configs are rejected naming the key."""

import copy

import pytest
import yaml
from experiment_fixtures import changed_config

from adamnoise.errors import ConfigError
from adamnoise.experiment import Experiment, GridPoint
from adamnoise.workflow_config import load_experiments

BASE = yaml.safe_load(
    """
active: [sweep]
experiments:
  sweep:
    dataset: pydoc-char
    seq_len: 32
    model: {preset: gpt-tiny}
    optimizer: {name: adam, eps: 1.0e-6}
    training: {micro_batch_size: 4, epochs: 1}
    grid:
      batch_size: [8, 16]
      beta1: [0.9]
      beta2: [0.9, 0.99, 0.999]
      lr: [1.0e-3, 3.16e-4]
      seed: [0, 1]
"""
)


def config_with(**changes):
    return changed_config(BASE, "sweep", **changes)


def test_run_id_is_readable_and_stable():
    point = GridPoint(batch_size=64, beta1=0.9, beta2=0.999, lr=1e-3, seed=0)
    assert point.run_id == "bs64_b1-0.9_b2-0.999_lr-0.001_s0"
    assert (
        GridPoint(128, 0.9, 0.769, 3.1622776e-4, 2).run_id
        == "bs128_b1-0.9_b2-0.769_lr-0.000316228_s2"
    )


def test_grid_is_the_product_of_the_axes():
    experiment = load_experiments(BASE)["sweep"]
    assert len(experiment.points()) == 2 * 1 * 3 * 2 * 2
    assert len(set(experiment.run_ids())) == len(experiment.points())


def test_adding_an_axis_value_only_adds_runs():
    before = set(load_experiments(BASE)["sweep"].run_ids())
    after = set(
        load_experiments(config_with(grid__beta2=[0.9, 0.99, 0.999, 0.9999]))["sweep"].run_ids()
    )
    assert before < after
    assert len(after - before) == 2 * 2 * 2
    assert all("b2-0.9999" in run_id for run_id in after - before)


def test_run_config_carries_the_grid_point():
    experiment = load_experiments(BASE)["sweep"]
    point = experiment.point("bs16_b1-0.9_b2-0.99_lr-0.000316_s1")
    run = experiment.run_config(point, "results/data/pydoc-char")
    assert run["optimizer"] == {
        "name": "adam",
        "eps": 1e-6,
        "lr": 3.16e-4,
        "beta1": 0.9,
        "beta2": 0.99,
    }
    assert run["training"]["batch_size"] == 16 and run["training"]["seed"] == 1
    assert run["data"] == {"corpus": "results/data/pydoc-char", "seq_len": 32}


def test_tied_betas_fold_beta1_into_beta2():
    config = config_with(tie_betas=True)
    experiment = load_experiments(config)["sweep"]
    assert all(p.beta1 == p.beta2 for p in experiment.points())
    assert "beta1" not in experiment.grid_dims()
    assert len(experiment.points()) == 2 * 3 * 2 * 2


@pytest.mark.parametrize(
    ("changes", "named_key"),
    [
        ({"training__epochs": "many"}, "training.epochs"),
        ({"training__learning_rate": 0.1}, "training.learning_rate"),
        ({"optimizer__lr": 0.1}, "optimizer.lr"),
        ({"training__batch_size": 4}, "training.batch_size"),
        ({"grid__beta2": [0.9, 0.9]}, "grid.beta2"),
        ({"dataset": "imagenet"}, "dataset"),
        ({"model": {"preset": "gpt-huge"}}, "gpt-huge"),
    ],
)
def test_bad_experiment_is_rejected_naming_the_key(changes, named_key):
    with pytest.raises(ConfigError, match=named_key.replace(".", r"\.")):
        load_experiments(config_with(**changes))


def test_unknown_active_experiment_is_rejected():
    config = copy.deepcopy(BASE)
    config["active"] = ["sweep", "nope"]
    with pytest.raises(ConfigError, match="active: unknown experiment 'nope'"):
        load_experiments(config)


def test_experiment_dims_follow_the_grid():
    experiment = Experiment("x", BASE["experiments"]["sweep"])
    assert experiment.grid_dims() == ("batch_size", "beta1", "beta2", "lr", "seed")
    assert experiment.axis_values("lr") == [1e-3, 3.16e-4]


def test_full_batch_resolves_to_the_number_of_training_sequences():
    experiment = load_experiments(config_with(grid__batch_size=[8, "full"]))["sweep"]
    n = experiment.num_train_sequences
    # pydoc-char's training split cut into 32-character sequences
    from adamnoise.data.corpus import train_token_count

    assert n == (train_token_count("pydoc-char") - 1) // 32
    assert experiment.axis_values("batch_size") == [8, n]
    assert f"bs{n}_b1-0.9_b2-0.9_lr-0.001_s0" in experiment.run_ids()
    run = experiment.run_config(experiment.point(f"bs{n}_b1-0.9_b2-0.9_lr-0.001_s0"), "d")
    assert run["training"]["batch_size"] == n


def test_a_subset_sets_n_and_full_batch():
    experiment = load_experiments(config_with(train_sequences=200, grid__batch_size=[8, "full"]))[
        "sweep"
    ]
    assert experiment.num_train_sequences == 200
    assert experiment.axis_values("batch_size") == [8, 200]
    run = experiment.run_config(experiment.points()[0], "d")
    assert run["data"]["train_sequences"] == 200


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"train_sequences": 200, "grid__batch_size": [8, 256]}, "256 exceeds N = 200"),
        ({"train_sequences": 200, "grid__batch_size": [150]}, "150 is realised as 1 batch"),
        (
            {"train_sequences": 200, "grid__batch_size": [200, "full"]},
            "200 and full both give 1 batch(es)",
        ),
        ({"train_sequences": 200, "grid__batch_size": [100, 99]}, "both give 2 batch(es)"),
        ({"train_sequences": 10**9}, "train_sequences: 1000000000 exceeds"),
    ],
)
def test_impossible_batch_sizes_fail_at_parse_time(changes, fragment):
    with pytest.raises(ConfigError, match="experiments.sweep") as error:
        load_experiments(config_with(**changes))
    assert fragment in str(error.value)


def test_budget_scales_the_epoch_cap_with_batch_size():
    budget = {"epochs": 4, "reference_batch_size": 8, "exponent": 0.5}
    config = config_with(train_sequences=512, grid__batch_size=[8, 32, "full"], budget=budget)
    del config["experiments"]["sweep"]["training"]["epochs"]
    experiment = load_experiments(config)["sweep"]
    epochs = {
        p.batch_size: experiment.run_config(p, "d")["training"]["epochs"]
        for p in experiment.points()
    }
    assert epochs == {8: 4.0, 32: 8.0, 512: 32.0}
    with pytest.raises(ConfigError, match="training.epochs: set by budget.epochs"):
        load_experiments(config_with(budget=budget))


def test_paper_config_plans_only_runs_that_can_run():
    """Seed 000's largest batch (16384) exceeds WikiText-2's N = 16,317 at seq_len 128."""
    from pathlib import Path

    config = yaml.safe_load((Path(__file__).parents[1] / "config/paper.yaml").read_text())
    experiments = load_experiments(config)
    for experiment in experiments.values():
        assert experiment.num_train_sequences == 16_317
        assert max(experiment.axis_values("batch_size")) == 16_317
    config["experiments"]["paper-beta2"]["grid"]["batch_size"] = [128, 16384]
    with pytest.raises(ConfigError, match=r"paper-beta2\.grid\.batch_size: 16384 exceeds N"):
        load_experiments(config)


def test_every_run_id_matches_the_workflow_pattern():
    """The run_id wildcard (RUN_ID_PATTERN) matches every id the shipped configs generate."""
    import re
    from pathlib import Path

    import yaml

    from adamnoise.experiment import RUN_ID_PATTERN

    repo = Path(__file__).resolve().parents[1]
    base = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    pattern = re.compile(RUN_ID_PATTERN)
    for path in [repo / "config" / "ladder.yaml", *sorted((repo / "config/seeds").glob("*.yaml"))]:
        config = {**base, **yaml.safe_load(path.read_text())}
        for experiment in load_experiments(config).values():
            for run_id in experiment.run_ids():
                assert pattern.fullmatch(run_id), (path.name, run_id)


def test_packs_hold_one_batch_size_and_one_lr():
    experiment = load_experiments(config_with(pack=4))["sweep"]
    packs = experiment.packs
    assert sorted(packs) == sorted(
        f"bs{b}_lr{lr}_p{i}" for b in (8, 16) for lr in ("0p001", "0p000316") for i in (0, 1)
    )
    assert sorted(r for runs in packs.values() for r in runs) == sorted(experiment.run_ids())
    for pack_id, run_ids in packs.items():
        points = [experiment.point(r) for r in run_ids]
        assert len({(p.batch_size, p.lr) for p in points}) == 1, pack_id
        assert len(run_ids) == (4 if pack_id.endswith("_p0") else 2)  # 6 runs per (b, lr)
