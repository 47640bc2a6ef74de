"""adamnoise.data.corpus: WikiText-2 rules on a synthetic zip, the pydoc corpora, loading."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import (
    SYNTHETIC_LINES,
    SYNTHETIC_TOKENS,
    SYNTHETIC_TRAIN_STREAM,
    SYNTHETIC_VOCAB,
    SYNTHETIC_WIKITEXT,
    wikitext_like_zip,
)

from adamnoise.data import cli as data_cli
from adamnoise.data.corpus import (
    CORPUS_FILES,
    EOS,
    SPLITS,
    CorpusError,
    MissingCorpusFile,
    load_prepared,
    paragraph_cuts,
    prepare_corpus,
    pydoc_document,
    pydoc_splits,
    text_lines,
    word_tokens,
)

torch.set_num_threads(1)


@pytest.fixture
def synthetic_zip(tmp_path) -> Path:
    path = tmp_path / "wikitext-2-v1.zip"
    path.write_bytes(wikitext_like_zip())
    return path


@pytest.fixture(scope="module")
def pydoc_prepared(tmp_path_factory) -> dict[str, Path]:
    """pydoc-char and pydoc-word, each prepared once for the module."""
    root = tmp_path_factory.mktemp("pydoc")
    return {level: _prepare(f"pydoc-{level}", root / level) for level in ("char", "word")}


def _prepare(name: str, out: Path, archive=None) -> Path:
    prepare_corpus(name, out, archive=archive)
    return out


# ---- WikiText-2 rules on the synthetic archive ---------------------------------------------------


def test_wikitext2_counts_eos_per_line_and_keeps_case(synthetic_zip, tmp_path):
    out = tmp_path / "wt2"
    stats = prepare_corpus("wikitext2", out, archive=synthetic_zip)
    corpus = load_prepared(out)

    assert stats["tokens"] == SYNTHETIC_TOKENS
    assert stats["lines"] == SYNTHETIC_LINES
    assert corpus.vocab == SYNTHETIC_VOCAB  # <eos> = 0, then by count, ties by first use
    assert corpus.level == "word"
    for split in SPLITS:
        stream = getattr(corpus, split)
        assert stream.dtype == torch.long and stream.ndim == 1
        assert len(stream) == SYNTHETIC_TOKENS[split]
        assert int((stream == corpus.vocab.index(EOS)).sum()) == SYNTHETIC_LINES[split]
    assert [corpus.vocab[i] for i in corpus.train.tolist()] == SYNTHETIC_TRAIN_STREAM
    assert corpus.decode(corpus.test) == "= Beta = <eos> The <unk> sat . <eos>"


def test_wikitext2_stats_sit_next_to_published_numbers(synthetic_zip, tmp_path):
    stats = prepare_corpus("wikitext2", tmp_path / "wt2", archive=synthetic_zip)
    on_disk = json.loads((tmp_path / "wt2" / "stats.json").read_text())
    assert on_disk == stats

    rows = {row["quantity"]: row for row in stats["comparison"]}
    assert rows["train tokens"]["published"] == 2_088_628
    assert rows["valid tokens"]["published"] == 217_646
    assert rows["test tokens"]["published"] == 245_569
    assert rows["vocabulary"] == {"quantity": "vocabulary", "measured": 14, "published": 33_278,
                                  "match": False}  # fmt: skip
    assert rows["train lines"]["published"] == 36_718
    assert not stats["all_match"]
    assert stats["source"]["archive_is_published_file"] is False


def test_wikitext2_missing_or_broken_archive(tmp_path):
    with pytest.raises(MissingCorpusFile, match="adamnoise data download wikitext2"):
        prepare_corpus("wikitext2", tmp_path / "out", archive=tmp_path / "absent.zip")
    with pytest.raises(CorpusError, match="--archive"):
        prepare_corpus("wikitext2", tmp_path / "out")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CorpusError, match="not a zip"):
        prepare_corpus("wikitext2", tmp_path / "out", archive=bad)
    partial = tmp_path / "partial.zip"
    partial.write_bytes(wikitext_like_zip({"train": " a \n", "valid": " b \n"}))
    with pytest.raises(CorpusError, match=r"wiki\.test\.tokens"):
        prepare_corpus("wikitext2", tmp_path / "out", archive=partial)
    assert not (tmp_path / "out" / "stats.json").exists()


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("ADAMNOISE_WIKITEXT2_ZIP"),
    reason="set ADAMNOISE_WIKITEXT2_ZIP to the downloaded wikitext-2-v1.zip",
)
def test_real_wikitext2_matches_published_counts(tmp_path):
    stats = prepare_corpus(
        "wikitext2", tmp_path / "wt2", archive=os.environ["ADAMNOISE_WIKITEXT2_ZIP"]
    )
    assert stats["source"]["archive_is_published_file"]
    assert stats["all_match"], stats["comparison"]


# ---- pydoc corpora ------------------------------------------------------------------------------


def test_word_tokens_rule():
    lines = text_lines(" = A = \n\nx  y\tz\n")
    assert lines == [" = A = \n", "\n", "x  y\tz\n"]
    assert word_tokens(lines) == ["=", "A", "=", EOS, EOS, "x", "y", "z", EOS]


def test_paragraph_cuts_pick_nearest_blank_line():
    text = "aaaa\n\nbb\n\ncc\n\ndddddddd\n"  # boundaries at offsets 6, 10, 14; length 23
    assert paragraph_cuts(text, (0.5, 0.25, 0.25)) == [10, 14]  # targets 11.5 and 17.25
    with pytest.raises(CorpusError):
        paragraph_cuts("one paragraph only\n", (0.9, 0.05, 0.05))


def test_pydoc_splits_are_contiguous_disjoint_and_cover_the_text():
    texts, layout = pydoc_splits()
    document, _ = pydoc_document()
    assert "".join(texts[s] for s in SPLITS) == document
    edges = [layout["split_offsets"][s] for s in SPLITS]
    assert edges[0][0] == 0 and edges[-1][1] == len(document)
    assert edges[0][1] == edges[1][0] and edges[1][1] == edges[2][0]
    fractions = [len(texts[s]) / len(document) for s in SPLITS]
    assert fractions == pytest.approx([0.90, 0.05, 0.05], abs=0.01)
    for split in ("valid", "test"):  # each cut is at a paragraph start
        start = layout["split_offsets"][split][0]
        assert document[start - 2 : start] == "\n\n"


@pytest.mark.parametrize("level", ["char", "word"])
def test_pydoc_streams_decode_to_the_split_texts(pydoc_prepared, level):
    corpus = load_prepared(pydoc_prepared[level])
    texts, _ = pydoc_splits()
    assert corpus.level == level
    for split in SPLITS:
        stream = getattr(corpus, split)
        assert stream.dtype == torch.long
        ids = stream.tolist()
        if level == "char":
            assert corpus.decode(ids) == texts[split]
        else:
            expected = word_tokens(text_lines(texts[split]))
            assert [corpus.vocab[i] for i in ids] == expected
            assert ids.count(0) == len(text_lines(texts[split]))  # <eos> (id 0) per line
    # the vocabulary is built over all splits and every entry is used
    used = torch.cat([corpus.train, corpus.valid, corpus.test]).unique()
    assert used.tolist() == list(range(corpus.vocab_size))
    assert corpus.stats["vocab_size"] == corpus.vocab_size
    assert corpus.stats["tokens"] == {s: len(getattr(corpus, s)) for s in SPLITS}


@pytest.mark.parametrize("level", ["char", "word"])
def test_pydoc_encode_decode_round_trip(pydoc_prepared, level):
    corpus = load_prepared(pydoc_prepared[level])
    sample = 'The "assert" statement\n\nAssert statements are a convenient way.\n'
    ids = corpus.encode(sample)
    assert ids.dtype == torch.long
    if level == "char":
        assert corpus.decode(ids) == sample
    else:
        assert corpus.decode(ids) == " ".join(word_tokens(text_lines(sample)))
    with pytest.raises(CorpusError, match="not in the vocabulary"):
        corpus.encode("\u2603 snowman-not-in-pydoc")


@pytest.mark.parametrize("level", ["char", "word"])
def test_pydoc_preparation_is_deterministic(pydoc_prepared, level, tmp_path):
    again = _prepare(f"pydoc-{level}", tmp_path / "again")
    for name in CORPUS_FILES:
        assert (again / name).read_bytes() == (pydoc_prepared[level] / name).read_bytes(), name
    assert np.load(again / "train.npy").dtype == np.int32


# ---- load_prepared errors -----------------------------------------------------------------------


def test_load_prepared_missing_directory_names_the_command(tmp_path):
    with pytest.raises(MissingCorpusFile) as caught:
        load_prepared(tmp_path / "pydoc-char")
    message = str(caught.value)
    assert "does not exist" in message
    assert f"adamnoise data prepare pydoc-char --out {tmp_path / 'pydoc-char'}" in message
    assert isinstance(caught.value, FileNotFoundError)


def test_load_prepared_missing_file_names_it(synthetic_zip, tmp_path):
    out = _prepare("wikitext2", tmp_path / "corpus", archive=synthetic_zip)
    (out / "valid.npy").unlink()
    with pytest.raises(MissingCorpusFile) as caught:
        load_prepared(out)
    message = str(caught.value)
    assert "lacks valid.npy" in message
    assert f"adamnoise data prepare wikitext2 --out {out} --archive ARCHIVE" in message


def test_load_prepared_rejects_bad_contents(synthetic_zip, tmp_path):
    out = _prepare("wikitext2", tmp_path / "corpus", archive=synthetic_zip)
    np.save(out / "test.npy", np.array([0, len(SYNTHETIC_VOCAB)], dtype=np.int32))
    with pytest.raises(CorpusError, match="vocabulary has 14 entries"):
        load_prepared(out)
    np.save(out / "test.npy", np.zeros((2, 2), dtype=np.int32))
    with pytest.raises(CorpusError, match="1-D integer array"):
        load_prepared(out)
    (out / "vocab.json").write_text(json.dumps({"level": "byte", "tokens": ["a"]}))
    with pytest.raises(CorpusError, match="vocab.json"):
        load_prepared(out)


# ---- command line -------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="adamnoise")
    data_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_prepare_wikitext2_prints_comparison_table(synthetic_zip, tmp_path, capsys):
    out = tmp_path / "wt2"
    assert run_cli(["data", "prepare", "wikitext2", "--out", str(out),
                    "--archive", str(synthetic_zip)]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert "train tokens" in table and "2,088,628" in table and "NO" in table
    assert f"{SYNTHETIC_TOKENS['train']:>12,}" in table
    assert load_prepared(out).vocab == SYNTHETIC_VOCAB


def test_cli_prepare_errors_are_one_line_without_traceback(tmp_path, capsys):
    code = run_cli(["data", "prepare", "wikitext2", "--out", str(tmp_path / "o"),
                    "--archive", str(tmp_path / "missing.zip")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert run_cli(["data", "prepare", "nope", "--out", str(tmp_path / "o")]) == 1
    assert "unknown corpus 'nope'" in capsys.readouterr().err
    assert run_cli(["data", "prepare", "pydoc-char", "--out", str(tmp_path / "o"),
                    "--archive", str(tmp_path / "x.zip")]) == 1  # fmt: skip
    assert "takes no archive" in capsys.readouterr().err


def test_synthetic_fixture_counts_agree_with_a_plain_count():
    # guards the hand counts in data_fixtures against edits of the synthetic text
    for split, text in SYNTHETIC_WIKITEXT.items():
        lines = text.split("\n")[:-1]
        assert len(lines) == SYNTHETIC_LINES[split]
        assert sum(len(line.split()) for line in lines) + len(lines) == SYNTHETIC_TOKENS[split]
