"""The pretraining input pipeline (the original's `pretrain_data.get_input_fn`).

files (comma-separated glob patterns) -> repeat -> shuffle(files) -> interleave
TFRecordDataset (cycle min(4, #files)) -> shuffle(100) -> parse (3 int64 features of
exactly `max_seq_length` values, cast to int32) -> batch(drop_remainder=True).

Additions: multi-worker sharding through a `tf.distribute.InputContext` (files are
sharded by input pipeline, the batch is the per-replica batch), an optional seed, a
clear error on an empty glob, and a clear error when a record's length differs from
`max_seq_length`.

Example:

>>> dataset = get_dataset("out/pretrain_data.tfrecord*", max_seq_length=128, batch_size=32)
>>> batch = next(iter(dataset))   # {"input_ids": int32 [32, 128], ...}
"""

import tensorflow as tf

from pretrain_data.examples import FEATURE_NAMES


def list_input_files(input_file):
    """The union of `tf.io.gfile.glob` over comma-separated patterns, sorted.

    Raises:
      FileNotFoundError: naming every pattern that matches nothing.
    """
    patterns = [p.strip() for p in input_file.split(",") if p.strip()]
    if not patterns:
        raise FileNotFoundError("No input file pattern given (input_file=%r)" % input_file)
    files = []
    for pattern in patterns:
        matches = tf.io.gfile.glob(pattern)
        if not matches:
            raise FileNotFoundError("No pretraining files match %r" % pattern)
        files.extend(matches)
    return sorted(set(files))


def parse_example(serialized, max_seq_length):
    """Parses a vector [batch] of serialized Examples into int32 features.

    Raises (when run) `tf.errors.InvalidArgumentError` whose message names the
    expected length if a record's features do not have exactly `max_seq_length` values.
    """
    spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in FEATURE_NAMES}
    # FixedLenFeature already rejects other lengths, with a message about "Key:
    # input_ids. Can't parse serialized Example"; say what was expected and why.
    lengths = tf.io.parse_example(
        tf.reshape(serialized, [-1]),
        {name: tf.io.VarLenFeature(tf.int64) for name in FEATURE_NAMES})
    checks = []
    for name in FEATURE_NAMES:
        counts = tf.math.bincount(tf.cast(lengths[name].indices[:, 0], tf.int32),
                                  minlength=tf.size(serialized))
        checks.append(tf.debugging.assert_equal(
            counts, tf.constant(max_seq_length, tf.int32),
            message=("Pretraining record with a %s length different from max_seq_length=%d: "
                     "the records were written with another --max-seq-length."
                     % (name, max_seq_length))))
    # The check must run before the FixedLenFeature parse, whose error is less clear.
    with tf.control_dependencies(checks):
        example = tf.io.parse_example(tf.identity(serialized), spec)
    return {name: tf.cast(example[name], tf.int32) for name in FEATURE_NAMES}


def get_dataset(input_file, max_seq_length, batch_size, is_training=True,
                input_context=None, seed=None, check_lengths=True):
    """Builds the pretraining `tf.data.Dataset`.

    Args:
      input_file: comma-separated glob patterns of TFRecord shards.
      max_seq_length: the length every record must have.
      batch_size: the GLOBAL batch size; with an `input_context` each pipeline yields
        `input_context.get_per_replica_batch_size(batch_size)`.
      is_training: as the original, only changes determinism of the interleave
        (`sloppy=is_training`); eval also repeats and shuffles.
      input_context: a `tf.distribute.InputContext` (from
        `strategy.distribute_datasets_from_function`); the files are sharded by
        `input_pipeline_id` so every worker reads a different subset.
      seed: optional int; makes the order deterministic (file shuffle, record
        shuffle and a deterministic interleave).
      check_lengths: verify each record's length with a clear error (costs a second
        parse; the FixedLenFeature parse fails anyway, less readably).

    Returns:
      A repeated dataset of dicts `input_ids`, `input_mask`, `segment_ids`:
      int32 [batch, max_seq_length].

    Raises:
      FileNotFoundError: if a pattern matches no file.
      ValueError: if there are fewer files than input pipelines.
    """
    files = list_input_files(input_file)
    if input_context is not None:
        if len(files) < input_context.num_input_pipelines:
            raise ValueError("%d input files cannot be sharded over %d input pipelines"
                             % (len(files), input_context.num_input_pipelines))
        files = files[input_context.input_pipeline_id::input_context.num_input_pipelines]
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    deterministic = seed is not None or not is_training
    d = tf.data.Dataset.from_tensor_slices(tf.constant(files))
    d = d.repeat()
    d = d.shuffle(buffer_size=len(files), seed=seed)
    d = d.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    d = d.shuffle(buffer_size=100, seed=None if seed is None else seed + 1)
    d = d.batch(batch_size, drop_remainder=True)
    if check_lengths:
        d = d.map(lambda s: parse_example(s, max_seq_length), num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=deterministic)
    else:
        spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in FEATURE_NAMES}
        d = d.map(lambda s: {k: tf.cast(v, tf.int32)
                             for k, v in tf.io.parse_example(s, spec).items()},
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return d.prefetch(tf.data.AUTOTUNE)
