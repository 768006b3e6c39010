"""Featurised records: every task's examples of a split as one set of arrays, cached.

A record carries the shared inputs (`input_ids`, `input_mask`, `segment_ids` [S],
`task_id`) and every task's own features, zeros where a feature does not apply, as the
original's records. The records of a split are cached as TFRecords beside a `.metadata`
JSON file, which records every input they were made from (data files by content,
vocabulary, tokenizer and featurisation settings). The records are committed first and
the metadata last (after the stale metadata is removed), each atomically, so a run killed
in between leaves records without metadata: not a cache, rebuilt by the next run.
"""

import hashlib
import os

import numpy as np
import tensorflow as tf

from electra_common import files
from finetune.model import dummy_features

# Bumped when featurisation changes what it writes, so older caches are rebuilt.
CACHE_FORMAT = 2
# The `FullTokenizer` settings the records depend on (besides the vocabulary).
TOKENIZER_SETTINGS = ("do_lower_case", "strip_accents", "max_input_chars_per_word",
                      "unk_token")


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

    The records are written to `cache_path(config, split)` with a `.metadata` JSON that
    records every input they were made from (`cache_metadata`); with
    `use_tfrecords_if_existing` a cache whose inputs all match is read instead of
    featurising again, and one whose inputs differ is rebuilt with a line naming them.
    Unlike the original, the cache is not shuffled: each trial shuffles with its own seed.

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
    path = cache_path(config, split)
    template = dummy_features(tasks, 1, config.max_seq_length)
    metadata = cache_metadata(config, tasks, split, is_training)
    cached = read_metadata(path)
    if config.use_tfrecords_if_existing and cached is not None:
        changed = changed_inputs(cached, metadata)
        features = None if changed else read_records(path, template)
        if features is not None and len(features["task_id"]) != cached["n_examples"]:
            changed = [f"{path} holds {len(features['task_id'])} records, its metadata "
                       f"{cached['n_examples']}"]
        if not changed:
            print(f"reading {cached['n_examples']} cached {split} records from {path}")
            examples = None if is_training else {t.name: t.get_examples(split) for t in tasks}
            return examples, features
        print(f"rebuilding {split} records: {', '.join(changed)}")
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


def cache_path(config, split):
    """`<preprocessed_data_dir>/<sorted task names joined by _>_<split>.tfrecord`."""
    return os.path.join(config.preprocessed_data_dir,
                        "_".join(sorted(config.task_names)) + f"_{split}.tfrecord")


def fingerprint(path):
    """What identifies a file's content: {"bytes", "mtime" (ns), "sha256"}.

    Hashing reads the file once (about 400 MB/s), little next to featurising it.
    """
    stat = tf.io.gfile.stat(path)
    digest = hashlib.sha256()
    with files.open_file(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"bytes": stat.length, "mtime": stat.mtime_nsec, "sha256": digest.hexdigest()}


def cache_metadata(config, tasks, split, is_training=False):
    """Every input a split's records are made from, by name: what a cache must match to be
    reused.

    The task names in order (they number `task_id`), the split, the feature names, the
    vocabulary's and each data file's `fingerprint`, the tokenizer's settings and each
    task's `featurize_settings()` (sequence lengths, `doc_stride`, label maps, ...).
    """
    tokenizer = tasks[0].tokenizer
    metadata = {"format": CACHE_FORMAT, "tasks": list(config.task_names), "split": split,
                "is_training": bool(is_training),
                "features": sorted(dummy_features(tasks, 1, config.max_seq_length)),
                "vocab_file": fingerprint(tokenizer.vocab_file)}
    metadata.update({key: getattr(tokenizer, key) for key in TOKENIZER_SETTINGS})
    for task in tasks:
        metadata.update(task.featurize_settings())
        for path in task.data_files(split):
            metadata[os.path.relpath(path, os.path.dirname(config.raw_data_dir(task.name)))] = (
                fingerprint(path))
    return metadata


def changed_inputs(cached, metadata):
    """What differs between a cache's metadata and the current inputs, one phrase each
    ("dev.tsv changed", "doc_stride changed (128 -> 64)"); empty if the cache is current.

    A file counts as changed when its size or content differs (a new mtime alone does not).
    """
    changed = []
    for key, value in metadata.items():
        old = cached.get(key)
        if isinstance(value, dict) and "sha256" in value:
            if not isinstance(old, dict) or any(old.get(k) != value[k]
                                                for k in ("bytes", "sha256")):
                changed.append(f"{key} changed")
        elif old != value:
            changed.append(f"{key} changed ({old!r} -> {value!r})" if key in cached
                           else f"{key} was not recorded (an older cache)")
    return changed


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
