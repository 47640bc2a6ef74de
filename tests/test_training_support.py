"""Shared helpers of the trainer tests: a small real-text prepared corpus and a tiny run config.

The corpus is real English prose (slices of ``pydoc_data.topics.topics``, which ships with Python)
written in the prepared-corpus format with ``adamnoise.data.corpus.write_prepared``, small enough
that an epoch takes a fraction of a second with the ``gpt-tiny`` model.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

TRAIN_CHARS, VALID_CHARS, TEST_CHARS = 3000, 700, 500


def pydoc_text(n_chars: int) -> str:
    from pydoc_data.topics import topics

    text = "\n".join(topics[key] for key in sorted(topics))
    return text[:n_chars]


def write_tiny_corpus(directory: Path) -> Path:
    from adamnoise.data.corpus import write_prepared

    text = pydoc_text(TRAIN_CHARS + VALID_CHARS + TEST_CHARS)
    splits = {
        "train": text[:TRAIN_CHARS],
        "valid": text[TRAIN_CHARS : TRAIN_CHARS + VALID_CHARS],
        "test": text[TRAIN_CHARS + VALID_CHARS :],
    }
    vocab = sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocab)}
    streams = {
        name: np.array([index[ch] for ch in part], dtype=np.int32) for name, part in splits.items()
    }
    stats = {"corpus": "test-pydoc-slice", "characters": {k: len(v) for k, v in splits.items()}}
    return write_prepared(directory, streams, vocab, "char", stats)


TINY_RUN = {
    "run_id": "unit",
    "data": {"corpus": None, "seq_len": 16},
    "model": {"preset": "gpt-tiny", "n_layer": 1, "d_model": 32, "d_mlp": 64},
    "optimizer": {
        "name": "adam",
        "lr": 3.0e-3,
        "beta1": 0.9,
        "beta2": 0.99,
        "eps": 1.0e-6,
        "weight_decay": 0.0,
    },
    "schedule": {"name": "constant"},
    "training": {
        "seed": 0,
        "batch_size": 8,
        "micro_batch_size": 2,
        "epochs": 2,
        "eval_every": 0.5,
        "eval_batch_size": 16,
        "test_at_best": True,
        "checkpoint_every": 0,
        "device": "cpu",
        "num_threads": 1,
        "noise_scale_horizon": 0.5,
    },
}


def tiny_run(corpus: Path, **training) -> dict:
    """The tiny run config as a dict, with ``training`` overrides."""
    run = copy.deepcopy(TINY_RUN)
    run["data"]["corpus"] = str(corpus)
    run["training"].update(training)
    return run


def test_tiny_corpus_is_loadable_real_text(tmp_path):
    from adamnoise.data.corpus import load_prepared

    corpus = load_prepared(write_tiny_corpus(tmp_path / "corpus"))
    assert corpus.train.numel() == TRAIN_CHARS
    assert corpus.valid.numel() == VALID_CHARS
    assert corpus.test.numel() == TEST_CHARS
    assert " the " in corpus.decode(corpus.train)


def adamnoise(*args, **kwargs) -> subprocess.Popen:
    """``python -m adamnoise ARGS`` from the repository, one torch thread, output captured."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "adamnoise", *args],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
