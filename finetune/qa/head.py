"""The original QA head: start, start-conditioned end, answerability.

Under `task_specific/<task>/` (the original's `finetune/qa/qa_tasks.py`,
`get_prediction_module`): `dense` gives the start logits; in joint mode `qa_hidden` (2H →
512, GELU) and `dense_1` give end logits conditioned on a start (the gold start in training,
each of the top `beam_size` starts at inference); `dense_2`/`dense_3` give the answerable
logit, positive for "no answer". Logits, log-softmaxes, top-k and losses are float32 under
every policy.

`qa_hidden(concat[start feature; h_t])` is computed as `start·W[:H] + h_t·W[H:] + b`: the
same sum without materialising the original's [B, beam, S, 2H] concatenation, so the 2H×512
product is taken once per start and once per token, not once per (start, token) pair
(about 40× fewer multiply-adds at S=512). Only that [B, beam, S, 512] hidden layer runs in
the compute dtype.
"""

import keras
import tensorflow as tf

from electra_tf.models.dense import Dense
from electra_tf.models.numerics import activation
from finetune.heads import classification_losses

# Added to the start/end logits outside the answer mask, times (answer_mask - 1).
MASK_ADDER = 1000.0


def answer_mask(input_mask, segment_ids):
    """[B, S] float32: 1 at the context tokens, the final [SEP] (segment 1) and [CLS]."""
    mask = tf.cast(input_mask, "float32") * tf.cast(segment_ids, "float32")
    return mask + tf.one_hot(0, tf.shape(mask)[1], dtype="float32")


def _dense(units, name, act=None, dtype="float32"):
    # No initializer in the original: the TF1 default, Glorot-uniform, and zero biases.
    return Dense(units, activation=activation(act) if act else None,
                              kernel_initializer="glorot_uniform", bias_initializer="zeros",
                              dtype=dtype, name=name)


@keras.saving.register_keras_serializable(package="finetune")
class QAHead(keras.layers.Layer):
    """`task_specific/<task>/` QA head. No dropout.

    Args:
        task_name: the task (`squad`, `squadv1`, MRQA names); features are `<task>_*`.
        beam_size: top-k starts, and top-k ends per start, kept at inference (joint mode).
        joint_prediction: end logits conditioned on the start through `qa_hidden`; else
            an independent end `dense_1` (H → 1).
        answerable_classifier: add the answerable logit and its sigmoid loss.
        answerable_uses_start_logits: the classifier reads [CLS] ⊕ Σ softmax(start)·h
            through `dense_2` (2H → 512, GELU) and `dense_3`; else `dense_2` (H → 1) on [CLS].
        answerable_weight: weight of the answerable loss.
        hidden_size_qa: width of `qa_hidden` and `dense_2` (512 in the original).
    Call args:
        encoder_outputs: dict with `sequence_output` [B, S, H].
        features: dict with int `input_mask`, `segment_ids` [B, S], `<task>_start_positions`,
            `<task>_end_positions`, `<task>_is_impossible` [B]; `<task>_eid` is passed on.
        training: teacher forcing with the gold start (joint mode) instead of the beam.
        labels: False at inference without labels (see `infer`): no `<task>_*` labels
            are read, and there is no loss.
    Returns:
        The original's outputs: `loss` [B] (per example), `start_logits` [B, S] (masked),
        `end_logits` [B, S] (zeros at inference in joint mode, as the original),
        `answerable_logit` [B], `start_positions`, `end_positions`, `start_top_log_probs`
        [B, beam], `start_top_index` [B, beam], `end_top_log_probs` and `end_top_index`
        [B, beam, beam] (zeros where the mode does not compute them), and `eid`. Without
        labels: no `loss`, `start_positions` or `end_positions`.

    Example:
    ```python
    head = QAHead("squad")
    outputs = head(encoder({...}), features, training=False)
    outputs["end_top_index"]   # [B, 20, 20] int32
    ```
    """

    def __init__(self, task_name, beam_size=20, joint_prediction=True,
                 answerable_classifier=True, answerable_uses_start_logits=True,
                 answerable_weight=0.5, hidden_size_qa=512, **kwargs):
        super().__init__(**kwargs)
        self.task_name = task_name
        self.beam_size = int(beam_size)
        self.joint_prediction = bool(joint_prediction)
        self.answerable_classifier = bool(answerable_classifier)
        self.answerable_uses_start_logits = bool(answerable_uses_start_logits)
        self.answerable_weight = float(answerable_weight)
        self.hidden_size_qa = int(hidden_size_qa)
        # Named in the original's creation order (legacy `tf.layers.dense` auto-numbering).
        self.start_dense = _dense(1, "dense")
        self.qa_hidden = (_dense(hidden_size_qa, "qa_hidden", "gelu", self.dtype_policy)
                          if self.joint_prediction else None)
        self.end_dense = _dense(1, "dense_1")
        self.answerable_hidden = self.answerable_dense = None
        if self.answerable_classifier:
            if self.answerable_uses_start_logits:
                self.answerable_hidden = _dense(hidden_size_qa, "dense_2", "gelu")
            self.answerable_dense = _dense(
                1, "dense_3" if self.answerable_uses_start_logits else "dense_2")

    @classmethod
    def from_config_for_task(cls, config, task_name, **kwargs):
        """The head a `FinetuningConfig` describes; kwargs (e.g. `name`) go to the layer."""
        kwargs.setdefault("name", f"task_specific_{task_name}")
        kwargs.setdefault("dtype", getattr(config, "precision", None))
        return cls(task_name, beam_size=config.beam_size,
                   joint_prediction=config.joint_prediction,
                   answerable_classifier=config.answerable_classifier,
                   answerable_uses_start_logits=config.answerable_uses_start_logits,
                   answerable_weight=config.answerable_weight, **kwargs)

    def _original_layers(self):
        return [layer for layer in (self.start_dense, self.qa_hidden, self.end_dense,
                                    self.answerable_hidden, self.answerable_dense)
                if layer is not None]

    def build(self, encoder_outputs_shape, features_shape=None):
        hidden = encoder_outputs_shape["sequence_output"][-1]
        if hidden is None:
            raise ValueError(f"QA head {self.task_name!r}: the hidden size of "
                             "sequence_output must be static")
        self.start_dense.build((None, hidden))
        self.end_dense.build((None, self.hidden_size_qa if self.joint_prediction else hidden))
        if self.qa_hidden is not None:
            self.qa_hidden.build((None, 2 * hidden))
        if self.answerable_hidden is not None:
            self.answerable_hidden.build((None, 2 * hidden))
        if self.answerable_dense is not None:
            self.answerable_dense.build(
                (None, self.hidden_size_qa if self.answerable_hidden else hidden))

    def original_variables(self):
        """{name under `task_specific/<task>/`: variable}, e.g. `qa_hidden/kernel` [2H, 512].

        Only the variables of the configured variant; Keras stores Dense kernels [in, out]
        as the original does.
        """
        if not self.built:
            raise ValueError(f"QA head {self.task_name!r}: call it once before asking for "
                             "its variables")
        return {f"{layer.name}/{w}": getattr(layer, w)
                for layer in self._original_layers() for w in ("kernel", "bias")}

    def _feature(self, features, suffix):
        key = f"{self.task_name}_{suffix}"
        if key not in features:
            raise KeyError(f"QA head {self.task_name!r}: features lack {key!r} (int [batch]); "
                           f"got {sorted(features)}")
        return features[key]

    def _end_logits(self, hidden, start_index):
        """End logits [B, S] for starts [B], or [B, beam, S] for starts [B, beam].

        Equals the original `dense_1(qa_hidden(concat([h_start, h_t])))` at every t.
        """
        size = hidden.shape[-1]
        kernel = tf.cast(self.qa_hidden.kernel, hidden.dtype)
        bias = tf.cast(self.qa_hidden.bias, hidden.dtype)
        start_features = tf.gather(hidden, start_index, batch_dims=1)    # [B, (beam,) H]
        start_part = tf.expand_dims(keras.ops.matmul(start_features, kernel[:size]), -2)
        end_part = keras.ops.matmul(hidden, kernel[size:])              # [B, S, 512]
        if len(start_index.shape) == 2:
            end_part = tf.expand_dims(end_part, 1)                      # [B, 1, S, 512]
        qa_hidden = self.qa_hidden.activation(start_part + end_part + bias)
        return tf.squeeze(self.end_dense(tf.cast(qa_hidden, "float32")), -1)

    def _answerable_logit(self, hidden, start_logits):
        """[B]: positive means "no answer"."""
        reprs = hidden[:, 0]
        if self.answerable_hidden is not None:
            start_probs = tf.nn.softmax(start_logits)
            start_feature = tf.einsum("bs,bsh->bh", start_probs, hidden)
            reprs = self.answerable_hidden(tf.concat([reprs, start_feature], -1))
        return tf.squeeze(self.answerable_dense(reprs), -1)

    def infer(self, encoder_outputs, features):
        """The inference outputs from `input_mask` and `segment_ids` alone (no labels, no
        loss): what serving calls. See the class docstring."""
        return self(encoder_outputs, features, training=False, labels=False)

    def call(self, encoder_outputs, features, training=False, labels=True):
        if training and not labels:
            raise ValueError(f"QA head {self.task_name!r}: training needs the labels")
        sequence_output = encoder_outputs["sequence_output"]
        if len(sequence_output.shape) != 3:
            raise ValueError(f"QA head {self.task_name!r}: sequence_output must be "
                             f"[batch, seq, hidden], got shape {sequence_output.shape}")
        seq_length = sequence_output.shape[1]
        if self.joint_prediction and seq_length is not None and seq_length < self.beam_size:
            raise ValueError(f"QA head {self.task_name!r}: beam_size {self.beam_size} is "
                             f"larger than the sequence length {seq_length}")
        if labels:
            start_positions = self._feature(features, "start_positions")
            end_positions = self._feature(features, "end_positions")
        hidden = tf.cast(sequence_output, self.compute_dtype)
        hidden32 = tf.cast(sequence_output, "float32")
        batch_size = tf.shape(hidden)[0]
        beam = self.beam_size
        mask_adder = MASK_ADDER * (answer_mask(features["input_mask"],
                                               features["segment_ids"]) - 1.0)

        start_logits = tf.squeeze(self.start_dense(hidden32), -1) + mask_adder
        start_top_log_probs = tf.zeros([batch_size, beam])
        start_top_index = tf.zeros([batch_size, beam], tf.int32)
        end_top_log_probs = tf.zeros([batch_size, beam, beam])
        end_top_index = tf.zeros([batch_size, beam, beam], tf.int32)
        if not self.joint_prediction:
            end_logits = tf.squeeze(self.end_dense(hidden32), -1) + mask_adder
        else:
            start_top_log_probs, start_top_index = tf.math.top_k(
                tf.nn.log_softmax(start_logits), k=beam)
            if training:  # teacher forcing: the end is conditioned on the gold start
                gold = tf.cast(start_positions, tf.int32)
                end_logits = self._end_logits(hidden, gold) + mask_adder
            else:
                beam_logits = (self._end_logits(hidden, start_top_index)
                               + tf.expand_dims(mask_adder, 1))
                end_top_log_probs, end_top_index = tf.math.top_k(
                    tf.nn.log_softmax(beam_logits), k=beam)
                end_logits = tf.zeros_like(start_logits)

        answerable_logit = tf.zeros([batch_size])
        if self.answerable_classifier:
            answerable_logit = self._answerable_logit(hidden32, start_logits)
        outputs = dict(
            start_logits=start_logits, end_logits=end_logits,
            answerable_logit=answerable_logit, start_top_log_probs=start_top_log_probs,
            start_top_index=start_top_index, end_top_log_probs=end_top_log_probs,
            end_top_index=end_top_index)
        if labels:
            losses = (classification_losses(start_logits, start_positions)
                      + classification_losses(end_logits, end_positions)) / 2.0
            if self.answerable_classifier:
                is_impossible = tf.cast(self._feature(features, "is_impossible"), "float32")
                losses += self.answerable_weight * tf.nn.sigmoid_cross_entropy_with_logits(
                    labels=is_impossible, logits=answerable_logit)
            outputs.update(loss=losses, start_positions=start_positions,
                           end_positions=end_positions)
        if f"{self.task_name}_eid" in features:
            outputs["eid"] = features[f"{self.task_name}_eid"]
        return outputs

    def get_config(self):
        return {**super().get_config(), "task_name": self.task_name,
                "beam_size": self.beam_size, "joint_prediction": self.joint_prediction,
                "answerable_classifier": self.answerable_classifier,
                "answerable_uses_start_logits": self.answerable_uses_start_logits,
                "answerable_weight": self.answerable_weight,
                "hidden_size_qa": self.hidden_size_qa}
