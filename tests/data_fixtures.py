"""Test inputs for the data stage: a small zip with WikiText-2's layout, and its hand counts."""

from __future__ import annotations

import io
import zipfile

# Lines as in the real files: a leading space, headings as "= Title =", empty lines as " ".
SYNTHETIC_WIKITEXT = {
    "train": " \n = Alpha = \n \n The cat sat on the mat . \n The dog sat . \n",
    "valid": " \n The cat ran . \n",
    "test": " = Beta = \n The <unk> sat . \n",
}

# Counted by hand from SYNTHETIC_WIKITEXT (one <eos> per line, empty lines included):
# train 5 lines, 0 + 3 + 0 + 7 + 4 = 14 words; valid 2 lines, 4 words; test 2 lines, 7 words.
SYNTHETIC_LINES = {"train": 5, "valid": 2, "test": 2}
SYNTHETIC_TOKENS = {"train": 14 + 5, "valid": 4 + 2, "test": 7 + 2}
# <eos> first; then counts "=" 4, "The" 4, "." 4, "sat" 3, "cat" 2, the rest 1, ties in order of
# first appearance (train, valid, test). "The" and "the" differ: case is kept.
SYNTHETIC_VOCAB = [
    "<eos>", "=", "The", ".", "sat", "cat",
    "Alpha", "on", "the", "mat", "dog", "ran", "Beta", "<unk>",
]  # fmt: skip
SYNTHETIC_TRAIN_STREAM = [
    "<eos>", "=", "Alpha", "=", "<eos>", "<eos>", "The", "cat", "sat", "on", "the", "mat", ".",
    "<eos>", "The", "dog", "sat", ".", "<eos>",
]  # fmt: skip


def wikitext_like_zip(texts: dict[str, str] = SYNTHETIC_WIKITEXT) -> bytes:
    """A zip archive laid out like wikitext-2-v1.zip: wikitext-2/wiki.{split}.tokens."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("wikitext-2/", "")
        for split, text in texts.items():
            info = zipfile.ZipInfo(
                f"wikitext-2/wiki.{split}.tokens", date_time=(2016, 9, 26, 0, 0, 0)
            )
            archive.writestr(info, text.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
