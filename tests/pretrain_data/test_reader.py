"""The pretraining tf.data pipeline."""

import pytest
import tensorflow as tf

from pretrain_data import reader
from tests.pretrain_data.reference_builder import make_tf_example


def write_shards(directory, n_files, per_file, length=8):
    """Shard f holds records whose input_ids are all 1000*f + k."""
    directory.mkdir(parents=True, exist_ok=True)
    for f in range(n_files):
        name = "pretrain_data.tfrecord-%d-of-%d" % (f, n_files)
        with tf.io.TFRecordWriter(str(directory / name)) as w:
            for k in range(per_file):
                ex = make_tf_example([1000 * f + k] * (length - 2), [], 101, 102, length)
                w.write(ex.SerializeToString())


def test_batches_shapes_and_values(tmp_path):
    write_shards(tmp_path, 2, 10)
    batch = next(iter(reader.get_dataset(str(tmp_path / "*"), 8, batch_size=4, seed=0)))
    assert sorted(batch) == ["input_ids", "input_mask", "segment_ids"]
    assert all(v.dtype == tf.int32 and v.shape == (4, 8) for v in batch.values())
    assert batch["input_ids"][:, 0].numpy().tolist() == [101] * 4


def test_comma_separated_patterns_and_empty_glob(tmp_path):
    write_shards(tmp_path / "a", 1, 4)
    write_shards(tmp_path / "b", 1, 4)
    files = reader.list_input_files("%s/*,%s/*" % (tmp_path / "a", tmp_path / "b"))
    assert len(files) == 2
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        reader.get_dataset("%s/*,%s/nothing-here*" % (tmp_path / "a", tmp_path), 8, 4)


def test_wrong_record_length_is_a_clear_error(tmp_path):
    write_shards(tmp_path, 1, 4, length=8)
    dataset = reader.get_dataset(str(tmp_path / "*"), 16, batch_size=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_seq_length=16"):
        next(iter(dataset))


def test_seed_is_deterministic(tmp_path):
    write_shards(tmp_path, 3, 20)
    def first_batches():
        dataset = reader.get_dataset(str(tmp_path / "*"), 8, 4, seed=3)
        return [b["input_ids"].numpy().tolist() for b in dataset.take(10)]
    assert first_batches() == first_batches()


def test_input_context_shards_files_and_batch(tmp_path):
    write_shards(tmp_path, 4, 10)
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                         num_replicas_in_sync=2)
    dataset = reader.get_dataset(str(tmp_path / "*"), 8, batch_size=8, input_context=context,
                                 seed=0)
    shards = set()
    for batch in dataset.take(20):
        assert batch["input_ids"].shape == (4, 8)  # per-replica batch
        shards.update((batch["input_ids"][:, 1].numpy() // 1000).tolist())
    assert shards == {1, 3}  # pipeline 1 of 2 reads files 1 and 3


def test_distribute_datasets_from_function(tmp_path):
    write_shards(tmp_path, 2, 10)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: reader.get_dataset(str(tmp_path / "*"), 8, batch_size=4, input_context=ctx))
    batch = next(iter(dist))
    assert batch["input_ids"].shape == (4, 8)


def test_checkpointed_iterator_resumes_exactly(tmp_path):
    write_shards(tmp_path, 3, 20)
    iterator = iter(reader.get_dataset(str(tmp_path / "pretrain_data*"), 8, 4, seed=5))
    for _ in range(7):
        next(iterator)
    path = tf.train.Checkpoint(data=iterator).save(str(tmp_path / "ckpt" / "c"))
    expected = [next(iterator)["input_ids"].numpy().tolist() for _ in range(20)]
    restored = iter(reader.get_dataset(str(tmp_path / "pretrain_data*"), 8, 4, seed=5))
    tf.train.Checkpoint(data=restored).restore(path)
    assert [next(restored)["input_ids"].numpy().tolist() for _ in range(20)] == expected
