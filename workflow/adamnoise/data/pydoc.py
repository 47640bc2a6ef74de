"""The offline corpora ``pydoc-char`` and ``pydoc-word``: English reference prose shipped with
Python.

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

import hashlib
import os
import re
import sys
from collections.abc import Sequence

import numpy as np

from adamnoise.data.prepared import (
    LEVELS,
    SPLITS,
    CorpusError,
    build_char_vocab,
    build_word_vocab,
    encode,
    text_lines,
    word_tokens,
    write_prepared,
)

PYDOC_SPLIT_FRACTIONS = (0.90, 0.05, 0.05)


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
