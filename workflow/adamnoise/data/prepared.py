"""The *prepared corpus* directory format: tokenisation, writing, ``load_prepared``, statistics.

Format (docs/architecture.md, "Prepared corpus"): ``train.npy``, ``valid.npy``, ``test.npy`` hold
each split as one 1-D ``int32`` stream of token ids; ``vocab.json`` is ``{"level": "word" | "char",
"tokens": [...]}`` (id *i* is ``tokens[i]``); ``stats.json`` holds the measured sizes and, where
known, the published ones side by side. Preparing the same input twice gives the same bytes. The
corpora themselves: ``wikitext2.py``, ``pydoc.py``; their registry: ``corpus.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adamnoise.io import atomic_path, write_json

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
LEVELS = ("word", "char")
CORPUS_FILES = ("train.npy", "valid.npy", "test.npy", "vocab.json", "stats.json")


class CorpusError(Exception):
    """Bad input for preparation, or a prepared corpus that cannot be used; the message says why."""


class MissingCorpusFile(CorpusError, FileNotFoundError):
    """A file of a prepared corpus (or the archive it is made from) does not exist."""


# ----------------------------------------------------------------------------------------------
# tokenisation and vocabularies


def word_tokens(lines: Iterable[str]) -> list[str]:
    """Whitespace tokens of each line, then ``<eos>``; an empty line gives a lone ``<eos>``."""
    tokens: list[str] = []
    for line in lines:
        tokens.extend(line.split())
        tokens.append(EOS)
    return tokens


def text_lines(text: str) -> list[str]:
    """The lines of ``text`` as a text-mode file would yield them (universal newlines)."""
    return list(io.StringIO(text, newline=None))


def build_word_vocab(token_streams: Sequence[Sequence[str]]) -> list[str]:
    """``<eos>`` first, then tokens by decreasing count over all streams, ties by first use."""
    counts: Counter[str] = Counter()
    for stream in token_streams:
        counts.update(token for token in stream if token != EOS)
    # Counter keeps insertion order and sorted() is stable, so equal counts stay in order of
    # first appearance.
    by_count = sorted(counts.items(), key=lambda item: -item[1])
    return [EOS] + [token for token, _ in by_count]


def build_char_vocab(texts: Iterable[str]) -> list[str]:
    """The distinct characters of all texts, sorted by code point."""
    chars: set[str] = set()
    for text in texts:
        chars.update(text)
    return sorted(chars)


def encode(tokens: Sequence[str], vocab: Sequence[str]) -> np.ndarray:
    """Token ids (``int32``) of ``tokens`` (a list of words, or a string of characters)."""
    index = {token: i for i, token in enumerate(vocab)}
    try:
        return np.fromiter((index[t] for t in tokens), dtype=np.int32, count=len(tokens))
    except KeyError as err:
        raise CorpusError(f"token {err.args[0]!r} is not in the vocabulary") from None


def decode(ids: Iterable[int], vocab: Sequence[str], level: str) -> str:
    """Text of token ids: characters joined as they are, words joined by single spaces."""
    separator = "" if level == "char" else " "
    return separator.join(vocab[int(i)] for i in ids)


# ----------------------------------------------------------------------------------------------
# the loaded form


@dataclass
class PreparedCorpus:
    """A prepared corpus in memory: the splits as ``torch.long`` streams, and the vocabulary."""

    train: Any  # torch.LongTensor, 1-D
    valid: Any
    test: Any
    vocab: list[str]
    level: str
    stats: dict = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str):
        """Ids (``torch.long``) of ``text``: its characters, or its words and ``<eos>`` per line."""
        import torch

        tokens = text if self.level == "char" else word_tokens(text_lines(text))
        return torch.from_numpy(encode(tokens, self.vocab).astype(np.int64))

    def decode(self, ids) -> str:
        """Text of a sequence of ids (a tensor or any iterable of ints)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        return decode(ids, self.vocab, self.level)


# ----------------------------------------------------------------------------------------------
# writing and loading the directory format


def write_prepared(
    out_dir: str | os.PathLike,
    streams: dict[str, np.ndarray],
    vocab: Sequence[str],
    level: str,
    stats: dict,
) -> Path:
    """Write a prepared corpus; every file atomically, ``stats.json`` last (it marks completion)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        array = np.ascontiguousarray(streams[split], dtype=np.int32)
        # np.save on a path would append ".npy" to the temporary name, so hand it an open file
        with atomic_path(out / f"{split}.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
    write_json(out / "vocab.json", {"level": level, "tokens": list(vocab)})
    write_json(out / "stats.json", stats)
    return out


def _prepare_command(path: Path) -> str:
    """The command that (re)creates the corpus at ``path`` (named by stats.json or the folder)."""
    from adamnoise.data.corpus import CORPORA  # the registry imports this module

    name = None
    with contextlib.suppress(OSError, json.JSONDecodeError, AttributeError):
        name = json.loads((path / "stats.json").read_text()).get("corpus")
    if name not in CORPORA:
        name = path.name if path.name in CORPORA else None
    if name is None:
        return f"adamnoise data prepare NAME --out {path}` (NAME from `adamnoise data list`"
    archive = " --archive ARCHIVE" if CORPORA[name][1] else ""
    return f"adamnoise data prepare {name} --out {path}{archive}"


def load_prepared(path: str | os.PathLike) -> PreparedCorpus:
    """Load a prepared corpus directory; splits come back as 1-D ``torch.long`` tensors.

    Raises:
        MissingCorpusFile: the directory or one of its files is missing (the message names the
            file and the command that creates it).
        CorpusError: a file is malformed (wrong dtype or shape, ids outside the vocabulary).
    """
    import torch

    path = Path(path)
    missing = [name for name in CORPUS_FILES if not (path / name).is_file()]
    if missing:
        what = "does not exist" if not path.is_dir() else "lacks " + ", ".join(missing)
        raise MissingCorpusFile(
            f"prepared corpus {path} {what}; create it with `{_prepare_command(path)}`"
        )
    try:
        vocab_record = json.loads((path / "vocab.json").read_text())
        stats = json.loads((path / "stats.json").read_text())
    except json.JSONDecodeError as err:
        raise CorpusError(f"{path}: malformed JSON ({err})") from err
    level = vocab_record.get("level")
    vocab = vocab_record.get("tokens")
    if level not in LEVELS or not isinstance(vocab, list) or not vocab:
        raise CorpusError(
            f"{path / 'vocab.json'}: expected {{'level': word|char, 'tokens': [...]}}"
        )

    tensors = {}
    for split in SPLITS:
        file = path / f"{split}.npy"
        try:
            array = np.load(file, allow_pickle=False)
        except ValueError as err:
            raise CorpusError(f"{file}: not a plain .npy array ({err})") from err
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise CorpusError(
                f"{file}: expected a 1-D integer array, got {array.dtype} {array.shape}"
            )
        if array.size and (array.min() < 0 or array.max() >= len(vocab)):
            raise CorpusError(
                f"{file}: token ids range over [{array.min()}, {array.max()}] but the vocabulary "
                f"has {len(vocab)} entries"
            )
        tensors[split] = torch.from_numpy(array.astype(np.int64))
    return PreparedCorpus(vocab=vocab, level=level, stats=stats, **tensors)


# ----------------------------------------------------------------------------------------------
# statistics


def compare_with_published(measured: dict, published: dict) -> list[dict]:
    rows = []
    for quantity in ("tokens", "lines"):
        for split in SPLITS:
            if split in published.get(quantity, {}):
                rows.append(
                    {
                        "quantity": f"{split} {quantity}",
                        "measured": measured[quantity][split],
                        "published": published[quantity][split],
                    }
                )
    rows.append(
        {
            "quantity": "vocabulary",
            "measured": measured["vocab_size"],
            "published": published["vocab_size"],
        }
    )
    for row in rows:
        row["match"] = row["measured"] == row["published"]
    return rows


def format_stats(stats: dict) -> str:
    """A plain-text table of ``stats.json``: measured numbers, published ones and match flags."""
    if stats.get("comparison"):
        header = f"{'quantity':<16}{'measured':>12}{'published':>12}  match"
        lines = [f"{stats['corpus']} ({stats['level']} level)", header, "-" * len(header)]
        for row in stats["comparison"]:
            lines.append(
                f"{row['quantity']:<16}{row['measured']:>12,}{row['published']:>12,}  "
                f"{'yes' if row['match'] else 'NO'}"
            )
        return "\n".join(lines)
    header = f"{'quantity':<16}" + "".join(f"{split:>12}" for split in SPLITS)
    lines = [f"{stats['corpus']} ({stats['level']} level)", header, "-" * len(header)]
    for quantity in ("tokens", "characters", "lines"):
        if quantity in stats:
            lines.append(f"{quantity:<16}" + "".join(f"{stats[quantity][s]:>12,}" for s in SPLITS))
    lines.append(f"{'vocabulary':<16}{stats['vocab_size']:>12,}")
    return "\n".join(lines)
