"""The builder end to end: output layout, reproducibility, round trip, bad input."""

import os
import random

import pytest
import tensorflow as tf

from pretrain_data import build, examples, job, reader, sources, tokenization
from tests.pretrain_data.corpora import VOCAB, make_corpus, make_openwebtext, read_records
from tests.pretrain_data.reference_builder import add_line


def replay_original(corpus_dir, seed, max_length):
    """The original's per-line loop (`ExampleWriter.write_examples`), one process."""
    tokenizer = tokenization.FullTokenizer(VOCAB)
    rng = job.job_rng(seed, 0)
    builder = examples.ExampleBuilder(max_length, rng)
    files = sources.list_corpus_files(str(corpus_dir))
    rng.shuffle(files)
    out = []
    for path in files:
        with open(path, encoding="utf-8", newline="") as f:
            for line in f.read().split("\n"):
                example = add_line(builder, line, tokenizer)
                if example:
                    out.append(example)
        example = add_line(builder, "", tokenizer)
        if example:
            out.append(example)
    return [tuple(tuple(v) for v in examples.example_features(a, b, 101, 102, max_length))
            for a, b in out]


def test_build_matches_the_original_loop_and_writes_shards(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    os.makedirs(tmp_path / "out")  # with a shard a SIGKILLed build left half written
    (tmp_path / "out" / ".tmp-pretrain_data.tfrecord-0-of-3-0123abcd").write_bytes(b"half")
    summary = build.build_pretraining_dataset(str(corpus), VOCAB, str(tmp_path / "out"),
                                              max_seq_length=32, num_out_files=3, seed=7,
                                              progress=False)
    assert sorted(os.listdir(tmp_path / "out")) == [
        "pretrain_data.tfrecord-%d-of-3" % i for i in range(3)]
    expected = replay_original(corpus, 7, 32)
    records = read_records(tmp_path / "out")
    # Round-robin over 3 shards: shard i holds examples i, i+3, ...
    assert records == [r for i in range(3) for r in expected[i::3]]
    assert summary.examples == len(expected) and summary.documents == 24 and summary.files == 3
    assert summary.real_tokens_written == sum(sum(mask) for _, mask, _ in expected)
    for ids, mask, segments in records:
        assert len(ids) == len(mask) == len(segments) == 32
        n = sum(mask)
        assert mask == (1,) * n + (0,) * (32 - n) and ids[0] == 101 and ids[n - 1] == 102
        assert all(i == 0 for i in ids[n:]) and all(s == 0 for s in segments[n:])


def test_seed_makes_output_reproducible(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    outputs = []
    for run, seed in enumerate([1, "1", 2]):  # the command line passes the seed as a string
        out = tmp_path / ("out%d" % run)
        build.build_pretraining_dataset(str(corpus), VOCAB, str(out), max_seq_length=16,
                                        num_out_files=2, seed=seed, progress=False)
        outputs.append([(out / n).read_bytes() for n in sorted(os.listdir(out))])
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]


def test_examples_never_cross_documents(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # every document uses one word only; words are single tokens in the tiny vocab
    docs = ["the", "an", "re", "paul", "a", "b"]
    text = "\n\n".join("\n".join(" ".join([w] * random.Random(i).randint(1, 9))
                                 for i in range(20)) for w in docs)
    (corpus / "f.txt").write_text(text, encoding="utf-8")
    build.build_pretraining_dataset(str(corpus), VOCAB, str(tmp_path / "out"), max_seq_length=16,
                                    num_out_files=1, seed=3, progress=False)
    for ids, _, _ in read_records(tmp_path / "out"):
        assert len({i for i in ids if i not in (0, 101, 102)}) == 1


def test_blank_lines_do_not_separate_docs_when_disabled(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "f.txt").write_text("the\n\nan\n", encoding="utf-8")
    (corpus / "g.txt").write_text("re\n", encoding="utf-8")
    summary = build.build_pretraining_dataset(str(corpus), VOCAB, str(tmp_path / "out"),
                                              max_seq_length=16, num_out_files=1, seed=0,
                                              blanks_separate_docs=False, progress=False)
    assert summary.documents == 2 and summary.examples == 2  # one per file
    summary = build.build_pretraining_dataset(str(corpus), VOCAB, str(tmp_path / "out2"),
                                              max_seq_length=16, num_out_files=1, seed=0,
                                              progress=False)
    assert summary.documents == 3 and summary.examples == 3


def test_reader_round_trip(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    build.build_pretraining_dataset(str(corpus), VOCAB, str(tmp_path / "out"), max_seq_length=32,
                                    num_out_files=4, seed=5, progress=False)
    written = set(read_records(tmp_path / "out"))
    dataset = reader.get_dataset(str(tmp_path / "out" / "pretrain_data.tfrecord*"), 32,
                                 batch_size=8, seed=1)
    seen = set()
    for batch in dataset.take(3 * len(written) // 8):
        assert all(v.dtype == tf.int32 and v.shape == (8, 32) for v in batch.values())
        for row in zip(*(batch[name].numpy().tolist() for name in examples.FEATURE_NAMES)):
            row = tuple(tuple(v) for v in row)
            assert row in written
            seen.add(row)
    assert seen == written


def test_two_processes(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n_files=4)
    summary = build.build_pretraining_dataset(str(corpus), VOCAB, str(tmp_path / "out"),
                                              max_seq_length=32, num_processes=2,
                                              num_out_files=4, seed=1, progress=False)
    assert len(os.listdir(tmp_path / "out")) == 4
    assert summary.files == 4 and summary.documents == 32
    assert len(read_records(tmp_path / "out")) == summary.examples


def test_openwebtext_tar_archives(tmp_path):
    make_openwebtext(tmp_path / "data")
    summary = build.build_openwebtext_pretraining_dataset(str(tmp_path / "data"),
                                                          max_seq_length=32, num_out_files=2,
                                                          seed=0, progress=False)
    # one document (and here one example) per text file: blank lines do not split
    assert summary.files == 6 and summary.documents == 6 and summary.examples == 6
    assert len(os.listdir(tmp_path / "data" / "pretrain_tfrecords")) == 2


def test_tfds_source_with_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        summary = build.build_from_tfds("imdb_reviews", "train", "text", VOCAB,
                                        str(tmp_path / "out"), max_seq_length=32,
                                        num_out_files=2, seed=0, progress=False)
        with pytest.raises(sources.CorpusError, match="no feature 'body'"):
            build.build_from_tfds("imdb_reviews", "train", "body", VOCAB,
                                  str(tmp_path / "out2"), num_out_files=2, progress=False)
    assert summary.documents == 6 and summary.examples >= 6
    assert len(read_records(tmp_path / "out")) == summary.examples
    assert os.listdir(tmp_path / "out2") == []


# ------------------------------------------------------------------ bad input


def test_missing_corpus_and_vocab(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n_files=1)
    with pytest.raises(FileNotFoundError, match="nope"):
        build.build_pretraining_dataset(str(tmp_path / "nope"), VOCAB, str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="missing_vocab.txt"):
        build.build_pretraining_dataset(str(corpus), str(tmp_path / "missing_vocab.txt"),
                                        str(tmp_path / "out"))


def test_vocab_without_special_tokens(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n_files=1)
    vocab = tmp_path / "bad_vocab.txt"
    vocab.write_text("[UNK]\nthe\nan\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad_vocab.txt lacks the special token\(s\) \[CLS\], "
                                         r"\[SEP\], \[MASK\]"):
        build.build_pretraining_dataset(str(corpus), str(vocab), str(tmp_path / "out"))


def test_invalid_utf8_names_file_and_line_and_cleans_up(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n_files=2)
    (corpus / "part-01.txt").write_bytes(b"the an\nre\n\nbad \xff byte\nthe\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(sources.CorpusError, match=r"part-01.txt, line 4: invalid UTF-8"):
        build.build_pretraining_dataset(str(corpus), VOCAB, str(out), num_out_files=2, seed=0,
                                        progress=False)
    assert os.listdir(out) == ["notes.txt"]  # our partial shards removed, nothing else
    summary = build.build_pretraining_dataset(str(corpus), VOCAB, str(out), num_out_files=2,
                                              seed=0, skip_invalid_lines=True, progress=False)
    assert summary.skipped_lines == 1
    assert sorted(os.listdir(out)) == ["notes.txt"] + [
        "pretrain_data.tfrecord-%d-of-2" % i for i in range(2)]


def test_failed_worker_leaves_no_temporary_and_no_final_shard(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n_files=4)
    (corpus / "part-03.txt").write_bytes(b"the an\n" * 5000 + b"bad \xff byte\n")
    out = tmp_path / "out"
    with pytest.raises(sources.CorpusError, match=r"part-03.txt, line 5001: invalid UTF-8"):
        build.build_pretraining_dataset(str(corpus), VOCAB, str(out), num_processes=2,
                                        num_out_files=4, seed=0, progress=False)
    assert os.listdir(out) == []  # neither `.tmp-*` files nor shards under final names


def test_empty_corpus(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(sources.CorpusError, match="contains no files"):
        build.build_pretraining_dataset(str(tmp_path / "empty"), VOCAB, str(tmp_path / "out"))
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "a.txt").write_text("\n  \n\n")
    with pytest.raises(sources.CorpusError, match="no examples"):
        build.build_pretraining_dataset(str(tmp_path / "blank"), VOCAB, str(tmp_path / "out"),
                                        num_out_files=2, progress=False)
    assert os.listdir(tmp_path / "out") == []


def test_unwritable_output_dir(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n_files=1)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(PermissionError, match="a_file/out"):
        build.build_pretraining_dataset(str(corpus), VOCAB, str(tmp_path / "a_file" / "out"))


def test_existing_shards_are_never_deleted(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n_files=1)
    out = tmp_path / "out"
    build.build_pretraining_dataset(str(corpus), VOCAB, str(out), num_out_files=2, seed=0,
                                    progress=False)
    with pytest.raises(FileExistsError, match="--overwrite"):
        build.build_pretraining_dataset(str(corpus), VOCAB, str(out), num_out_files=2,
                                        progress=False)
    build.build_pretraining_dataset(str(corpus), VOCAB, str(out), num_out_files=2, seed=1,
                                    overwrite=True, progress=False)
    # shards of another layout would be mixed into training: refuse, do not delete them
    with pytest.raises(FileExistsError, match="never deletes"):
        build.build_pretraining_dataset(str(corpus), VOCAB, str(out), num_out_files=3,
                                        overwrite=True, progress=False)
    assert len(os.listdir(out)) == 2


def test_an_unprepared_tfds_dataset_is_one_clear_error(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(sources.CorpusError, match=r"^tfds dataset imdb_reviews \(split train, "
                                                  r"data_dir .*empty\) cannot be loaded"):
        build.build_from_tfds("imdb_reviews", "train", "text", VOCAB, str(tmp_path / "out"),
                              data_dir=str(tmp_path / "empty"), num_out_files=1,
                              progress=False)
