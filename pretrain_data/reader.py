"""The pretraining input pipeline (the original's `pretrain_data.get_input_fn`).

files (comma-separated glob patterns) -> repeat -> shuffle(files) -> interleave
TFRecordDataset (cycle min(4, #files)) -> shuffle(100) -> parse (3 int64 features of
exactly `max_seq_length` values, cast to int32) -> batch(drop_remainder=True).

Additions: multi-worker sharding through a `tf.distribute.InputContext` (files are
sharded by input pipeline, the batch is the per-replica batch), an optional seed, a
clear error on an empty glob, a clear error when a record's length differs from
`max_seq_length`, and errors naming the shard and record when a shard is truncated or
corrupted (`check_shards`, `data_loss_error`).

Example:

>>> dataset = get_dataset("out/pretrain_data.tfrecord*", max_seq_length=128, batch_size=32)
>>> batch = next(iter(dataset))   # {"input_ids": int32 [32, 128], ...}
"""

import re
import struct

import tensorflow as tf

from pretrain_data.examples import FEATURE_NAMES

# A TFRecord is: uint64 length, masked CRC32C of the length, the data, CRC32C of the data.
_FRAMING_BYTES = 16
# How TFRecordReader's DataLossError names the failing record: a byte offset, never the file.
_DATA_LOSS = re.compile(r"(truncated|corrupted) record at (\d+)")


class CorruptShardError(OSError):
    """A TFRecord shard that is truncated or whose bytes changed after writing."""


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


def check_shards(input_file):
    """Reads every record of every shard, verifying its framing and both CRCs.

    Reading is CRC-bound at about 150 MB/s per core (a 100 MB shard takes 0.7 s), so a
    full check of a large corpus takes minutes; training does not run it, it calls
    `data_loss_error` when reading fails.

    Args:
      input_file: comma-separated glob patterns of TFRecord shards.
    Returns:
      {path: number of records}, for every file.
    Raises:
      FileNotFoundError: if a pattern matches no file.
      CorruptShardError: for the first broken shard, naming it, the record's index and
        byte offset, and what is wrong.
    """
    counts = {}
    for path in list_input_files(input_file):
        problem, counts[path] = _scan(path)
        if problem is not None:
            raise CorruptShardError(problem[1])
    return counts


def data_loss_error(input_file, error):
    """The `CorruptShardError` to raise for a `tf.errors.DataLossError` from `get_dataset`.

    tf.data reads lazily, inside the training loop, and its error gives the byte offset of
    the broken record but not the file. Only then (reading costs nothing extra while all is
    well) are the shards that reach that offset scanned, the one failing at the same
    offset first.

    Args:
      input_file: the patterns given to `get_dataset`.
      error: the `tf.errors.DataLossError` caught.
    Returns:
      A `CorruptShardError` naming the shard, the record and what is wrong (or, when every
      shard reads back intact, TensorFlow's message and the patterns).
    """
    match = _DATA_LOSS.search(error.message)
    offset = int(match.group(2)) if match else -1
    other = None
    for path in list_input_files(input_file):
        if tf.io.gfile.stat(path).length <= offset:
            continue  # the broken record starts beyond this file's end
        problem, _ = _scan(path)
        if problem is not None and problem[0] == offset:
            return CorruptShardError(problem[1])
        other = other or problem
    if other is not None:  # the shard changed since, or the offset was not in the message
        return CorruptShardError(other[1])
    said = match.group(0) if match else error.message.strip().splitlines()[0]
    return CorruptShardError(f"{input_file}: reading failed with \"{said}\", but every shard "
                             "reads back intact now (a transient read error?)")


def _scan(path):
    """Reads one shard through.

    Returns:
      (problem, number of records read): `problem` is None or (the offset TensorFlow's
      error gives, a one-line description naming the shard and record).
    """
    records = data_bytes = 0
    try:
        for batch in tf.data.TFRecordDataset(path, buffer_size=8 << 20).batch(4096):
            records += int(tf.size(batch))
            data_bytes += int(tf.reduce_sum(tf.strings.length(batch)))
    except tf.errors.DataLossError as e:
        match = _DATA_LOSS.search(e.message)
        if match is None:
            first_line = e.message.strip().splitlines()[0]
            return (-1, f"{path}: unreadable TFRecord shard: {first_line}"), records
        kind, offset = match.group(1), int(match.group(2))
        index, start = _record_at(path, offset)
        if kind == "truncated":
            what = (f"the file ends after {tf.io.gfile.stat(path).length} bytes, inside the "
                    "record (a copy or a write was cut short)")
        else:  # the offset is the record's start for a bad length, its data for bad data
            what = (f"CRC mismatch in its {'length' if offset == start else 'data'} "
                    "(its bytes changed after writing)")
        return (offset, f"{path}: {kind} record {index} at byte {start}: {what}; rebuild "
                        "or copy the shard again"), records
    # TFRecordReader takes a partial header at the end (a cut within its 12 bytes) for
    # the end of the file: what is left after the last whole record tells.
    size, end = tf.io.gfile.stat(path).length, data_bytes + _FRAMING_BYTES * records
    if size != end:
        return (end, f"{path}: truncated record {records} at byte {end}: the file ends "
                     f"after {size} bytes, inside the record's header (a copy or a write "
                     "was cut short); rebuild or copy the shard again"), records
    return None, records


def _record_at(path, offset):
    """(index, start byte) of the record holding byte `offset`; the records before it
    passed their CRC checks, so their lengths can be trusted."""
    index = start = 0
    with tf.io.gfile.GFile(path, "rb") as f:
        while True:
            f.seek(start)
            header = f.read(8)
            if len(header) < 8:
                return index, start
            end = start + _FRAMING_BYTES + struct.unpack("<Q", header)[0]
            if offset < end:
                return index, start
            index, start = index + 1, end
