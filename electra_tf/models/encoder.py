"""The original `BertModel` as a Keras functional model: embeddings, projection, layers."""

import keras
from keras import ops

from electra_tf.models.dense import Dense
from electra_tf.models.embeddings import Embeddings
from electra_tf.models.transformer import TransformerLayer

INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")
# The constructor arguments an `Encoder` keeps as public attributes (and in its config).
ENCODER_ARGS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "embedding_size", "hidden_act", "hidden_dropout_prob",
                "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
                "initializer_range", "attention_direction")


def model_inputs():
    """Symbolic int32 [batch, seq] inputs named as the original's features."""
    return {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in INPUT_NAMES}


def attention_mask(input_mask, direction=None):
    """[batch, 1 or seq, seq] mask over keys, optionally causal.

    Only keys are masked: padded query positions are computed like any other, as in the
    original (their outputs are ignored downstream).
    """
    mask = ops.expand_dims(input_mask, axis=1)
    if direction is None:
        return mask
    # ones[i, j] = 1 where query i may see key j.
    ones = ops.ones_like(ops.cast(mask, "int32")) * ops.expand_dims(ops.ones_like(input_mask), 2)
    rows = ops.cumsum(ops.ones_like(ones), axis=1)
    cols = ops.cumsum(ops.ones_like(ones), axis=2)
    allowed = cols <= rows if direction == "ltr" else cols >= rows
    return mask * ops.cast(allowed, mask.dtype)


@keras.saving.register_keras_serializable(package="electra_tf")
class Encoder(keras.Model):
    """The original `BertModel`: embeddings, optional projection, post-LN transformer.

    There is no pooler: `pooled_output` is the [CLS] vector, as ELECTRA uses it.

    Args:
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
        hidden_act, hidden_dropout_prob, attention_probs_dropout_prob,
        max_position_embeddings, type_vocab_size, initializer_range: as in `BertConfig`.
        embedding_size: E; `embeddings_project` (E→H) exists only when E ≠ H.
        attention_direction: None, "ltr" (a query sees keys ≤ itself) or "rtl" (keys ≥
            itself), for Electric's two towers.
        embeddings: an `Embeddings` layer to share (tied generator); built here if None.
        dtype: a dtype policy name such as "mixed_bfloat16".
    Inputs: dict of int32 `input_ids`, `input_mask`, `segment_ids`, each [batch, seq].
    Outputs: dict with `sequence_output` [batch, seq, H], `pooled_output` [batch, H] and
        `embedding_output` [batch, seq, H] (after the projection).

    Example:
    ```python
    encoder = Encoder(vocab_size=1024, hidden_size=64, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=256, embedding_size=32)
    ids = np.ones((2, 8), "int32")
    out = encoder({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
    out["sequence_output"].shape  # (2, 8, 64)
    ```
    """

    def __init__(self, vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
                 intermediate_size, embedding_size=None, hidden_act="gelu",
                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                 max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02,
                 attention_direction=None, embeddings=None, dtype=None, **kwargs):
        if attention_direction not in (None, "ltr", "rtl"):
            raise ValueError(f"attention_direction must be None, 'ltr' or 'rtl', "
                             f"got {attention_direction!r}")
        if embeddings is None:
            embeddings = Embeddings(
                vocab_size, embedding_size or hidden_size, max_position_embeddings,
                type_vocab_size, hidden_dropout_prob, initializer_range, dtype=dtype,
                name="embeddings")
        inputs = model_inputs()
        x = embeddings(inputs["input_ids"], inputs["segment_ids"])
        embeddings_project = None
        if embeddings.embedding_size != hidden_size:
            # No initializer in the original: the TF1 default, Glorot-uniform.
            embeddings_project = Dense(
                hidden_size, kernel_initializer="glorot_uniform", dtype=dtype,
                name="embeddings_project")
            x = embeddings_project(x)
        embedding_output = x
        mask = attention_mask(inputs["input_mask"], attention_direction)
        layers = [TransformerLayer(
            num_attention_heads, intermediate_size, hidden_act, hidden_dropout_prob,
            attention_probs_dropout_prob, initializer_range, dtype=dtype, name=f"layer_{i}")
            for i in range(num_hidden_layers)]
        for layer in layers:
            x, _ = layer(x, mask)
        outputs = {"sequence_output": x, "pooled_output": x[:, 0],
                   "embedding_output": embedding_output}
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)
        self.embeddings = embeddings
        self.embeddings_project = embeddings_project
        self.transformer_layers = layers
        values = locals()
        for name in ENCODER_ARGS:
            setattr(self, name, values[name])
        self.embedding_size = embeddings.embedding_size

    def dropout_layers(self):
        """Every dropout layer, in order (their RNG states make a run resumable)."""
        dropouts = [self.embeddings.dropout]
        for layer in self.transformer_layers:
            dropouts += [layer.attention.dropout, layer.attention_dropout, layer.output_dropout]
        return dropouts

    @classmethod
    def from_bert_config(cls, bert_config, **kwargs):
        """Builds an encoder from a `BertConfig`; kwargs go to the constructor."""
        return cls(**bert_config.to_dict(), **kwargs)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                # A functional model's own policy stays float32; its layers carry the precision.
                "dtype": keras.dtype_policies.serialize(self.embeddings.dtype_policy),
                **{name: getattr(self, name) for name in ENCODER_ARGS}}
