"""Featurised records: every task's examples of a split as one set of arrays, cached.

A record carries the shared inputs (`input_ids`, `input_mask`, `segment_ids` [S],
`task_id`) and every task's own features, zeros where a feature does not apply, as the
original's records. The records of a split are cached as TFRecords beside a `.metadata`
JSON file, which says what they were made from; both are written atomically.
"""

import os

import numpy as np
import tensorflow as tf

from electra_common import files
from finetune.model import dummy_features


def merge_features(parts, tasks):
    """Concatenates per-task record dicts into records that carry every task's features,
    zeros where a feature does not apply."""
    template = dummy_features(tasks, 1, tasks[0].config.max_seq_length)
    return {key: np.concatenate([
        part[key] if key in part else np.zeros((len(part["task_id"]),) + example.shape[1:],
                                               example.dtype) for part in parts])
        for key, example in template.items()}


def pad_to_multiple(features, batch_size, n_tasks):
    """Appends all-zero records with task_id = #tasks (zero loss) to fill the last batch."""
    n = len(features["task_id"])
    extra = -n % batch_size
    if not extra:
        return features
    padded = {k: np.concatenate([v, np.zeros((extra,) + v.shape[1:], v.dtype)])
              for k, v in features.items()}
    padded["task_id"][n:] = n_tasks
    return padded


def task_rows(outputs, features, task_id):
    """One task's outputs on its own records (other tasks' and padding records dropped)."""
    rows = features["task_id"] == task_id
    return {k: v[rows] for k, v in outputs.items()}


def featurize(config, tasks, split, is_training=False, write_cache=True):
    """Every task's records of `split`, merged; cached as TFRecords.

    The records are written to `<preprocessed_data_dir>/<sorted tasks>_<split>.tfrecord` with
    a `.metadata` JSON; with `use_tfrecords_if_existing` a cache whose metadata matches (tasks,
    split, lengths, vocabulary) is read instead of featurising again. Unlike the original, the
    cache is not shuffled: each trial shuffles with its own seed.

    Args:
        config: a `FinetuningConfig`.
        tasks: the task objects, in `task_names` order.
        split: "train", "dev", "test", ...
        is_training: featurise for training (QA: training windows and labels).
        write_cache: False on non-chief workers: they read a complete cache but never write it.
    Returns:
        (examples {task: [examples]} or None when read from the cache and not needed,
         records {feature: array [N, ...]}).
    """
    path = os.path.join(config.preprocessed_data_dir,
                        "_".join(sorted(t.name for t in tasks)) + f"_{split}.tfrecord")
    template = dummy_features(tasks, 1, config.max_seq_length)
    metadata = cache_metadata(config, split, template)
    cached = read_metadata(path)
    if config.use_tfrecords_if_existing and cached is not None and all(
            cached.get(k) == v for k, v in metadata.items()):
        print(f"reading {cached['n_examples']} cached {split} records from {path}")
        features = read_records(path, template)
        examples = None if is_training else {t.name: t.get_examples(split) for t in tasks}
        return examples, features
    examples = {t.name: t.get_examples(split) for t in tasks}
    parts = [t.featurize(examples[t.name], is_training) for t in tasks if examples[t.name]]
    if not parts:
        raise ValueError(f"no {split} examples for {', '.join(config.task_names)}")
    features = merge_features(parts, tasks)
    if config.log_examples and is_training:
        print("first featurised example:", {k: v[0].tolist() for k, v in features.items()})
    if write_cache:
        write_records(path, features, dict(metadata, n_examples=len(features["task_id"])))
    return examples, features


def cache_metadata(config, split, template):
    """What a cached record file must match to be reused (`template`: one all-zero record)."""
    return {"tasks": sorted(config.task_names), "split": split,
            "max_seq_length": config.max_seq_length, "vocab_file": config.vocab_file,
            "vocab_bytes": tf.io.gfile.stat(config.vocab_file).length,
            "do_lower_case": config.do_lower_case, "debug": config.debug,
            "features": sorted(template)}


def read_metadata(path):
    """The metadata of the cache at `path`, or None if either file is missing."""
    if not files.exists(path + ".metadata") or not files.exists(path):
        return None
    return files.read_json(path + ".metadata")


def write_records(path, features, metadata):
    """Writes records as `tf.train.Example`s (int64/float lists), then the metadata, which
    marks them complete (the stale metadata goes first)."""
    files.remove(path + ".metadata")
    with files.atomic_path(path, overwrite=True) as tmp:
        with tf.io.TFRecordWriter(tmp) as writer:
            for i in range(len(features["task_id"])):
                example = {}
                for key, values in features.items():
                    flat = np.asarray(values[i]).reshape(-1)
                    example[key] = (
                        tf.train.Feature(float_list=tf.train.FloatList(value=flat))
                        if flat.dtype.kind == "f" else
                        tf.train.Feature(int64_list=tf.train.Int64List(value=flat)))
                writer.write(tf.train.Example(features=tf.train.Features(
                    feature=example)).SerializeToString())
    files.write_json(path + ".metadata", metadata)


def read_records(path, template):
    """Reads `write_records` output back into arrays shaped and typed like `template`."""
    spec = {k: tf.io.FixedLenFeature(v.shape[1:], tf.float32 if v.dtype.kind == "f"
                                     else tf.int64) for k, v in template.items()}
    dataset = tf.data.TFRecordDataset(path).batch(1024).map(
        lambda r: tf.io.parse_example(r, spec))
    parts = list(dataset.as_numpy_iterator())
    return {k: np.concatenate([p[k] for p in parts]).astype(template[k].dtype)
            for k in template}
