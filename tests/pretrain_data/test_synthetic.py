"""The generated corpus: reproducible, complete files, never over existing ones."""

import os

import pytest

from pretrain_data import synthetic


def test_corpus_is_reproducible_and_refuses_existing_files(tmp_path):
    paths = synthetic.write_corpus(str(tmp_path / "a"), num_documents=9, seed=4, num_files=2)
    again = synthetic.write_corpus(str(tmp_path / "b"), num_documents=9, seed=4, num_files=2)
    texts = [open(p, encoding="utf-8").read() for p in paths]
    assert texts == [open(p, encoding="utf-8").read() for p in again]
    documents = [doc for text in texts for doc in text.split("\n\n") if doc]
    assert len(documents) == 9 and texts[0].count("\n\n") == 5  # documents 0, 2, 4, 6, 8
    assert all(3 <= len(doc.split("\n")) <= 12 for doc in documents)
    with pytest.raises(FileExistsError, match="synthetic-0.txt"):
        synthetic.write_corpus(str(tmp_path / "a"), num_documents=9, seed=5, num_files=3)
    assert sorted(os.listdir(tmp_path / "a")) == ["synthetic-0.txt", "synthetic-1.txt"]
