"""WikiText-2, seed 000's corpus, prepared by its protocol.

Seed 000 follows Kunstner et al. (2023, "Noise is not the main factor behind the gap between SGD
and Adam on transformers, but sign descent might be"), who use Transformer-XL's loader (Dai et al.
2019): read straight from ``wikitext-2-v1.zip``
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
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from pathlib import Path

from adamnoise.data.download import REMOTE_FILES, sha256_of
from adamnoise.data.prepared import (
    EOS,
    SPLITS,
    CorpusError,
    MissingCorpusFile,
    build_word_vocab,
    compare_with_published,
    encode,
    word_tokens,
    write_prepared,
)

log = logging.getLogger(__name__)

WIKITEXT2_MEMBERS = {split: f"wiki.{split}.tokens" for split in SPLITS}
WIKITEXT2_PUBLISHED = {
    "source": "Merity et al. 2016 (tokens, vocabulary); line counts of the archive's files",
    "tokens": {"train": 2_088_628, "valid": 217_646, "test": 245_569},
    "lines": {"train": 36_718, "valid": 3_760, "test": 4_358},
    "vocab_size": 33_278,
}


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
    comparison = compare_with_published(measured, WIKITEXT2_PUBLISHED)
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
