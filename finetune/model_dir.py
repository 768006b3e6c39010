"""A fine-tuned model directory: what each trial writes, and what eval and export read back.

`<model_dir>_<trial>/` holds:
  finetuning_config.json   every resolved hyperparameter (`FinetuningConfig.to_dict()`)
  vocab.txt                the vocabulary the model was trained with
  labels.json              {task: label names in id order} (classification, tagging)
  model.weights.h5         the Keras weights of the encoder and every head
  original/model.ckpt-<N>  the same weights in the original TF1 layout (`electra/*`,
                           `task_specific/<task>/*`, Adam slots, `global_step`), as the
                           original's final fine-tuning checkpoint
The directory is written beside its final place and renamed into it, so a killed run never
leaves a half-written model; it only ever replaces a directory holding these files.
"""

import collections
import json
import os

import tensorflow as tf

from electra_tf import checkpoints, optimization
from finetune import heads
from finetune import tasks as tasks_lib
from finetune.config import FinetuningConfig
from pretrain_data.tokenization import FullTokenizer

CONFIG_FILE = "finetuning_config.json"
VOCAB_FILE = "vocab.txt"
LABELS_FILE = "labels.json"
WEIGHTS_FILE = "model.weights.h5"
ORIGINAL_DIR = "original"
OWN_FILES = (CONFIG_FILE, VOCAB_FILE, LABELS_FILE, WEIGHTS_FILE, ORIGINAL_DIR)

FinetunedModel = collections.namedtuple("FinetunedModel", "config tasks model vocab_file")


def label_names(task):
    """The task's label names in id order, or None (regression, QA)."""
    if task.task_type == "classification":
        return list(task.label_list)
    if task.task_type == "tagging":
        return [tag for tag, _ in sorted(task.label_mapping.items(), key=lambda kv: kv[1])]
    return None


def save(directory, config, model, tasks, optimizer=None):
    """Writes a fine-tuned model directory (see the module docstring).

    Args:
        directory: the target; an existing one is replaced only if it holds nothing but
            the files listed above.
        config: the run's `FinetuningConfig`.
        model: the trained `FinetuningModel`.
        tasks: its tasks.
        optimizer: the optimizer, to write its Adam slots and step in the TF1 checkpoint.
    Returns:
        `directory`.
    """
    check_replaceable(directory)
    parent = os.path.dirname(os.path.abspath(directory))
    tf.io.gfile.makedirs(parent)
    tmp = os.path.join(parent, f".{os.path.basename(directory)}.incomplete")
    if tf.io.gfile.exists(tmp):
        tf.io.gfile.rmtree(tmp)
    tf.io.gfile.makedirs(tmp)
    with tf.io.gfile.GFile(os.path.join(tmp, CONFIG_FILE), "w") as f:
        json.dump(config.to_dict(), f, indent=1, sort_keys=True)
    tf.io.gfile.copy(config.vocab_file, os.path.join(tmp, VOCAB_FILE))
    with tf.io.gfile.GFile(os.path.join(tmp, LABELS_FILE), "w") as f:
        json.dump({t.name: label_names(t) for t in tasks}, f, indent=1)
    model.save_weights(os.path.join(tmp, WEIGHTS_FILE))
    step, slots = (optimization.export_original_state(optimizer) if optimizer is not None
                   else (None, None))
    checkpoints.save_mapped(model.original_variables(), os.path.join(
        tmp, ORIGINAL_DIR, f"model.ckpt-{step or 0}"), step, slots)
    remove(directory)
    tf.io.gfile.rename(tmp, directory)
    return directory


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
    """Deletes a fine-tuned model directory (only one `check_replaceable` accepts)."""
    if tf.io.gfile.isdir(directory):
        check_replaceable(directory)
        tf.io.gfile.rmtree(directory)


def load(directory):
    """Reads a fine-tuned model directory back.

    Args:
        directory: a directory written by `save` (a trial's `<model_dir>_<trial>`).
    Returns:
        `FinetunedModel(config, tasks, model, vocab_file)`; the tasks carry their saved label
        names, so no training data is needed.
    """
    path = os.path.join(directory, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: not found; {directory} is not a fine-tuned model "
                                "directory (expected the output of finetune.run_finetuning)")
    values = dict(json.loads(tf.io.gfile.GFile(path).read()))
    config = FinetuningConfig(values.pop("model_name"), values.pop("data_dir"), **values)
    vocab_file = os.path.join(directory, VOCAB_FILE)
    labels = json.loads(tf.io.gfile.GFile(os.path.join(directory, LABELS_FILE)).read())
    tokenizer = FullTokenizer(vocab_file, do_lower_case=config.do_lower_case)
    tasks = tasks_lib.get_tasks(config, tokenizer)
    for task in tasks:
        if task.task_type == "tagging":
            task.label_mapping = {tag: i for i, tag in enumerate(labels[task.name])}
    model = heads.build_finetuning_model(config, tasks)
    model.load_weights(os.path.join(directory, WEIGHTS_FILE))
    return FinetunedModel(config, tasks, model, vocab_file)
