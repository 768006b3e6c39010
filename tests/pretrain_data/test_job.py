"""One build process: document counting, batching, shards written round-robin."""

import dataclasses

import pytest
import tensorflow as tf

from pretrain_data import job, sources
from tests.pretrain_data.corpora import VOCAB


def spec_for(tmp_path, texts, blanks_separate_docs=True, n_shards=2):
    paths = []
    for i, text in enumerate(texts):
        paths.append(str(tmp_path / ("%d.txt" % i)))
        (tmp_path / ("%d.txt" % i)).write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    shards = [str(out / ("pretrain_data.tfrecord-%d-of-%d" % (i, n_shards)))
              for i in range(n_shards)]
    return job.JobSpec(0, 1, sources.TextFiles(tuple(paths)), VOCAB, shards, 16,
                       blanks_separate_docs, True, True, 0, False)


@pytest.mark.parametrize("blanks, documents", [(True, 4), (False, 2)])
def test_line_batches_mark_unit_ends_and_count_documents(tmp_path, blanks, documents):
    spec = spec_for(tmp_path, ["a\n\n\nb\n c \n\nd\n", "e\n"], blanks)
    summary = job.BuildSummary()
    items = [item for batch in job.line_batches(spec, job.job_rng(0, 0), summary)
             for item in batch]
    assert items.count(None) == 2 and items[-1] is None
    kept = [item for item in items if item is not None]
    assert sorted(kept) == sorted(["a", "", "", "b", "c", "", "d", "e"] if blanks
                                  else ["a", "b", "c", "d", "e"])
    assert (summary.files, summary.lines, summary.documents) == (2, 8, documents)


def test_line_batches_are_cut_once_they_reach_batch_lines(tmp_path):
    # 40,000 lines of 2 bytes are two read chunks: a batch ends after the chunk that
    # fills it, and each file's end is in a batch
    spec = spec_for(tmp_path, ["x\n" * 40000, "y\n" * 10])
    batches = list(job.line_batches(spec, job.job_rng(0, 0), job.BuildSummary()))
    assert len(batches) >= 2 and all(len(b) >= job.BATCH_LINES for b in batches[:-1])
    assert sum(map(len, batches)) == 40012 and sum(b.count(None) for b in batches) == 2


def test_run_job_writes_its_shards_round_robin(tmp_path):
    spec = spec_for(tmp_path, ["the an re paul\n" * 40 + "\n" + "a b c\n" * 30], n_shards=3)
    progress = []
    summary = job.run_job(spec, lambda *increments: progress.append(increments))
    assert summary.examples > 3 and summary.files == 1 and summary.documents == 2
    counts = [sum(1 for _ in tf.data.TFRecordDataset(p)) for p in spec.paths]
    assert sum(counts) == summary.examples and max(counts) - min(counts) <= 1
    assert [sum(column) for column in zip(*progress)] == [
        summary.bytes_read, summary.tokens, summary.examples]


def test_summary_merge_and_text():
    a = job.BuildSummary(files=1, examples=2, tokens=10, real_tokens_written=20,
                         steady_seconds=1.0, max_seq_length=16)
    b = job.BuildSummary(files=2, examples=3, tokens=5, real_tokens_written=30,
                         steady_seconds=3.0, skipped_lines=1, max_seq_length=16)
    a.merge(b)
    assert dataclasses.astuple(a)[:10] == (3, 0, 0, 15, 5, 0, 50, 0, 1, 0)
    assert a.steady_seconds == 3.0 and a.padding_fraction == pytest.approx(1 - 50 / 80)
    assert "5 examples" in str(a) and "1 invalid lines skipped" in str(a)
