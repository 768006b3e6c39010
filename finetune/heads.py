"""The classification, regression and tagging heads on the shared encoder, and their losses.

Every head lives under the original scope `task_specific/<task>/` and maps its variables to
those names itself (`original_variables`). Each head returns a per-example loss; the model
sums each example's own task loss (`finetune.model.combine_losses`). The QA head is
`finetune.qa.head.QAHead`.
"""

import keras
import tensorflow as tf

from electra_tf.models import fused
from electra_tf.models.dense import Dense

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
        self.dropout = fused.Dropout(dropout)
        # Logits in float32 under mixed precision, as every other logit in the project.
        self.dense = Dense(self.num_outputs, kernel_initializer="glorot_uniform",
                                        dtype="float32", name="dense")

    def logits(self, encoder_outputs, positions=None, training=False):
        """The head's float32 logits, without labels (what serving calls).

        Args:
            encoder_outputs: the encoder's dict (`pooled_output`, `sequence_output`).
            positions: tagging only: int [B, P] positions to read; None reads every token.
            training: apply the [CLS] dropout (classification and regression).
        Returns:
            Classification and regression: [B, num_outputs] from [CLS]. Tagging: [B, P, n]
            at `positions`, or [B, S, n].
        """
        if self.task_type == "tagging":
            reprs = encoder_outputs["sequence_output"]
            if positions is not None:
                reprs = tf.gather(reprs, tf.cast(positions, "int32"), batch_dims=1)
        else:
            reprs = self.dropout(encoder_outputs["pooled_output"], training=training)
        return self.dense(tf.cast(reprs, "float32"))

    def call(self, encoder_outputs, features, training=False):
        name, out = self.task_name, {}
        if self.task_type == "tagging":
            out["logits"] = self.logits(encoder_outputs, features[f"{name}_labeled_positions"])
            out["predictions"] = tf.argmax(out["logits"], -1)
            out["labels"] = features[f"{name}_labels"]
            out["labels_mask"] = features[f"{name}_labels_mask"]
            out["loss"] = tagging_losses(out["logits"], out["labels"], out["labels_mask"])
        else:
            logits = self.logits(encoder_outputs, training=training)
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
