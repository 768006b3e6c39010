"""Learning a WordPiece vocabulary with BERT's special-token ids."""

import os

import pytest

from pretrain_data import sources, tokenization, vocab as vocab_lib


def test_learned_vocab_layout_and_use(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    words = ["electra", "replaced", "token", "detection", "generator", "discriminator",
             "pretraining", "Café", "naïve"]
    lines = [" ".join(words[(i + j) % len(words)] for j in range(6)) + "." for i in range(300)]
    (corpus / "a.txt").write_text("\n".join(lines), encoding="utf-8")
    vocab_file = tmp_path / "vocab.txt"
    vocab = vocab_lib.learn_vocab_from_corpus(str(corpus), str(vocab_file), vocab_size=300,
                                              lower_thresh=2)
    assert len(vocab) <= 300
    ids = tokenization.load_vocab(str(vocab_file))
    special = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    assert [ids[t] for t in special] == [0, 100, 101, 102, 103]
    assert ids["[unused0]"] == 1 and ids["[unused98]"] == 99
    tokenizer = tokenization.FullTokenizer(str(vocab_file))
    # words were counted after lower-casing and accent stripping, as the tokenizer splits
    assert "[UNK]" not in tokenizer.tokenize("Electra café naive discriminator.")
    assert "cafe" in vocab and "Café" not in vocab
    # written through the atomic helper: no temporary left beside it
    assert sorted(os.listdir(tmp_path)) == ["corpus", "vocab.txt"]
    assert tokenization.check_vocab(str(vocab_file), len(vocab)) == ids


def test_empty_corpus_and_tiny_size(tmp_path):
    with pytest.raises(ValueError, match="empty corpus"):
        vocab_lib.learn_vocab(["", "  "], vocab_size=200)
    with pytest.raises(ValueError, match="reserved"):
        vocab_lib.learn_vocab(["a b"], vocab_size=50)


def test_corpus_errors_name_the_file_and_leave_no_vocab(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_bytes(b"fine\ncaf\xe9\n")
    vocab_file = tmp_path / "vocab.txt"
    with pytest.raises(sources.CorpusError, match=r"a.txt, line 2: invalid UTF-8"):
        vocab_lib.learn_vocab_from_corpus(str(corpus), str(vocab_file), vocab_size=200)
    with pytest.raises(FileNotFoundError, match="nope"):
        vocab_lib.learn_vocab_from_corpus(str(tmp_path / "nope"), str(vocab_file))
    assert sorted(os.listdir(tmp_path)) == ["corpus"]
