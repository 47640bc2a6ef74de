"""The corpora this project can prepare (their registry), and ``prepare_corpus``.

* ``wikitext2``: seed 000's corpus (``wikitext2.py``), prepared from its sha256-verified archive;
* ``pydoc-char`` / ``pydoc-word``: the offline default (``pydoc.py``), Python's pydoc topics.

The prepared-corpus format and ``load_prepared`` are in ``prepared.py``; the names most callers
need are re-exported here.
"""

from __future__ import annotations

import functools
import os

from adamnoise.data.prepared import (
    CORPUS_FILES,
    EOS,
    LEVELS,
    SPLITS,
    CorpusError,
    MissingCorpusFile,
    PreparedCorpus,
    format_stats,
    load_prepared,
    text_lines,
    word_tokens,
    write_prepared,
)
from adamnoise.data.pydoc import paragraph_cuts, prepare_pydoc, pydoc_document, pydoc_splits
from adamnoise.data.wikitext2 import WIKITEXT2_PUBLISHED, prepare_wikitext2, read_wikitext2

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
# prepared without network (the workflow's prepare_offline_corpus rule) / from a downloaded archive
OFFLINE_CORPORA = tuple(name for name, (_, archive, _) in CORPORA.items() if not archive)
DOWNLOADED_CORPORA = tuple(name for name, (_, archive, _) in CORPORA.items() if archive)


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


__all__ = [
    "CORPORA",
    "CORPUS_FILES",
    "DOWNLOADED_CORPORA",
    "EOS",
    "LEVELS",
    "OFFLINE_CORPORA",
    "SPLITS",
    "WIKITEXT2_PUBLISHED",
    "CorpusError",
    "MissingCorpusFile",
    "PreparedCorpus",
    "format_stats",
    "load_prepared",
    "paragraph_cuts",
    "prepare_corpus",
    "prepare_pydoc",
    "prepare_wikitext2",
    "pydoc_document",
    "pydoc_splits",
    "read_wikitext2",
    "text_lines",
    "train_token_count",
    "word_tokens",
    "write_prepared",
]
