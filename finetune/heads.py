"""Fine-tuning heads on the shared encoder, and their losses (spec §8.2).

Every head lives under the original scope `task_specific/<task>/` and maps its variables to
those names itself (`original_variables`). The batch loss is the sum over examples (not a
mean) of each example's own task loss, selected by `one_hot(task_id)`. The QA head is
`finetune.qa.head.QAHead`.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from electra_tf import checkpoints
from electra_tf import modeling

TASK_TYPES = ("classification", "regression", "tagging")


@keras.saving.register_keras_serializable(package="finetune")
class Head(keras.layers.Layer):
    """One GLUE or tagging task's head: optional [CLS] dropout, then `dense` (Glorot-uniform,
    as TF1), and the per-example loss.

    Every head (this one and `finetune.qa.head.QAHead`) has the same interface: `call(
    encoder_outputs, features, training)` returns the original's outputs dict with a
    per-example "loss" [B], and `original_variables()` its variables by original name.

    Args:
        task_name: the task, whose `<task>_*` features the head reads.
        task_type: "classification" ([CLS] → dropout 0.1 → dense [H, n] → log-softmax
            cross-entropy), "regression" ([CLS] → dropout 0.1 → dense [H, 1] → squeeze →
            squared error) or "tagging" (the sequence output at the labelled positions →
            dense [H, n], no dropout → cross-entropy × labels_mask, summed).
        num_outputs: labels (classification) or tag classes (tagging); 1 for regression.
    """

    def __init__(self, task_name, task_type, num_outputs=1, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type must be one of {TASK_TYPES}, got {task_type!r}")
        self.task_name = task_name
        self.task_type = task_type
        self.num_outputs = 1 if task_type == "regression" else num_outputs
        self.dropout_rate = dropout
        self.dropout = keras.layers.Dropout(dropout)
        # Logits in float32 under mixed precision, as every other logit in the project.
        self.dense = keras.layers.Dense(self.num_outputs, kernel_initializer="glorot_uniform",
                                        dtype="float32", name="dense")

    def call(self, encoder_outputs, features, training=False):
        name, out = self.task_name, {}
        if self.task_type == "tagging":
            reprs = tf.gather(encoder_outputs["sequence_output"],
                              tf.cast(features[f"{name}_labeled_positions"], "int32"),
                              batch_dims=1)
            out["logits"] = self.dense(tf.cast(reprs, "float32"))
            out["predictions"] = tf.argmax(out["logits"], -1)
            out["labels"] = features[f"{name}_labels"]
            out["labels_mask"] = features[f"{name}_labels_mask"]
            out["loss"] = tagging_losses(out["logits"], out["labels"], out["labels_mask"])
        else:
            reprs = self.dropout(encoder_outputs["pooled_output"], training=training)
            logits = self.dense(tf.cast(reprs, "float32"))
            if self.task_type == "regression":
                out["predictions"] = tf.squeeze(logits, -1)
                out["targets"] = features[f"{name}_targets"]
                out["loss"] = regression_losses(out["predictions"], out["targets"])
            else:
                out["logits"] = logits
                out["predictions"] = tf.argmax(logits, -1)
                out["label_ids"] = features[f"{name}_label_ids"]
                out["loss"] = classification_losses(logits, out["label_ids"])
        if f"{name}_eid" in features:
            out["eid"] = features[f"{name}_eid"]
        return out

    def original_variables(self):
        """{name under `task_specific/<task>/`: variable}."""
        return {"dense/kernel": self.dense.kernel, "dense/bias": self.dense.bias}

    def get_config(self):
        return {**super().get_config(), "task_name": self.task_name,
                "task_type": self.task_type, "num_outputs": self.num_outputs,
                "dropout": self.dropout_rate}


def classification_losses(logits, label_ids):
    """Per-example cross-entropy [B] from logits [B, n] and int labels [B]."""
    log_probs = tf.nn.log_softmax(logits, -1)
    one_hot = tf.one_hot(label_ids, tf.shape(logits)[-1], dtype=log_probs.dtype)
    return -tf.reduce_sum(one_hot * log_probs, -1)


def regression_losses(predictions, targets):
    """Per-example squared error [B]; STS targets are already divided by 5."""
    return tf.square(predictions - tf.cast(targets, predictions.dtype))


def tagging_losses(logits, labels, labels_mask):
    """Per-example loss [B]: cross-entropy at each position × labels_mask, summed."""
    losses = tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype), logits=logits)
    return tf.reduce_sum(losses * tf.cast(labels_mask, losses.dtype), -1)


@keras.saving.register_keras_serializable(package="finetune")
class FinetuningModel(keras.Model):
    """The original `FinetuningModel`: one encoder (`electra/*`), one head per task.

    `model.save("m.keras")` / `keras.models.load_model("m.keras")` round-trip it: the file
    keeps each task as a `SavedTask` (name, type, feature specs, head), so loading needs
    no training data; the reloaded model's `tasks` are those `SavedTask`s.

    Args:
        encoder: an `electra_tf.modeling.Encoder`.
        tasks: `finetune.tasks` task objects in `task_names` order (a feature's `task_id`
            indexes this list); each builds its head with `task.build_head()`.
    Inputs: a dict with int `input_ids`, `input_mask`, `segment_ids` [B, S], `task_id` [B],
        and every task's own features (`task.feature_specs()`); `<t>_eid` is passed through.
    Outputs: {"loss": scalar sum over examples, "<task>": {"loss": [B], "logits" /
        "predictions", ...}, "electra": the encoder outputs} as the original's dict.

    Example:
    ```python
    model = FinetuningModel(encoder, [tasks.get_task(config, "mnli", tokenizer)])
    outputs = model(features, training=False)
    ```
    """

    def __init__(self, encoder, tasks, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.tasks = list(tasks)
        self.heads = {t.name: t.build_head() for t in self.tasks}

    def call(self, features, training=False):
        encoder_outputs = self.encoder(
            {k: tf.cast(features[k], "int32")
             for k in ("input_ids", "input_mask", "segment_ids")}, training=training)
        outputs = {t.name: self.heads[t.name](encoder_outputs, features, training=training)
                   for t in self.tasks}
        outputs["loss"] = combine_losses([outputs[t.name]["loss"] for t in self.tasks],
                                         features["task_id"])
        outputs["electra"] = encoder_outputs
        return outputs

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "tasks": [SavedTask.of(t, self.heads[t.name]).get_config() for t in self.tasks]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        tasks = [SavedTask.from_config(c) for c in config.pop("tasks")]
        return cls(encoder, tasks, **config)

    def get_build_config(self):
        # Any length builds the heads; QA needs at least its beam of positions.
        beams = [getattr(h, "beam_size", 0) for h in self.heads.values()]
        return {"seq_length": max([8] + beams)}

    def build_from_config(self, config):
        self(dummy_features(self.tasks, 1, config["seq_length"]), training=False)

    def original_variables(self):
        """{original name: `checkpoints.Mapped`} for the encoder and every head (§5.1, §8.2).

        This is what `optimization.create_optimizer(..., variables=...)` takes.
        """
        if not all(h.built for h in self.heads.values()):
            raise ValueError("call the model once before asking for its variables")
        mapping = _encoder_variables(self.encoder)
        for task in self.tasks:
            for suffix, variable in self.heads[task.name].original_variables().items():
                mapping[f"task_specific/{task.name}/{suffix}"] = checkpoints.Mapped(
                    variable, tuple(variable.shape))
        return mapping


class SavedTask:
    """What a `.keras` file keeps of a task: enough to rebuild and call its head.

    Args:
        name: the task name (its features are `<name>_*`).
        task_type: "classification", "regression", "tagging" or "qa".
        feature_specs: {feature: (shape, NumPy dtype)}, as `Task.feature_specs()`.
        head: the task's head layer.
    """

    def __init__(self, name, task_type, feature_specs, head):
        self.name, self.task_type, self.head = name, task_type, head
        self._feature_specs = {k: (tuple(shape), np.dtype(dtype))
                               for k, (shape, dtype) in feature_specs.items()}

    @classmethod
    def of(cls, task, head):
        return cls(task.name, task.task_type, task.feature_specs(), head)

    def feature_specs(self):
        return dict(self._feature_specs)

    def build_head(self):
        return self.head

    def get_config(self):
        # Without the head's build shapes: `FinetuningModel.build_from_config` builds it.
        head = keras.saving.serialize_keras_object(self.head)
        head.pop("build_config", None)
        return {"name": self.name, "task_type": self.task_type,
                "feature_specs": {k: [list(shape), dtype.name]
                                  for k, (shape, dtype) in self._feature_specs.items()},
                "head": head}

    @classmethod
    def from_config(cls, config):
        return cls(config["name"], config["task_type"], config["feature_specs"],
                   keras.saving.deserialize_keras_object(config["head"]))


def combine_losses(per_task_losses, task_id):
    """Σ over the batch of each example's own task loss; task_id = #tasks (padding) → 0."""
    losses = tf.stack(per_task_losses, -1)
    return tf.reduce_sum(losses * tf.one_hot(task_id, len(per_task_losses),
                                             dtype=losses.dtype))


def dummy_features(tasks, batch_size=1, seq_length=8):
    """All-zero features for every task (`task.feature_specs()`), e.g. to build a model."""
    features = {k: np.zeros((batch_size, seq_length), np.int32)
                for k in ("input_ids", "input_mask", "segment_ids")}
    features["task_id"] = np.zeros(batch_size, np.int32)
    for task in tasks:
        for key, (shape, dtype) in task.feature_specs().items():
            features[key] = np.zeros((batch_size,) + tuple(shape), dtype)
    return features


def build_finetuning_model(config, tasks, init_checkpoint=None):
    """A fine-tuning model whose encoder starts from a pretrained checkpoint.

    As the original's `init_from_checkpoint`, only `electra/*` is restored: generator,
    discriminator head, optimizer state and step are not, and the heads are new.

    Args:
        config: a `finetune.config.FinetuningConfig`.
        tasks: task objects (see `FinetuningModel`).
        init_checkpoint: None (random weights); one of our model directories (with
            `config.json`, from pretraining or `convert_checkpoint`); or an original TF1
            checkpoint prefix, or a directory holding one.
    Returns:
        A built `FinetuningModel`.
    Raises:
        ValueError: the checkpoint's encoder does not have the config's shapes.
    """
    encoder = modeling.Encoder.from_bert_config(
        config.bert_config(), embedding_size=config.embedding_size, dtype=config.precision)
    if init_checkpoint:
        if not tf.io.gfile.exists(init_checkpoint) and not tf.io.gfile.exists(
                init_checkpoint + ".index"):
            raise FileNotFoundError(
                f"init_checkpoint {init_checkpoint}: not found. Pretrain a model there, convert "
                "an original checkpoint into it (python -m electra_tf.convert_checkpoint), or "
                "set \"init_checkpoint\": null to start from random weights")
        if tf.io.gfile.exists(os.path.join(init_checkpoint, checkpoints.CONFIG_FILE)):
            source = checkpoints.load_model_dir(init_checkpoint).encoder
            values = {n: np.reshape(m.variable.numpy(), m.original_shape)
                      for n, m in _encoder_variables(source).items()}
        else:
            values = checkpoints.read_checkpoint(init_checkpoint)
        load_encoder_weights(values, encoder, init_checkpoint)
    model = FinetuningModel(encoder, tasks)
    model(dummy_features(tasks, 1, config.max_seq_length), training=False)
    return model


def _encoder_variables(encoder):
    return checkpoints.variable_map(modeling.ElectraModels(None, None, None, encoder))


def load_encoder_weights(values, encoder, where):
    """Assigns `electra/*` by original name, ignoring everything else (spec §5.7).

    Args:
        values: {original name: array}, e.g. `checkpoints.read_checkpoint(prefix)`.
        encoder: the `Encoder` to fill.
        where: the checkpoint's path, for error messages.
    Raises:
        ValueError: a variable missing or of another shape; the message names each.
    """
    mapping = _encoder_variables(encoder)
    problems = [f"{n}: checkpoint {list(values[n].shape) if n in values else 'missing'} "
                f"vs config {list(m.original_shape)}" for n, m in mapping.items()
                if n not in values or tuple(values[n].shape) != tuple(m.original_shape)]
    if problems:
        raise ValueError(f"{where}: the pretrained encoder does not match the fine-tuning "
                         "config (check model_size, embedding_size, model_hparam_overrides):"
                         "\n  " + "\n  ".join(problems))
    for name, m in mapping.items():
        m.variable.assign(np.reshape(values[name], m.variable.shape))


def load_finetuned_original(ckpt_prefix, config, tasks):
    """Reads an original fine-tuned checkpoint: the encoder and every task head.

    Args:
        ckpt_prefix: the checkpoint prefix (or a directory holding one).
        config: a `FinetuningConfig` with the model's sizes.
        tasks: the task objects, whose heads must all be in the checkpoint.
    Returns:
        A `FinetuningModel` with the checkpoint's weights.
    Raises:
        ValueError: a head variable missing from the checkpoint, one the tasks do not
            explain, or a shape mismatch; the message names each.
    """
    values = checkpoints.read_checkpoint(ckpt_prefix)
    model = build_finetuning_model(config, tasks)
    load_encoder_weights(values, model.encoder, ckpt_prefix)
    heads = {n: m.variable for n, m in model.original_variables().items()
             if n.startswith("task_specific/")}
    in_ckpt = {n for n in values if n.startswith("task_specific/")
               and not n.endswith(("/adam_m", "/adam_v"))}
    problems = [f"missing from the checkpoint: {n}" for n in sorted(set(heads) - in_ckpt)]
    problems += [f"in the checkpoint but not in the tasks: {n}"
                 for n in sorted(in_ckpt - set(heads))]
    problems += [f"shape mismatch: {n} {list(values[n].shape)} vs {list(v.shape)}"
                 for n, v in heads.items() if n in values and values[n].shape != v.shape]
    if problems:
        raise ValueError(f"{ckpt_prefix}: the task heads do not match:\n  "
                         + "\n  ".join(problems))
    for name, variable in heads.items():
        variable.assign(values[name])
    return model
