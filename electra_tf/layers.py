"""The building blocks of the ELECTRA transformer, numerically identical to the original.

keras-hub's `TransformerEncoder` is BERT's post-LayerNorm block, but it builds a stock
`keras.layers.MultiHeadAttention` whose softmax runs in the compute dtype (bfloat16/float16
under mixed precision) and which cannot return attention probabilities through the fused
path. So the attention is a small `MultiHeadAttention` subclass (the documented
`_compute_attention` extension point) and the block is composed here from Keras layers.
The embedding tables are keras-hub's `ReversibleEmbedding` (one matrix for the input lookup
and the tied MLM output) and `PositionEmbedding`.
"""

import keras
import keras_hub
from keras import ops

LAYER_NORM_EPSILON = 1e-12
# The original adds -10000 to the attention logits of padded keys (spec §3.3), not -inf.
ATTENTION_MASK_ADDER = -10000.0


def activation(name):
    """The original's `get_activation`: "gelu" is the exact erf form, not the tanh one."""
    if name in (None, "", "linear"):
        return None
    if name == "gelu":
        return lambda x: keras.activations.gelu(x, approximate=False)
    if name in ("relu", "tanh"):
        return name
    raise ValueError(f"Unsupported hidden_act {name!r}: expected gelu, relu, tanh or linear")


def truncated_normal(initializer_range):
    """TF1's `truncated_normal_initializer`: resampled beyond 2 stddev, as Keras does."""
    return keras.initializers.TruncatedNormal(stddev=initializer_range)


@keras.saving.register_keras_serializable(package="electra_tf")
class SelfAttention(keras.layers.MultiHeadAttention):
    """Multi-head self-attention with the original's numerics.

    Scores are Q·Kᵀ/√d plus `(1 - mask)·(-10000)`, and the softmax is computed in float32
    under every dtype policy. The attention probabilities (before dropout) are returned
    as the second output when `return_attention_scores=True`.
    """

    def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                           return_attention_scores=False, use_causal_mask=False):
        scores = ops.einsum(self._dot_product_equation, key, query)
        scores = ops.cast(scores, "float32") * self._inverse_sqrt_key_dim
        if attention_mask is not None:
            # [B, T, S] -> [B, 1, T, S]: one mask for every head.
            mask = ops.expand_dims(ops.cast(attention_mask, "float32"), axis=1)
            scores = scores + (1.0 - mask) * ATTENTION_MASK_ADDER
        probs = ops.softmax(scores, axis=-1)
        dropped = self._dropout_layer(ops.cast(probs, self.compute_dtype), training=training)
        return ops.einsum(self._combine_equation, dropped, value), probs


@keras.saving.register_keras_serializable(package="electra_tf")
class TransformerLayer(keras.layers.Layer):
    """One post-LayerNorm BERT block (`encoder/layer_<i>` in the original, spec §3.3).

    Args:
        num_attention_heads: number of heads; the width must divide by it.
        intermediate_size: width of the feed-forward layer.
        hidden_act: activation of the feed-forward layer.
        hidden_dropout_prob: dropout after the attention output and the FFN output.
        attention_probs_dropout_prob: dropout on the attention probabilities.
        initializer_range: stddev of the truncated-normal kernel initialiser.
    Call args:
        x: [batch, seq, hidden] float.
        attention_mask: [batch, seq or 1, seq] 0/1; 1 where a query may attend to a key.
    Returns:
        `(output, attention_probs)`: [batch, seq, hidden] and float32 [batch, heads, seq, seq].
    """

    def __init__(self, num_attention_heads, intermediate_size, hidden_act="gelu",
                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range

    def build(self, input_shape):
        hidden_size = input_shape[-1]
        if hidden_size % self.num_attention_heads:
            raise ValueError(f"{self.name}: hidden size {hidden_size} is not a multiple of "
                             f"num_attention_heads={self.num_attention_heads}")
        init = lambda: truncated_normal(self.initializer_range)  # noqa: E731
        common = {"dtype": self.dtype_policy}
        self.attention = SelfAttention(
            self.num_attention_heads, hidden_size // self.num_attention_heads,
            dropout=self.attention_probs_dropout_prob, kernel_initializer=init(),
            name="attention", **common)
        self.attention.build(input_shape, input_shape)
        self.attention_dropout = keras.layers.Dropout(self.hidden_dropout_prob, **common)
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, name="attention_layer_norm", **common)
        self.attention_layer_norm.build(input_shape)
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_size, activation=activation(self.hidden_act),
            kernel_initializer=init(), name="intermediate_dense", **common)
        self.intermediate_dense.build(input_shape)
        self.output_dense = keras.layers.Dense(
            hidden_size, kernel_initializer=init(), name="output_dense", **common)
        self.output_dense.build(tuple(input_shape[:-1]) + (self.intermediate_size,))
        self.output_dropout = keras.layers.Dropout(self.hidden_dropout_prob, **common)
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, name="output_layer_norm", **common)
        self.output_layer_norm.build(input_shape)

    def call(self, x, attention_mask, training=None):
        attention_output, attention_probs = self.attention(
            x, x, attention_mask=attention_mask, return_attention_scores=True,
            training=training)
        attention_output = self.attention_dropout(attention_output, training=training)
        x = self.attention_layer_norm(attention_output + x)
        layer_output = self.output_dense(self.intermediate_dense(x))
        layer_output = self.output_dropout(layer_output, training=training)
        return self.output_layer_norm(layer_output + x), attention_probs

    def compute_output_spec(self, x, attention_mask, training=None):
        batch, seq = x.shape[0], x.shape[1]
        return (keras.KerasTensor(x.shape, dtype=self.compute_dtype),
                keras.KerasTensor((batch, self.num_attention_heads, seq, seq), dtype="float32"))

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": self.hidden_act,
            "hidden_dropout_prob": self.hidden_dropout_prob,
            "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
            "initializer_range": self.initializer_range,
        })
        return config


@keras.saving.register_keras_serializable(package="electra_tf")
class Embeddings(keras.layers.Layer):
    """The `electra/embeddings` block: word + position + token type, LayerNorm, dropout.

    One instance is shared by the generator and the discriminator when the generator's
    embeddings are tied (spec §3.2, caveat C3), so every table and the LayerNorm exist once.

    Args:
        vocab_size: V.
        embedding_size: E, the width of every table.
        max_position_embeddings: rows of the position table (512).
        type_vocab_size: rows of the token-type table (2).
        hidden_dropout_prob: dropout applied after the LayerNorm.
        initializer_range: stddev of the truncated-normal initialiser.
    Call args:
        input_ids, segment_ids: int [batch, seq].
    Returns:
        [batch, seq, E], the LayerNorm output after dropout (before any projection).
    """

    def __init__(self, vocab_size, embedding_size, max_position_embeddings=512,
                 type_vocab_size=2, hidden_dropout_prob=0.1, initializer_range=0.02,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.initializer_range = initializer_range
        common = {"dtype": self.dtype_policy}
        # `reverse_dtype`: the tied MLM logits are computed in float32 under mixed precision.
        self.word_embeddings = keras_hub.layers.ReversibleEmbedding(
            vocab_size, embedding_size, embeddings_initializer=truncated_normal(
                initializer_range), reverse_dtype="float32", name="word_embeddings", **common)
        self.position_embeddings = keras_hub.layers.PositionEmbedding(
            max_position_embeddings, initializer=truncated_normal(initializer_range),
            name="position_embeddings", **common)
        self.token_type_embeddings = keras.layers.Embedding(
            type_vocab_size, embedding_size, embeddings_initializer=truncated_normal(
                initializer_range), name="token_type_embeddings", **common)
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, name="layer_norm", **common)
        self.dropout = keras.layers.Dropout(hidden_dropout_prob, **common)

    def build(self, input_ids_shape, segment_ids_shape=None):
        self.word_embeddings.build(input_ids_shape)
        self.token_type_embeddings.build(input_ids_shape)
        table_shape = tuple(input_ids_shape) + (self.embedding_size,)
        self.position_embeddings.build(table_shape)
        self.layer_norm.build(table_shape)

    def call(self, input_ids, segment_ids, training=None):
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(segment_ids)
        x = x + self.position_embeddings(x)
        return self.dropout(self.layer_norm(x), training=training)

    def compute_output_shape(self, input_ids_shape, segment_ids_shape=None):
        return tuple(input_ids_shape) + (self.embedding_size,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size,
            "embedding_size": self.embedding_size,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size,
            "hidden_dropout_prob": self.hidden_dropout_prob,
            "initializer_range": self.initializer_range,
        })
        return config
