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


def record_starts(path):
    """Byte offset of each record, from the lengths TensorFlow reads back (16 framing bytes:
    length, its CRC, data, its CRC)."""
    starts = [0]
    for record in tf.data.TFRecordDataset(path):
        starts.append(starts[-1] + 16 + len(record.numpy()))
    return starts


def damage(path, flip=None, keep=None):
    """Flips every bit of byte `flip`, and/or keeps the first `keep` bytes only."""
    data = bytearray(path.read_bytes())
    if flip is not None:
        data[flip] ^= 0xFF
    path.write_bytes(bytes(data[:keep]))


def test_check_shards_names_the_file_record_and_what_is_wrong(tmp_path):
    write_shards(tmp_path, 3, 6)
    shards = sorted(tmp_path.iterdir())
    assert reader.check_shards(str(tmp_path / "*")) == {str(p): 6 for p in shards}
    starts = record_starts(shards[1])
    cases = [  # (damage, the error's text after the file name)
        (dict(flip=starts[2] + 20), f"corrupted record 2 at byte {starts[2]}: CRC mismatch "
                                    "in its data (its bytes changed after writing)"),
        (dict(flip=starts[3] + 1), f"corrupted record 3 at byte {starts[3]}: CRC mismatch "
                                   "in its length"),
        (dict(keep=starts[5] + 30), f"truncated record 5 at byte {starts[5]}: the file ends "
                                    f"after {starts[5] + 30} bytes, inside the record"),
        # TFRecordReader itself takes a partial header for the end of the file.
        (dict(keep=starts[4] + 5), f"truncated record 4 at byte {starts[4]}: the file ends "
                                   f"after {starts[4] + 5} bytes, inside the record's header"),
    ]
    original = shards[1].read_bytes()
    for how, expected in cases:
        shards[1].write_bytes(original)
        damage(shards[1], **how)
        with pytest.raises(reader.CorruptShardError) as error:
            reader.check_shards(str(tmp_path / "*"))
        message = str(error.value)
        assert message.startswith(f"{shards[1]}: {expected}") and "\n" not in message, how
        assert message.endswith("rebuild or copy the shard again")


def test_data_loss_while_training_is_raised_naming_the_shard(tmp_path):
    write_shards(tmp_path, 4, 6)
    bad = tmp_path / "pretrain_data.tfrecord-2-of-4"
    start = record_starts(bad)[4]
    damage(bad, flip=start + 30)
    pattern = str(tmp_path / "pretrain_data*")
    iterator = iter(reader.get_dataset(pattern, 8, batch_size=4, seed=0))

    @tf.function
    def train_loop(iterator, num_steps):  # as the trainer reads: next() inside a tf.function
        total = tf.constant(0)
        for _ in tf.range(num_steps):
            total += tf.reduce_sum(next(iterator)["input_ids"])
        return total

    with pytest.raises(tf.errors.DataLossError) as caught:
        train_loop(iterator, tf.constant(20))
    assert str(bad) not in caught.value.message  # what TensorFlow says does not name it
    error = reader.data_loss_error(pattern, caught.value)
    assert isinstance(error, OSError)
    assert str(error).startswith(f"{bad}: corrupted record 4 at byte {start}: CRC mismatch")

    # Every shard intact again (a transient read error): the patterns and TF's words.
    write_shards(tmp_path, 4, 6)
    error = reader.data_loss_error(pattern, caught.value)
    assert str(error) == (f'{pattern}: reading failed with "corrupted record at {start + 12}", '
                          "but every shard reads back intact now (a transient read error?)")
