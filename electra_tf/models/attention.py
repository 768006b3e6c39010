"""Multi-head self-attention with the original's numerics and its variables' shapes.

Written here rather than taken from `keras.layers.MultiHeadAttention` (which keras-hub's
`TransformerEncoder` builds): that layer runs its softmax in the compute dtype (bfloat16 or
float16 under mixed precision), keeps per-head [H, heads, H/heads] kernels, and offers no
public way to change the mask or the softmax. Here the Q/K/V/output projections are plain
[H, H] `Dense` layers (the original's shapes: checkpoints convert without reshaping), the
mask is the original's additive −10000, and the softmax is float32 under every policy.
"""

import math

import keras
from keras import ops

from electra_tf.models.dense import Dense
from electra_tf.models.fused import Dropout, attention_probs
from electra_tf.models.numerics import ATTENTION_MASK_ADDER, truncated_normal


def output_and_probs_spec(x, num_attention_heads, dtype):
    """The symbolic outputs of attention on `x`: like `x`, and float32 probabilities."""
    batch, seq = x.shape[0], x.shape[1]
    return (keras.KerasTensor(x.shape, dtype=dtype),
            keras.KerasTensor((batch, num_attention_heads, seq, seq), dtype="float32"))


@keras.saving.register_keras_serializable(package="electra_tf")
class SelfAttention(keras.layers.Layer):
    """`attention/self` and `attention/output/dense` of one original transformer layer.

    Scores are (Q·Kᵀ)/√d plus (1 − mask)·(−10000), softmax in float32, dropout on the
    probabilities, then the heads are concatenated and projected by `output_dense`.

    Args:
        num_attention_heads: number of heads; the width must divide by it.
        attention_probs_dropout_prob: dropout on the attention probabilities.
        initializer_range: stddev of the truncated-normal kernel initialiser.
    Call args:
        x: [batch, seq, hidden].
        attention_mask: [batch, seq or 1, seq] 0/1, 1 where a query may attend to a key.
    Returns:
        `(output, attention_probs)`: [batch, seq, hidden] (before the residual and its
        dropout) and float32 [batch, heads, seq, seq].

    Example:
    ```python
    attention = SelfAttention(num_attention_heads=2)
    x, mask = np.ones((1, 4, 8), "float32"), np.ones((1, 1, 4), "int32")
    output, probs = attention(x, mask)   # (1, 4, 8), (1, 2, 4, 4)
    ```
    """

    def __init__(self, num_attention_heads, attention_probs_dropout_prob=0.1,
                 initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_attention_heads = num_attention_heads
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range

    def build(self, input_shape):
        hidden_size = input_shape[-1]
        if hidden_size % self.num_attention_heads:
            raise ValueError(f"{self.name}: hidden size {hidden_size} is not a multiple of "
                             f"num_attention_heads={self.num_attention_heads}")
        self.head_size = hidden_size // self.num_attention_heads

        def dense(name):
            layer = Dense(
                hidden_size, kernel_initializer=truncated_normal(self.initializer_range),
                name=name, dtype=self.dtype_policy)
            layer.build(input_shape)
            return layer

        self.query, self.key, self.value = dense("query"), dense("key"), dense("value")
        self.output_dense = dense("output_dense")
        self.dropout = Dropout(self.attention_probs_dropout_prob,
                                            dtype=self.dtype_policy)

    def _split_heads(self, x, batch, seq):
        """[B, S, H] → [B, heads, S, d]."""
        x = ops.reshape(x, (batch, seq, self.num_attention_heads, self.head_size))
        # An einsum, not ops.transpose: the same permutation, without oneDNN's transpose,
        # whose per-call cost is most of a short request's attention (measured: 16% of
        # ELECTRA-Small at batch 1).
        return ops.einsum("bshd->bhsd", x)

    def call(self, x, attention_mask, training=None):
        batch, seq = ops.shape(x)[0], ops.shape(x)[1]
        query = self._split_heads(self.query(x), batch, seq)
        key = self._split_heads(self.key(x), batch, seq)
        value = self._split_heads(self.value(x), batch, seq)
        scale = 1.0 / math.sqrt(float(self.head_size))
        if self.compute_dtype == "float16":
            # Q·Kᵀ can pass float16's 65504 before the scale: scale the query first (as
            # Keras' attention does). Other dtypes keep the original's order, scale after.
            query = query * ops.cast(scale, "float16")
            scale = 1.0
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))
        if training:  # the same arithmetic as below, as one XLA kernel each way
            probs, dropped = attention_probs(scores, attention_mask, scale, self.dropout)
            return self._context(dropped, value, batch, seq), probs
        scores = ops.cast(scores, "float32") * scale
        # [B, T, S] -> [B, 1, T, S]: one mask for every head; only keys are masked.
        mask = ops.expand_dims(ops.cast(attention_mask, "float32"), axis=1)
        probs = ops.softmax(scores + (1.0 - mask) * ATTENTION_MASK_ADDER, axis=-1)
        return self._context(ops.cast(probs, self.compute_dtype), value, batch, seq), probs

    def _context(self, probs, value, batch, seq):
        """The heads' probability-weighted values, concatenated and projected."""
        context = ops.einsum("bhsd->bshd", ops.matmul(probs, value))
        context = ops.reshape(context, (batch, seq, self.num_attention_heads * self.head_size))
        return self.output_dense(context)

    def compute_output_spec(self, x, attention_mask, training=None):
        return output_and_probs_spec(x, self.num_attention_heads, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_attention_heads": self.num_attention_heads,
                "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
                "initializer_range": self.initializer_range}
