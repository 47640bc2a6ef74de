"""Corpus preparation into the *prepared corpus* directory format, and ``load_prepared``.

Format (docs/architecture.md, "Prepared corpus"): ``train.npy``, ``valid.npy``, ``test.npy`` hold
each split as one 1-D ``int32`` stream of token ids; ``vocab.json`` is ``{"level": "word" | "char",
"tokens": [...]}`` (id *i* is ``tokens[i]``); ``stats.json`` holds the measured sizes and, where
known, the published ones side by side. Preparing the same input twice gives the same bytes.

Corpora
-------
``wikitext2``
    Seed 000's corpus, prepared by its protocol (Kunstner et al. 2023, who use Transformer-XL's
    loader; see reference-facts.md): read straight from ``wikitext-2-v1.zip``
    (``wikitext-2/wiki.{train,valid,test}.tokens``), every line split on whitespace, case kept,
    ``<eos>`` appended to **every** line (an empty line becomes a lone ``<eos>``). The vocabulary
    is built over all three splits: ``<eos>`` is id 0, the other tokens follow by decreasing count,
    ties in order of first appearance (train, valid, test), which is Transformer-XL's ordering.

    The published counts (Merity et al. 2016: 2,088,628 / 217,646 / 245,569 tokens, 33,278 words)
    **include** the ``<eos>`` tokens, one per line (36,718 / 3,760 / 4,358 lines): the PyTorch
    ``word_language_model`` example and torchtext's ``WikiText2``, which both append ``<eos>`` per
    line, report 2,088,628 training tokens and a 33,278-entry vocabulary that contains ``<eos>``.
    So the files hold 2,088,628 - 36,718 = 2,051,910 whitespace tokens in train (217,646 - 3,760 =
    213,886 in valid, 245,569 - 4,358 = 241,211 in test) and 33,277 distinct words. ``stats.json``
    puts the counts of our preparation next to the published ones with a match flag per item, so
    this statement is checked every time the real archive is prepared.

``pydoc-char`` and ``pydoc-word`` (the offline default)
    The corpus for tests and for CPU-sized experiments must exist without network access. Python's
    standard library ships ``pydoc_data.topics.topics``: 79 topics of English reference prose from
    the Python documentation (about 465,000 characters, 65,000 words, code examples included). The
    document is the topics sorted by key, each ending in a newline, joined by a blank line. It is
    cut into three *contiguous* blocks, train / valid / test = 90 / 5 / 5 % of the characters: each
    cut is made at the paragraph boundary (the start of a line that follows an empty line) nearest
    to 90 % and to 95 % of the characters. Cutting at topic boundaries instead would leave only
    2.5 % for test (the last topics are few and unevenly sized), and cutting inside a paragraph
    would split a sentence across splits. The text depends on the Python version, so ``stats.json``
    records the version and the sha256 of the document.

    ``pydoc-char`` is the character stream itself (newlines included; vocabulary: the distinct
    characters of all splits, sorted by code point). ``pydoc-word`` applies the WikiText rule above
    (whitespace tokens, ``<eos>`` per line, same vocabulary ordering).

Measured statistics of the pydoc corpora are in docs/data.md.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adamnoise.data.download import REMOTE_FILES, sha256_of
from adamnoise.io import atomic_path, write_json

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
LEVELS = ("word", "char")
CORPUS_FILES = ("train.npy", "valid.npy", "test.npy", "vocab.json", "stats.json")

# corpus name -> (level, needs an archive, one-line description)
CORPORA: dict[str, tuple[str, bool, str]] = {
    "wikitext2": ("word", True, "WikiText-2 word level, seed 000's protocol (needs the archive)"),
    "pydoc-char": ("char", False, "Python's pydoc topics, character level (offline)"),
    "pydoc-word": (
        "word",
        False,
        "Python's pydoc topics, word level with <eos> per line (offline)",
    ),
}

WIKITEXT2_MEMBERS = {split: f"wiki.{split}.tokens" for split in SPLITS}
WIKITEXT2_PUBLISHED = {
    "source": "Merity et al. 2016 (tokens, vocabulary); line counts of the archive's files",
    "tokens": {"train": 2_088_628, "valid": 217_646, "test": 245_569},
    "lines": {"train": 36_718, "valid": 3_760, "test": 4_358},
    "vocab_size": 33_278,
}

PYDOC_SPLIT_FRACTIONS = (0.90, 0.05, 0.05)


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


def _comparison(measured: dict, published: dict) -> list[dict]:
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


# ----------------------------------------------------------------------------------------------
# WikiText-2


def _zip_member(archive: zipfile.ZipFile, basename: str) -> str:
    matches = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == basename]
    if len(matches) != 1:
        raise CorpusError(
            f"{archive.filename}: expected exactly one member named {basename}, found {matches}"
        )
    return matches[0]


def read_wikitext2(archive_path: str | os.PathLike) -> dict[str, list[str]]:
    """Token stream of each split (words and ``<eos>`` per line), read straight from the zip."""
    archive_path = Path(archive_path)
    if not archive_path.is_file():
        raise MissingCorpusFile(
            f"WikiText-2 archive {archive_path} does not exist; fetch it with "
            f"`adamnoise data download wikitext2 --out {archive_path}`"
        )
    try:
        with zipfile.ZipFile(archive_path) as archive:
            streams = {}
            for split in SPLITS:
                member = _zip_member(archive, WIKITEXT2_MEMBERS[split])
                with archive.open(member) as raw:
                    text = io.TextIOWrapper(raw, encoding="utf-8", newline=None)
                    streams[split] = word_tokens(text)
    except zipfile.BadZipFile as err:
        raise CorpusError(f"{archive_path} is not a zip archive ({err})") from err
    return streams


def prepare_wikitext2(archive_path: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
    """Prepare WikiText-2 by seed 000's protocol; returns the statistics written to stats.json."""
    streams = read_wikitext2(archive_path)
    vocab = build_word_vocab([streams[s] for s in SPLITS])
    measured = {
        "tokens": {s: len(streams[s]) for s in SPLITS},
        "lines": {s: streams[s].count(EOS) for s in SPLITS},
        "vocab_size": len(vocab),
    }
    remote = REMOTE_FILES["wikitext2"]
    archive_sha256 = sha256_of(archive_path)
    if archive_sha256 != remote.sha256:
        log.warning(
            "%s has sha256 %s, not that of the published %s (%s)",
            archive_path,
            archive_sha256,
            remote.filename,
            remote.sha256,
        )
    comparison = _comparison(measured, WIKITEXT2_PUBLISHED)
    stats = {
        "corpus": "wikitext2",
        "level": "word",
        **measured,
        "published": WIKITEXT2_PUBLISHED,
        "comparison": comparison,
        "all_match": all(row["match"] for row in comparison),
        "protocol": "whitespace tokens, case kept, <eos> appended to every line; vocabulary over "
        "all splits, <eos> = 0, then by decreasing count, ties by first appearance",
        "source": {
            "archive": Path(archive_path).name,
            "archive_sha256": archive_sha256,
            "archive_is_published_file": archive_sha256 == remote.sha256,
        },
    }
    write_prepared(out_dir, {s: encode(streams[s], vocab) for s in SPLITS}, vocab, "word", stats)
    return stats


# ----------------------------------------------------------------------------------------------
# pydoc topics (offline)


def pydoc_document() -> tuple[str, list[tuple[str, int]]]:
    """The pydoc topics as one text, sorted by key and separated by blank lines.

    Returns the text and, for each topic, its key and the offset where it starts.
    """
    from pydoc_data.topics import topics

    parts: list[str] = []
    starts: list[tuple[str, int]] = []
    offset = 0
    for key in sorted(topics):
        body = topics[key] if topics[key].endswith("\n") else topics[key] + "\n"
        starts.append((key, offset))
        parts.append(body)
        offset += len(body) + 1  # the "\n" that joins it to the next topic
    return "\n".join(parts), starts


def paragraph_cuts(text: str, fractions: Sequence[float]) -> list[int]:
    """Cut offsets for contiguous splits with the given fractions of the characters.

    Each cut is the paragraph boundary (offset of a line that follows an empty line) nearest to its
    target ``len(text) * cumulative fraction``; ``len(fractions) - 1`` cuts are returned.
    """
    if abs(sum(fractions) - 1.0) > 1e-9 or any(f <= 0 for f in fractions):
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions}")
    boundaries = np.array(
        [m.start() for m in re.finditer(r"(?<=\n\n)", text) if m.start() < len(text)]
    )
    if boundaries.size == 0:
        raise CorpusError("the text has no paragraph boundary to cut at")
    cuts = []
    cumulative = 0.0
    for fraction in fractions[:-1]:
        cumulative += fraction
        target = cumulative * len(text)
        cuts.append(int(boundaries[np.argmin(np.abs(boundaries - target))]))
    if len(set(cuts)) != len(cuts) or cuts != sorted(cuts):
        raise CorpusError(f"text too short for the split fractions {fractions}: cuts at {cuts}")
    return cuts


def pydoc_splits() -> tuple[dict[str, str], dict]:
    """Train / valid / test texts of the pydoc document, and where they were cut."""
    text, starts = pydoc_document()
    cuts = paragraph_cuts(text, PYDOC_SPLIT_FRACTIONS)
    edges = [0, *cuts, len(text)]
    texts = {split: text[edges[i] : edges[i + 1]] for i, split in enumerate(SPLITS)}

    def topic_at(offset: int) -> str:
        return [key for key, start in starts if start <= offset][-1]

    layout = {
        "document_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "document_characters": len(text),
        "topics": len(starts),
        "python": sys.version.split()[0],
        "split_rule": "topics sorted by key, joined by blank lines; contiguous blocks of 90/5/5 % "
        "of the characters, cut at the paragraph boundary nearest to each target",
        "split_offsets": {s: [edges[i], edges[i + 1]] for i, s in enumerate(SPLITS)},
        "split_topics": {
            s: [topic_at(edges[i]), topic_at(edges[i + 1] - 1)] for i, s in enumerate(SPLITS)
        },
    }
    return texts, layout


def prepare_pydoc(out_dir: str | os.PathLike, level: str) -> dict:
    """Prepare ``pydoc-char`` or ``pydoc-word``; returns the statistics written to stats.json."""
    texts, layout = pydoc_splits()
    if level == "char":
        streams: dict[str, Sequence[str]] = texts
        vocab = build_char_vocab(texts[s] for s in SPLITS)
    elif level == "word":
        streams = {s: word_tokens(text_lines(texts[s])) for s in SPLITS}
        vocab = build_word_vocab([streams[s] for s in SPLITS])
    else:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    stats = {
        "corpus": f"pydoc-{level}",
        "level": level,
        "tokens": {s: len(streams[s]) for s in SPLITS},
        "characters": {s: len(texts[s]) for s in SPLITS},
        "lines": {s: len(text_lines(texts[s])) for s in SPLITS},
        "vocab_size": len(vocab),
        "published": None,
        "protocol": "characters as they are"
        if level == "char"
        else "whitespace tokens, case kept, <eos> appended to every line; vocabulary over all "
        "splits, <eos> = 0, then by decreasing count, ties by first appearance",
        "source": {"pydoc_data.topics": layout},
    }
    write_prepared(out_dir, {s: encode(streams[s], vocab) for s in SPLITS}, vocab, level, stats)
    return stats


@functools.cache
def train_token_count(name: str) -> int:
    """Tokens of the named corpus's training split, known before it is prepared.

    The workflow needs N (training sequences) when it is parsed, to resolve ``batch_size: full``
    and reject batch sizes above it. WikiText-2 is prepared from a sha256-verified archive, so its
    count is the published one (``stats.json`` compares the two); the pydoc corpora are cut here
    exactly as ``prepare_pydoc`` cuts them (their size depends on the Python version).
    """
    if name not in CORPORA:
        raise CorpusError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    if name == "wikitext2":
        return WIKITEXT2_PUBLISHED["tokens"]["train"]
    text = pydoc_splits()[0]["train"]
    return len(text) if CORPORA[name][0] == "char" else len(word_tokens(text_lines(text)))


def prepare_corpus(
    name: str, out_dir: str | os.PathLike, archive: str | os.PathLike | None = None
) -> dict:
    """Prepare the named corpus of :data:`CORPORA` into ``out_dir``; returns its statistics."""
    if name not in CORPORA:
        raise CorpusError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    level, needs_archive, _ = CORPORA[name]
    if needs_archive and archive is None:
        raise CorpusError(
            f"{name} is prepared from its archive: fetch it with "
            f"`adamnoise data download {name} --out FILE`, then pass `--archive FILE`"
        )
    if not needs_archive and archive is not None:
        raise CorpusError(f"{name} is built from text shipped with Python and takes no archive")
    if name == "wikitext2":
        return prepare_wikitext2(archive, out_dir)
    return prepare_pydoc(out_dir, level)
