"""One post-LayerNorm BERT block (`encoder/layer_<i>` in the original)."""

import keras

from electra_tf.models.attention import SelfAttention, output_and_probs_spec
from electra_tf.models.dense import Dense
from electra_tf.models.fused import Dropout, dropout_add_layer_norm
from electra_tf.models.numerics import activation, layer_norm, truncated_normal


@keras.saving.register_keras_serializable(package="electra_tf")
class TransformerLayer(keras.layers.Layer):
    """Self-attention → dropout → LayerNorm(x + ·) → FFN → dropout → LayerNorm(x + ·).

    Composed from Keras layers and our `SelfAttention` rather than keras-hub's
    `TransformerEncoder`, whose attention softmax runs in bfloat16/float16 under mixed
    precision (see `attention.py`).

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

    Example:
    ```python
    layer = TransformerLayer(num_attention_heads=2, intermediate_size=32)
    x, mask = np.ones((1, 4, 8), "float32"), np.ones((1, 1, 4), "int32")
    output, probs = layer(x, mask)
    ```
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
        policy = self.dtype_policy
        self.attention = SelfAttention(self.num_attention_heads,
                                       self.attention_probs_dropout_prob,
                                       self.initializer_range, name="attention", dtype=policy)
        self.attention.build(input_shape)
        self.attention_dropout = Dropout(self.hidden_dropout_prob, dtype=policy)
        self.attention_layer_norm = layer_norm("attention_layer_norm", policy)
        self.attention_layer_norm.build(input_shape)
        self.intermediate_dense = Dense(
            self.intermediate_size, activation=activation(self.hidden_act),
            kernel_initializer=truncated_normal(self.initializer_range),
            name="intermediate_dense", dtype=policy)
        self.intermediate_dense.build(input_shape)
        self.output_dense = Dense(
            hidden_size, kernel_initializer=truncated_normal(self.initializer_range),
            name="output_dense", dtype=policy)
        self.output_dense.build(tuple(input_shape[:-1]) + (self.intermediate_size,))
        self.output_dropout = Dropout(self.hidden_dropout_prob, dtype=policy)
        self.output_layer_norm = layer_norm("output_layer_norm", policy)
        self.output_layer_norm.build(input_shape)

    def call(self, x, attention_mask, training=None):
        attention_output, attention_probs = self.attention(x, attention_mask,
                                                           training=training)
        if training:  # the same arithmetic, its elementwise chains fused (`fused`)
            x = dropout_add_layer_norm(attention_output, x, self.attention_layer_norm,
                                       self.attention_dropout)
            layer_output = self.output_dense(self.intermediate_dense(x, training=True))
            return dropout_add_layer_norm(layer_output, x, self.output_layer_norm,
                                          self.output_dropout), attention_probs
        x = self.attention_layer_norm(attention_output + x)
        layer_output = self.output_dense(self.intermediate_dense(x))
        return self.output_layer_norm(layer_output + x), attention_probs

    def compute_output_spec(self, x, attention_mask, training=None):
        return output_and_probs_spec(x, self.num_attention_heads, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_attention_heads": self.num_attention_heads,
                "intermediate_size": self.intermediate_size, "hidden_act": self.hidden_act,
                "hidden_dropout_prob": self.hidden_dropout_prob,
                "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
                "initializer_range": self.initializer_range}
