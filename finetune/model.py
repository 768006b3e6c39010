"""The fine-tuning model: one encoder (`electra/*`) and one head per task, and its loss.

The batch loss is the sum over examples (not a mean) of each example's own task loss,
selected by `one_hot(task_id)`; records with task_id = #tasks are padding and count zero.
"""

import keras
import numpy as np
import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.models import Encoder
from finetune import weights


@keras.saving.register_keras_serializable(package="finetune")
class FinetuningModel(keras.Model):
    """The original `FinetuningModel`: one encoder (`electra/*`), one head per task.

    `model.save("m.keras")` / `keras.models.load_model("m.keras")` round-trip it: the file
    keeps each task as a `SavedTask` (name, type, feature specs, head), so loading needs
    no training data; the reloaded model's `tasks` are those `SavedTask`s.

    Args:
        encoder: an `electra_tf.models.Encoder`.
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
        """{original name: `checkpoints.Mapped`} for the encoder and every head.

        This is what `optimization.create_optimizer(..., variables=...)` takes.
        """
        if not all(h.built for h in self.heads.values()):
            raise ValueError("call the model once before asking for its variables")
        mapping = checkpoints.encoder_variable_map(self.encoder)
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
    """A built fine-tuning model whose encoder starts from a pretrained checkpoint.

    As the original's `init_from_checkpoint`, only `electra/*` is restored: generator,
    discriminator head, optimizer state and step are not, and the heads are new.

    Args:
        config: a `finetune.config.FinetuningConfig`.
        tasks: task objects (see `FinetuningModel`).
        init_checkpoint: None (random weights), or what `weights.load_pretrained_encoder`
            reads (one of our model directories, or an original TF1 checkpoint).
    Returns:
        A `FinetuningModel`, built on `config.max_seq_length` tokens.
    Raises:
        ValueError: the checkpoint's encoder does not have the config's shapes.
    """
    encoder = Encoder.from_bert_config(
        config.bert_config(), embedding_size=config.embedding_size, dtype=config.precision)
    if init_checkpoint:
        weights.load_pretrained_encoder(encoder, init_checkpoint)
    model = FinetuningModel(encoder, tasks)
    model(dummy_features(tasks, 1, config.max_seq_length), training=False)
    return model
