"""A fine-tuned model directory: what each trial writes, and what eval and export read back.

`<model_dir>_<trial>/` holds:
  finetuning_config.json   the config (`FinetuningConfig.save`: its constructor arguments
                           and every resolved value)
  vocab.txt                the vocabulary the model was trained with
  labels.json              {task: label names in id order} (classification, tagging)
  model.weights.h5         the Keras weights of the encoder and every head
  original/model.ckpt-<N>  the same weights in the original TF1 layout (`electra/*`,
                           `task_specific/<task>/*`, Adam slots, `global_step`), as the
                           original's final fine-tuning checkpoint
  serving.json             {"entry_point": "finetuned"}: how `electra_tf.serving.export`
                           serves it (`finetune.serving.build_serving_module`)
  training.json            {"global_step", "train_seconds", "finished_at"}: its training
  train/                   TensorBoard scalars of training (`loss`, `learning_rate`),
                           written there while it trains
  eval/                    TensorBoard scalars of its dev metrics, at its last step
  learning_curves.png      train loss, dev metrics and learning rate against the step
The model's files are written whole or not at all (`electra_common.files.atomic_path`);
the directory only ever replaces one holding these files. So a directory holding
`finetuning_config.json` holds a complete model (`is_complete`).
"""

import collections
import datetime
import os

import tensorflow as tf

from electra_common import files
from electra_tf import checkpoints
from electra_tf.serving.export import SERVING_FILE
from finetune import tasks as tasks_lib
from finetune.config import FinetuningConfig
from finetune.model import build_finetuning_model
from pretrain_data.tokenization import FullTokenizer

CONFIG_FILE = "finetuning_config.json"
VOCAB_FILE = "vocab.txt"
LABELS_FILE = "labels.json"
WEIGHTS_FILE = "model.weights.h5"
ORIGINAL_DIR = "original"
TRAINING_FILE = "training.json"
TRAIN_LOGDIR = "train"
EVAL_LOGDIR = "eval"
CURVES_FILE = "learning_curves.png"
OWN_FILES = (CONFIG_FILE, VOCAB_FILE, LABELS_FILE, WEIGHTS_FILE, ORIGINAL_DIR, SERVING_FILE,
             TRAINING_FILE, TRAIN_LOGDIR, EVAL_LOGDIR, CURVES_FILE)
# The `electra_tf.serving` entry point (declared in pyproject.toml) that serves this layout.
SERVING_ENTRY_POINT = "finetuned"

FinetunedModel = collections.namedtuple("FinetunedModel", "config tasks model vocab_file")


def label_names(task):
    """The task's label names in id order, or None (regression, QA)."""
    if task.task_type == "classification":
        return list(task.label_list)
    if task.task_type == "tagging":
        return [tag for tag, _ in sorted(task.label_mapping.items(), key=lambda kv: kv[1])]
    return None


def save(directory, config, model, tasks, optimizer=None, training=None):
    """Writes a fine-tuned model directory (see the module docstring).

    The TensorBoard scalars training wrote into `directory/train` are kept.

    Args:
        directory: the target; an existing one is replaced only if it holds nothing but
            the files listed above.
        config: the run's `FinetuningConfig`.
        model: the trained `FinetuningModel`.
        tasks: its tasks.
        optimizer: the optimizer, to write its Adam slots and step in the TF1 checkpoint.
        training: None, or {"global_step", "train_seconds", "finished_at"} for
            `training.json` (`training_record`).
    Returns:
        `directory`.
    """
    check_replaceable(directory)
    step, slots = optimizer.original_state() if optimizer is not None else (None, None)
    with files.atomic_path(directory, overwrite=True) as tmp:
        files.makedirs(tmp)
        config.save(os.path.join(tmp, CONFIG_FILE))
        if training is not None:
            files.write_json(os.path.join(tmp, TRAINING_FILE), training)
        tf.io.gfile.copy(config.vocab_file, os.path.join(tmp, VOCAB_FILE))
        files.write_json(os.path.join(tmp, LABELS_FILE),
                         {t.name: label_names(t) for t in tasks})
        model.save_weights(os.path.join(tmp, WEIGHTS_FILE))
        checkpoints.save_mapped(model.original_variables(), os.path.join(
            tmp, ORIGINAL_DIR, f"model.ckpt-{step or 0}"), step, slots)
        files.write_json(os.path.join(tmp, SERVING_FILE), {"entry_point": SERVING_ENTRY_POINT})
        logs = os.path.join(directory, TRAIN_LOGDIR)
        if tf.io.gfile.isdir(logs):  # last: nothing can fail after it but the commit
            tf.io.gfile.rename(logs, os.path.join(tmp, TRAIN_LOGDIR))
    return directory


def training_record(global_step, train_seconds, finished_at=None):
    """What `training.json` holds: the steps, the seconds training took, and when it
    finished (UTC, ISO 8601; default: now)."""
    finished_at = finished_at or datetime.datetime.now(datetime.timezone.utc)
    return {"global_step": int(global_step), "train_seconds": round(float(train_seconds), 3),
            "finished_at": finished_at.isoformat(timespec="seconds")}


def is_complete(directory):
    """Whether `directory` holds a whole fine-tuned model (written by `save`)."""
    return files.exists(os.path.join(directory, CONFIG_FILE))


def read_training(directory):
    """`training.json` of a complete model directory; for one written before it existed,
    the step of its `original/` checkpoint and the time its weights were written (its
    training time unknown: None)."""
    path = os.path.join(directory, TRAINING_FILE)
    if files.exists(path):
        return files.read_json(path)
    prefix = tf.train.latest_checkpoint(os.path.join(directory, ORIGINAL_DIR))
    mtime = tf.io.gfile.stat(os.path.join(directory, WEIGHTS_FILE)).mtime_nsec / 1e9
    return dict(training_record(prefix.rsplit("-", 1)[1] if prefix else 0, 0,
                                datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc)),
                train_seconds=None)


def check_replaceable(directory):
    """Raises `FileExistsError` if `directory` holds anything we did not write."""
    if not tf.io.gfile.isdir(directory):
        return
    foreign = sorted(set(tf.io.gfile.listdir(directory)) - set(OWN_FILES)
                     - {d + "/" for d in OWN_FILES})
    if foreign:
        raise FileExistsError(f"{directory}: holds files a fine-tuning run did not write "
                              f"({', '.join(foreign)}); move them or choose another model_dir")


def remove(directory):
    """Deletes a fine-tuned model directory (only one `check_replaceable` accepts).

    It is first renamed to a temporary name, so a kill while deleting leaves a leftover
    for the next run to clean up, never a half-deleted model that still looks whole.
    """
    if tf.io.gfile.isdir(directory):
        check_replaceable(directory)
        doomed = files.temporary_path(directory)
        tf.io.gfile.rename(directory, doomed)
        files.remove(doomed)


def load(directory):
    """Reads a fine-tuned model directory back.

    Args:
        directory: a directory written by `save` (a trial's `<model_dir>_<trial>`).
    Returns:
        `FinetunedModel(config, tasks, model, vocab_file)`; the tasks carry their saved label
        names, so no training data is needed.
    """
    path = os.path.join(directory, CONFIG_FILE)
    if not files.exists(path):
        raise FileNotFoundError(f"{path}: not found; {directory} is not a fine-tuned model "
                                "directory (expected the output of finetune.run_finetuning)")
    config = FinetuningConfig.load(path)
    vocab_file = os.path.join(directory, VOCAB_FILE)
    labels = files.read_json(os.path.join(directory, LABELS_FILE))
    tokenizer = FullTokenizer(vocab_file, do_lower_case=config.do_lower_case)
    tasks = tasks_lib.get_tasks(config, tokenizer)
    for task in tasks:
        if task.task_type == "tagging":
            task.label_mapping = {tag: i for i, tag in enumerate(labels[task.name])}
    model = build_finetuning_model(config, tasks)
    model.load_weights(os.path.join(directory, WEIGHTS_FILE))
    return FinetunedModel(config, tasks, model, vocab_file)
