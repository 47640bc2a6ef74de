"""The whole training path on a device other than the CPU: ``device: meta``.

Meta tensors have shapes and a device but no values, and an operation that meets a tensor on
another device raises, as on a GPU. So a single run and both pack engines are trained here end to
end on ``meta`` — batching, forward and backward, the B_simple norms, the max-update, the
optimiser step, evaluation, the exact B_simple and the test perplexity at the best weights,
checkpoint save and resume — and any tensor the code leaves on the host (the CUDA crash of a
CPU-built index window was one) fails these tests on a machine without a GPU.
"""

from __future__ import annotations

import io

import pytest
import torch
import xarray as xr
from test_training_support import tiny_run, write_tiny_corpus

from adamnoise.training.batches import SequenceCut
from adamnoise.training.checkpoint import checkpoint_file
from adamnoise.training.config import RunConfig
from adamnoise.training.trainer import Trainer

META = torch.device("meta")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus") / "pydoc-slice")


def meta_raw(corpus, run_id: str = "meta", seed: int = 0, dropout: float = 0.0, **training):
    raw = tiny_run(
        corpus, device="meta", epochs=1, seed=seed, exact_noise_scale=True, test_at_best=True,
        **training,
    )  # fmt: skip
    raw["run_id"] = run_id
    raw["model"]["dropout"] = dropout
    raw["data"]["train_sequences"] = 48  # the exact B_simple takes one pass per sequence
    return raw


def on_meta(tensors) -> bool:
    return all(t.device == META for t in tensors)


def train_with_resume(configs, outs, tmp_path) -> Trainer:
    """Two steps, a checkpoint, a resume in a new trainer, then the run to its end (6 steps)."""
    first = Trainer(configs, outs, progress_stream=io.StringIO())
    for _ in range(2):
        first.train_step()
    first.save_checkpoint()
    resumed = Trainer(configs, outs, resume=True, progress_stream=io.StringIO())
    assert resumed.step == 2 and resumed.total_steps == 6
    resumed.run()
    assert not checkpoint_file(resumed.checkpoint_dir).exists()
    return resumed


def test_a_single_run_trains_on_meta(corpus, tmp_path):
    out = tmp_path / "single.nc"
    trainer = train_with_resume(RunConfig.from_dict(meta_raw(corpus)), out, tmp_path)
    slot = trainer.engine.slots[0]
    assert on_meta(slot.model.parameters()) and on_meta(slot.model.buffers())
    state = [v for s in slot.optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    assert state and on_meta(state)
    assert on_meta(trainer.members[0].best_state.values())
    with xr.open_dataset(out) as ds:
        assert ds.attrs["status"] == "completed" and ds.attrs["provenance_device"] == "meta"
        assert ds.sizes["train_step"] == trainer.total_steps


@pytest.mark.parametrize(
    "dropout, engine", [(0.0, "stacked"), (0.2, "sequential")], ids=["stacked", "sequential"]
)
def test_a_pack_trains_on_meta(corpus, tmp_path, dropout, engine):
    configs = [
        RunConfig.from_dict(meta_raw(corpus, f"m{seed}", seed=seed, dropout=dropout))
        for seed in (0, 1)
    ]
    outs = [tmp_path / "m0.nc", tmp_path / "m1.nc"]
    trainer = train_with_resume(configs, outs, tmp_path)
    assert trainer.engine.kind == engine
    for out in outs:
        with xr.open_dataset(out) as ds:
            assert ds.attrs["pack_engine"] == engine and ds.attrs["provenance_device"] == "meta"


def test_meta_catches_a_tensor_left_on_the_host():
    """The property the tests above rely on: mixing devices raises on meta as on CUDA."""
    stream = torch.arange(100, device=META)
    with pytest.raises(RuntimeError, match="device"):
        stream[torch.arange(4)] + torch.arange(4)
    SequenceCut(stream, 8, 0).batch(torch.arange(4, device=META))  # built on the stream's device
