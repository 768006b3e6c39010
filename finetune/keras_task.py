"""The Keras-native path: one GLUE task as a compiled `keras.Model` for `model.fit`.

An alternative for Keras users; `finetune.run_finetuning` (the original's loop: the loss
summed over the batch, the original AdamWeightDecay with layer-wise LR decay) stays the
default. Here the encoder and head are the same (`electra_tf.models.Encoder`,
`finetune.heads.Head`, the same featurisation), but the loss is Keras' mean over the
batch and the optimizer Keras' `AdamW` (see `task_model`).
"""

import os
import re

import keras
import numpy as np
import tensorflow as tf

from electra_common import files
from electra_tf import checkpoints
from electra_tf.optimization import WarmupPolynomialDecay
from electra_tf.optimization.adam_weight_decay import EXCLUDE_FROM_WEIGHT_DECAY
from finetune import model_dir as model_dir_lib

SUPPORTED_TASK_TYPES = ("classification", "regression")
INPUTS = ("input_ids", "input_mask", "segment_ids")


@keras.saving.register_keras_serializable(package="finetune")
class TaskModel(keras.Model):
    """An encoder and one task's head: token ids → the head's float32 logits.

    Args:
        encoder: an `electra_tf.models.Encoder`.
        head: the task's `finetune.heads.Head` (classification or regression).
    Inputs: a dict of int `input_ids`, `input_mask`, `segment_ids` [B, S].
    Outputs: classification: logits [B, num_labels]; regression: predictions [B].

    Example:
    ```python
    model = TaskModel(encoder, task.build_head())
    logits = model({"input_ids": ids, "input_mask": mask, "segment_ids": segments})
    ```
    """

    def __init__(self, encoder, head, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head = head

    def call(self, inputs, training=False):
        encoder_outputs = self.encoder({k: tf.cast(inputs[k], "int32") for k in INPUTS},
                                       training=training)
        logits = self.head.logits(encoder_outputs, training=training)
        return logits[:, 0] if self.head.task_type == "regression" else logits

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "head": keras.saving.serialize_keras_object(self.head)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        head = keras.saving.deserialize_keras_object(config.pop("head"))
        return cls(encoder, head, **config)

    def build(self, input_shape):
        # The head's dense layer makes its variables on its first call.
        seq_length = input_shape["input_ids"][-1] or 8
        self.call({k: np.zeros((1, seq_length), np.int32) for k in INPUTS})


def task_dataset(task, split, batch_size, shuffle_seed=None):
    """A task's split as batches of `(inputs, labels)` for `model.fit` / `evaluate`.

    The examples are featurised by the task itself (`task.featurize`, as the records of
    `finetune.records`); no record cache is written.

    Args:
        task: a classification or regression task (`finetune.tasks.get_task`).
        split: "train", "dev", ...
        batch_size: examples per batch (the last batch may be smaller).
        shuffle_seed: shuffle every epoch from this seed; None keeps the file's order.
    Returns:
        A `tf.data.Dataset` of ({"input_ids", "input_mask", "segment_ids": int32 [B, S]},
        labels: int32 label ids [B] (classification) or float32 targets [B] (regression,
        STS scores / 5)).
    """
    check_task_type(task)
    features = task.featurize(task.get_examples(split), is_training=split == "train")
    label_key = "label_ids" if task.task_type == "classification" else "targets"
    dataset = tf.data.Dataset.from_tensor_slices(
        ({k: features[k] for k in INPUTS}, features[f"{task.name}_{label_key}"]))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(features["task_id"]), seed=shuffle_seed)
    return dataset.batch(batch_size)


def task_model(model_dir, task, num_train_steps=None):
    """A compiled `keras.Model` for one task, its encoder read from a model directory.

    Compiled with Keras' `AdamW` (global-norm clip at 1.0, ε = 1e-6, weight decay
    `weight_decay_rate` except LayerNorm and biases, as the original) on the original
    schedule (`WarmupPolynomialDecay`: warm-up over `warmup_proportion`, linear decay to 0
    at `num_train_steps`), the hyperparameters read from `task.config`. Unlike the
    original loop, the loss is the batch mean and there is no layer-wise LR decay (the
    project's `AdamWeightDecay` is not a Keras optimizer), and Keras evaluates the schedule
    at the update count before each update, one step behind the original loop (the first
    update has LR 0 during warm-up). Loss and metrics:
    `SparseCategoricalCrossentropy(from_logits=True)` and accuracy (classification), mean
    squared error and Pearson correlation (regression). XLA as `jit_compile`. A `.keras`
    file of the model keeps the optimizer, but not its weight-decay exclusions (Keras does
    not save them).

    Args:
        model_dir: a pretrained model directory (`config.json` and `ckpt-<N>`, from
            pretraining or `convert_checkpoint`): its encoder, a new head; or a fine-tuned
            model directory (`<task>_model_<trial>`, holding `finetuning_config.json`) that
            has this task: its encoder and its head.
        task: a classification or regression task object (`finetune.tasks.get_task`).
        num_train_steps: the updates `fit` will make, for the LR schedule; None keeps the
            LR at `learning_rate`.
    Returns:
        A compiled, built `TaskModel`.
    Raises:
        ValueError: a task type other than classification and regression, or a fine-tuned
            directory without this task.
        FileNotFoundError: no model directory at `model_dir`.
    """
    check_task_type(task)
    encoder, head = read_encoder_and_head(model_dir, task)
    model = TaskModel(encoder, head, name=f"{task.name}_model")
    model.build({k: (None, task.config.max_seq_length) for k in INPUTS})
    config = task.config
    learning_rate = config.learning_rate
    if num_train_steps:
        learning_rate = WarmupPolynomialDecay(learning_rate, num_train_steps,
                                              warmup_proportion=config.warmup_proportion)
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay_rate,
                                       epsilon=1e-6, global_clipnorm=1.0)
    # The original excludes variables by their original names.
    original = {n: m.variable for n, m in checkpoints.encoder_variable_map(encoder).items()}
    original.update({f"task_specific/{task.name}/{k}": v
                     for k, v in head.original_variables().items()})
    optimizer.exclude_from_weight_decay(var_list=[
        v for n, v in original.items() if any(re.search(r, n) for r in EXCLUDE_FROM_WEIGHT_DECAY)])
    if task.task_type == "classification":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metric = keras.metrics.SparseCategoricalAccuracy("accuracy")
    else:
        loss, metric = keras.losses.MeanSquaredError(), keras.metrics.PearsonCorrelation("pearson")
    optimizer.build(model.trainable_variables)  # slots made now: `fit` traces its step once
    model.compile(optimizer, loss, metrics=[metric], jit_compile=config.jit_compile)
    return model


def read_encoder_and_head(model_dir, task):
    """(encoder, head) from a fine-tuned or a pretrained model directory (see `task_model`)."""
    if files.exists(os.path.join(model_dir, model_dir_lib.CONFIG_FILE)):
        finetuned = model_dir_lib.load(model_dir)
        if task.name not in finetuned.model.heads:
            raise ValueError(f"{model_dir}: a fine-tuned model of "
                             f"{', '.join(finetuned.model.heads)}, not of {task.name}")
        return finetuned.model.encoder, finetuned.model.heads[task.name]
    if not files.exists(os.path.join(model_dir, checkpoints.CONFIG_FILE)):
        raise FileNotFoundError(
            f"{model_dir}: neither a pretrained model directory ({checkpoints.CONFIG_FILE} "
            f"and ckpt-<N>) nor a fine-tuned one ({model_dir_lib.CONFIG_FILE})")
    return checkpoints.load_model_dir(model_dir).encoder, task.build_head()


def check_task_type(task):
    """Raises a `ValueError` naming the supported task types for any other task."""
    if task.task_type not in SUPPORTED_TASK_TYPES:
        raise ValueError(
            f"{task.name} is a {task.task_type} task; the Keras path supports "
            f"{' and '.join(SUPPORTED_TASK_TYPES)} tasks (GLUE); fine-tune {task.task_type} "
            "tasks with finetune.run_finetuning")
